//! The napi layer: converts between JavaScript and the core, and nothing else.

pub mod cache;
pub mod config_dir_for;
pub mod diagnose;
pub mod duration;
pub mod enums;
pub mod purge;
pub mod subscription;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use napi::sys;
use std::mem::MaybeUninit;

use crate::config_dir;
use crate::credentials::CredentialSource;
use crate::error::{Error as CoreError, ErrorCode};
use crate::server_config::ServerConfig;
use crate::server_rules::{Rules, ServerConfigs};
use enums::CredentialStore;

/// The `code` of every error this addon throws: one of the core's stable codes, or a failure
/// napi reported, which is given a stable code here and only here (napi's status names, such
/// as `InvalidArg` or `GenericFailure`, are not part of this package's API).
pub enum Code {
  Core(ErrorCode),
  Napi(Status),
}

/// A failure inside the JavaScript engine binding that no argument explains.
pub const ERR_INTERNAL: &str = "ERR_INTERNAL";

impl AsRef<str> for Code {
  fn as_ref(&self) -> &str {
    match self {
      Code::Core(c) => c.as_str(),
      Code::Napi(
        Status::InvalidArg
        | Status::ObjectExpected
        | Status::StringExpected
        | Status::NameExpected
        | Status::FunctionExpected
        | Status::NumberExpected
        | Status::BooleanExpected
        | Status::ArrayExpected
        | Status::BigintExpected
        | Status::DateExpected
        | Status::ArrayBufferExpected
        | Status::DetachableArraybufferExpected,
      ) => ErrorCode::InvalidArgument.as_str(),
      Code::Napi(_) => ERR_INTERNAL,
    }
  }
}

impl From<Status> for Code {
  fn from(s: Status) -> Self {
    Code::Napi(s)
  }
}

/// Internal helpers' result. `#[napi]` functions spell it `Result<T, Code>`: napi-derive
/// recognises a return type by the name `Result`.
pub type JsResult<T> = napi::Result<T, Code>;

impl From<CoreError> for napi::Error<Code> {
  fn from(e: CoreError) -> Self {
    napi::Error::new(Code::Core(e.code), e.message)
  }
}

/// For `?` on napi's own results inside functions that return `JsResult`.
pub trait NapiResultExt<T> {
  fn js(self) -> JsResult<T>;
}

impl<T> NapiResultExt<T> for napi::Result<T> {
  fn js(self) -> JsResult<T> {
    self.map_err(|e| napi::Error::new(Code::Napi(e.status), e.reason))
  }
}

pub fn invalid_argument(message: impl Into<String>) -> napi::Error<Code> {
  CoreError::new(ErrorCode::InvalidArgument, message).into()
}

/// Decodes a JS value as an argument of type `T`: a failure becomes a JS `Error` that carries
/// our `code` (`Code` maps napi's statuses), held by napi's `Error`, which napi then throws as
/// it is. The one place where our error codes meet napi's argument conversion: every argument
/// type of this addon decodes through here, so no napi status name reaches a user as a `code`.
///
/// # Safety
/// `value` is a live value of `env`'s current scope.
pub(crate) unsafe fn decode_arg<T>(
  env: sys::napi_env,
  value: sys::napi_value,
  decode: impl FnOnce(&Env, Unknown) -> JsResult<T>,
) -> napi::Result<T> {
  // SAFETY: per this function's contract.
  let v = unsafe { Unknown::from_raw_unchecked(env, value) };
  decode(&Env::from_raw(env), v).map_err(|e| {
    let reason = e.reason.clone();
    // SAFETY: `env` is live; `into_value` builds a plain `Error` with `code` and `message`.
    let error = unsafe { JsError::from(e).into_value(env) };
    if error.is_null() {
      // The env is tearing down and can build no error: there is nobody to throw to either.
      return napi::Error::new(Status::GenericFailure, reason);
    }
    // SAFETY: `error` was just made in this scope.
    napi::Error::from_unknown_without_coercion(unsafe { Unknown::from_raw_unchecked(env, error) })
  })
}

/// A server name argument: a string (its content is checked by the core).
#[napi(transparent, object_from_js = false, object_to_js = false)]
pub struct ServerName(pub String);

impl FromNapiValue for ServerName {
  unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
    // SAFETY: napi passes a live value of this call's scope.
    unsafe { decode_arg(env, value, |env, v| server_name(env, v).map(ServerName)) }
  }
}

/// Options every function accepts as its optional last argument. Each function reads the
/// fields that concern it and ignores the rest. The TypeScript interface is generated from
/// this struct; decoding is by hand (`decode`), which costs half of napi's generated decoding
/// on `isNeedsAuthCached`'s hot path.
#[napi(object, object_from_js = false, object_to_js = false)]
#[derive(Default, Clone)]
pub struct NeedsAuthOptions {
  /// Claude Code's config dir. Default: `process.env.CLAUDE_CONFIG_DIR ?? ~/.claude`,
  /// NFC-normalised, exactly as Claude Code resolves it.
  pub config_dir: Option<String>,
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
enum Opt {
  ConfigDir,
  DefaultTtlMs,
  TtlMs,
  Id,
  Credentials,
  Watch,
  AutoInvalidate,
  PollIntervalMs,
  ServerConfig,
  ServerConfigs,
}

impl Opt {
  const ALL: [Opt; 10] = [
    Opt::ConfigDir,
    Opt::DefaultTtlMs,
    Opt::TtlMs,
    Opt::Id,
    Opt::Credentials,
    Opt::Watch,
    Opt::AutoInvalidate,
    Opt::PollIntervalMs,
    Opt::ServerConfig,
    Opt::ServerConfigs,
  ];

  fn key(self) -> &'static str {
    match self {
      Opt::ConfigDir => "configDir",
      Opt::DefaultTtlMs => "defaultTtlMs",
      Opt::TtlMs => "ttlMs",
      Opt::Id => "id",
      Opt::Credentials => "credentials",
      Opt::Watch => "watch",
      Opt::AutoInvalidate => "autoInvalidate",
      Opt::PollIntervalMs => "pollIntervalMs",
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

/// A JS string (checked by the caller) read into `buf` with one call, or `None` when it may not
/// have fit (V8 writes whole characters only, so up to 3 bytes short of full is not proof).
/// `buf` need not be initialised: zeroing it would cost more than the read.
fn small_str<'b>(env: &Env, v: Unknown, buf: &'b mut [MaybeUninit<u8>]) -> JsResult<Option<&'b str>> {
  let mut len = 0usize;
  // SAFETY: `v` is a live string of this call's scope; napi writes at most `buf.len()` bytes
  // (the last one a NUL) and sets `len` to the bytes written before it.
  let status =
    unsafe { napi::sys::napi_get_value_string_utf8(env.raw(), v.raw(), buf.as_mut_ptr().cast(), buf.len(), &mut len) };
  if status != napi::sys::Status::napi_ok {
    return Err(napi::Error::new(Code::Napi(Status::from(status)), "cannot read a string argument"));
  }
  if len + 4 >= buf.len() {
    return Ok(None);
  }
  // SAFETY: napi initialised the first `len` bytes.
  let written = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), len) };
  // napi writes valid UTF-8 (lone surrogates become U+FFFD, as with `String`).
  Ok(std::str::from_utf8(written).ok())
}

/// A string argument or option (checked to be a string by the caller), read straight into its
/// allocation without a length probe when it is short, as server names and config dirs are.
fn js_string(env: &Env, v: Unknown) -> JsResult<String> {
  let mut bytes = Vec::<u8>::with_capacity(STRING_GUESS);
  if let Some(len) = small_str(env, v, bytes.spare_capacity_mut())?.map(str::len) {
    // SAFETY: `small_str` initialised these `len` bytes, and checked them to be UTF-8.
    unsafe {
      bytes.set_len(len);
      return Ok(String::from_utf8_unchecked(bytes));
    }
  }
  // SAFETY: `v` is a live string value of this call's scope.
  unsafe { String::from_napi_value(env.raw(), v.raw()) }.js()
}

/// Room for most server names and config dirs; longer strings take napi's length probe.
const STRING_GUESS: usize = 256;

/// An option's value, read without coercion: `undefined` and `null` mean "not given".
fn read_opt<T: FromNapiValue>(env: &Env, v: Unknown, key: &str, want: ValueType, what: &str) -> JsResult<Option<T>> {
  match v.get_type().js()? {
    ValueType::Undefined | ValueType::Null => Ok(None),
    // SAFETY: `v` is a live value of this call's scope, of the type checked.
    t if t == want => Ok(Some(unsafe { T::from_napi_value(env.raw(), v.raw()) }.js()?)),
    other => Err(invalid_argument(format!("options.{key} must be {what}, not {other:?}"))),
  }
}

/// What an options object holds, as far as decoding cares.
enum Shape {
  /// A plain object whose one own enumerable key is `configDir`, holding this string: by far
  /// the most common options, decoded without listing or looking up anything from Rust.
  ConfigDir(sys::napi_value),
  /// A plain object (a literal, or one with a null prototype): its options are its own
  /// enumerable keys, listed here (a property added to Object.prototype is not an option).
  Keys(sys::napi_value),
  /// Anything else (a class instance, `Object.create` of a defaults object): walked like
  /// `for...in`, inherited options included.
  Walk,
}

/// Sorts an options object with one call into a small function compiled once per environment:
/// in JavaScript, `Object.keys` takes V8's enum cache and a property read takes an inline
/// cache, while from Rust each key listed and each property read is a separate, slower napi
/// call (napi's own key listing always takes V8's slow, allocating path). The function decides
/// nothing about validity: every value is still checked here.
fn shape_of(env: &Env, obj: &Object) -> JsResult<Shape> {
  let raw_env = env.raw();
  let ok = |s: sys::napi_status| s == sys::Status::napi_ok;
  let Some(sorter) = shape_sorter(raw_env) else { return Ok(Shape::Walk) };
  let mut out = std::ptr::null_mut();
  let args = [obj.raw()];
  // SAFETY: `sorter` and `obj` are live values of this call's scope; the result is checked.
  let status = unsafe { sys::napi_call_function(raw_env, sorter, sorter, 1, args.as_ptr(), &mut out) };
  if !ok(status) {
    // A throwing getter or proxy trap: its exception is pending and propagates as it is.
    return Err(napi::Error::new(Code::Napi(Status::from(status)), "cannot read the options object"));
  }
  let mut t = 0;
  // SAFETY: `out` is the live result of the call above.
  if !ok(unsafe { sys::napi_typeof(raw_env, out, &mut t) }) {
    return Ok(Shape::Walk);
  }
  Ok(match t {
    sys::ValueType::napi_string => Shape::ConfigDir(out),
    sys::ValueType::napi_object => Shape::Keys(out),
    _ => Shape::Walk,
  })
}

/// The source of `shape_sorter`'s function. The one key name it knows comes from `Opt`.
fn shape_sorter_source() -> String {
  let key = Opt::ConfigDir.key();
  format!(
    "(function (keys, getPrototypeOf, objectPrototype) {{ 'use strict'; return function (o) {{ \
       var p = getPrototypeOf(o); if (p !== null && p !== objectPrototype) return undefined; \
       var k = keys(o); \
       if (k.length === 1 && k[0] === '{key}') {{ var v = o.{key}; if (typeof v === 'string') return v; }} \
       return k; }}; }})(Object.keys, Object.getPrototypeOf, Object.prototype)"
  )
}

/// The shape function of this thread's environment, compiled on first use (with the builtins it
/// uses captured then, so later monkey-patching changes nothing), kept by a reference that is
/// forgotten when the environment is torn down (so a later one at the same address is never
/// given a dead reference). `None` if it cannot be made: then every object is walked.
fn shape_sorter(env: sys::napi_env) -> Option<sys::napi_value> {
  use std::cell::Cell;
  thread_local! {
    static SORTER: Cell<Option<(usize, usize)>> = const { Cell::new(None) };
  }
  unsafe extern "C" fn forget(_: *mut std::ffi::c_void) {
    SORTER.set(None);
  }
  let ok = |s: sys::napi_status| s == sys::Status::napi_ok;
  // SAFETY: plain napi calls on this thread's live environment; every status is checked.
  unsafe {
    let sorter_ref = match SORTER.get().filter(|(e, _)| *e == env as usize) {
      Some((_, r)) => r as sys::napi_ref,
      None => {
        let source = shape_sorter_source();
        let (mut script, mut func, mut r) = (std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut());
        let made = ok(sys::napi_create_string_utf8(env, source.as_ptr().cast(), source.len() as isize, &mut script))
          && ok(sys::napi_run_script(env, script, &mut func))
          && ok(sys::napi_create_reference(env, func, 1, &mut r))
          && ok(sys::napi_add_env_cleanup_hook(env, Some(forget), std::ptr::null_mut()));
        if !made {
          return None;
        }
        SORTER.set(Some((env as usize, r as usize)));
        r
      }
    };
    let mut func = std::ptr::null_mut();
    (ok(sys::napi_get_reference_value(env, sorter_ref, &mut func)) && !func.is_null()).then_some(func)
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
        options.config_dir = Some(js_string(env, unsafe { Unknown::from_raw_unchecked(env.raw(), dir) })?);
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
        Opt::ConfigDir => options.config_dir = string("a string")?,
        Opt::DefaultTtlMs => options.default_ttl_ms = number()?,
        Opt::TtlMs => options.ttl_ms = number()?,
        Opt::Id => options.id = string("a string")?,
        Opt::Credentials => options.credentials = credential_store(string(CredentialStore::EXPECTED)?)?,
        Opt::Watch => options.watch = boolean()?,
        Opt::AutoInvalidate => options.auto_invalidate = boolean()?,
        Opt::PollIntervalMs => options.poll_interval_ms = number()?,
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
    Ok(())
  }

  /// `options.credentials`, default `'auto'`.
  pub fn credential_source(&self) -> CredentialSource {
    self.credentials.unwrap_or(CredentialStore::Auto).into()
  }

  pub fn config_dir(&self) -> JsResult<std::path::PathBuf> {
    Ok(config_dir::resolve(self.config_dir.as_deref())?)
  }

  /// Whether `configDir` names a different dir than the environment would: only then does
  /// Claude Code's child run with its own `CLAUDE_CONFIG_DIR` (which suffixes the keychain
  /// service, and makes `CLAUDE_SECURESTORAGE_CONFIG_DIR` irrelevant). Passing the default dir
  /// explicitly changes nothing.
  pub fn explicit_config_dir(&self) -> JsResult<bool> {
    Ok(self.config_dir.is_some() && config_dir::resolve(None).ok() != Some(self.config_dir()?))
  }

  pub fn cache_path(&self) -> JsResult<std::sync::Arc<std::path::Path>> {
    Ok(config_dir::resolve_cache_path(self.config_dir.as_deref())?)
  }

  pub fn default_ttl_ms(&self) -> f64 {
    self.default_ttl_ms.unwrap_or(crate::cache_file::DEFAULT_TTL_MS)
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

/// A server-name argument: must be a string (its content is checked by the core).
pub fn server_name(env: &Env, arg: Unknown) -> JsResult<String> {
  match arg.get_type().js()? {
    ValueType::String => js_string(env, arg),
    other => {
      Err(CoreError::new(ErrorCode::InvalidServerName, format!("server must be a string, not {other:?}")).into())
    }
  }
}

/// `process.emitWarning(message, 'McpNeedsAuthWarning', code)`: how problems that have no
/// caller to throw to (a listener that threw, a watcher that failed) reach the host.
pub fn emit_warning(env: &Env, message: &str, code: &str) {
  let emit = || -> napi::Result<()> {
    let process: Object = env.get_global()?.get_named_property("process")?;
    let emit_warning: Function<FnArgs<(&str, &str, &str)>, Unknown> = process.get_named_property("emitWarning")?;
    emit_warning.apply(process, FnArgs::from((message, "McpNeedsAuthWarning", code)))?;
    Ok(())
  };
  // Nothing sensible is left to do if even emitting the warning fails.
  let _ = emit();
}

pub fn path_string(p: &std::path::Path) -> String {
  p.to_string_lossy().into_owned()
}
