//! `purgeStale`.

use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;

use crate::bulk_values;
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

/// `purgeStale`'s result, `PurgedEntry[]`, built by `bulk_values::entries` as `#[napi(object)]`
/// builds each entry, with each reason's string made once for the whole array.
pub struct PurgedEntries(Vec<PurgedEntry>);

impl TypeName for PurgedEntries {
  fn type_name() -> &'static str {
    "Array<PurgedEntry>"
  }

  fn value_type() -> ValueType {
    ValueType::Object
  }
}

impl ToNapiValue for PurgedEntries {
  unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
    // SAFETY: napi-rs converts a return value inside the callback that made it; every value
    // made here is of its scope.
    unsafe {
      let mut reasons = [None; 2];
      let mut flat = Vec::with_capacity(val.0.len() * 2);
      for PurgedEntry { server, reason } in val.0 {
        let slot = match reason {
          PurgeReason::Expired => 0,
          PurgeReason::Superseded => 1,
        };
        let reason = match reasons[slot] {
          Some(made) => made,
          None => *reasons[slot].insert(PurgeReason::to_napi_value(env, reason)?),
        };
        flat.push(bulk_values::string(env, &server)?);
        flat.push(reason);
      }
      bulk_values::entries(env, &flat)
    }
  }
}

/// Removes expired and superseded needs-auth entries in one locked, atomic rewrite, and tells
/// this process's `onAuthChanged` subscribers when it removed any. An entry is superseded when
/// this process saw the server's tokens change after it was written, or when the credentials
/// store changed after it AND the server holds an access token expiring more than 60 s after
/// it (a token saved before the 401 had expired by then). With `options.serverConfigs`, those
/// servers' entries expire by Claude Code 2.1.332's TTLs (4 h for claude.ai proxy servers).
/// Reads credentials, never writes them.
#[napi(ts_return_type = "Array<PurgedEntry>")]
pub fn purge_stale(options: Option<NeedsAuthOptions>) -> Result<PurgedEntries, Code> {
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
  Ok(PurgedEntries(purged.into_iter().map(|(server, why)| PurgedEntry { server, reason: why.into() }).collect()))
}
