//! `diagnose`.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::cache::{or_null, NeedsAuthEntry};
use crate::enums::{SkipReasonKind, WatchModeKind};
use crate::{Code, NapiResultExt, NeedsAuthOptions, ServerName};
use mcp_needs_auth_core::diagnose::{self, SkipReason};

use crate::runtime::runtime;

/// One reason Claude Code skips a server.
#[napi(object)]
pub struct SkipReasonInfo {
  pub kind: SkipReasonKind,
  /// What it means and what to do, in a sentence or two.
  pub message: String,
  /// `needs-auth-cache`: how old the entry is.
  pub age_ms: Option<f64>,
  /// `needs-auth-cache`: how long Claude Code will keep skipping.
  pub expires_in_ms: Option<f64>,
  /// `needs-auth-cache`: the credentials were saved after the entry (`purgeStale` removes it).
  pub superseded: Option<bool>,
}

/// What the credentials store holds for the server (for a claude.ai connector: the account's
/// `claudeAiOauth`, which it is dialed with): booleans and `expiresAt`, never a token.
#[napi(object)]
pub struct CredentialsSummary {
  /// The store has at least one `mcpOAuth` entry for this server name.
  pub present: bool,
  pub has_access_token: bool,
  pub has_refresh_token: bool,
  /// The latest `expiresAt` among this server's access tokens (ms since the epoch).
  pub expires_at: Either<f64, Null>,
  /// An entry with neither token after OAuth discovery: Claude Code's second skip rule.
  pub tokenless_stub: bool,
}

/// How a watcher (`onAuthChanged`) of this config dir follows the cache and the credentials file.
#[napi(object)]
pub struct WatchInfo {
  pub mode: WatchModeKind,
  /// The filesystem type that decided it (`ext4`, `nfs`, `fuse`, …).
  pub filesystem: String,
}

#[napi(object)]
pub struct Diagnosis {
  pub server: String,
  /// Whether a new Claude Code process would skip this server now without dialing it.
  pub skipped: bool,
  pub reasons: Vec<SkipReasonInfo>,
  /// The server's needs-auth entry, cached or not; `null` when there is none.
  pub cache_entry: Either<NeedsAuthEntry, Null>,
  pub credentials: CredentialsSummary,
  /// For a claude.ai connector (`claudeai-proxy`) with an entry: what the entry stands for (the
  /// connector's authorization on claude.ai, which this machine cannot see), what clears it,
  /// and whether Claude Code already ignores it.
  pub connector_note: Option<String>,
  pub watch: WatchInfo,
}

/// Why Claude Code would skip `server` now, as data: its needs-auth entry (age, time left,
/// superseded or not) and the token-less credentials stub that deleting the entry does not cure
/// (sign in with `claude mcp login <server>`). With `options.serverConfig`, the entry is judged
/// by Claude Code 2.1.332's rules. Reads credentials, never writes them, and never returns token
/// material.
#[napi]
pub fn diagnose(server: ServerName, options: Option<NeedsAuthOptions>) -> Result<Diagnosis, Code> {
  let ServerName(server) = server;
  let opts = options.unwrap_or_default();
  let configs = opts.server_configs(Some(&server))?;
  let rt = runtime();
  let rules = opts.rules(configs.as_ref());
  let d = diagnose::diagnose(
    rt.memos(),
    rt.observations(),
    &opts.config_dir()?,
    opts.explicit_config_dir()?,
    opts.credential_source(),
    &server,
    &rules,
  )
  .js()?;
  let connector = rules.is_connector(&d.server);
  let present = d.credentials.is_some();
  let creds = d.credentials.unwrap_or_default();
  Ok(Diagnosis {
    server: d.server,
    skipped: d.skipped,
    reasons: d.reasons.into_iter().map(reason_info).collect(),
    cache_entry: d.entry.map_or(Either::B(Null), |e| Either::A(NeedsAuthEntry::of(connector, e))),
    credentials: CredentialsSummary {
      present,
      has_access_token: creds.has_access_token,
      has_refresh_token: creds.has_refresh_token,
      expires_at: or_null(creds.expires_at),
      tokenless_stub: creds.tokenless_stub,
    },
    connector_note: d.connector_note,
    watch: WatchInfo { mode: d.watch.mode.into(), filesystem: d.watch.filesystem.into_owned() },
  })
}

fn reason_info(r: SkipReason) -> SkipReasonInfo {
  match r {
    SkipReason::NeedsAuthCache { age_ms, expires_in_ms, superseded, message } => SkipReasonInfo {
      kind: SkipReasonKind::NeedsAuthCache,
      message,
      age_ms: Some(age_ms),
      expires_in_ms: Some(expires_in_ms),
      superseded: Some(superseded),
    },
    SkipReason::TokenlessStub { message } => SkipReasonInfo {
      kind: SkipReasonKind::TokenlessStub,
      message,
      age_ms: None,
      expires_in_ms: None,
      superseded: None,
    },
  }
}
