//! The event bus: "auth changed" events, fanned out to this process's subscribers of one
//! config dir. It knows nothing of JavaScript: a subscriber is anything that can `deliver`.
//! Subscribers that ask to watch share one watcher per config dir, started by the first and
//! stopped with the last.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::Result;
use crate::watcher::{self, WatchSpec, Watcher};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
  /// A host called `invalidateNeedsAuth` (or `purgeStale`) in this process.
  Invalidated,
  /// The credentials of `servers` changed in the store.
  CredentialsChanged,
  /// Another process added, changed or removed the entries of `servers` in the cache.
  CacheChanged,
}

impl Reason {
  pub fn as_str(self) -> &'static str {
    match self {
      Reason::Invalidated => "invalidated",
      Reason::CredentialsChanged => "credentials-changed",
      Reason::CacheChanged => "cache-changed",
    }
  }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
  ThisProcess,
  OtherProcess,
}

impl Source {
  pub fn as_str(self) -> &'static str {
    match self {
      Source::ThisProcess => "this-process",
      Source::OtherProcess => "other-process",
    }
  }
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

/// What a subscriber is. `deliver` must not block: it queues.
pub trait Listener: Send + Sync {
  /// Returns false when the listener can never receive again (its runtime is shutting down).
  fn deliver(&self, event: &AuthEvent) -> bool;
  /// A problem the subscriber should hear about (a watcher that failed to read a store).
  fn warn(&self, message: &str);
}

struct Subscriber {
  config_dir: PathBuf,
  listener: Arc<dyn Listener>,
  watching: bool,
}

#[derive(Default)]
struct Registry {
  subscribers: BTreeMap<u64, Subscriber>,
  watchers: HashMap<PathBuf, (usize, Watcher)>,
}

fn registry() -> &'static Mutex<Registry> {
  static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
  REGISTRY.get_or_init(Default::default)
}

fn locked() -> std::sync::MutexGuard<'static, Registry> {
  crate::lock(registry())
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Adds a subscriber; with `watch`, makes sure a watcher runs for its config dir.
pub fn subscribe(config_dir: &Path, listener: Arc<dyn Listener>, watch: Option<WatchSpec>) -> Result<u64> {
  let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
  let mut reg = locked();
  let watching = watch.is_some();
  if let Some(spec) = watch {
    match reg.watchers.get_mut(config_dir) {
      Some((count, existing)) => {
        existing.widen(&spec);
        *count += 1;
      }
      None => {
        let w = watcher::start(config_dir, spec)?;
        reg.watchers.insert(config_dir.to_path_buf(), (1, w));
      }
    }
  }
  reg.subscribers.insert(id, Subscriber { config_dir: config_dir.to_path_buf(), listener, watching });
  Ok(id)
}

/// Removes a subscriber (idempotent). The last watching subscriber of a dir stops its watcher.
pub fn unsubscribe(id: u64) -> bool {
  let stopped = {
    let mut reg = locked();
    let Some(sub) = reg.subscribers.remove(&id) else {
      return false;
    };
    let mut stopped = None;
    if sub.watching {
      if let Some((count, _)) = reg.watchers.get_mut(&sub.config_dir) {
        *count -= 1;
        if *count == 0 {
          stopped = reg.watchers.remove(&sub.config_dir).map(|(_, w)| w);
        }
      }
    }
    stopped
  };
  // Joined outside the registry lock: the watcher thread may be emitting right now.
  drop(stopped);
  true
}

/// Subscribers of `config_dir`; only those that asked to watch when `watching_only`.
fn listeners_of(config_dir: &Path, watching_only: bool) -> Vec<Arc<dyn Listener>> {
  locked()
    .subscribers
    .values()
    .filter(|s| s.config_dir == config_dir && (s.watching || !watching_only))
    .map(|s| Arc::clone(&s.listener))
    .collect()
}

/// Queues `event` for the subscribers of its config dir, in subscription order. Other processes'
/// changes go only to subscribers that watch: `watch: false` means in-process signals only, even
/// when another subscriber of the same dir keeps a watcher running.
pub fn emit(event: &AuthEvent) {
  for listener in listeners_of(&event.config_dir, event.source == Source::OtherProcess) {
    listener.deliver(event);
  }
}

/// "Auth changed, retry connections", said in this process (by `invalidateNeedsAuth` or
/// `purgeStale`) about `servers` of `config_dir` (empty = all).
pub fn emit_invalidated(config_dir: PathBuf, servers: Vec<String>) {
  emit(&AuthEvent {
    reason: Reason::Invalidated,
    servers,
    source: Source::ThisProcess,
    at: crate::needs_auth::now_ms(),
    config_dir,
  });
}

/// Tells the watching subscribers of `config_dir` about a problem their watcher met.
pub fn warn(config_dir: &Path, message: &str) {
  for listener in listeners_of(config_dir, true) {
    listener.warn(message);
  }
}

/// Live subscribers and running watchers, for leak tests and diagnostics.
pub fn counts() -> (usize, usize) {
  let reg = locked();
  (reg.subscribers.len(), reg.watchers.len())
}

#[cfg(test)]
mod tests {
  use super::*;

  struct Collect(Mutex<Vec<AuthEvent>>);
  impl Listener for Collect {
    fn deliver(&self, event: &AuthEvent) -> bool {
      self.0.lock().expect("lock").push(event.clone());
      true
    }
    fn warn(&self, _message: &str) {}
  }

  #[test]
  fn events_reach_only_subscribers_of_that_dir_until_unsubscribed() {
    let a = Arc::new(Collect(Mutex::new(Vec::new())));
    let b = Arc::new(Collect(Mutex::new(Vec::new())));
    let ida = subscribe(Path::new("/bus-test/a"), a.clone(), None).expect("sub");
    let idb = subscribe(Path::new("/bus-test/b"), b.clone(), None).expect("sub");
    let ev = |dir: &str| AuthEvent {
      reason: Reason::Invalidated,
      servers: vec![],
      source: Source::ThisProcess,
      at: 1.0,
      config_dir: PathBuf::from(dir),
    };
    emit(&ev("/bus-test/a"));
    assert_eq!(a.0.lock().expect("lock").len(), 1);
    assert_eq!(b.0.lock().expect("lock").len(), 0);
    assert!(unsubscribe(ida));
    assert!(!unsubscribe(ida), "idempotent");
    emit(&ev("/bus-test/a"));
    assert_eq!(a.0.lock().expect("lock").len(), 1);
    assert!(unsubscribe(idb));
  }

  #[test]
  fn other_process_events_reach_only_watching_subscribers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let watching = Arc::new(Collect(Mutex::new(Vec::new())));
    let local = Arc::new(Collect(Mutex::new(Vec::new())));
    let spec = WatchSpec {
      credentials: crate::credentials::CredentialSource::None,
      auto_invalidate: false,
      poll_interval_ms: 1000,
      explicit_config_dir: true,
    };
    let w = subscribe(dir.path(), watching.clone(), Some(spec)).expect("sub");
    let l = subscribe(dir.path(), local.clone(), None).expect("sub");
    let ev = |source| AuthEvent {
      reason: Reason::CacheChanged,
      servers: vec!["x".into()],
      source,
      at: 1.0,
      config_dir: dir.path().to_path_buf(),
    };
    emit(&ev(Source::OtherProcess));
    emit(&ev(Source::ThisProcess));
    assert_eq!(watching.0.lock().expect("lock").len(), 2);
    assert_eq!(local.0.lock().expect("lock").len(), 1);
    assert!(unsubscribe(w) && unsubscribe(l));
    assert_eq!(counts().1, 0, "the last watching subscriber stopped the watcher");
  }
}
