//! How often a watcher looks by itself: the keychain's poll interval (which its owner may
//! change while it runs), the retry of a directory it cannot watch, and the fallback read of a
//! credentials save caught half-written.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// While a directory cannot be watched (missing, no permission, no inotify instance or watch
/// left, no thread to be had), how often it is looked at again. Never more often: a missing
/// dir must not cost a spinning thread.
pub const RETRY: Duration = Duration::from_millis(500);
/// A credentials file notify's thread caught half-written is left to the write's next
/// notification, which notify's thread acts on at once; the watcher thread reads it this long
/// after, in case none comes (a writer that died mid-write).
pub(crate) const TORN_FALLBACK: Duration = Duration::from_millis(50);

/// Settings the owner may change while the watcher runs (as subscriptions come and go).
#[derive(Debug)]
pub struct Settings {
  poll_interval_ms: AtomicU64,
}

impl Settings {
  pub fn new(poll_interval: Duration) -> Settings {
    Settings { poll_interval_ms: AtomicU64::new(poll_interval.as_millis() as u64) }
  }

  /// How often a keychain store is polled; takes effect from the next poll.
  pub fn set_poll_interval(&self, interval: Duration) {
    self.poll_interval_ms.store(interval.as_millis() as u64, Ordering::SeqCst);
  }

  pub(super) fn poll_interval(&self) -> Duration {
    Duration::from_millis(self.poll_interval_ms.load(Ordering::SeqCst))
  }
}
