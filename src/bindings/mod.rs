//! The napi layer: converts between JavaScript and the core, and nothing else.

pub mod cache;
pub mod config_dir_for;
pub mod diagnose;
pub mod duration;
pub mod purge;
pub mod subscription;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::config_dir;
use crate::error::{Error as CoreError, ErrorCode};

/// The `code` of every error this addon throws: one of the core's stable codes, or napi's own
/// status for failures inside the JavaScript engine.
pub enum Code {
  Core(ErrorCode),
  Napi(Status),
}

impl AsRef<str> for Code {
  fn as_ref(&self) -> &str {
    match self {
      Code::Core(c) => c.as_str(),
      Code::Napi(s) => s.as_ref(),
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

/// Options every function accepts as its optional last argument. Each function reads the
/// fields that concern it and ignores the rest.
#[napi(object)]
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
  #[napi(ts_type = "'auto' | 'file' | 'keychain' | 'none'")]
  pub credentials: Option<String>,
  /// `onAuthChanged`: also watch other processes' changes to the cache and the credentials
  /// store (default true). `false` keeps in-process signals only.
  pub watch: Option<bool>,
  /// `onAuthChanged`: when a server's credentials change, remove its needs-auth entry before
  /// the callback runs (default true).
  pub auto_invalidate: Option<bool>,
  /// `onAuthChanged`: how often to poll the keychain, in ms (default 2000). Files are watched
  /// with OS notifications, never polled.
  pub poll_interval_ms: Option<f64>,
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
}

impl Opt {
  const ALL: [Opt; 8] = [
    Opt::ConfigDir,
    Opt::DefaultTtlMs,
    Opt::TtlMs,
    Opt::Id,
    Opt::Credentials,
    Opt::Watch,
    Opt::AutoInvalidate,
    Opt::PollIntervalMs,
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
    }
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

impl NeedsAuthOptions {
  /// Reads the options argument: `undefined`/`null` is "no options"; anything else must be an
  /// object whose known fields all have the right types and ranges, whichever function it is
  /// passed to (a bad field in a shared options object is a bug worth hearing about). Unknown
  /// fields are ignored. Reads the properties directly: napi's object conversion costs about
  /// twice as much, which shows on `isNeedsAuthCached`'s hot path.
  pub fn from_arg(env: &Env, arg: Option<Unknown>) -> JsResult<NeedsAuthOptions> {
    let mut options = NeedsAuthOptions::default();
    let Some(arg) = arg else {
      return Ok(options);
    };
    match arg.get_type().js()? {
      ValueType::Undefined | ValueType::Null => return Ok(options),
      ValueType::Object => {}
      other => return Err(invalid_argument(format!("options must be an object, not {other:?}"))),
    }
    // SAFETY: checked to be an object just above.
    let obj: Object = unsafe { arg.cast() }.js()?;
    // Walk the keys the object has (usually one or two) rather than look up all eight names.
    let keys = obj.get_property_names().js()?;
    for i in 0..keys.get_array_length().js()? {
      let key: Unknown = keys.get_element(i).js()?;
      if key.get_type().js()? != ValueType::String {
        continue;
      }
      // SAFETY: checked to be a string.
      let name = unsafe { String::from_napi_value(env.raw(), key.raw()) }.js()?;
      let Some(opt) = Opt::ALL.into_iter().find(|o| o.key() == name) else { continue };
      let value: Unknown = obj.get_property(key).js()?;
      let string = |what| read_opt::<String>(env, value, &name, ValueType::String, what);
      let number = || read_opt::<f64>(env, value, &name, ValueType::Number, "a number");
      let boolean = || read_opt::<bool>(env, value, &name, ValueType::Boolean, "a boolean");
      match opt {
        Opt::ConfigDir => options.config_dir = string("a string")?,
        Opt::DefaultTtlMs => options.default_ttl_ms = number()?,
        Opt::TtlMs => options.ttl_ms = number()?,
        Opt::Id => options.id = string("a string")?,
        Opt::Credentials => options.credentials = string("'auto', 'file', 'keychain' or 'none'")?,
        Opt::Watch => options.watch = boolean()?,
        Opt::AutoInvalidate => options.auto_invalidate = boolean()?,
        Opt::PollIntervalMs => options.poll_interval_ms = number()?,
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
    if let Some(c) = &self.credentials {
      if !matches!(c.as_str(), "auto" | "file" | "keychain" | "none") {
        return Err(invalid_argument(format!(
          "options.credentials must be 'auto', 'file', 'keychain' or 'none', not {c:?}"
        )));
      }
    }
    Ok(())
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

  pub fn cache_path(&self) -> JsResult<std::path::PathBuf> {
    Ok(config_dir::cache_path(&self.config_dir()?))
  }

  pub fn default_ttl_ms(&self) -> f64 {
    self.default_ttl_ms.unwrap_or(crate::cache_file::DEFAULT_TTL_MS)
  }
}

/// A server-name argument: must be a string (its content is checked by the core).
pub fn server_name(env: &Env, arg: Unknown) -> JsResult<String> {
  match arg.get_type().js()? {
    // SAFETY: `arg` is a live string value of this call's scope.
    ValueType::String => unsafe { String::from_napi_value(env.raw(), arg.raw()) }.js(),
    other => Err(
      CoreError::new(ErrorCode::InvalidServerName, format!("server must be a string, not {other:?}")).into(),
    ),
  }
}

/// `process.emitWarning(message, 'McpNeedsAuthWarning', code)`: how problems that have no
/// caller to throw to (a listener that threw, a watcher that failed) reach the host.
pub fn emit_warning(env: &Env, message: &str, code: &str) {
  let emit = || -> napi::Result<()> {
    let process: Object = env.get_global()?.get_named_property("process")?;
    let emit_warning: Function<FnArgs<(&str, &str, &str)>, Unknown> =
      process.get_named_property("emitWarning")?;
    emit_warning.apply(process, FnArgs::from((message, "McpNeedsAuthWarning", code)))?;
    Ok(())
  };
  // Nothing sensible is left to do if even emitting the warning fails.
  let _ = emit();
}

pub fn path_string(p: &std::path::Path) -> String {
  p.to_string_lossy().into_owned()
}
