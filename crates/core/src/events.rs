//! "Auth changed" events: what the watcher and this process's own calls report. A leaf module:
//! it imports nothing of this crate, so the watcher, the event bus and the bindings can all
//! depend on it without depending on each other.

use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
  /// A host called `invalidateNeedsAuth` (or `purgeStale`) in this process.
  Invalidated,
  /// The credentials of `servers` changed in the store.
  CredentialsChanged,
  /// Another process added, changed or removed the entries of `servers` in the cache.
  CacheChanged,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
  ThisProcess,
  OtherProcess,
}

/// One "auth changed" event. `servers` empty means "all servers".
#[derive(Debug, Clone, PartialEq)]
pub struct AuthEvent {
  pub reason: Reason,
  pub servers: Vec<String>,
  pub source: Source,
  pub at: f64,
  pub config_dir: PathBuf,
}
