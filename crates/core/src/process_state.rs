//! Every value this library keeps for the whole process, in one place. Each is process-wide
//! because what it stands for is: one Node process has one set of subscribers, one view of the
//! files it wrote, one inotify budget. Everything else is passed as a value.
//!
//! Locking order, where locks nest: `event_bus`'s per-(dir, store) watcher slot (held while that
//! watcher starts or stops), then a cache file's sidecar `FileLock`, then any one lock here. No
//! lock here is held while another is taken, nor across I/O that can wait.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::change_notice::Notices;
use crate::config_dir::Source as ConfigDirSource;
use crate::credentials::{KeychainFlights, Observed, Store};
use crate::event_bus::Registry;
use crate::needs_auth::{Memos, OwnLogs};

/// Locks a process-wide map or setting. A panic while one was held cannot leave it half
/// updated (each change is a single insert, remove or assignment), so a poisoned lock is
/// still good to use rather than a reason to fail every later call.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
  m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `event_bus`: every subscriber of this process and the one watcher per (config dir, store)
/// they share. Process-wide because `invalidateNeedsAuth` in any part of a host must reach
/// every subscriber, and two subscribers of one store must share one watcher.
pub(crate) fn registry() -> &'static Mutex<Registry> {
  static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
  REGISTRY.get_or_init(Default::default)
}

/// `event_bus`: the id of the next subscriber (ids are never reused within a process).
pub(crate) static NEXT_SUBSCRIBER_ID: AtomicU64 = AtomicU64::new(1);

/// `needs_auth`: the last documents read of the few most used cache files, and the one inotify
/// instance (`change_notice::Notices`) that says when one changed. Process-wide so that the hot
/// path (`isNeedsAuthCached`, per call) costs a queue check, not a read, whoever calls it; and
/// one instance because inotify instances are a small per-user budget.
pub(crate) fn memos() -> &'static Mutex<Memos> {
  static MEMOS: OnceLock<Mutex<Memos>> = OnceLock::new();
  MEMOS.get_or_init(|| Mutex::new(Memos::new(Notices::new())))
}

/// `needs_auth`: per cache file, per watcher following it, this process's own writes that
/// watcher has not looked at yet. Process-wide because a write by any caller in the process
/// must not be reported back to its own subscribers as another process's.
pub(crate) fn own_logs() -> &'static Mutex<OwnLogs> {
  static OWN: OnceLock<Mutex<OwnLogs>> = OnceLock::new();
  OWN.get_or_init(Default::default)
}

/// `needs_auth`: the id of the next own-writes tracker (one per watcher).
pub(crate) static NEXT_TRACKER_ID: AtomicU64 = AtomicU64::new(1);

/// `credentials`: per store, the token fingerprints its watcher last saw, when each server's
/// tokens changed, and when the store was first seen. Process-wide because it is this process's
/// memory of the store, which every reader (purge, diagnose, the watchers) consults.
pub(crate) fn observed() -> &'static Mutex<HashMap<Store, Observed>> {
  static OBSERVED: OnceLock<Mutex<HashMap<Store, Observed>>> = OnceLock::new();
  OBSERVED.get_or_init(Default::default)
}

/// `credentials::keychain`: per keychain item, the read in flight on its helper thread.
/// Process-wide because the bound it keeps (one thread parked per item in a keychain call that
/// never returns) is.
pub(crate) fn keychain_flights() -> &'static Mutex<KeychainFlights> {
  static FLIGHTS: OnceLock<Mutex<KeychainFlights>> = OnceLock::new();
  FLIGHTS.get_or_init(Default::default)
}

/// `watcher`: notify watchers whose event-loop thread is still closing its OS handles.
/// Process-wide because the limit it guards (inotify instances per user) is.
pub(crate) static CLOSING_FS_WATCHERS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
  /// `config_dir`: the last config dir resolution of this thread, with what it depended on:
  /// checks call with the same options over and over. Per thread, so it needs no lock.
  pub(crate) static LAST_CONFIG_DIR: RefCell<Option<(ConfigDirSource, PathBuf, Arc<Path>)>> =
    const { RefCell::new(None) };
}
