//! The watcher: follows, for one config dir and one credential store, the changes other
//! processes make to the needs-auth cache and to the credentials, and reports them to a
//! [`Sink`]. Mechanism only: it arms OS watches, runs its loop and diffs what it reads; what
//! the changes should make this process do (auto-invalidation) is the sink's business
//! (`auto_invalidate`), and who hears of them is the event bus's, which owns watchers.
//!
//! Files are followed through OS notifications on their *directories* (so Claude Code's
//! in-place writes and atomic renames are both seen) and on those directories' parents (so a
//! directory removed, renamed away, recreated or retargeted through a symlink is noticed at
//! once). A directory that is gone or replaced (its dev/inode changed) is watched again at the
//! same path as soon as it exists; until then the sink hears one warning and the path is looked
//! at every [`RETRY`]. The keychain, which has no notifications, is polled. So are the files
//! when a followed directory is on a filesystem whose changes this kernel may not hear of (NFS,
//! SMB, FUSE, 9p, …: anything off the allowlist of `fs::filesystem`): then the cache and the
//! credentials file are read every poll interval and diffed as after a notification (so the
//! same `Change`s, one per save), notifications still acted on as they come (`watch_mode` says
//! which; a change of the directories' mounts, seen on a poll or a directory event, decides
//! again). Notifications are acted on at once (those queued meanwhile are folded in); a healthy file-only watcher never
//! wakes up by itself. A save of the credentials file is read by notify's own thread when
//! the watcher's thread is idle, so a sign-in reaches the sink after one thread wake-up, as
//! with a bare `fs.watch` (a save caught half-written, between an in-place write's truncate
//! and its bytes, is read at the write's next notification, there too); everything else is the
//! watcher thread's.
//!
//! Stopping (dropping the [`Watcher`]) never waits for the watcher thread, which may be waiting
//! for another process's cache lock or for the store: notify's instance is closed at once, and
//! the thread exits by itself when it next wakes (see `threads`).
//!
//! Inside, each importing only the ones after it: `run` (the loop), `worker` (the state and one
//! turn's work), `shared` (what it shares with its runtime), `arm` (notify instances, directory
//! identities), `handler` (notify's thread),
//! `inbox` (the thread's queue), `diff` (whose change it was), `sink` (what is reported),
//! `settings` (how often it looks), `threads` (spawning and stopping without a join).

mod arm;
mod diff;
mod handler;
mod inbox;
mod run;
mod settings;
mod shared;
mod sink;
pub mod threads;
mod worker;

pub use arm::ClosingFsWatchers;
pub use settings::Settings;
#[cfg(test)]
pub(crate) use settings::TORN_FALLBACK;
pub use shared::Shared;
pub use sink::{Change, Sink};
pub use threads::StoppedThreads;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};

use crate::cache_file::Document;
use crate::config_dir;
use crate::credentials::{Snapshot, Store};
use crate::error::{Error, ErrorCode, Result};
use crate::mutex::lock;
use crate::own_writes::OwnWritesTracker;
use crate::watch_mode;
use inbox::Msg;
use worker::{close_fs, FsSlot, Worker};

/// A running watcher. Dropping it stops it without waiting: nothing more is acted on, notify's
/// instance is closed now, and the thread exits when it next wakes.
pub struct Watcher {
  tx: Sender<Msg>,
  stopped: Arc<AtomicBool>,
  fs: FsSlot,
  thread: threads::Stoppable,
}

impl Drop for Watcher {
  fn drop(&mut self) {
    self.stopped.store(true, Ordering::SeqCst);
    let _ = self.tx.send(Msg::Stop);
    self.thread.stopped();
    close_fs(&self.fs);
  }
}

/// Starts watching `config_dir`'s cache and `store`. Returns once the baselines are taken: a
/// change made after that is reported. A directory that cannot be watched is not an error
/// (it is warned about through `sink` and retried); only a thread that cannot start is
/// (`ERR_WATCH`), notify's included.
pub fn start(
  config_dir: &Path,
  store: Store,
  settings: Arc<Settings>,
  sink: impl Sink,
  process: Shared,
) -> Result<Watcher> {
  let (tx, rx) = mpsc::channel();
  let cache_path = config_dir::cache_path(config_dir);
  let dirs = watch_mode::followed_dirs(config_dir, &store);
  for dir in &dirs {
    // Claude Code creates its config dir on first use anyway; watching is simplest when it
    // exists. A failure here shows up as a watch warning below.
    let _ = std::fs::create_dir_all(dir);
  }
  let stopped = Arc::new(AtomicBool::new(false));
  let fs = FsSlot::default();
  let shared = Arc::new_cyclic(|me| {
    Mutex::new(Worker {
      me: me.clone(),
      stopped: Arc::clone(&stopped),
      config_dir: config_dir.to_path_buf(),
      own: OwnWritesTracker::start(&process.own_writes, &cache_path),
      cache_path,
      store,
      settings,
      sink,
      tx: tx.clone(),
      fs: Arc::clone(&fs),
      mounts: watch_mode::mounts_of(&dirs),
      mode: watch_mode::mode_for(&dirs),
      torn_poll: false,
      dirs,
      ids: Vec::new(),
      broken: None,
      cache_baseline: Arc::new(Document::new()),
      credentials: Snapshot::default(),
      last_warning: None,
      process,
    })
  });
  {
    let mut worker = lock(&shared);
    // Armed before the baselines are taken, so that nothing falls between the two.
    match worker.arm() {
      Ok(()) => {}
      Err(problem) if problem.no_thread => {
        worker.stopped.store(true, Ordering::SeqCst);
        close_fs(&fs);
        return Err(Error::new(ErrorCode::Watch, problem.message));
      }
      Err(problem) => worker.unarmed(problem),
    }
    worker.take_baselines();
  }
  let budget = Arc::clone(&lock(&shared).process.stopped_threads);
  let thread = threads::spawn(&budget, "mcp-needs-auth-watch", "the watcher thread", move || run::run(shared, rx));
  let thread = match thread {
    Ok(thread) => thread,
    Err(e) => {
      stopped.store(true, Ordering::SeqCst);
      close_fs(&fs);
      return Err(e);
    }
  };
  Ok(Watcher { tx, stopped, fs, thread })
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::credentials::CredentialSource;
  use std::sync::mpsc::Receiver;
  use std::time::Duration;

  impl Sink for Sender<Change> {
    fn changed(&self, change: Change) {
      let _ = self.send(change);
    }
    fn warn(&self, _message: String) {}
  }

  fn next_change(rx: &Receiver<Change>) -> Change {
    rx.recv_timeout(Duration::from_secs(5)).expect("a change")
  }

  #[test]
  fn reports_what_changed_with_the_evidence_and_acts_on_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("config");
    std::fs::create_dir(&dir).expect("mkdir");
    let (tx, rx) = mpsc::channel();
    let store = Store::locate(&dir, true, CredentialSource::File);
    let settings = Arc::new(Settings::new(Duration::from_secs(2)));
    let watcher = start(&dir, store, settings, tx, Shared::default()).expect("start");
    assert!(matches!(next_change(&rx), Change::Credentials { servers, .. } if servers.is_empty()), "the baseline");
    std::fs::write(dir.join(config_dir::CACHE_FILE_NAME), br#"{"gh":{"timestamp":1}}"#).expect("write");
    assert_eq!(next_change(&rx), Change::Cache { servers: vec!["gh".into()] });
    let creds = r#"{"mcpOAuth":{"gh|0":{"serverName":"gh","accessToken":"T","expiresAt":1}}}"#;
    std::fs::write(dir.join(".credentials.json"), creds).expect("write");
    match next_change(&rx) {
      Change::Credentials { servers, snapshot } => {
        assert_eq!(servers, vec!["gh"]);
        assert!(snapshot.servers.get("gh").is_some_and(|s| s.has_token()));
      }
      other => panic!("{other:?}"),
    }
    assert!(std::fs::read_to_string(dir.join(config_dir::CACHE_FILE_NAME)).expect("read").contains("gh"), "kept");
    // Once dropped, nothing more is reported.
    drop(watcher);
    std::fs::write(dir.join(config_dir::CACHE_FILE_NAME), b"{}").expect("write");
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err(), "reported after the stop");
  }
}
