//! The one error type of the core: a stable machine-readable code plus a message that says
//! what failed, where, and what to do. The bindings turn it into a JS `Error` with `code`.

use std::fmt;
use std::io;
use std::path::Path;

/// Stable error codes. They are part of the public API: never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
  /// A server name that is empty, contains NUL, holds a lone surrogate, or is longer than 4 KiB.
  InvalidServerName,
  /// An option or argument of the wrong type or out of range.
  InvalidArgument,
  /// No config dir could be resolved (no `CLAUDE_CONFIG_DIR` and no home directory).
  NoConfigDir,
  /// The cache file is larger than the 1 MiB this library will read.
  CacheTooLarge,
  /// The cache file (or its directory) could not be read.
  CacheRead,
  /// The cache file (or its directory, temp file or lock) could not be written.
  CacheWrite,
  /// Another process held the cache's lock for longer than a write may wait for it.
  LockTimeout,
  /// The credentials store could not be read.
  CredentialsRead,
  /// The credentials store holds something that is not a credentials document.
  CredentialsCorrupt,
  /// The OS keychain / Secret Service failed.
  Keychain,
  /// A file watcher could not be started.
  Watch,
}

impl ErrorCode {
  pub fn as_str(self) -> &'static str {
    match self {
      ErrorCode::InvalidServerName => "ERR_INVALID_SERVER_NAME",
      ErrorCode::InvalidArgument => "ERR_INVALID_ARGUMENT",
      ErrorCode::NoConfigDir => "ERR_NO_CONFIG_DIR",
      ErrorCode::CacheTooLarge => "ERR_CACHE_TOO_LARGE",
      ErrorCode::CacheRead => "ERR_CACHE_READ",
      ErrorCode::CacheWrite => "ERR_CACHE_WRITE",
      ErrorCode::LockTimeout => "ERR_LOCK_TIMEOUT",
      ErrorCode::CredentialsRead => "ERR_CREDENTIALS_READ",
      ErrorCode::CredentialsCorrupt => "ERR_CREDENTIALS_CORRUPT",
      ErrorCode::Keychain => "ERR_KEYCHAIN",
      ErrorCode::Watch => "ERR_WATCH",
    }
  }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
  pub code: ErrorCode,
  pub message: String,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
  pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
    Error { code, message: message.into() }
  }

  /// An I/O failure on `path`, phrased as "<what> <path>: <os error>. <advice>".
  pub(crate) fn io(code: ErrorCode, what: &str, path: &Path, err: &io::Error) -> Self {
    let advice = match err.kind() {
      io::ErrorKind::PermissionDenied => " Check the permissions of that path and its directory.",
      io::ErrorKind::NotFound => " Check that the directory exists.",
      _ => "",
    };
    Error::new(code, format!("{what} {}: {err}.{advice}", path.display()))
  }
}

impl fmt::Display for Error {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "{} ({})", self.message, self.code.as_str())
  }
}

impl std::error::Error for Error {}
