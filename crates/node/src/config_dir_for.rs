//! `configDirFor`.

use std::collections::HashMap;

use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;

use crate::{decode_arg, invalid_argument, path_string, Code, JsResult, NapiResultExt};
use mcp_needs_auth_core::config_dir;

/// An environment such as `process.env`. Only the variables the config dir rule reads are
/// read from it; `undefined` and `null` mean unset (as `??` treats them).
#[napi(transparent, object_from_js = false, object_to_js = false)]
pub struct EnvVars(HashMap<String, Option<String>>);

impl FromNapiValue for EnvVars {
  unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
    // SAFETY: napi passes a live value of this call's scope.
    unsafe { decode_arg(env, value, |_, v| env_vars(v).map(EnvVars)) }
  }
}

/// The config dir a Claude Code process started with `env` uses:
/// `env.CLAUDE_CONFIG_DIR ?? join(env.HOME ?? os.homedir(), '.claude')` (USERPROFILE on
/// Windows), NFC-normalised; a set but empty `CLAUDE_CONFIG_DIR` gives `''`, as in Claude Code.
/// Without `env`, this process's environment (what every other function uses by default).
#[napi]
pub fn config_dir_for(env: Option<EnvVars>) -> Result<String, Code> {
  let dir = match env {
    None => config_dir::resolve(None).js()?,
    Some(EnvVars(mut vars)) => {
      let mut var = |name| vars.remove(name).flatten();
      let claude_config_dir = var(config_dir::CONFIG_DIR_VAR);
      let home = var(config_dir::HOME_VAR);
      config_dir::from_env(claude_config_dir.as_deref(), home.as_deref()).js()?
    }
  };
  Ok(path_string(&dir))
}

/// The variables of `env` the rule reads (`undefined`/`null` never get here: the argument is
/// an `Option`).
fn env_vars(arg: Unknown) -> JsResult<HashMap<String, Option<String>>> {
  let env = match arg.get_type().js()? {
    ValueType::Object => Object::from_unknown(arg).js()?,
    other => return Err(invalid_argument(format!("env must be an object such as process.env, not {other:?}"))),
  };
  let mut vars = HashMap::new();
  for name in [config_dir::CONFIG_DIR_VAR, config_dir::HOME_VAR] {
    let value = env
      .get::<Option<String>>(name)
      .map(Option::flatten)
      .map_err(|_| invalid_argument(format!("env.{name} must be a string or undefined")))?;
    vars.insert(name.to_owned(), value);
  }
  Ok(vars)
}
