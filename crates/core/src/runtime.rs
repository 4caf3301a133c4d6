//! `Runtime`: everything this library keeps between calls, as one value. A process (the
//! binding crate) holds one for its whole life; tests build a fresh one each.
//!
//! It sits above the modules whose state it owns: it builds each part and hands it to them;
//! they take only the part they need (`&Memos`, `&Bus`, ...) and never name the runtime.
//!
//! Locking order, where locks nest: `event_bus`'s per-(dir, store) watcher slot (held while that
//! watcher starts or stops), then a cache file's sidecar `FileLock`, then any one lock of the
//! parts below. None of those is held while another is taken, nor across I/O that can wait.

use std::sync::Arc;
use std::time::Duration;

use crate::credentials::Observations;
use crate::event_bus::Bus;
use crate::needs_auth::{Memos, WriteObserver, Writer};
use crate::own_writes::OwnWritesLog;
use crate::watcher::{ClosingFsWatchers, Shared, StoppedThreads};

/// The state of one user of this library (in the addon, the process):
/// - the event bus: the subscribers, the next subscriber id, and the watchers they share;
/// - the read memos, with the one inotify instance that says when a memoised file changed;
/// - the own-writes log (per watcher, the writes of this process it has not looked at yet),
///   which every write through the runtime is reported to;
/// - what it observed of each credential store;
/// - the count of notify watchers still closing (the inotify budget the watchers share), and of
///   watcher threads stopped but still running (the thread budget they share).
///
/// The parts the watchers' threads also use are shared with them (`Arc`); the hot path
/// (`Memos` on every check) reaches its part by reference, without a count.
pub struct Runtime {
  memos: Arc<Memos>,
  own_writes: Arc<OwnWritesLog>,
  observations: Arc<Observations>,
  bus: Bus,
}

impl Runtime {
  pub fn new() -> Runtime {
    let process = Shared {
      memos: Arc::new(Memos::new()),
      own_writes: Arc::new(OwnWritesLog::default()),
      observations: Arc::new(Observations::default()),
      closing: Arc::new(ClosingFsWatchers::default()),
      stopped_threads: Arc::new(StoppedThreads::default()),
    };
    Runtime {
      memos: Arc::clone(&process.memos),
      own_writes: Arc::clone(&process.own_writes),
      observations: Arc::clone(&process.observations),
      bus: Bus::new(process),
    }
  }

  /// What every read of a cache file goes through.
  pub fn memos(&self) -> &Memos {
    &self.memos
  }

  /// What every write to a cache file is reported to: the own-writes log, so that this
  /// runtime's watchers do not take the write for another process's.
  pub fn own_writes(&self) -> &dyn WriteObserver {
    &*self.own_writes
  }

  /// How a change through this runtime reaches the cache: its memos, its own-writes log, and
  /// at most `lock_wait` of waiting for another process's lock.
  pub fn writer(&self, lock_wait: Duration) -> Writer<'_> {
    Writer { memos: &self.memos, observer: &*self.own_writes, lock_wait }
  }

  /// What this runtime observed of each credential store.
  pub fn observations(&self) -> &Observations {
    &self.observations
  }

  /// The subscribers and their watchers.
  pub fn bus(&self) -> &Bus {
    &self.bus
  }
}

impl Default for Runtime {
  fn default() -> Runtime {
    Runtime::new()
  }
}

#[cfg(test)]
mod tests {
  use std::path::{Path, PathBuf};

  use super::*;
  use crate::config_dir::cache_path;
  use crate::credentials::CredentialSource;
  use crate::event_bus::tests::{spec, Collect};
  use crate::event_bus::{emit_invalidated, subscribe, unsubscribe};
  use crate::needs_auth;

  #[test]
  fn an_invalidation_reaches_the_subscribers_of_its_own_runtime_only() {
    let (one, other) = (Runtime::new(), Runtime::new());
    let (heard, unheard) = (Arc::new(Collect::default()), Arc::new(Collect::default()));
    let a = subscribe(one.bus(), Path::new("/config"), heard.clone(), None).expect("sub");
    let b = subscribe(other.bus(), Path::new("/config"), unheard.clone(), None).expect("sub");
    emit_invalidated(one.bus(), PathBuf::from("/config"), vec!["s".into()]);
    assert_eq!(heard.servers(), vec![vec!["s".to_string()]]);
    assert!(unheard.servers().is_empty());
    assert!(unsubscribe(one.bus(), a) && unsubscribe(other.bus(), b));
  }

  #[test]
  fn a_write_is_its_own_runtimes_and_another_process_to_any_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (writer, other) = (Runtime::new(), Runtime::new());
    let (own, others) = (Arc::new(Collect::default()), Arc::new(Collect::default()));
    let watch = || Some(spec(CredentialSource::None, false));
    let a = subscribe(writer.bus(), dir.path(), own.clone(), watch()).expect("sub");
    let b = subscribe(other.bus(), dir.path(), others.clone(), watch()).expect("sub");
    let cache = cache_path(dir.path());
    needs_auth::mark(writer.writer(needs_auth::DEFAULT_LOCK_WAIT), &cache, "mine", 1.0, None, None).expect("mark");
    others.wait_for(1);
    assert_eq!(others.servers(), vec![vec!["mine".to_string()]], "another runtime's write is news");
    // A write by nobody's runtime, after: the writer's watcher reports it, and it alone.
    std::fs::write(&cache, r#"{"mine":{"timestamp":1},"theirs":{"timestamp":1}}"#).expect("write");
    own.wait_for(1);
    assert_eq!(own.servers(), vec![vec!["theirs".to_string()]], "its own write is not");
    assert!(unsubscribe(writer.bus(), a) && unsubscribe(other.bus(), b));
  }

  #[test]
  fn dropping_a_runtime_stops_its_watchers_and_lets_go_of_its_subscribers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = Runtime::new();
    let listener = Arc::new(Collect::default());
    subscribe(runtime.bus(), dir.path(), listener.clone(), Some(spec(CredentialSource::File, true))).expect("sub");
    drop(runtime);
    assert_eq!(Arc::strong_count(&listener), 1, "nothing holds the listener any more");
  }
}
