//! Decoding `NeedsAuthOptions` (declared with its fields in `option_fields`), the options every
//! function takes as its last argument, by hand: half the cost of napi's generated decoding on
//! `isNeedsAuthCached`'s hot path. Every known field is validated on every call. Also what the
//! functions read from the options (resolved dir, cache path, rules).

use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::mem::MaybeUninit;

use crate::enums::CredentialStore;
use crate::last_config_dir;
pub use crate::option_fields::NeedsAuthOptions;
use crate::option_fields::Opt;
use crate::option_value::{configs_path, parse_server_config};
use crate::options_shape::{shape_of, Shape};
use crate::read_threw::ReadResultExt;
use crate::{decode_arg, invalid_argument, small_str, JsResult, NapiResultExt};
use mcp_needs_auth_core::credentials::CredentialSource;
use mcp_needs_auth_core::server_rules::{connector_names, Rules, ServerConfigs};

/// The fields of an MCP server config that Claude Code 2.1.332's needs-auth rules read. Every
/// shape of the Agent SDK's `McpServerConfig` (stdio, sse, http, sdk, claudeai-proxy) fits it;
/// other fields are ignored, except that a plugin stdio config is hashed whole, as Claude Code
/// does to tell its entries apart.
// Declared for the generated TypeScript only: configs are read field by field
// (`option_value::read_server_config`).
#[allow(dead_code)]
#[napi(object)]
pub struct McpServerConfig {
  /// Default `'stdio'`. Only `claudeai-proxy`, `http`/`sse` and plugin stdio servers are ever
  /// skipped for a needs-auth entry.
  #[napi(
    js_name = "type",
    ts_type = "'stdio' | 'sse' | 'http' | 'streamable-http' | 'ws' | 'sdk' | 'claudeai-proxy' | 'sse-ide' | 'ws-ide'"
  )]
  pub transport: Option<String>,
  /// claude.ai proxy servers: an entry counts only when its `id` is this one.
  pub id: Option<String>,
  pub url: Option<String>,
  pub command: Option<String>,
  pub args: Option<Vec<String>>,
  pub env: Option<std::collections::HashMap<String, String>>,
  /// Plugin http/sse servers with headers (or a `headersHelper`) keep the 15 min default.
  pub headers: Option<std::collections::HashMap<String, String>>,
  pub headers_helper: Option<String>,
  /// Set by Claude Code for servers that come from a plugin: they have rules of their own.
  pub plugin_source: Option<String>,
  /// `sdk` servers.
  pub name: Option<String>,
}

impl Opt {
  /// The option a property key names, if any. Reads the key into a stack buffer: converting
  /// every key to a `String` showed on `isNeedsAuthCached`'s hot path.
  fn of_key(env: &Env, key: Unknown) -> JsResult<Option<Opt>> {
    if key.get_type().js()? != ValueType::String {
      return Ok(None);
    }
    let mut buf = [MaybeUninit::<u8>::uninit(); 32];
    // A key too long for the buffer is longer than every option's name.
    Ok(small_str(env, key, &mut buf)?.and_then(|k| Opt::ALL.iter().copied().find(|o| o.key() == k)))
  }
}

impl FromNapiValue for NeedsAuthOptions {
  unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
    // SAFETY: napi passes a live value of this call's scope.
    unsafe { decode_arg(env, value, NeedsAuthOptions::decode) }
  }
}

impl NeedsAuthOptions {
  /// The options of an argument napi did not decode (`onAuthChanged`'s, which has a `signal`).
  pub fn from_arg(env: &Env, arg: Option<Unknown>) -> JsResult<NeedsAuthOptions> {
    match arg {
      Some(arg) if !matches!(arg.get_type().js()?, ValueType::Undefined | ValueType::Null) => Self::decode(env, arg),
      _ => Ok(NeedsAuthOptions::default()),
    }
  }

  /// Reads the options argument (`undefined`/`null` never get here: the argument is an
  /// `Option`, which napi reads as "no options"). It must be an object whose known fields all
  /// have the right types and ranges, whichever function it is passed to (a bad field in a
  /// shared options object is a bug worth hearing about). Unknown fields are ignored. Reads the
  /// properties directly: napi's object conversion costs about twice as much, which shows on
  /// `isNeedsAuthCached`'s hot path. A getter (or proxy trap) that throws is reported by
  /// `read_threw`'s rule.
  fn decode(env: &Env, arg: Unknown) -> JsResult<NeedsAuthOptions> {
    let mut options = NeedsAuthOptions::default();
    match arg.get_type().js()? {
      ValueType::Undefined | ValueType::Null => return Ok(options),
      ValueType::Object => {}
      other => return Err(invalid_argument(format!("options must be an object, not {other:?}"))),
    }
    // SAFETY: checked to be an object just above.
    let obj: Object = unsafe { arg.cast() }.js()?;
    // Walk the keys the object has (usually one or two) rather than look up every field.
    let keys = match shape_of(env, &obj)? {
      Shape::ConfigDir(dir) => {
        options.config_dir = Some(dir);
        return Ok(options);
      }
      // SAFETY: a live array value of this call's scope.
      Shape::Keys(keys) => unsafe { Object::from_napi_value(env.raw(), keys) }.js()?,
      Shape::Walk => obj.get_property_names().read(env, "options")?,
    };
    for i in 0..keys.get_array_length().js()? {
      let key: Unknown = keys.get_element(i).js()?;
      let Some(opt) = Opt::of_key(env, key)? else { continue };
      let value: Unknown = obj.get_property(key).read(env, format_args!("options.{}", opt.key()))?;
      options.set(env, opt, value)?;
    }
    options.check()?;
    Ok(options)
  }

  /// `options.credentials`, default `'auto'`.
  pub fn credential_source(&self) -> CredentialSource {
    self.credentials.unwrap_or(CredentialStore::Auto).into()
  }

  pub fn config_dir(&self) -> JsResult<std::path::PathBuf> {
    last_config_dir::resolve(self.config_dir.as_deref()).js()
  }

  /// Whether `configDir` names a different dir than the environment would: only then does
  /// Claude Code's child run with its own `CLAUDE_CONFIG_DIR` (which suffixes the keychain
  /// service, and makes `CLAUDE_SECURESTORAGE_CONFIG_DIR` irrelevant). Passing the default dir
  /// explicitly changes nothing.
  pub fn explicit_config_dir(&self) -> JsResult<bool> {
    Ok(self.config_dir.is_some() && last_config_dir::resolve(None).ok() != Some(self.config_dir()?))
  }

  pub fn cache_path(&self) -> JsResult<std::sync::Arc<std::path::Path>> {
    last_config_dir::resolve_cache_path(self.config_dir.as_deref()).js()
  }

  /// `options.lockTimeoutMs` (validated finite and >= 0), default 10 s.
  pub fn lock_wait(&self) -> std::time::Duration {
    self.lock_timeout_ms.map_or(mcp_needs_auth_core::needs_auth::DEFAULT_LOCK_WAIT, |ms| {
      std::time::Duration::try_from_secs_f64(ms / 1000.0).unwrap_or(std::time::Duration::MAX)
    })
  }

  pub fn default_ttl_ms(&self) -> f64 {
    self.default_ttl_ms.unwrap_or(mcp_needs_auth_core::cache_file::DEFAULT_TTL_MS)
  }

  /// The configs the rules judge with: `serverConfigs`, plus `serverConfig` as `server`'s (it
  /// wins over `serverConfigs[server]`). Both were validated when the options were read.
  pub fn server_configs(&self, server: Option<&str>) -> JsResult<Option<ServerConfigs>> {
    let single = server.zip(self.server_config.as_ref());
    if self.server_configs.is_none() && single.is_none() {
      return Ok(None);
    }
    let mut configs = ServerConfigs::new();
    for (name, config) in self.server_configs.iter().flatten() {
      configs.insert(name.clone(), parse_server_config(config, &configs_path(Opt::server_configs.key(), name))?);
    }
    if let Some((name, config)) = single {
      let path = format!("options.{}", Opt::server_config.key());
      configs.insert(name.to_owned(), parse_server_config(config, &path)?);
    }
    Ok(Some(configs))
  }

  /// The servers `serverConfigs` (and `serverConfig`) name as claude.ai connectors.
  pub fn connector_names(&self) -> JsResult<Vec<String>> {
    Ok(self.server_configs(None)?.map(|c| connector_names(&c)).unwrap_or_default())
  }

  /// How entries are judged, given the configs from `server_configs`.
  pub fn rules<'a>(&self, configs: Option<&'a ServerConfigs>) -> Rules<'a> {
    Rules { default_ttl_ms: self.default_ttl_ms(), configs }
  }
}
