//! The watcher thread's loop: sleep until notified (or until a poll or a retry is due), fold in
//! what queued meanwhile, and act on it through the worker. Stops on `Msg::Stop`, whenever that
//! arrives: its owner never waits for it.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::inbox::{Inbox, Msg};
use super::settings::TORN_FALLBACK;
use super::sink::Sink;
use super::worker::{close_fs, Worker};
use crate::mutex::lock;

/// The watcher thread. On `Msg::Stop` it closes the notify instance (if arming put one back
/// after the owner emptied the slot) and drops its state.
pub(super) fn run<S: Sink>(shared: Arc<Mutex<Worker<S>>>, rx: Receiver<Msg>) {
  let mut inbox = Inbox::new(rx);
  turns(&shared, &mut inbox);
  let fs = Arc::clone(&lock(&shared).fs);
  close_fs(&fs);
}

/// The watcher thread's loop, until `Msg::Stop`.
fn turns<S: Sink>(shared: &Mutex<Worker<S>>, inbox: &mut Inbox) {
  // A save notify's thread caught half-written (`Msg::CredentialsTorn`): read here at this
  // instant, unless read before.
  let mut torn_due: Option<Instant> = None;
  loop {
    let mut todo = std::mem::take(&mut inbox.early);
    if inbox.stopped {
      return;
    }
    if !todo.any() {
      let next_wakeup = lock(shared).next_wakeup();
      let until_due = torn_due.map(|due| due.saturating_duration_since(Instant::now()));
      let first = match next_wakeup.into_iter().chain(until_due).min() {
        None => match inbox.rx.recv() {
          Ok(m) => m,
          Err(_) => return,
        },
        Some(wait) => match inbox.rx.recv_timeout(wait) {
          Ok(m) => m,
          Err(RecvTimeoutError::Timeout) if torn_due.is_some_and(|due| due <= Instant::now()) => Msg::Credentials,
          Err(RecvTimeoutError::Timeout) => {
            todo.tick = true;
            Msg::Dirs
          }
          Err(RecvTimeoutError::Disconnected) => return,
        },
      };
      if !todo.note(first) {
        return;
      }
    }
    // React on the first notification, folding in whatever queued meanwhile. No quiet period
    // is waited for: a document cut off by an in-place write (truncate, then write) is waited
    // for by the read itself (`fs::read_waiting`, until the write's next notification), and
    // since changes are found by diffing, the later notifications of the same save find
    // nothing new to report.
    while let Ok(m) = inbox.rx.try_recv() {
      if !todo.note(m) {
        return;
      }
    }
    if std::mem::take(&mut todo.torn) {
      torn_due.get_or_insert_with(|| Instant::now() + TORN_FALLBACK);
    }
    if !todo.any() {
      // Only a torn save noted: notify's thread reads it at the write's next notification.
      continue;
    }
    let mut worker = lock(shared);
    if todo.dirs && worker.check_dirs() {
      // Replaced, gone or back: whatever the files hold now is news.
      todo.cache = true;
      todo.credentials = true;
    }
    if todo.tick && worker.polls_store() {
      todo.credentials = true;
    }
    // Polled files are diffed as after a notification: only what changed is reported, once.
    if todo.tick && worker.polls_files() {
      todo.cache = true;
      worker.refresh_metadata();
    }
    // Credentials first: the auto-invalidator then judges the cache by the newest evidence.
    if todo.credentials {
      // Read after every notification so far: a torn save left to notify's thread is covered.
      torn_due = None;
      worker.credentials_changed(inbox);
    }
    if todo.cache {
      worker.cache_changed();
    }
  }
}
