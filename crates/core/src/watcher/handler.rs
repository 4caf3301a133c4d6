//! notify's event handler: runs on notify's thread, keeps only the events that name the cache,
//! the credentials file or a watched directory, and tells the watcher thread. A credentials save
//! is read right here when the watcher thread is idle (`inline`), one thread wake-up sooner.
//! Nothing here may block: reading a regular file is all it does beyond sending.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;

use super::inbox::Msg;

/// What became of a credentials save notify's thread tried to act on.
pub(super) enum Inline {
  /// Read and reported (or nothing to report).
  Done,
  /// Caught half-written (an in-place write between its truncate and its bytes): the write's
  /// next notification comes to this thread too.
  Torn,
  /// For the watcher thread: it is at work (possibly waiting for this very notification to end
  /// a torn read's pause), the store needs it (a keychain), the watch is in trouble, or the
  /// read failed (warned about there).
  Busy,
}

/// What the handler follows.
pub(super) struct Followed {
  pub(super) dirs: Vec<PathBuf>,
  pub(super) cache_path: PathBuf,
  pub(super) creds_file: Option<PathBuf>,
}

/// Forwards only events that name the cache, the credentials file, or a watched directory
/// itself (an event on the directory, or on its entry in the parent: both carry its path).
/// Nothing once `stopped`.
pub(super) fn handler(
  tx: Sender<Msg>,
  followed: Followed,
  stopped: Arc<AtomicBool>,
  inline: impl Fn() -> Inline + Send + 'static,
) -> impl notify::EventHandler {
  let Followed { dirs, cache_path, creds_file } = followed;
  move |res: notify::Result<notify::Event>| {
    if stopped.load(Ordering::SeqCst) {
      return;
    }
    let event = match res {
      Ok(event) => event,
      // The backend lost track (a watch limit reached while it re-added one): look again.
      Err(_) => {
        let _ = tx.send(Msg::Dirs);
        return;
      }
    };
    if event.need_rescan() {
      // Events were dropped (queue overflow): everything may have changed.
      for m in [Msg::Dirs, Msg::Cache, Msg::Credentials] {
        let _ = tx.send(m);
      }
      return;
    }
    if matches!(
      event.kind,
      notify::EventKind::Access(notify::event::AccessKind::Open(_) | notify::event::AccessKind::Read)
    ) {
      return;
    }
    // notify's inotify backend follows each rename's `To` event with a `Both` naming the same
    // file again: acting on it would read the file a second time, on the heels of the first.
    if cfg!(target_os = "linux")
      && matches!(
        event.kind,
        notify::EventKind::Modify(notify::event::ModifyKind::Name(notify::event::RenameMode::Both))
      )
    {
      return;
    }
    // A file's attributes changing (Claude Code 2.1.108's `chmod 0600` after its write) leaves
    // what it holds as it was: only a directory's own attributes matter (it may have become
    // unreadable).
    let attributes_only = matches!(event.kind, notify::EventKind::Modify(notify::event::ModifyKind::Metadata(_)));
    for path in &event.paths {
      if attributes_only && !dirs.contains(path) {
        continue;
      }
      if *path == cache_path {
        let _ = tx.send(Msg::Cache);
      } else if Some(path) == creds_file.as_ref() {
        match inline() {
          Inline::Done => {}
          // The rest of the write notifies again, and is acted on here then.
          Inline::Torn => {
            let _ = tx.send(Msg::CredentialsTorn);
          }
          Inline::Busy => {
            let _ = tx.send(Msg::Credentials);
          }
        }
      } else if dirs.contains(path) {
        let _ = tx.send(Msg::Dirs);
      }
    }
  }
}
