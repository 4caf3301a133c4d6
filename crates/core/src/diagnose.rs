//! Why Claude Code would skip a server now, as data: the needs-auth entry (Claude Code's first
//! skip rule) and the token-less credentials stub (its second), with what to do about each.

use std::path::Path;

use crate::cache_file::{self, EntryStatus};
use crate::clock::now_ms;
use crate::config_dir;
use crate::credentials::Store;
use crate::credentials::{CredentialSource, Observations, ServerCredentials};
use crate::error::Result;
use crate::needs_auth::{self, Memos};
use crate::server_config::Transport;
use crate::server_rules::Rules;
use crate::staleness::{self, CredentialView};
use crate::watch_mode::{self, WatchMode};

/// Claude Code 2.1.332 stops honouring a token-less stub this long after `tokenlessRejectedAt`;
/// 2.1.108 honours it forever (a stub without that field).
pub(crate) const TOKENLESS_STUB_WINDOW_MS: f64 = 7.0 * 24.0 * 3_600_000.0;

#[derive(Debug, Clone, PartialEq)]
pub enum SkipReason {
  NeedsAuthCache { age_ms: f64, expires_in_ms: f64, superseded: bool, message: String },
  TokenlessStub { message: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Diagnosis {
  pub server: String,
  pub skipped: bool,
  pub reasons: Vec<SkipReason>,
  pub entry: Option<EntryStatus>,
  /// `None` when the store holds nothing for this server. For a claude.ai connector: the
  /// account's (`claudeAiOauth`), which it is dialed with.
  pub credentials: Option<ServerCredentials>,
  pub(crate) store_present: bool,
  /// For a claude.ai connector with an entry: what that entry is about and what clears it.
  pub connector_note: Option<String>,
  /// How a watcher of this config dir and store follows the files (notifications, or polling
  /// where the filesystem may not tell this kernel of a change).
  pub watch: WatchMode,
}

/// The diagnosis of `server`, reading the cache through `memos` and judging by what this
/// process `seen` of the store.
pub fn diagnose(
  memos: &Memos,
  seen: &Observations,
  config_dir: &Path,
  explicit: bool,
  source: CredentialSource,
  server: &str,
  rules: &Rules,
) -> Result<Diagnosis> {
  cache_file::validate_server_name(server)?;
  let now = now_ms();
  let entry = needs_auth::status(memos, &config_dir::cache_path(config_dir), server, now, rules)?;
  let config = rules.config(server);
  let view = CredentialView::load(seen, config_dir, explicit, source, now)?;
  let connector = rules.is_connector(server);
  // A connector has no credentials of its own: it is dialed with the account's.
  let creds = if connector { view.snapshot.account.clone() } else { view.snapshot.servers.get(server).cloned() };
  let mut reasons = Vec::new();
  let connector_note = entry.as_ref().filter(|_| connector).map(|st| connector_note(server, st, now));

  // A cached entry always has a timestamp: neither rule finds one in its window without it.
  if let Some((st, ts)) = entry.as_ref().filter(|st| st.cached).and_then(|st| st.timestamp.map(|ts| (st, ts))) {
    let superseded = staleness::is_superseded(ts, &view.evidence_for(st, connector));
    let age_ms = now - ts;
    let expires_in_ms = ts + st.ttl_ms - now;
    // Claude Code 2.1.332 reports a plugin stdio server whose failure is cached as `failed`.
    let plugin_stdio = config.is_some_and(|c| c.plugin && c.transport == Transport::Stdio);
    let mut message = format!(
      "Claude Code skips \"{server}\" without dialing it: it {} {} ago and the needs-auth \
       entry lasts {} more.",
      if plugin_stdio { "failed" } else { "answered 401" },
      crate::duration::format(age_ms),
      crate::duration::format(expires_in_ms)
    );
    message.push_str(if connector && superseded {
      " The account's tokens (claudeAiOauth, what connectors are dialed with) were saved after \
       that, so this id-less entry (Claude Code 2.1.108's) is stale: purgeStale() (or \
       `mcp-needs-auth purge`) removes it."
    } else if connector {
      " See the connector note: this machine cannot tell whether the connector was authorized \
       again on claude.ai since."
    } else if superseded {
      " Its credentials were saved after that, so the entry is stale: purgeStale() (or \
       `mcp-needs-auth purge`) removes it."
    } else {
      " If you have signed in again since, invalidateNeedsAuth() (or `mcp-needs-auth clear`) \
       removes it; otherwise sign in first."
    });
    reasons.push(SkipReason::NeedsAuthCache { age_ms, expires_in_ms, superseded, message });
  }

  // The second rule applies to http/sse servers only (any server, without a config).
  if let Some(c) = creds.as_ref().filter(|_| config.is_none_or(|c| c.transport.is_http_or_sse())) {
    let in_window = c.tokenless_rejected_at.is_none_or(|at| now - at < TOKENLESS_STUB_WINDOW_MS);
    if c.tokenless_stub && !c.has_token() && in_window {
      reasons.push(SkipReason::TokenlessStub {
        message: format!(
          "Claude Code skips \"{server}\" because its stored credentials are a token-less stub \
           (written by a 401 during `claude mcp list`). Removing the needs-auth entry does not \
           help: sign in with `claude mcp login {server}` (or /mcp in an interactive session)."
        ),
      });
    }
  }

  Ok(Diagnosis {
    server: server.to_owned(),
    skipped: !reasons.is_empty(),
    reasons,
    entry,
    credentials: creds,
    store_present: view.snapshot.present,
    connector_note,
    watch: watch_mode::mode_of(config_dir, &Store::locate(config_dir, explicit, source)),
  })
}

/// What is true about a claude.ai connector's entry: it stands for the connector's
/// authorization on claude.ai, which nothing on this machine records; what clears it; and when
/// Claude Code already ignores it.
fn connector_note(server: &str, st: &EntryStatus, now: f64) -> String {
  let mut note = format!(
    "\"{server}\" is a claude.ai connector: it is dialed through claude.ai's MCP proxy with the \
     account's token, and its needs-auth entry stands for the connector's own authorization on \
     claude.ai, which this machine cannot see (authorizing it again on claude.ai changes nothing \
     here)."
  );
  let expired = st.timestamp.is_some_and(|ts| now - ts >= st.ttl_ms);
  if st.ignored == Some(crate::cache_file::Ignored::IdMismatch) {
    note.push_str(
      " Its id is not the connector's id, so Claude Code (2.1.332+) already ignores it and dials \
       the connector; its next successful connect removes it.",
    );
  } else if expired {
    note.push_str(" Its TTL has run out, so Claude Code already ignores it and dials the connector.");
  } else if st.cached {
    note.push_str(&format!(
      " What clears it: a re-dial from a live session once the connector is authorized on \
       claude.ai (redialConnectors() in mcp-needs-auth/sdk, or /mcp in an interactive session), \
       or `claude mcp login '{server}'` (which removes it at once and prints the claude.ai \
       authorization URL)."
    ));
    if st.id.is_none() {
      note.push_str(
        " Without an id it is Claude Code 2.1.108's (any 401, the account token's included); \
         2.1.332+ ignores it, and it goes by itself when the account's tokens are saved after \
         it (purgeStale(), or a watcher with autoInvalidate).",
      );
    }
  }
  note
}

#[cfg(test)]
mod tests {
  use super::*;

  fn write(dir: &Path, name: &str, body: &str) {
    std::fs::write(dir.join(name), body).expect("write fixture");
  }

  #[test]
  fn cached_entry_and_tokenless_stub_are_both_reasons() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = now_ms();
    write(dir.path(), "mcp-needs-auth-cache.json", &format!(r#"{{"gh":{{"timestamp":{}}}}}"#, now - 60_000.0));
    write(
      dir.path(),
      ".credentials.json",
      r#"{"mcpOAuth":{"gh|0123456789abcdef":{"serverName":"gh","accessToken":"","expiresAt":0,"discoveryState":{"oauthMetadataFound":true}}}}"#,
    );
    let (memos, seen) = (Memos::new(), Observations::default());
    let d =
      diagnose(&memos, &seen, dir.path(), true, CredentialSource::File, "gh", &Rules::default()).expect("diagnose");
    assert!(d.skipped);
    assert_eq!(d.reasons.len(), 2);
    assert!(matches!(&d.reasons[0], SkipReason::NeedsAuthCache { superseded: false, .. }));
    match &d.reasons[1] {
      SkipReason::TokenlessStub { message } => assert!(message.contains("claude mcp login gh")),
      other => panic!("unexpected {other:?}"),
    }
    let d =
      diagnose(&memos, &seen, dir.path(), true, CredentialSource::File, "other", &Rules::default()).expect("diagnose");
    assert!(!d.skipped && d.entry.is_none() && d.credentials.is_none() && d.store_present);
  }

  #[test]
  fn purge_on_the_bug_report_scenario_and_its_negative_twin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = now_ms();
    // Entry written 2 min ago; `a` signed in since (file rewritten now, token valid 1 h);
    // `b`'s token expired before its entry; `old` is past its TTL.
    write(
      dir.path(),
      "mcp-needs-auth-cache.json",
      &format!(
        r#"{{"a":{{"timestamp":{t}}},"b":{{"timestamp":{t}}},"old":{{"timestamp":{o}}}}}"#,
        t = now - 120_000.0,
        o = now - 1_000_000.0
      ),
    );
    write(
      dir.path(),
      ".credentials.json",
      &format!(
        r#"{{"mcpOAuth":{{"a|0000000000000000":{{"serverName":"a","accessToken":"fresh","expiresAt":{fresh}}},"b|1111111111111111":{{"serverName":"b","accessToken":"stale","expiresAt":{stale}}}}}}}"#,
        fresh = now + 3_600_000.0,
        stale = now - 600_000.0
      ),
    );
    let (memos, seen) = (Memos::new(), Observations::default());
    let w = crate::needs_auth::Writer { memos: &memos, observer: &(), lock_wait: crate::fs::DEFAULT_LOCK_WAIT };
    let mut purged =
      staleness::purge(w, &seen, dir.path(), true, CredentialSource::File, &Rules::default()).expect("purge");
    purged.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
      purged,
      vec![("a".to_string(), staleness::Staleness::Superseded), ("old".to_string(), staleness::Staleness::Expired)]
    );
    let left = std::fs::read_to_string(dir.path().join("mcp-needs-auth-cache.json")).expect("read");
    assert!(left.contains("\"b\"") && !left.contains("\"a\""));
  }

  #[test]
  fn a_connectors_entry_is_explained_for_what_it_is() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = now_ms();
    let name = "claude.ai Figma";
    let run = |entry: String, rules: &Rules| {
      write(dir.path(), "mcp-needs-auth-cache.json", &format!(r#"{{"{name}":{entry}}}"#));
      let (memos, seen) = (Memos::new(), Observations::default());
      diagnose(&memos, &seen, dir.path(), true, CredentialSource::File, name, rules).expect("diagnose")
    };
    write(dir.path(), ".credentials.json", r#"{"claudeAiOauth":{"accessToken":"A","expiresAt":1}}"#);
    let d = run(format!(r#"{{"timestamp":{},"id":"mcpsrv_01"}}"#, now - 60_000.0), &Rules::default());
    let note = d.connector_note.expect("a note");
    assert!(d.skipped && note.contains("cannot see") && note.contains("claude mcp login 'claude.ai Figma'"), "{note}");
    assert!(d.credentials.is_some_and(|c| c.has_access_token), "the account's credentials");
    let d = run(format!(r#"{{"timestamp":{}}}"#, now - 3_600_000.0), &Rules::default());
    assert!(!d.skipped && d.connector_note.expect("note").contains("TTL has run out"));
    let configs: crate::server_rules::ServerConfigs = [(
      name.to_string(),
      crate::server_config::ServerConfig::from_json(
        &serde_json::json!({"type": "claudeai-proxy", "url": "u", "id": "mcpsrv_02"}),
      )
      .expect("cfg"),
    )]
    .into();
    let rules = Rules { default_ttl_ms: cache_file::DEFAULT_TTL_MS, configs: Some(&configs) };
    let d = run(format!(r#"{{"timestamp":{},"id":"mcpsrv_01"}}"#, now - 60_000.0), &rules);
    assert!(!d.skipped && d.connector_note.expect("note").contains("already ignores it"));
    assert!(run(format!(r#"{{"timestamp":{}}}"#, now), &Rules::default()).connector_note.is_some());
  }
}
