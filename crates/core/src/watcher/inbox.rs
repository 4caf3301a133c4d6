//! The watcher thread's queue: what notify's handler (and the owner) tell it, folded into one
//! turn's to-do list.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

pub(super) enum Msg {
  Cache,
  Credentials,
  /// Notify's thread caught the credentials file half-written: read it after `TORN_FALLBACK`
  /// unless a later notification gets it read first.
  CredentialsTorn,
  /// Something happened to a watched directory itself (or to its entry in its parent).
  Dirs,
  Stop,
}

#[derive(Default)]
pub(super) struct Todo {
  pub(super) cache: bool,
  pub(super) credentials: bool,
  pub(super) torn: bool,
  pub(super) dirs: bool,
  pub(super) tick: bool,
}

impl Todo {
  /// False on `Stop`.
  pub(super) fn note(&mut self, m: Msg) -> bool {
    match m {
      Msg::Cache => self.cache = true,
      Msg::Credentials => self.credentials = true,
      Msg::CredentialsTorn => self.torn = true,
      Msg::Dirs => self.dirs = true,
      Msg::Stop => return false,
    }
    true
  }

  pub(super) fn any(&self) -> bool {
    self.cache || self.credentials || self.torn || self.dirs || self.tick
  }
}

/// The watcher's queue, and what arrived while a read of the credentials file waited on it.
pub(super) struct Inbox {
  pub(super) rx: Receiver<Msg>,
  /// Noted while a read waited, for the next turn of the loop.
  pub(super) early: Todo,
  pub(super) stopped: bool,
}

impl Inbox {
  pub(super) fn new(rx: Receiver<Msg>) -> Inbox {
    Inbox { rx, early: Todo::default(), stopped: false }
  }

  /// A pause of a read that caught the credentials file half-written (`fs::read_waiting`):
  /// returns at the next notification of that file, which comes when the rest of the write has
  /// landed, rather than sleeping the whole pause. Other messages are kept for later.
  pub(super) fn pause_for_credentials(&mut self, pause: Duration) {
    let end = Instant::now() + pause;
    loop {
      let left = end.saturating_duration_since(Instant::now());
      if self.stopped {
        // No notification will come: the pause is slept, so the read's retries do not spin.
        return std::thread::sleep(left);
      }
      match self.rx.recv_timeout(left) {
        Ok(Msg::Credentials | Msg::CredentialsTorn) | Err(RecvTimeoutError::Timeout) => return,
        Ok(m) => self.stopped |= !self.early.note(m),
        Err(RecvTimeoutError::Disconnected) => self.stopped = true,
      }
    }
  }
}
