//! `NeedsAuthOptions`, the options every function takes as its last argument: the generated
//! TypeScript interface, and the hand-written decoding (half the cost of napi's generated
//! decoding on `isNeedsAuthCached`'s hot path). Every known field is validated on every call.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::mem::MaybeUninit;

use crate::enums::CredentialStore;
use crate::options_shape::{shape_of, Shape};
use crate::{decode_arg, invalid_argument, js_string, small_str, JsResult, NapiResultExt};
use mcp_needs_auth_core::config_dir;
use mcp_needs_auth_core::credentials::CredentialSource;
use mcp_needs_auth_core::server_config::ServerConfig;
use mcp_needs_auth_core::server_rules::{Rules, ServerConfigs};

/// Options every function accepts as its optional last argument. Each function reads the
/// fields that concern it and ignores the rest. The TypeScript interface is generated from
/// this struct; decoding is by hand (`decode`), which costs half of napi's generated decoding
/// on `isNeedsAuthCached`'s hot path.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Default, Clone)]
pub struct NeedsAuthOptions {
  /// Claude Code's config dir. Default: `process.env.CLAUDE_CONFIG_DIR ?? ~/.claude`,
  /// NFC-normalised, exactly as Claude Code resolves it.
  // Shared, not copied: the common options hand back the dir of the previous call.
  #[napi(ts_type = "string")]
  pub config_dir: Option<std::sync::Arc<str>>,
  /// TTL in ms for entries without their own `ttlMs`. Default 900000 (15 min). Claude Code
  /// 2.1.332 uses 14400000 (4 h) for claude.ai-proxy and plugin http/sse servers.
  pub default_ttl_ms: Option<f64>,
  /// `markNeedsAuth`: write this `ttlMs` into the entry (Claude Code 2.1.120+ shape).
  pub ttl_ms: Option<f64>,
  /// `markNeedsAuth`: write this server `id` into the entry (Claude Code 2.1.120+ shape).
  pub id: Option<String>,
  /// Where credentials are read from: `'auto'` (default: the macOS Keychain first, then the
  /// file; elsewhere the file), `'file'`, `'keychain'` or `'none'`.
  pub credentials: Option<CredentialStore>,
  /// `onAuthChanged`: also watch other processes' changes to the cache and the credentials
  /// store (default true). `false` keeps in-process signals only.
  pub watch: Option<bool>,
  /// `onAuthChanged`: when a server's credentials change, remove its needs-auth entry before
  /// the callback runs, and remove again any superseded entry another process writes back
  /// (default true). On while any subscription of the same dir and store asks for it.
  pub auto_invalidate: Option<bool>,
  /// `onAuthChanged`: how often to poll the keychain, in ms (default 2000). Files are watched
  /// with OS notifications, never polled.
  pub poll_interval_ms: Option<f64>,
  /// `markNeedsAuth`, `invalidateNeedsAuth`, `purgeStale`: how long to wait, in ms, while
  /// another process holds the cache's lock (default 10000), before throwing
  /// `ERR_LOCK_TIMEOUT`. Reads never wait for the lock.
  pub lock_timeout_ms: Option<f64>,
  /// `isNeedsAuthCached`, `diagnose`: the server's config (as passed to the Agent SDK in
  /// `options.mcpServers[server]`). With it the answer is Claude Code 2.1.332's exact rule;
  /// without it, the name-only rule (see the README).
  // Kept as JSON (a plugin stdio config is hashed whole), so napi cannot name its type.
  #[napi(ts_type = "McpServerConfig")]
  pub server_config: Option<serde_json::Value>,
  /// `listNeedsAuth`, `purgeStale`, `isNeedsAuthCached`, `diagnose`: configs by server name (the
  /// Agent SDK's `options.mcpServers`). Entries of servers without one get the name-only rule.
  #[napi(ts_type = "Record<string, McpServerConfig>")]
  pub server_configs: Option<std::collections::HashMap<String, serde_json::Value>>,
}

/// The fields of an MCP server config that Claude Code 2.1.332's needs-auth rules read. Every
/// shape of the Agent SDK's `McpServerConfig` (stdio, sse, http, sdk, claudeai-proxy) fits it;
/// other fields are ignored, except that a plugin stdio config is hashed whole, as Claude Code
/// does to tell its entries apart.
// Declared for the generated TypeScript only: configs are read field by field (`read_server_config`).
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

/// The fields of `NeedsAuthOptions`, by their JavaScript names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Opt {
  ConfigDir,
  DefaultTtlMs,
  TtlMs,
  Id,
  Credentials,
  Watch,
  AutoInvalidate,
  PollIntervalMs,
  LockTimeoutMs,
  ServerConfig,
  ServerConfigs,
}

impl Opt {
  const ALL: [Opt; 11] = [
    Opt::ConfigDir,
    Opt::DefaultTtlMs,
    Opt::TtlMs,
    Opt::Id,
    Opt::Credentials,
    Opt::Watch,
    Opt::AutoInvalidate,
    Opt::PollIntervalMs,
    Opt::LockTimeoutMs,
    Opt::ServerConfig,
    Opt::ServerConfigs,
  ];

  pub(super) fn key(self) -> &'static str {
    match self {
      Opt::ConfigDir => "configDir",
      Opt::DefaultTtlMs => "defaultTtlMs",
      Opt::TtlMs => "ttlMs",
      Opt::Id => "id",
      Opt::Credentials => "credentials",
      Opt::Watch => "watch",
      Opt::AutoInvalidate => "autoInvalidate",
      Opt::PollIntervalMs => "pollIntervalMs",
      Opt::LockTimeoutMs => "lockTimeoutMs",
      Opt::ServerConfig => "serverConfig",
      Opt::ServerConfigs => "serverConfigs",
    }
  }
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
    Ok(small_str(env, key, &mut buf)?.and_then(|k| Opt::ALL.into_iter().find(|o| o.key() == k)))
  }
}

/// An option's value, read without coercion: `undefined` and `null` mean "not given".
fn read_opt<T: FromNapiValue>(env: &Env, v: Unknown, key: &str, want: ValueType, what: &str) -> JsResult<Option<T>> {
  match v.get_type().js()? {
    ValueType::Undefined | ValueType::Null => Ok(None),
    // SAFETY: `v` is a live value of this call's scope, of the type checked.
    t if t == want => Ok(Some(unsafe { T::from_napi_value(env.raw(), v.raw()) }.js()?)),
    other => Err(invalid_argument(format!("options.{key} must be {what}, not {other:?}"))),
  }
}

/// `read_opt` for strings, read without a length probe (`js_string`).
fn read_opt_string(env: &Env, v: Unknown, key: &str, what: &str) -> JsResult<Option<String>> {
  match v.get_type().js()? {
    ValueType::Undefined | ValueType::Null => Ok(None),
    ValueType::String => Ok(Some(js_string(env, v)?)),
    other => Err(invalid_argument(format!("options.{key} must be {what}, not {other:?}"))),
  }
}

impl FromNapiValue for NeedsAuthOptions {
  unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
    // SAFETY: napi passes a live value of this call's scope.
    unsafe { decode_arg(env, value, NeedsAuthOptions::decode) }
  }
}

impl NeedsAuthOptions {
  /// Reads the options argument (`undefined`/`null` never get here: the argument is an
  /// `Option`, which napi reads as "no options"). It must be an object whose known fields all have the right types and ranges, whichever function it is
  /// passed to (a bad field in a shared options object is a bug worth hearing about). Unknown
  /// fields are ignored. Reads the properties directly: napi's object conversion costs about
  /// twice as much, which shows on `isNeedsAuthCached`'s hot path.
  /// The options of an argument napi did not decode (`onAuthChanged`'s, which has a `signal`).
  pub fn from_arg(env: &Env, arg: Option<Unknown>) -> JsResult<NeedsAuthOptions> {
    match arg {
      Some(arg) if !matches!(arg.get_type().js()?, ValueType::Undefined | ValueType::Null) => Self::decode(env, arg),
      _ => Ok(NeedsAuthOptions::default()),
    }
  }

  fn decode(env: &Env, arg: Unknown) -> JsResult<NeedsAuthOptions> {
    let mut options = NeedsAuthOptions::default();
    match arg.get_type().js()? {
      ValueType::Undefined | ValueType::Null => return Ok(options),
      ValueType::Object => {}
      other => return Err(invalid_argument(format!("options must be an object, not {other:?}"))),
    }
    // SAFETY: checked to be an object just above.
    let obj: Object = unsafe { arg.cast() }.js()?;
    // Walk the keys the object has (usually one or two) rather than look up all ten names.
    let keys = match shape_of(env, &obj)? {
      // SAFETY: a live string value of this call's scope.
      Shape::ConfigDir(dir) => {
        options.config_dir = Some(dir);
        return Ok(options);
      }
      // SAFETY: a live array value of this call's scope.
      Shape::Keys(keys) => unsafe { Object::from_napi_value(env.raw(), keys) }.js()?,
      Shape::Walk => obj.get_property_names().js()?,
    };
    for i in 0..keys.get_array_length().js()? {
      let key: Unknown = keys.get_element(i).js()?;
      let Some(opt) = Opt::of_key(env, key)? else { continue };
      let name = opt.key();
      let value: Unknown = obj.get_property(key).js()?;
      let string = |what| read_opt_string(env, value, name, what);
      let number = || read_opt::<f64>(env, value, name, ValueType::Number, "a number");
      let boolean = || read_opt::<bool>(env, value, name, ValueType::Boolean, "a boolean");
      match opt {
        Opt::ConfigDir => options.config_dir = string("a string")?.map(Into::into),
        Opt::DefaultTtlMs => options.default_ttl_ms = number()?,
        Opt::TtlMs => options.ttl_ms = number()?,
        Opt::Id => options.id = string("a string")?,
        Opt::Credentials => options.credentials = credential_store(string(CredentialStore::EXPECTED)?)?,
        Opt::Watch => options.watch = boolean()?,
        Opt::AutoInvalidate => options.auto_invalidate = boolean()?,
        Opt::PollIntervalMs => options.poll_interval_ms = number()?,
        Opt::LockTimeoutMs => options.lock_timeout_ms = number()?,
        Opt::ServerConfig => options.server_config = read_server_config(env, value, "options.serverConfig")?,
        Opt::ServerConfigs => options.server_configs = read_server_configs(env, value)?,
      }
    }
    options.validate()?;
    Ok(options)
  }

  fn validate(&self) -> JsResult<()> {
    let non_negative = |name: &str, v: Option<f64>| match v {
      Some(n) if !n.is_finite() || n < 0.0 => {
        Err(invalid_argument(format!("options.{name} must be a finite number >= 0, not {n}")))
      }
      _ => Ok(()),
    };
    non_negative("defaultTtlMs", self.default_ttl_ms)?;
    non_negative("ttlMs", self.ttl_ms)?;
    non_negative("pollIntervalMs", self.poll_interval_ms)?;
    non_negative("lockTimeoutMs", self.lock_timeout_ms)?;
    Ok(())
  }

  /// `options.credentials`, default `'auto'`.
  pub fn credential_source(&self) -> CredentialSource {
    self.credentials.unwrap_or(CredentialStore::Auto).into()
  }

  pub fn config_dir(&self) -> JsResult<std::path::PathBuf> {
    config_dir::resolve(self.config_dir.as_deref()).js()
  }

  /// Whether `configDir` names a different dir than the environment would: only then does
  /// Claude Code's child run with its own `CLAUDE_CONFIG_DIR` (which suffixes the keychain
  /// service, and makes `CLAUDE_SECURESTORAGE_CONFIG_DIR` irrelevant). Passing the default dir
  /// explicitly changes nothing.
  pub fn explicit_config_dir(&self) -> JsResult<bool> {
    Ok(self.config_dir.is_some() && config_dir::resolve(None).ok() != Some(self.config_dir()?))
  }

  pub fn cache_path(&self) -> JsResult<std::sync::Arc<std::path::Path>> {
    config_dir::resolve_cache_path(self.config_dir.as_deref()).js()
  }

  /// `options.lockTimeoutMs` (validated finite and >= 0), default 10 s.
  pub fn lock_wait(&self) -> std::time::Duration {
    self.lock_timeout_ms.map_or(mcp_needs_auth_core::fs::DEFAULT_LOCK_WAIT, |ms| {
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
      configs.insert(name.clone(), parse_server_config(config, &configs_path(name))?);
    }
    if let Some((name, config)) = single {
      configs.insert(name.to_owned(), parse_server_config(config, "options.serverConfig")?);
    }
    Ok(Some(configs))
  }

  /// How entries are judged, given the configs from `server_configs`.
  pub fn rules<'a>(&self, configs: Option<&'a ServerConfigs>) -> Rules<'a> {
    Rules { default_ttl_ms: self.default_ttl_ms(), configs }
  }
}

fn credential_store(s: Option<String>) -> JsResult<Option<CredentialStore>> {
  s.map(|s| {
    CredentialStore::parse(&s)
      .ok_or_else(|| invalid_argument(format!("options.credentials must be {}, not {s:?}", CredentialStore::EXPECTED)))
  })
  .transpose()
}

/// The fields of a server config the rules read, copied as JSON. Everything else is left alone
/// (an `sdk` server's live `instance` included), except for a plugin stdio config, which Claude
/// Code hashes whole.
const CONFIG_FIELDS: [&str; 6] = ["type", "id", "pluginSource", "url", "headers", "headersHelper"];

fn read_server_config(env: &Env, v: Unknown, path: &str) -> JsResult<Option<serde_json::Value>> {
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
    unsafe { serde_json::Value::from_napi_value(env.raw(), v.raw()) }
      .map_err(|e| invalid_argument(format!("{at} must be JSON data ({})", e.reason)))
  };
  let mut picked = serde_json::Map::new();
  for key in CONFIG_FIELDS {
    let field: Unknown = obj.get_named_property(key).js()?;
    if field.get_type().js()? != ValueType::Undefined {
      picked.insert(key.to_owned(), json(field, &format!("{path}.{key}"))?);
    }
  }
  let stdio = picked.get("type").is_none_or(|t| t.as_str() == Some("stdio"));
  let config = if picked.contains_key("pluginSource") && stdio { json(v, path)? } else { picked.into() };
  parse_server_config(&config, path)?;
  Ok(Some(config))
}

fn read_server_configs(
  env: &Env,
  v: Unknown,
) -> JsResult<Option<std::collections::HashMap<String, serde_json::Value>>> {
  match v.get_type().js()? {
    ValueType::Undefined | ValueType::Null => return Ok(None),
    ValueType::Object if !v.is_array().js()? => {}
    other => {
      let what = if other == ValueType::Object { "an array".to_owned() } else { format!("{other:?}") };
      return Err(invalid_argument(format!(
        "options.serverConfigs must be an object of MCP server configs by server name (like the Agent SDK's \
         mcpServers), not {what}"
      )));
    }
  }
  // SAFETY: checked to be an object just above.
  let obj: Object = unsafe { v.cast() }.js()?;
  let mut configs = std::collections::HashMap::new();
  for name in Object::keys(&obj).js()? {
    let config: Unknown = obj.get_named_property(&name).js()?;
    if let Some(config) = read_server_config(env, config, &configs_path(&name))? {
      configs.insert(name, config);
    }
  }
  Ok(Some(configs))
}

/// `options.serverConfigs.github`, or `options.serverConfigs["claude.ai Figma"]`.
fn configs_path(name: &str) -> String {
  let plain = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
  if plain {
    format!("options.serverConfigs.{name}")
  } else {
    format!("options.serverConfigs[{}]", serde_json::Value::String(name.to_owned()))
  }
}

fn parse_server_config(config: &serde_json::Value, path: &str) -> JsResult<ServerConfig> {
  ServerConfig::from_json(config).map_err(|e| invalid_argument(format!("{path}{} {}", e.field, e.message)))
}
