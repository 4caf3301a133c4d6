//! `configDirFor`.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::{invalid_argument, path_string, Code, JsResult, NapiResultExt};
use crate::config_dir;

/// The config dir a Claude Code process started with `env` uses:
/// `env.CLAUDE_CONFIG_DIR ?? join(env.HOME ?? os.homedir(), '.claude')` (USERPROFILE on
/// Windows), NFC-normalised; a set but empty `CLAUDE_CONFIG_DIR` gives `''`, as in Claude Code.
/// Without `env`, this process's environment (what every other function uses by default).
#[napi(ts_args_type = "env?: Record<string, string | undefined> | null")]
pub fn config_dir_for(env: Option<Unknown>) -> Result<String, Code> {
  let dir = match env_object(env)? {
    None => config_dir::resolve(None)?,
    Some(env) => {
      let claude_config_dir = var(&env, "CLAUDE_CONFIG_DIR")?;
      let home = var(&env, config_dir::HOME_VAR)?;
      config_dir::from_env(claude_config_dir.as_deref(), home.as_deref())?
    }
  };
  Ok(path_string(&dir))
}

/// The `env` argument: `undefined`/`null` mean this process's environment.
fn env_object(arg: Option<Unknown>) -> JsResult<Option<Object>> {
  let Some(arg) = arg else { return Ok(None) };
  match arg.get_type().js()? {
    ValueType::Undefined | ValueType::Null => Ok(None),
    ValueType::Object => Ok(Some(Object::from_unknown(arg).js()?)),
    other => Err(invalid_argument(format!("env must be an object such as process.env, not {other:?}"))),
  }
}

/// One variable of `env`: `undefined` and `null` are unset (as `??` treats them).
fn var(env: &Object, name: &str) -> JsResult<Option<String>> {
  env
    .get::<Option<String>>(name)
    .map(Option::flatten)
    .map_err(|_| invalid_argument(format!("env.{name} must be a string or undefined")))
}
