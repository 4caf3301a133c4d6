//! This process's own writes to cache files, kept for the watchers of this process: a watcher
//! chains them to tell its own process's changes from everybody else's. The log is the cache
//! API's `WriteObserver`; the cache API knows nothing of watchers.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::cache_file::Document;
use crate::mutex::lock;
use crate::needs_auth::WriteObserver;

/// One change this process made: the document it read under the lock, and the one it wrote.
#[derive(Clone)]
pub struct OwnWrite {
  pub before: Arc<Document>,
  pub after: Arc<Document>,
}

/// Most own writes kept for one watcher between two of its looks; past that the oldest are
/// dropped and the watcher is told there is a gap.
const OWN_WRITES_KEPT: usize = 1024;

#[derive(Default)]
struct OwnLog {
  writes: VecDeque<OwnWrite>,
  gap: bool,
}

/// Per cache path, per watcher following it (by tracker id), the writes it has not looked at
/// yet. Each watcher has its own log, so two watchers of one dir (say, two credential stores)
/// both see every write. One per process in use: a write by any caller in the process must not
/// be reported back to its own subscribers as another process's.
#[derive(Default)]
pub struct OwnWritesLog {
  logs: Mutex<HashMap<PathBuf, HashMap<u64, OwnLog>>>,
  /// The id of the next tracker (ids are never reused within a log).
  next_tracker_id: AtomicU64,
}

impl WriteObserver for OwnWritesLog {
  fn follows(&self, path: &Path) -> bool {
    lock(&self.logs).contains_key(path)
  }

  fn wrote(&self, path: &Path, before: Arc<Document>, after: Arc<Document>) {
    let write = OwnWrite { before, after };
    let mut logs = lock(&self.logs);
    for log in logs.get_mut(path).into_iter().flat_map(|l| l.values_mut()) {
      if log.writes.len() == OWN_WRITES_KEPT {
        log.writes.pop_front();
        log.gap = true;
      }
      log.writes.push_back(write.clone());
    }
  }
}

/// A watcher's claim on this process's writes to one cache file; stops recording on drop.
pub struct OwnWritesTracker {
  log: Arc<OwnWritesLog>,
  path: PathBuf,
  id: u64,
}

impl OwnWritesTracker {
  /// Starts recording this process's writes to `path` (those reported to `log`) for one watcher.
  pub fn start(log: &Arc<OwnWritesLog>, path: &Path) -> OwnWritesTracker {
    let id = log.next_tracker_id.fetch_add(1, Ordering::Relaxed);
    lock(&log.logs).entry(path.to_path_buf()).or_default().insert(id, OwnLog::default());
    OwnWritesTracker { log: Arc::clone(log), path: path.to_path_buf(), id }
  }

  /// Takes the own writes recorded since the last call. Call with the cache lock held, right
  /// after reading the file, so that the file and the record agree.
  pub fn take(&self) -> OwnWrites {
    let mut logs = lock(&self.log.logs);
    match logs.get_mut(&self.path).and_then(|l| l.get_mut(&self.id)) {
      Some(log) => OwnWrites { writes: log.writes.drain(..).collect(), gap: std::mem::take(&mut log.gap) },
      None => OwnWrites::default(),
    }
  }
}

impl Drop for OwnWritesTracker {
  fn drop(&mut self) {
    let mut logs = lock(&self.log.logs);
    if let Some(trackers) = logs.get_mut(&self.path) {
      trackers.remove(&self.id);
      if trackers.is_empty() {
        logs.remove(&self.path);
      }
    }
  }
}

/// The own writes recorded since a watcher last looked.
#[derive(Default)]
pub struct OwnWrites {
  /// Oldest first.
  pub writes: Vec<OwnWrite>,
  /// Some were dropped before `writes[0]` (more than `OWN_WRITES_KEPT` between two looks).
  pub gap: bool,
}
