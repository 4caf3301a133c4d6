//! `validateServerConfig`.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::option_fields::Opt;
use crate::option_value::{configs_path, read_server_config};
use crate::{invalid_argument, js_string, Code, NapiResultExt};

/// Checks an MCP server config as `options.serverConfigs[name]` is checked: throws the same
/// `ERR_INVALID_ARGUMENT` (naming `options.serverConfigs.<name>` and the field) that passing it
/// there would throw, and returns for a config every function accepts (`undefined` and `null`
/// too: no config, so the server's entries are judged by name only). For hosts that take
/// configs from elsewhere (a newer Agent SDK's transport, say) and leave out the ones this
/// version cannot judge.
#[napi]
pub fn validate_server_config(
  env: Env,
  #[napi(ts_arg_type = "string")] name: Unknown,
  #[napi(ts_arg_type = "unknown")] config: Unknown,
) -> Result<(), Code> {
  let name = match name.get_type().js()? {
    ValueType::String => js_string(&env, name)?,
    other => return Err(invalid_argument(format!("name must be a string (a server name), not {other:?}"))),
  };
  read_server_config(&env, config, &configs_path(Opt::server_configs.key(), &name))?;
  Ok(())
}
