//! The watcher's state and what it does on a turn: re-arm when a directory changed, read the
//! credentials and the cache, and report to its sink what changed since the last look.
//! Its thread holds the lock while it acts; notify's thread takes it, when free, to read a
//! credentials save at once (`credentials_inline`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, TryLockError, Weak};
use std::time::Duration;

use super::arm::{self, DirId, Fs, Unarmed};
use super::diff::others_changes;
use super::handler::{self, Followed, Inline};
use super::inbox::{Inbox, Msg};
use super::settings::{Settings, RETRY};
use super::shared::Shared;
use super::sink::{Change, Sink};
use crate::cache_file::Document;
use crate::clock::now_ms;
use crate::credentials::{self, Snapshot, Store};
use crate::error::{Error, ErrorCode, Result};
use crate::fs::filesystem::MountId;
use crate::fs::{self, FileLock};
use crate::mutex::lock;
use crate::needs_auth;
use crate::own_writes::{OwnWrites, OwnWritesTracker};
use crate::watch_mode::{self, Mode, WatchMode};

/// The notify instance, apart from the worker's lock: stopping takes it (closing notify's
/// thread and OS handles at once) even while the watcher thread holds that lock, waiting.
pub(super) type FsSlot = Arc<Mutex<Option<Fs>>>;

/// Empties `slot`, closing its instance outside the slot's lock.
pub(super) fn close_fs(slot: &FsSlot) {
  let fs = lock(slot).take();
  drop(fs);
}

pub(super) struct Worker<S: Sink> {
  /// Itself, for the notification handler (weak: notify's handler lives inside `fs`).
  pub(super) me: Weak<Mutex<Worker<S>>>,
  /// Set by the owner when it stops the watcher: nothing more is acted on.
  pub(super) stopped: Arc<AtomicBool>,
  pub(super) config_dir: PathBuf,
  pub(super) cache_path: PathBuf,
  pub(super) store: Store,
  pub(super) settings: Arc<Settings>,
  pub(super) sink: S,
  pub(super) tx: Sender<Msg>,
  pub(super) fs: FsSlot,
  /// The directories followed: the config dir, and the credentials file's if elsewhere.
  pub(super) dirs: Vec<PathBuf>,
  /// Their identities when they were last armed.
  pub(super) ids: Vec<DirId>,
  /// The mounts they were reached through when `mode` was decided.
  pub(super) mounts: Vec<Option<MountId>>,
  /// Whether the files are polled, and why.
  pub(super) mode: WatchMode,
  /// The last poll's read of the credentials file was torn (re-read before any warning).
  pub(super) torn_poll: bool,
  /// Why watching does not work right now (warned once per outage).
  pub(super) broken: Option<String>,
  pub(super) own: OwnWritesTracker,
  /// The cache as last seen, to name what another process changed.
  pub(super) cache_baseline: Arc<Document>,
  /// The store as last read, to tell whether a read brought anything new.
  pub(super) credentials: Snapshot,
  pub(super) last_warning: Option<String>,
  /// What it shares with the runtime that started it.
  pub(super) process: Shared,
}

impl<S: Sink> Worker<S> {
  /// `None`: sleep until notified (a healthy watcher of files only).
  pub(super) fn next_wakeup(&self) -> Option<Duration> {
    let poll = self.polls_store().then(|| self.settings.poll_interval());
    let retry = self.broken.is_some().then_some(RETRY);
    match (poll, retry) {
      (Some(a), Some(b)) => Some(a.min(b)),
      (a, b) => a.or(b),
    }
  }

  /// Whether the files are read on every poll: notifications may miss their changes.
  pub(super) fn polls_files(&self) -> bool {
    self.mode.mode == Mode::Poll
  }

  /// Whether the store is read on every poll (a keychain, or files that are).
  pub(super) fn polls_store(&self) -> bool {
    self.store.source.needs_polling() || self.polls_files()
  }

  /// Before a poll's reads: the sizes and times from the filesystem itself, not the kernel's
  /// attribute cache, which on FUSE would cut a grown file short for every reader (a torn
  /// read, then a warning or a spurious removal) until it expires.
  pub(super) fn refresh_metadata(&self) {
    fs::filesystem::refresh_metadata(&self.cache_path);
    if let Some(file) = self.store.watched_file() {
      fs::filesystem::refresh_metadata(file);
    }
  }

  /// Decides the mode again if a directory is now reached through another mount (a share
  /// mounted over it, or unmounted). Returns whether it changed.
  fn check_mounts(&mut self) -> bool {
    let now = watch_mode::mounts_of(&self.dirs);
    if now == self.mounts {
      return false;
    }
    self.mounts = now;
    let mode = watch_mode::mode_for(&self.dirs);
    let changed = mode != self.mode;
    self.mode = mode;
    changed
  }

  /// Compares the directories with what is armed and re-arms when one was replaced, removed
  /// or came back, or watching failed last time. Returns whether the files must be looked at
  /// again (anything changed, or watching was broken until now).
  pub(super) fn check_dirs(&mut self) -> bool {
    // A mount over a directory is a change of what its files hold, whatever else is the same.
    let remounted = self.check_mounts();
    let now = arm::dir_ids(&self.dirs);
    // Unchanged and healthy; or unchanged and still missing (a `stat` per look while a
    // directory is missing: it is armed again once it appears).
    if now == self.ids && (self.broken.is_none() || now.iter().any(Option::is_none)) {
      return remounted;
    }
    let changed = now != self.ids;
    match self.arm() {
      Ok(()) => {
        // After an outage, whatever the files hold now is news too: changes made meanwhile
        // were not seen.
        changed || remounted || self.broken.take().is_some()
      }
      Err(problem) => {
        self.unarmed(problem);
        changed || remounted
      }
    }
  }

  /// Warns once per outage, and remembers that watching is broken (retried every `RETRY`).
  pub(super) fn unarmed(&mut self, problem: Unarmed) {
    if self.broken.is_none() {
      self.sink.warn(format!(
        "{}; changes there are not seen until it can be watched again (looked at every {} ms, and at once \
         when its parent directory changes)",
        problem.message,
        RETRY.as_millis()
      ));
    }
    self.broken = Some(problem.message);
  }

  /// A fresh notify instance on the directories (see `arm::arm`), in place of the old one.
  pub(super) fn arm(&mut self) -> std::result::Result<(), Unarmed> {
    close_fs(&self.fs);
    let followed = || Followed {
      dirs: self.dirs.clone(),
      cache_path: self.cache_path.clone(),
      creds_file: self.store.watched_file().map(Path::to_path_buf),
    };
    let make = || {
      let me = self.me.clone();
      handler::handler(self.tx.clone(), followed(), Arc::clone(&self.stopped), move || credentials_inline(&me))
    };
    let armed = arm::arm(&self.dirs, &self.config_dir, &self.process.closing, make);
    self.ids = armed.ids;
    *lock(&self.fs) = armed.fs;
    if self.stopped.load(Ordering::SeqCst) {
      // Stopped while arming: the owner has already emptied the slot.
      close_fs(&self.fs);
    }
    armed.outcome
  }

  fn warn(&mut self, err: &Error) {
    let message = err.to_string();
    if self.last_warning.as_deref() != Some(message.as_str()) {
      self.sink.warn(message.clone());
      self.last_warning = Some(message);
    }
  }

  pub(super) fn credentials_changed(&mut self, inbox: &mut Inbox) {
    // Polled, the file may have been caught mid-write with its size then cached by the kernel
    // (FUSE): each read asks the filesystem afresh, or every retry would be cut short.
    let refresh = self.polls_files().then(|| self.store.file.clone());
    if let Some(file) = &refresh {
      fs::filesystem::refresh_metadata(file);
    }
    let read = credentials::read_waiting(&self.process.observations, &self.store, |pause| {
      inbox.pause_for_credentials(pause);
      if let Some(file) = &refresh {
        fs::filesystem::refresh_metadata(file);
      }
      true
    });
    match read {
      Ok(snapshot) => {
        self.torn_poll = false;
        self.credentials_read(snapshot)
      }
      // A poll caught another machine's in-place save between its truncate and its write (its
      // times, cached, said the file had settled): read again shortly, as after a torn
      // notification, and warn only if it is still not a document then.
      Err(e) if refresh.is_some() && e.code == ErrorCode::CredentialsCorrupt && !self.torn_poll => {
        self.torn_poll = true;
        let _ = self.tx.send(Msg::CredentialsTorn);
      }
      Err(e) => self.warn(&e),
    }
  }

  /// On notify's thread, for a notification of the credentials file while the watcher thread is
  /// idle: acts on it at once, one thread wake-up sooner. A file caught half-written is left to
  /// the write's next notification (this thread's too; waiting here would hold up the very
  /// notifications it waits for); any error, a store that asks the keychain first, or a watch in
  /// trouble is left to the watcher thread (see `Inline`). What it finds goes to the sink, a
  /// queue: nothing here waits for a lock or writes a file.
  fn credentials_inline(&mut self) -> Inline {
    if self.stopped.load(Ordering::SeqCst) {
      return Inline::Done;
    }
    if self.broken.is_some() || self.store.source.needs_polling() {
      return Inline::Busy;
    }
    let mut torn = false;
    let read = credentials::read_waiting(&self.process.observations, &self.store, |_| {
      torn = true;
      false
    });
    match read {
      Ok(snapshot) => {
        self.credentials_read(snapshot);
        Inline::Done
      }
      Err(_) if torn => Inline::Torn,
      Err(_) => Inline::Busy,
    }
  }

  /// Reports the servers whose tokens changed, with the snapshot (the evidence for the
  /// superseded rule) whenever it differs from the last one reported.
  fn credentials_read(&mut self, snapshot: Snapshot) {
    self.last_warning = None;
    let changed = self.process.observations.observe(&self.store, &snapshot, now_ms());
    if changed.is_empty() && snapshot == self.credentials {
      return;
    }
    self.credentials = snapshot.clone();
    self.sink.changed(Change::Credentials { servers: changed, snapshot });
  }

  /// The baselines a change is measured from: the cache (with the own writes so far) and the
  /// store, the latter reported as evidence (with no server changed).
  ///
  /// A file that cannot be read (a FIFO there, say) is warned about now, once: the next warning
  /// is for a different problem, or after a read that worked. Not when its directory cannot be
  /// watched: that warning (just given) covers it.
  pub(super) fn take_baselines(&mut self) {
    match self.read_cache() {
      Ok((doc, _)) => self.cache_baseline = doc,
      Err(e) if self.broken.is_none() => self.warn(&e),
      Err(_) => {}
    }
    match credentials::read(&self.process.observations, &self.store) {
      Ok(snapshot) => {
        self.process.observations.observe(&self.store, &snapshot, now_ms());
        self.credentials = snapshot.clone();
        self.sink.changed(Change::Credentials { servers: Vec::new(), snapshot });
      }
      Err(e) if self.broken.is_none() => self.warn(&e),
      Err(_) => {}
    }
  }

  /// The cache and this process's own writes since the last look, read together under the
  /// cache lock so that no own write can fall between the two.
  /// Never creates anything: the directory may be going away (`rm -rf`) or not made yet.
  fn read_cache(&self) -> Result<(Arc<Document>, OwnWrites)> {
    let lock = FileLock::acquire_existing(&self.cache_path)?;
    let doc = needs_auth::load(&self.process.memos, &self.cache_path)?;
    let own = self.own.take();
    if lock.is_some() || !fs::lock_path(&self.cache_path).exists() {
      return Ok((doc, own));
    }
    // No lock file at first, so no write of ours was under way then; one has started since
    // (it made the lock file): read again under the lock, with its record.
    let _lock = FileLock::acquire_existing(&self.cache_path)?;
    let doc = needs_auth::load(&self.process.memos, &self.cache_path)?;
    let mut later = self.own.take();
    let mut writes = own.writes;
    writes.append(&mut later.writes);
    Ok((doc, OwnWrites { writes, gap: own.gap || later.gap }))
  }

  pub(super) fn cache_changed(&mut self) {
    let (doc, own) = match self.read_cache() {
      Ok(read) => read,
      Err(e) => return self.warn(&e),
    };
    let servers = others_changes(&self.cache_baseline, own, &doc);
    self.cache_baseline = Arc::clone(&doc);
    if !servers.is_empty() {
      self.sink.changed(Change::Cache { servers });
    }
  }
}

/// Runs `credentials_inline` when the watcher thread is idle (its lock free): the event then
/// costs one thread wake-up (notify's) before the auto-invalidator's, as a bare `fs.watch` costs
/// one, instead of two.
fn credentials_inline<S: Sink>(worker: &Weak<Mutex<Worker<S>>>) -> Inline {
  let Some(worker) = worker.upgrade() else { return Inline::Done };
  let locked = match worker.try_lock() {
    Ok(w) => w,
    Err(TryLockError::WouldBlock) => return Inline::Busy,
    Err(TryLockError::Poisoned(p)) => p.into_inner(),
  };
  let mut worker = locked;
  worker.credentials_inline()
}
