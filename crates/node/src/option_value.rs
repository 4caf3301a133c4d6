//! How one option's value is read from JavaScript, by its Rust type (`OptionValue`): the only
//! place that knows what a field of each type accepts. Values are read without coercion;
//! `undefined` and `null` mean "not given".

use napi::bindgen_prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

use crate::enums::CredentialStore;
use crate::read_threw::ReadResultExt;
use crate::{invalid_argument, js_string, JsResult, NapiResultExt};
use mcp_needs_auth_core::server_config::ServerConfig;

/// A type an option field holds (as `Option<Self>`).
pub(crate) trait OptionValue: Sized {
  /// Reads `options[key]`'s value `v`.
  fn read(env: &Env, v: Unknown, key: &str) -> JsResult<Option<Self>>;

  /// Checks a value read, once every field was read (so that a wrong type anywhere is reported
  /// before a value out of range).
  fn check(_value: &Self, _key: &str) -> JsResult<()> {
    Ok(())
  }
}

/// A value of the type checked, read without coercion.
fn read_typed<T: FromNapiValue>(env: &Env, v: Unknown, key: &str, want: ValueType, what: &str) -> JsResult<Option<T>> {
  match v.get_type().js()? {
    ValueType::Undefined | ValueType::Null => Ok(None),
    // SAFETY: `v` is a live value of this call's scope, of the type checked.
    t if t == want => Ok(Some(unsafe { T::from_napi_value(env.raw(), v.raw()) }.js()?)),
    other => Err(invalid_argument(format!("options.{key} must be {what}, not {other:?}"))),
  }
}

/// A string, read without a length probe (`js_string`).
fn read_string(env: &Env, v: Unknown, key: &str, what: &str) -> JsResult<Option<String>> {
  match v.get_type().js()? {
    ValueType::Undefined | ValueType::Null => Ok(None),
    ValueType::String => Ok(Some(js_string(env, v)?)),
    other => Err(invalid_argument(format!("options.{key} must be {what}, not {other:?}"))),
  }
}

impl OptionValue for String {
  fn read(env: &Env, v: Unknown, key: &str) -> JsResult<Option<Self>> {
    read_string(env, v, key, "a string")
  }
}

impl OptionValue for Arc<str> {
  fn read(env: &Env, v: Unknown, key: &str) -> JsResult<Option<Self>> {
    Ok(read_string(env, v, key, "a string")?.map(Into::into))
  }
}

/// Every number option is a duration or a TTL in ms.
impl OptionValue for f64 {
  fn read(env: &Env, v: Unknown, key: &str) -> JsResult<Option<Self>> {
    read_typed(env, v, key, ValueType::Number, "a number")
  }

  fn check(&n: &Self, key: &str) -> JsResult<()> {
    if !n.is_finite() || n < 0.0 {
      return Err(invalid_argument(format!("options.{key} must be a finite number >= 0, not {n}")));
    }
    Ok(())
  }
}

impl OptionValue for bool {
  fn read(env: &Env, v: Unknown, key: &str) -> JsResult<Option<Self>> {
    read_typed(env, v, key, ValueType::Boolean, "a boolean")
  }
}

impl OptionValue for CredentialStore {
  fn read(env: &Env, v: Unknown, key: &str) -> JsResult<Option<Self>> {
    read_string(env, v, key, CredentialStore::EXPECTED)?
      .map(|s| {
        CredentialStore::parse(&s)
          .ok_or_else(|| invalid_argument(format!("options.{key} must be {}, not {s:?}", CredentialStore::EXPECTED)))
      })
      .transpose()
  }
}

/// `serverConfig`: one MCP server config.
impl OptionValue for serde_json::Value {
  fn read(env: &Env, v: Unknown, key: &str) -> JsResult<Option<Self>> {
    read_server_config(env, v, &format!("options.{key}"))
  }
}

/// `serverConfigs`: MCP server configs by server name.
impl OptionValue for HashMap<String, serde_json::Value> {
  fn read(env: &Env, v: Unknown, key: &str) -> JsResult<Option<Self>> {
    match v.get_type().js()? {
      ValueType::Undefined | ValueType::Null => return Ok(None),
      ValueType::Object if !v.is_array().js()? => {}
      other => {
        let what = if other == ValueType::Object { "an array".to_owned() } else { format!("{other:?}") };
        return Err(invalid_argument(format!(
          "options.{key} must be an object of MCP server configs by server name (like the Agent SDK's mcpServers), \
           not {what}"
        )));
      }
    }
    // SAFETY: checked to be an object just above.
    let obj: Object = unsafe { v.cast() }.js()?;
    let mut configs = HashMap::new();
    for name in Object::keys(&obj).read(env, format_args!("options.{key}"))? {
      let path = configs_path(key, &name);
      let config: Unknown = obj.get_named_property(&name).read(env, &path)?;
      if let Some(config) = read_server_config(env, config, &path)? {
        configs.insert(name, config);
      }
    }
    Ok(Some(configs))
  }
}

/// The fields of a server config the rules read, copied as JSON. Everything else is left alone
/// (an `sdk` server's live `instance` included), except for a plugin stdio config, which Claude
/// Code hashes whole.
const CONFIG_FIELDS: [&str; 6] = ["type", "id", "pluginSource", "url", "headers", "headersHelper"];

/// A server config found at `path` (`options.serverConfig`, `options.serverConfigs.github`),
/// checked, as the JSON the rules read; `None` for `undefined` and `null`.
pub(crate) fn read_server_config(env: &Env, v: Unknown, path: &str) -> JsResult<Option<serde_json::Value>> {
  match v.get_type().js()? {
    ValueType::Undefined | ValueType::Null => return Ok(None),
    ValueType::Object if !v.is_array().js()? => {}
    other => {
      let what = if other == ValueType::Object { "an array".to_owned() } else { format!("{other:?}") };
      return Err(invalid_argument(format!("{path} must be an object (an MCP server config), not {what}")));
    }
  }
  // SAFETY: checked to be an object just above.
  let obj: Object = unsafe { v.cast() }.js()?;
  let json = |v: Unknown, at: &str| -> JsResult<serde_json::Value> {
    // SAFETY: `v` is a live value of this call's scope.
    unsafe { serde_json::Value::from_napi_value(env.raw(), v.raw()) }.map_err(|e| {
      let e = crate::read_threw::read_failed(env.raw(), e, at);
      if crate::read_threw::is_pending(&e) {
        e
      } else {
        invalid_argument(format!("{at} must be JSON data ({})", e.reason))
      }
    })
  };
  let mut picked = serde_json::Map::new();
  for key in CONFIG_FIELDS {
    let at = format!("{path}.{key}");
    let field: Unknown = obj.get_named_property(key).read(env, &at)?;
    if field.get_type().js()? != ValueType::Undefined {
      picked.insert(key.to_owned(), json(field, &at)?);
    }
  }
  let stdio = picked.get("type").is_none_or(|t| t.as_str() == Some("stdio"));
  let config = if picked.contains_key("pluginSource") && stdio { json(v, path)? } else { picked.into() };
  parse_server_config(&config, path)?;
  Ok(Some(config))
}

/// The path of `name`'s config in the option `key`: `options.serverConfigs.github`, or
/// `options.serverConfigs["claude.ai Figma"]`.
pub(crate) fn configs_path(key: &str, name: &str) -> String {
  let plain = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
  if plain {
    format!("options.{key}.{name}")
  } else {
    format!("options.{key}[{}]", serde_json::Value::String(name.to_owned()))
  }
}

pub(crate) fn parse_server_config(config: &serde_json::Value, path: &str) -> JsResult<ServerConfig> {
  ServerConfig::from_json(config).map_err(|e| invalid_argument(format!("{path}{} {}", e.field, e.message)))
}
