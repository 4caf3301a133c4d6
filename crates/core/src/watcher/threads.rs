//! The threads a watcher runs on (its loop, and the auto-invalidator's): started with
//! `thread::Builder` (a failed spawn is an error, never a panic), stopped without a join, and
//! counted while they finish after being stopped.
//!
//! Stopping never joins: a thread may be waiting for another process's cache lock, a FIFO or the
//! keychain, and `close()` (or a host's exit, or `worker.terminate()`) must not wait with it.
//! A stopped thread exits by itself when it next wakes. So that such threads cannot pile up
//! without bound, at most [`MAX_LEFT_BEHIND`] may still be running after being stopped; while
//! that many are, no new one is started (the subscription fails with `ERR_WATCH`).

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorCode, Result};

/// Watcher threads told to stop that are still running (waiting for a lock, a file or the
/// keychain before they notice). One count for all the watchers of a runtime: the budget it
/// bounds (threads per user, `RLIMIT_NPROC`) is at least that wide.
#[derive(Debug, Default)]
pub struct StoppedThreads(AtomicUsize);

impl StoppedThreads {
  /// Threads stopped but still running.
  pub fn left_behind(&self) -> usize {
    self.0.load(Ordering::SeqCst)
  }
}

/// Most threads left running after being stopped (each waits for something outside this
/// process). Two per closed watcher at most: a handful of stuck closes, never a leak.
pub const MAX_LEFT_BEHIND: usize = 16;
/// How long a start waits for threads left behind to finish when there are `MAX_LEFT_BEHIND`:
/// in a tight subscribe/close loop they are merely a moment from exiting.
const ROOM_PATIENCE: Duration = Duration::from_millis(250);

const RUNNING: u8 = 0;
const STOPPED: u8 = 1;
const EXITED: u8 = 2;

/// A thread of ours that can be told it is stopped. Telling it does not wait for it.
pub struct Stoppable {
  state: Arc<AtomicU8>,
  budget: Arc<StoppedThreads>,
}

impl Stoppable {
  /// Marks the thread stopped (its owner has told it to stop: a message, a flag) and, if it
  /// is still running, counts it as left behind until it exits. Idempotent; never waits.
  pub fn stopped(&self) {
    if self.state.compare_exchange(RUNNING, STOPPED, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
      self.budget.0.fetch_add(1, Ordering::SeqCst);
    }
  }
}

/// Ends the count of a stopped thread when it exits (a panic included).
struct ExitGuard(Arc<AtomicU8>, Arc<StoppedThreads>);

impl Drop for ExitGuard {
  fn drop(&mut self) {
    if self.0.swap(EXITED, Ordering::SeqCst) == STOPPED {
      self.1 .0.fetch_sub(1, Ordering::SeqCst);
    }
  }
}

/// Starts `body` on a thread named `name` (`what` says what it is, for the error), counted in
/// `budget` once stopped. Fails with `ERR_WATCH` when no thread can be had, or while
/// `MAX_LEFT_BEHIND` stopped threads of `budget` still run.
pub fn spawn(
  budget: &Arc<StoppedThreads>,
  name: &str,
  what: &str,
  body: impl FnOnce() + Send + 'static,
) -> Result<Stoppable> {
  let end = Instant::now() + ROOM_PATIENCE;
  while budget.left_behind() >= MAX_LEFT_BEHIND {
    if Instant::now() >= end {
      return Err(Error::new(
        ErrorCode::Watch,
        format!(
          "cannot start {what}: {} threads of closed subscriptions are still waiting (for another process's \
           cache lock, a file or the keychain); it can start once they are done",
          budget.left_behind()
        ),
      ));
    }
    std::thread::sleep(Duration::from_millis(1));
  }
  let state = Arc::new(AtomicU8::new(RUNNING));
  let guard = ExitGuard(Arc::clone(&state), Arc::clone(budget));
  std::thread::Builder::new()
    .name(name.to_owned())
    .spawn(move || {
      let _guard = guard;
      body();
    })
    .map_err(|e| Error::new(ErrorCode::Watch, format!("cannot start {what}: no thread could be started ({e})")))?;
  Ok(Stoppable { state, budget: Arc::clone(budget) })
}

/// Whether one more thread can be started right now: starts one that does nothing, and joins
/// it (it cannot block). Asked before a backend that does not report a failed spawn is started.
pub fn room_for_one() -> bool {
  std::thread::Builder::new().name("mna-probe".to_owned()).spawn(|| {}).is_ok_and(|t| t.join().is_ok())
}

#[cfg(test)]
mod tests {
  use super::*;
  use std::sync::mpsc;

  fn state(t: &Stoppable) -> u8 {
    t.state.load(Ordering::SeqCst)
  }

  fn wait_exit(t: &Stoppable) {
    let end = Instant::now() + Duration::from_secs(10);
    while state(t) != EXITED && Instant::now() < end {
      std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(state(t), EXITED, "the thread exited by itself");
  }

  #[test]
  fn a_blocked_thread_is_left_behind_without_a_join_and_reaped_when_it_wakes() {
    let budget = Arc::new(StoppedThreads::default());
    let (release, blocked) = mpsc::channel::<()>();
    let (started, running) = mpsc::channel::<()>();
    let thread = spawn(&budget, "mna-test", "a test thread", move || {
      let _ = started.send(());
      // Blocked, as on another process's lock, until the test lets go.
      let _ = blocked.recv();
    })
    .expect("spawn");
    running.recv().expect("started");
    // Returns at once although the thread is blocked: there is no join.
    thread.stopped();
    thread.stopped();
    assert_eq!(state(&thread), STOPPED, "counted as left behind while it still runs");
    assert_eq!(budget.left_behind(), 1);
    drop(release);
    wait_exit(&thread);
    assert_eq!(budget.left_behind(), 0, "no longer counted once it exited");
  }

  #[test]
  fn a_thread_that_exited_before_it_was_stopped_is_not_counted() {
    let budget = Arc::new(StoppedThreads::default());
    let thread = spawn(&budget, "mna-test", "a test thread", || {}).expect("spawn");
    wait_exit(&thread);
    thread.stopped();
    assert_eq!(state(&thread), EXITED);
    assert_eq!(budget.left_behind(), 0, "not counted: nothing is left behind");
  }

  #[test]
  fn there_is_room_for_a_thread_here() {
    assert!(room_for_one());
  }
}
