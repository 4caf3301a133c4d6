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

/// Where a watcher's events and warnings end up (the event bus). Called on a thread of the
/// watcher's own: must not block (queue, do not wait).
pub trait EventSink: Send + 'static {
  fn event(&self, event: AuthEvent);
  /// A problem the watcher met (an unreadable store, a directory it cannot watch).
  fn warn(&self, message: String);
}

/// What a channel sink receives.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
  Event(AuthEvent),
  Warning(String),
}

impl EventSink for std::sync::mpsc::Sender<Output> {
  fn event(&self, event: AuthEvent) {
    let _ = self.send(Output::Event(event));
  }
  fn warn(&self, message: String) {
    let _ = self.send(Output::Warning(message));
  }
}
