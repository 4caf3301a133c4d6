//! What a watcher reports, and the trait of what it reports to: a leaf of the watcher's
//! modules, so that its loop and its worker depend on it and not on each other.

use crate::credentials::Snapshot;

/// What a watcher found changed since its last look.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
  /// Another process added, changed or removed the entries of `servers`.
  Cache { servers: Vec<String> },
  /// The store as now read. `servers`, whose tokens changed, may be empty: the snapshot is still
  /// news (the newest evidence for the superseded rule), as is the first, taken at start.
  Credentials { servers: Vec<String>, snapshot: Snapshot },
}

/// Where a watcher's output goes. Called on the watcher's thread, or on notify's (a credentials
/// save read at once): must not block (queue, do not act).
pub trait Sink: Send + 'static {
  fn changed(&self, change: Change);
  /// A problem the watcher met (an unreadable store, a directory it cannot watch).
  fn warn(&self, message: String);
}
