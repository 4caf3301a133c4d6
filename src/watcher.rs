//! The watcher: one per config dir per process, shared by its subscriptions. It follows the
//! cache file and the credentials file through OS notifications on their directories (so
//! Claude Code's in-place writes and atomic renames are both seen) and polls the keychain, which
//! has no notifications. Bursts are coalesced; a file-only watcher never wakes up by itself.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher as _};

use crate::cache_file::Document;
use crate::config_dir::CACHE_FILE_NAME;
use crate::config_dir;
use crate::credentials::{self, CredentialSource, Store};
use crate::error::{Error, ErrorCode, Result};
use crate::event_bus::{self, AuthEvent, Reason, Source};
use crate::atomic_file::FileLock;
use crate::needs_auth::{self, now_ms, Selection};

/// A burst ends after this much quiet...
const QUIET: Duration = Duration::from_millis(5);
/// ...or after this long, so a file rewritten non-stop still gets reported.
const MAX_BURST: Duration = Duration::from_millis(50);

#[derive(Debug, Clone)]
pub struct WatchSpec {
  pub credentials: CredentialSource,
  /// Remove a server's needs-auth entry as soon as its credentials change.
  pub auto_invalidate: bool,
  pub poll_interval_ms: u64,
  /// The config dir came from `options.configDir` rather than the environment.
  pub explicit_config_dir: bool,
}

struct Settings {
  auto_invalidate: bool,
  poll_interval: Duration,
}

enum Msg {
  Cache,
  Credentials,
  Stop,
}

pub struct Watcher {
  settings: Arc<Mutex<Settings>>,
  tx: Sender<Msg>,
  thread: Option<JoinHandle<()>>,
  fs: Option<notify::RecommendedWatcher>,
  /// Disconnects when notify's own thread has dropped our event handler, which it does after
  /// closing its OS handles (inotify/epoll fds).
  fs_gone: Receiver<()>,
  /// Set when `drop` starts closing `fs`, so the handler's guard knows to count itself out.
  fs_closing: Arc<AtomicBool>,
}

/// notify watchers whose event-loop thread is still closing its OS handles. Closing an inotify
/// instance waits for a kernel grace period (~15 ms), and notify does it on its own thread
/// after `drop` returns. `close()` does not wait for that, unless this many are already
/// closing: tight subscribe/close loops must not pile up instances past the per-user limit.
static CLOSING_FS_WATCHERS: AtomicUsize = AtomicUsize::new(0);
const MAX_CLOSING_FS_WATCHERS: usize = 4;

/// Lives inside notify's event handler; dropped by notify's thread after it closed its fds.
struct HandlerGuard {
  closing: Arc<AtomicBool>,
  _gone: Sender<()>,
}

impl Drop for HandlerGuard {
  fn drop(&mut self) {
    if self.closing.load(Ordering::SeqCst) {
      CLOSING_FS_WATCHERS.fetch_sub(1, Ordering::SeqCst);
    }
  }
}

impl Watcher {
  /// A later subscriber may ask for more than the first did: auto-invalidation if any
  /// subscriber wants it, the shortest poll interval.
  pub fn widen(&mut self, spec: &WatchSpec) {
    let mut s = crate::lock(&self.settings);
    s.auto_invalidate |= spec.auto_invalidate;
    s.poll_interval = s.poll_interval.min(Duration::from_millis(spec.poll_interval_ms));
  }
}

impl Drop for Watcher {
  fn drop(&mut self) {
    // Stop the notifications first, then the worker (joined: it never outlives us).
    if let Some(fs) = self.fs.take() {
      CLOSING_FS_WATCHERS.fetch_add(1, Ordering::SeqCst);
      self.fs_closing.store(true, Ordering::SeqCst);
      drop(fs);
      if CLOSING_FS_WATCHERS.load(Ordering::SeqCst) > MAX_CLOSING_FS_WATCHERS {
        // Bounded: a wedged OS call must not hang close().
        let _ = self.fs_gone.recv_timeout(Duration::from_secs(2));
      }
    }
    let _ = self.tx.send(Msg::Stop);
    if let Some(t) = self.thread.take() {
      let _ = t.join();
    }
  }
}

pub fn start(config_dir: &Path, spec: WatchSpec) -> Result<Watcher> {
  let store = Store::locate(config_dir, spec.explicit_config_dir, spec.credentials);
  let cache_path = config_dir::cache_path(config_dir);
  let (tx, rx) = mpsc::channel();
  let (fs_alive, fs_gone) = mpsc::channel::<()>();
  let fs_closing = Arc::new(AtomicBool::new(false));
  let guard = HandlerGuard { closing: Arc::clone(&fs_closing), _gone: fs_alive };
  let fs = watch_files(config_dir, &store, tx.clone(), guard)?;

  // The baseline both diffs start from, taken before the first notification can be handled.
  let mut worker = Worker {
    config_dir: config_dir.to_path_buf(),
    cache_path,
    store,
    settings: Arc::new(Mutex::new(Settings {
      auto_invalidate: spec.auto_invalidate,
      poll_interval: Duration::from_millis(spec.poll_interval_ms),
    })),
    cache_baseline: Arc::new(Document::new()),
    last_warning: None,
  };
  needs_auth::track_own_writes(&worker.cache_path, true);
  if let Ok((doc, _)) = worker.read_cache() {
    worker.cache_baseline = doc;
  }
  if let Ok(snapshot) = credentials::read(&worker.store) {
    credentials::observe(&worker.store, &snapshot, now_ms());
  }
  let settings = Arc::clone(&worker.settings);
  let thread = std::thread::Builder::new()
    .name("mcp-needs-auth-watch".into())
    .spawn(move || worker.run(rx))
    .map_err(|e| Error::new(ErrorCode::Watch, format!("cannot start the watcher thread: {e}")))?;
  Ok(Watcher { settings, tx, thread: Some(thread), fs: Some(fs), fs_gone, fs_closing })
}

/// Watches the directories (not the files: renames replace them) and forwards only events
/// that name the cache or the credentials file.
fn watch_files(
  config_dir: &Path,
  store: &Store,
  tx: Sender<Msg>,
  guard: HandlerGuard,
) -> Result<notify::RecommendedWatcher> {
  let cache_name = std::ffi::OsString::from(CACHE_FILE_NAME);
  let creds = store.watched_file().map(Path::to_path_buf);
  let creds_name = creds.as_ref().and_then(|p| p.file_name().map(|n| n.to_os_string()));
  let creds_dir = creds.as_ref().and_then(|p| p.parent().map(Path::to_path_buf));
  let handler = move |res: notify::Result<notify::Event>| {
    // Owned by the handler, so dropped with it (see `HandlerGuard`).
    let _guard = &guard;
    let Ok(event) = res else { return };
    if matches!(event.kind, notify::EventKind::Access(notify::event::AccessKind::Open(_) | notify::event::AccessKind::Read)) {
      return;
    }
    for path in &event.paths {
      let name = path.file_name();
      if name == Some(cache_name.as_os_str()) {
        let _ = tx.send(Msg::Cache);
      } else if name.is_some() && name == creds_name.as_deref() {
        let _ = tx.send(Msg::Credentials);
      }
    }
  };
  let watch_err = |dir: &Path, e: String| {
    Error::new(ErrorCode::Watch, format!("cannot watch {} for changes: {e}", dir.display()))
  };
  let mut dirs: Vec<PathBuf> = vec![config_dir.to_path_buf()];
  if let Some(d) = creds_dir {
    if !dirs.contains(&d) {
      dirs.push(d);
    }
  }
  let mut watcher = notify::recommended_watcher(handler).map_err(|e| watch_err(config_dir, e.to_string()))?;
  for dir in &dirs {
    // Claude Code creates its config dir on first use anyway; watching needs it to exist now.
    std::fs::create_dir_all(dir).map_err(|e| watch_err(dir, e.to_string()))?;
    watcher.watch(dir, RecursiveMode::NonRecursive).map_err(|e| watch_err(dir, e.to_string()))?;
  }
  Ok(watcher)
}

struct Worker {
  config_dir: PathBuf,
  cache_path: PathBuf,
  store: Store,
  settings: Arc<Mutex<Settings>>,
  /// The cache as last seen, to name what another process changed.
  cache_baseline: Arc<Document>,
  last_warning: Option<String>,
}

impl Drop for Worker {
  fn drop(&mut self) {
    needs_auth::track_own_writes(&self.cache_path, false);
  }
}

impl Worker {
  fn run(mut self, rx: Receiver<Msg>) {
    let polls = self.store.source.needs_polling();
    loop {
      let first = if polls {
        let interval = crate::lock(&self.settings).poll_interval;
        match rx.recv_timeout(interval) {
          Ok(m) => m,
          Err(RecvTimeoutError::Timeout) => Msg::Credentials,
          Err(RecvTimeoutError::Disconnected) => return,
        }
      } else {
        match rx.recv() {
          Ok(m) => m,
          Err(_) => return,
        }
      };
      let (mut cache, mut creds) = (false, false);
      let mut note = |m: Msg| match m {
        Msg::Cache => {
          cache = true;
          true
        }
        Msg::Credentials => {
          creds = true;
          true
        }
        Msg::Stop => false,
      };
      if !note(first) {
        return;
      }
      let burst = Instant::now();
      while burst.elapsed() < MAX_BURST {
        match rx.recv_timeout(QUIET) {
          Ok(m) => {
            if !note(m) {
              return;
            }
          }
          Err(RecvTimeoutError::Timeout) => break,
          Err(RecvTimeoutError::Disconnected) => return,
        }
      }
      // Credentials first: auto-invalidation writes the cache, and that write is our own.
      if creds {
        self.credentials_changed();
      }
      if cache {
        self.cache_changed();
      }
    }
  }

  fn warn(&mut self, err: &Error) {
    let message = err.to_string();
    if self.last_warning.as_deref() != Some(message.as_str()) {
      event_bus::warn(&self.config_dir, &message);
      self.last_warning = Some(message);
    }
  }

  fn emit(&self, reason: Reason, servers: Vec<String>) {
    event_bus::emit(&AuthEvent {
      reason,
      servers,
      source: Source::OtherProcess,
      at: now_ms(),
      config_dir: self.config_dir.clone(),
    });
  }

  fn credentials_changed(&mut self) {
    let snapshot = match credentials::read(&self.store) {
      Ok(s) => s,
      Err(e) => return self.warn(&e),
    };
    self.last_warning = None;
    let changed = credentials::observe(&self.store, &snapshot, now_ms());
    if changed.is_empty() {
      return;
    }
    let auto_invalidate = crate::lock(&self.settings).auto_invalidate;
    let signed_in: Vec<String> = changed
      .iter()
      .filter(|name| snapshot.servers.get(*name).is_some_and(|s| s.has_token()))
      .cloned()
      .collect();
    if auto_invalidate && !signed_in.is_empty() {
      if let Err(e) = needs_auth::invalidate(&self.cache_path, &Selection::Servers(signed_in)) {
        self.warn(&e);
      }
    }
    self.emit(Reason::CredentialsChanged, changed);
  }

  /// The cache and this process's own writes since the last look, read together under the
  /// cache lock so that no own write can fall between the two.
  fn read_cache(&self) -> Result<(Arc<Document>, needs_auth::OwnWrites)> {
    if !self.config_dir.is_dir() {
      // Deleted under us (or not made yet): nothing to read, and no reason to recreate it.
      return Ok((Arc::new(Document::new()), needs_auth::take_own_writes(&self.cache_path)));
    }
    let _lock = FileLock::acquire(&self.cache_path)?;
    let doc = needs_auth::load(&self.cache_path)?;
    Ok((doc, needs_auth::take_own_writes(&self.cache_path)))
  }

  fn cache_changed(&mut self) {
    let (doc, own) = match self.read_cache() {
      Ok(read) => read,
      Err(e) => return self.warn(&e),
    };
    // Walk baseline -> before(1) -> after(1) -> before(2) ... -> now: the steps between one of
    // our writes and the next are everybody else's changes; the writes themselves are ours.
    let mut servers = Vec::new();
    let mut cursor = Arc::clone(&self.cache_baseline);
    for (i, write) in own.writes.into_iter().enumerate() {
      if !(own.gap && i == 0) {
        servers.extend(changed_servers(&cursor, &write.before));
      }
      cursor = write.after;
    }
    servers.extend(changed_servers(&cursor, &doc));
    let mut seen = std::collections::HashSet::new();
    servers.retain(|s| seen.insert(s.clone()));
    self.cache_baseline = doc;
    if !servers.is_empty() {
      self.emit(Reason::CacheChanged, servers);
    }
  }
}

/// Servers whose entries were added, changed or removed between two documents.
fn changed_servers(before: &Document, after: &Document) -> Vec<String> {
  let mut names: Vec<String> = after
    .iter()
    .filter(|(k, v)| before.get(*k) != Some(*v))
    .map(|(k, _)| k.clone())
    .collect();
  names.extend(before.keys().filter(|k| !after.contains_key(*k)).cloned());
  names
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn changed_servers_names_added_changed_removed() {
    let parse = |s: &str| match crate::cache_file::parse(s.as_bytes()) {
      crate::cache_file::Parsed::Document(d) => d,
      crate::cache_file::Parsed::Corrupt(w) => panic!("{w}"),
    };
    let a = parse(r#"{"keep":{"timestamp":1},"change":{"timestamp":1},"gone":{"timestamp":1}}"#);
    let b = parse(r#"{"keep":{"timestamp":1},"change":{"timestamp":2},"new":{"timestamp":1}}"#);
    assert_eq!(changed_servers(&a, &b), vec!["change", "new", "gone"]);
  }
}
