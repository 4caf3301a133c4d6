//! `purgeStale`.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::enums::PurgeReason;
use crate::{Code, NapiResultExt, NeedsAuthOptions};
use mcp_needs_auth_core::event_bus;
use mcp_needs_auth_core::staleness;

use crate::runtime::runtime;

/// An entry `purgeStale` removed.
#[napi(object)]
pub struct PurgedEntry {
  pub server: String,
  pub reason: PurgeReason,
}

/// Removes expired and superseded needs-auth entries in one locked, atomic rewrite, and tells
/// this process's `onAuthChanged` subscribers when it removed any. An entry is superseded when
/// this process saw the server's tokens change after it was written, or when the credentials
/// store changed after it AND the server holds an access token expiring more than 60 s after
/// it (a token saved before the 401 had expired by then). With `options.serverConfigs`, those
/// servers' entries expire by Claude Code 2.1.332's TTLs (4 h for claude.ai proxy servers).
/// Reads credentials, never writes them.
#[napi]
pub fn purge_stale(options: Option<NeedsAuthOptions>) -> Result<Vec<PurgedEntry>, Code> {
  let opts = options.unwrap_or_default();
  let config_dir = opts.config_dir()?;
  let configs = opts.server_configs(None)?;
  let rt = runtime();
  let purged = staleness::purge(
    rt.writer(opts.lock_wait()),
    rt.observations(),
    &config_dir,
    opts.explicit_config_dir()?,
    opts.credential_source(),
    &opts.rules(configs.as_ref()),
  )
  .js()?;
  if !purged.is_empty() {
    event_bus::emit_invalidated(rt.bus(), config_dir, purged.iter().map(|(s, _)| s.clone()).collect());
  }
  Ok(purged.into_iter().map(|(server, why)| PurgedEntry { server, reason: why.into() }).collect())
}
