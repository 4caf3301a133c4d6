//! `cachePath`, `listNeedsAuth`, `isNeedsAuthCached`, `markNeedsAuth`, `invalidateNeedsAuth`.

use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;

use crate::bulk_values::{self, StringArray};
use crate::enums::{IgnoredBecause, JudgedBy};
use crate::{
  decode_arg, invalid_argument, path_string, server_name, Code, JsResult, NapiResultExt, NeedsAuthOptions, ServerName,
};
use mcp_needs_auth_core::cache_file::EntryStatus;
use mcp_needs_auth_core::clock::now_ms;
use mcp_needs_auth_core::event_bus;
use mcp_needs_auth_core::needs_auth::{self, Selection};

use crate::runtime::runtime;

/// One entry of the needs-auth cache, judged as Claude Code would judge it now.
#[napi(object)]
pub struct NeedsAuthEntry {
  /// The MCP server's name (the cache key), exactly as written; a lone surrogate in it (a name no
  /// call accepts) shows as U+FFFD.
  pub server: String,
  /// When the connect failed with 401 (ms since the epoch); `null` when the entry has no numeric
  /// timestamp (Claude Code then ignores it).
  pub timestamp: Either<f64, Null>,
  /// The effective TTL: the entry's `ttlMs`, else `options.defaultTtlMs`, else 900000.
  pub ttl_ms: f64,
  /// `timestamp + ttlMs`, or `null` without a timestamp.
  pub expires_at: Either<f64, Null>,
  /// True when Claude Code would skip this server now (within TTL, up to 60 s of clock skew).
  pub cached: bool,
  /// The entry's server `id` (Claude Code 2.1.120+), when present.
  pub id: Option<String>,
  /// Which rule judged the entry: the server's config, or (without one) the name-only rule.
  pub judged_by: JudgedBy,
  /// With a config: why Claude Code ignores the entry whatever its age.
  pub ignored: Option<IgnoredBecause>,
  /// Whether the server is a claude.ai connector (`claudeai-proxy`): by its config in
  /// `options.serverConfigs`, else by its name (`claude.ai …`).
  pub connector: bool,
}

impl NeedsAuthEntry {
  /// The entry `s`, of a connector or not (`Rules::is_connector`).
  pub(crate) fn of(connector: bool, s: EntryStatus) -> Self {
    NeedsAuthEntry {
      server: s.server,
      timestamp: or_null(s.timestamp),
      ttl_ms: s.ttl_ms,
      expires_at: or_null(s.expires_at),
      cached: s.cached,
      id: s.id,
      judged_by: s.judged_by.into(),
      ignored: s.ignored.map(IgnoredBecause::from),
      connector,
    }
  }
}

pub(crate) fn or_null(v: Option<f64>) -> Either<f64, Null> {
  v.map_or(Either::B(Null), Either::A)
}

/// The path of the needs-auth cache file: `<configDir>/mcp-needs-auth-cache.json`.
#[napi]
pub fn cache_path(options: Option<NeedsAuthOptions>) -> Result<String, Code> {
  Ok(path_string(&options.unwrap_or_default().cache_path()?))
}

/// Every entry of the needs-auth cache, in file order as JavaScript has it (integer-like names
/// first). A missing or corrupt file has none (as Claude Code reads it); a file over 1 MiB throws
/// `ERR_CACHE_TOO_LARGE`. Entries of servers in `options.serverConfigs` are judged by Claude Code
/// 2.1.332's rules, the others by name only.
#[napi]
pub fn list_needs_auth(options: Option<NeedsAuthOptions>) -> Result<Vec<NeedsAuthEntry>, Code> {
  let opts = options.unwrap_or_default();
  let configs = opts.server_configs(None)?;
  let rules = opts.rules(configs.as_ref());
  let entries = needs_auth::list(runtime().memos(), &opts.cache_path()?, now_ms(), &rules).js()?;
  Ok(entries.into_iter().map(|e| NeedsAuthEntry::of(rules.is_connector(&e.server), e)).collect())
}

/// Whether Claude Code would skip `server` now because of its needs-auth entry. With
/// `options.serverConfig` (or `serverConfigs[server]`) the answer is Claude Code 2.1.332's exact
/// rule; without, the name-only rule. Cheap: an unchanged file is answered from memory after one
/// look at a kernel change queue (one `stat` where no queue can be exact), and a change any
/// process completed before the call is seen by it.
#[napi]
pub fn is_needs_auth_cached(server: ServerName, options: Option<NeedsAuthOptions>) -> Result<bool, Code> {
  // Exported by `fast_call` instead (same arguments, same body); this declaration gives the
  // TypeScript and stays callable as napi-rs made it.
  let ServerName(server) = server;
  is_cached(&server, options.unwrap_or_default())
}

/// `isNeedsAuthCached`'s body, for both of its entry points.
pub(super) fn is_cached(server: &str, opts: NeedsAuthOptions) -> Result<bool, Code> {
  let configs = opts.server_configs(Some(server))?;
  needs_auth::is_cached(runtime().memos(), &opts.cache_path()?, server, now_ms(), &opts.rules(configs.as_ref())).js()
}

/// Records that `server` needs auth, as Claude Code does after a 401: `{timestamp: now}`, plus
/// `ttlMs` and `id` when given in `options`. Locked and atomic.
#[napi]
pub fn mark_needs_auth(server: ServerName, options: Option<NeedsAuthOptions>) -> Result<(), Code> {
  let ServerName(server) = server;
  let opts = options.unwrap_or_default();
  let w = runtime().writer(opts.lock_wait());
  needs_auth::mark(w, &opts.cache_path()?, &server, now_ms(), opts.ttl_ms, opts.id.as_deref()).js()?;
  Ok(())
}

/// Removes the needs-auth entries of `server` (a name, an array of names, or omitted for all)
/// and returns the names actually removed; with `options.writtenBefore`, only those written
/// before it (judged under the lock). Then tells every `onAuthChanged` subscriber of this
/// config dir in this process "auth changed, retry connections" (asynchronously, and even when
/// nothing was removed: the caller says auth changed; listeners decide what to retry).
#[napi(ts_return_type = "Array<string>")]
pub fn invalidate_needs_auth(
  #[napi(ts_arg_type = "ServerSelection | undefined | null")] server: Option<ServerArg>,
  options: Option<NeedsAuthOptions>,
) -> Result<StringArray, Code> {
  let (selection, values) = match server {
    None => (Selection::All, Vec::new()),
    Some(ServerArg { names, values }) => (Selection::Servers(names), values),
  };
  let opts = options.unwrap_or_default();
  let config_dir = opts.config_dir()?;
  let rt = runtime();
  let cache = mcp_needs_auth_core::config_dir::cache_path(&config_dir);
  let w = rt.writer(opts.lock_wait());
  let removed = match opts.written_before {
    Some(before) => needs_auth::invalidate_written_before(w, &cache, &selection, before),
    None => needs_auth::invalidate(w, &cache, &selection),
  }
  .js()?;
  let (removed, names) = match selection {
    Selection::All => (StringArray::from(removed), Vec::new()),
    Selection::Servers(names) => (StringArray::reusing(removed, &names, &values), names),
  };
  event_bus::emit_invalidated(rt.bus(), config_dir, names);
  Ok(removed)
}

// Declared for the TypeScript; the argument is read as `ServerArg`.
/// The servers `invalidateNeedsAuth` removes: a name or an array of names (omitted: all).
#[napi(transparent, object_from_js = false, object_to_js = false)]
pub struct ServerSelection(pub Either<String, Vec<String>>);

/// `invalidateNeedsAuth`'s `server` as read (a `ServerSelection`): the names, and the JS strings
/// they were read from, valid during the call, which give the removed names back without
/// making them again.
pub struct ServerArg {
  names: Vec<String>,
  values: Vec<sys::napi_value>,
}

impl FromNapiValue for ServerArg {
  unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
    // SAFETY: napi passes a live value of this call's scope.
    unsafe { decode_arg(env, value, selection) }
  }
}

/// `undefined` and `null` never get here: the argument is an `Option`.
fn selection(env: &Env, server: Unknown) -> JsResult<ServerArg> {
  match server.get_type().js()? {
    ValueType::String => Ok(ServerArg { names: vec![server_name(env, server)?], values: vec![server.raw()] }),
    ValueType::Object if server.is_array().js()? => {
      // SAFETY: `server` is a live array value of this call's scope.
      let (names, values) = unsafe { bulk_values::server_list(env.raw(), server.raw()) }?;
      Ok(ServerArg { names, values })
    }
    other => {
      Err(invalid_argument(format!("server must be a name, an array of names, or omitted for all; not {other:?}")))
    }
  }
}
