//! The napi layer: converts between JavaScript and the core, and nothing else.

pub mod cache;
pub mod diagnose;
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

impl NeedsAuthOptions {
  /// Reads the options argument: `undefined`/`null` is "no options"; anything else must be an
  /// object of the right shape.
  pub fn from_arg(env: &Env, arg: Option<Unknown>) -> JsResult<NeedsAuthOptions> {
    let Some(arg) = arg else {
      return Ok(NeedsAuthOptions::default());
    };
    match arg.get_type().js()? {
      ValueType::Undefined | ValueType::Null => Ok(NeedsAuthOptions::default()),
      ValueType::Object => {
        // SAFETY: `arg` is a live value of this call's scope.
        let options = unsafe { NeedsAuthOptions::from_napi_value(env.raw(), arg.raw()) }
          .map_err(|e| invalid_argument(format!("invalid options: {}", e.reason)))?;
        options.validate()?;
        Ok(options)
      }
      other => Err(invalid_argument(format!("options must be an object, not {other:?}"))),
    }
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
