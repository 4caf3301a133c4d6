//! Arming: one notify instance on the followed directories and their parents, and closing it in
//! bounded time. Directories are told apart by identity ([`DirId`]), so that one replaced at the
//! same path is noticed and armed again.
//!
//! notify's backends start their event-loop thread ignoring a failed spawn, then unwrap every
//! send to that thread: with no thread to be had (`RLIMIT_NPROC`, a container's pids limit),
//! `watch` panics, and so does the instance's own `drop`, which during that unwinding aborts the
//! host. So a fresh instance is made only when a thread can be had, its loop is asked whether it
//! runs before it is used, and every call into it (its drop included) runs under `catch_unwind`:
//! a failed spawn becomes an [`Unarmed`] that says so, never a panic out of this module.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};

use super::threads;

/// Whether the directories' parents are watched too. Not with FSEvents (macOS), whose streams
/// are recursive underneath: watching `~` would wake notify's thread for every change in the
/// home directory. There a directory that goes is still seen through its own events; only a
/// symlink retargeted elsewhere goes unnoticed.
const WATCH_PARENTS: bool = cfg!(not(target_os = "macos"));

/// Notify watchers whose event-loop thread is still closing its OS handles. One count for all
/// the watchers of a runtime: the limit it guards (inotify instances per user) is that wide.
#[derive(Debug, Default)]
pub struct ClosingFsWatchers(AtomicUsize);

/// Most notify watchers left closing (`ClosingFsWatchers`). Closing an inotify
/// instance waits for a kernel grace period (~15 ms), and notify does it on its own thread
/// after `drop` returns. Stopping does not wait for that, unless this many are already
/// closing: tight subscribe/close loops must not pile up instances past the per-user limit.
const MAX_CLOSING_FS_WATCHERS: usize = 4;

/// A directory's identity: it changes when the directory is replaced or a symlink to it is
/// retargeted. `None`: no directory there.
pub(super) type DirId = Option<(u64, u64)>;

pub(super) fn dir_id(path: &Path) -> DirId {
  let meta = std::fs::metadata(path).ok().filter(|m| m.is_dir())?;
  #[cfg(unix)]
  {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
  }
  #[cfg(not(unix))]
  {
    let _ = meta;
    Some((0, 0))
  }
}

pub(super) fn dir_ids(dirs: &[PathBuf]) -> Vec<DirId> {
  dirs.iter().map(|d| dir_id(d)).collect()
}

/// Why the directories are not (all) watched.
pub(super) struct Unarmed {
  pub(super) message: String,
  /// No thread could be started for the notifications: an error at subscribe, a warning and a
  /// retry later.
  pub(super) no_thread: bool,
}

impl Unarmed {
  fn other(message: String) -> Unarmed {
    Unarmed { message, no_thread: false }
  }

  fn no_thread() -> Unarmed {
    Unarmed {
      message: "no thread could be started for its notifications (the limit on processes or threads is reached)"
        .to_owned(),
      no_thread: true,
    }
  }

  fn about(self, dir: &Path) -> Unarmed {
    Unarmed { message: format!("cannot watch {} for changes: {}", dir.display(), self.message), ..self }
  }
}

const OPEN: u8 = 0;
const CLOSING: u8 = 1;
const GONE: u8 = 2;

/// Lives inside notify's event handler; dropped by notify's thread after it closed its fds
/// (or at once, with the handler, when that thread never started).
struct HandlerGuard {
  state: Arc<AtomicU8>,
  budget: Arc<ClosingFsWatchers>,
  _gone: Sender<()>,
}

impl Drop for HandlerGuard {
  fn drop(&mut self) {
    if self.state.swap(GONE, Ordering::SeqCst) == CLOSING {
      self.budget.0.fetch_sub(1, Ordering::SeqCst);
    }
  }
}

/// One notify instance and what it takes to close it in bounded time.
pub(super) struct Fs {
  watcher: Option<notify::RecommendedWatcher>,
  /// Disconnects when notify's thread has dropped our handler, after closing its OS handles.
  gone: Receiver<()>,
  /// `OPEN`, `CLOSING` (counted in `budget`) or `GONE` (the handler dropped).
  state: Arc<AtomicU8>,
  budget: Arc<ClosingFsWatchers>,
}

impl Fs {
  /// A fresh notify instance whose events go to `handler`.
  fn new<H: notify::EventHandler>(mut handler: H, budget: &Arc<ClosingFsWatchers>) -> Result<Fs, Unarmed> {
    // Asked first so that, in the common case, notify is not even started without a thread.
    if !threads::room_for_one() {
      return Err(Unarmed::no_thread());
    }
    let (alive, gone) = mpsc::channel::<()>();
    let state = Arc::new(AtomicU8::new(OPEN));
    let guard = HandlerGuard { state: Arc::clone(&state), budget: Arc::clone(budget), _gone: alive };
    let handler = move |event: notify::Result<notify::Event>| {
      // Owned by the handler, so dropped with it (see `HandlerGuard`).
      let _guard = &guard;
      handler.handle_event(event);
    };
    // Contained (see the module's doc); an instance that panicked is never used again.
    let made = catch_unwind(AssertUnwindSafe(|| notify::recommended_watcher(handler)));
    let watcher = match made {
      Ok(Ok(w)) => w,
      Ok(Err(e)) => return Err(Unarmed::other(e.to_string())),
      Err(_) => return Err(Unarmed::no_thread()),
    };
    let mut fs = Fs { watcher: Some(watcher), gone, state, budget: Arc::clone(budget) };
    if !fs.runs() {
      return Err(Unarmed::no_thread());
    }
    Ok(fs)
  }

  /// Whether the instance's event loop runs. On Linux a round trip to it (inotify answers a
  /// `configure` from its loop, and a send to a loop that never started fails without a panic);
  /// elsewhere assumed, `watch` being contained anyway.
  fn runs(&mut self) -> bool {
    let Some(w) = self.watcher.as_mut() else { return false };
    if cfg!(any(target_os = "linux", target_os = "android")) {
      return matches!(catch_unwind(AssertUnwindSafe(|| w.configure(notify::Config::default()))), Ok(Ok(_)));
    }
    true
  }

  fn watch(&mut self, path: &Path) -> Result<(), Unarmed> {
    let Some(w) = self.watcher.as_mut() else { return Err(Unarmed::no_thread()) };
    match catch_unwind(AssertUnwindSafe(|| w.watch(path, RecursiveMode::NonRecursive))) {
      Ok(Ok(())) => Ok(()),
      Ok(Err(e)) => Err(Unarmed::other(e.to_string())),
      Err(_) => Err(Unarmed::no_thread()),
    }
  }
}

impl Drop for Fs {
  fn drop(&mut self) {
    let Some(w) = self.watcher.take() else { return };
    // Counted before the handler can see `CLOSING`, so the count never goes below zero; not at
    // all when the handler is already gone (its thread never ran, or ended).
    self.budget.0.fetch_add(1, Ordering::SeqCst);
    let counted = self.state.compare_exchange(OPEN, CLOSING, Ordering::SeqCst, Ordering::SeqCst).is_ok();
    if !counted {
      self.budget.0.fetch_sub(1, Ordering::SeqCst);
    }
    // Contained: the drop of an instance whose loop is gone panics (see the module's doc).
    let _ = catch_unwind(AssertUnwindSafe(|| drop(w)));
    if counted && self.budget.0.load(Ordering::SeqCst) > MAX_CLOSING_FS_WATCHERS {
      // Bounded: a wedged OS call must not hang a close.
      let _ = self.gone.recv_timeout(Duration::from_secs(2));
    }
  }
}

/// What arming left: the instance (kept even when a directory failed: its parent's events say
/// when to try again), the directories' identities it was armed for, and whether all are watched.
pub(super) struct Armed {
  pub(super) fs: Option<Fs>,
  pub(super) ids: Vec<DirId>,
  pub(super) outcome: Result<(), Unarmed>,
}

/// A fresh notify instance on `dirs` and their parents, its events going to a `handler()`. A
/// fresh instance rather than a re-watch: notify keys watches by path, and a late removal event
/// for an old directory would otherwise drop the new watch. `label` names the whole (the config
/// dir) where no one directory is to blame.
pub(super) fn arm<H: notify::EventHandler>(
  dirs: &[PathBuf],
  label: &Path,
  budget: &Arc<ClosingFsWatchers>,
  mut handler: impl FnMut() -> H,
) -> Armed {
  let mut fs = None;
  let mut ids = Vec::new();
  for _ in 0..3 {
    drop(fs.take());
    let before = dir_ids(dirs);
    ids = before.clone();
    let mut new = match Fs::new(handler(), budget) {
      Ok(new) => new,
      Err(problem) => return Armed { fs: None, ids, outcome: Err(problem.about(label)) },
    };
    // Parents first and best effort: they only tell when a directory comes or goes.
    let mut parents: Vec<&Path> = dirs.iter().filter_map(|d| d.parent()).collect();
    parents.dedup();
    for p in parents.into_iter().filter(|_| WATCH_PARENTS) {
      let _ = new.watch(p);
    }
    let mut failed = None;
    for (dir, id) in dirs.iter().zip(&before) {
      let result = match id {
        None => Err(Unarmed::other("it does not exist".to_owned())),
        Some(_) => new.watch(dir),
      };
      if let Err(problem) = result {
        failed = Some(problem.about(dir));
        break;
      }
    }
    if let Some(problem) = failed {
      // An instance whose loop is gone is of no use, even for its parents' events.
      let fs = (!problem.no_thread).then_some(new);
      return Armed { fs, ids, outcome: Err(problem) };
    }
    fs = Some(new);
    if dir_ids(dirs) == before {
      return Armed { fs, ids, outcome: Ok(()) };
    }
    // Replaced while being armed: the watch may be on the old one. Again.
  }
  Armed { fs, ids, outcome: Err(Unarmed::other(format!("{} keeps being replaced", label.display()))) }
}
