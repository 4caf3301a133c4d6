//! What a watcher (and its auto-invalidator) shares with the runtime that starts it: the parts
//! of the runtime's state its threads use, by `Arc` because those threads outlive any call.

use std::sync::Arc;

use super::arm::ClosingFsWatchers;
use super::threads::StoppedThreads;
use crate::credentials::Observations;
use crate::needs_auth::Memos;
use crate::own_writes::OwnWritesLog;

/// The read memos and the own-writes log its cache reads and writes go through, the
/// observations of the stores it reads, and the two budgets every watcher of the runtime
/// draws on: notify instances still closing (inotify instances per user) and threads of
/// stopped watchers still running (threads per user).
#[derive(Clone, Default)]
pub struct Shared {
  pub memos: Arc<Memos>,
  pub own_writes: Arc<OwnWritesLog>,
  pub observations: Arc<Observations>,
  pub closing: Arc<ClosingFsWatchers>,
  pub stopped_threads: Arc<StoppedThreads>,
}
