//! The watcher: follows, for one config dir and one credential store, the changes other
//! processes make to the needs-auth cache and to the credentials, and reports them to a
//! [`Sink`]. It knows nothing of subscribers: the event bus owns watchers and fans out what
//! they report.
//!
//! Files are followed through OS notifications on their *directories* (so Claude Code's
//! in-place writes and atomic renames are both seen) and on those directories' parents (so a
//! directory removed, renamed away, recreated or retargeted through a symlink is noticed at
//! once). A directory that is gone or replaced (its dev/inode changed) is watched again at the
//! same path as soon as it exists; until then the sink hears one warning and the path is looked
//! at every [`RETRY`]. The keychain, which has no notifications, is polled. Notifications are
//! acted on at once (those queued meanwhile are folded in); a healthy file-only watcher never
//! wakes up by itself. A save of the credentials file is acted on by notify's own thread when
//! the watcher's thread is idle, so a sign-in reaches the sink after one thread wake-up, as
//! with a bare `fs.watch` (a save caught half-written, between an in-place write's truncate
//! and its bytes, is read at the write's next notification, there too); everything else is the
//! watcher thread's.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, TryLockError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher as _};

use crate::cache_file::{self, Document};
use crate::clock::now_ms;
use crate::config_dir;
use crate::credentials::{self, Snapshot, Store};
use crate::error::{Error, ErrorCode, Result};
use crate::events::{AuthEvent, Reason, Source};
use crate::fs::{self, FileLock};
use crate::needs_auth::{self, OwnWrites, OwnWritesTracker, Selection};
use crate::process_state::{self, CLOSING_FS_WATCHERS};
use crate::staleness::{self, CredentialView};

/// While a directory cannot be watched (missing, no permission, no inotify instance or watch
/// left), how often it is looked at again. Never more often: a missing dir must not cost a
/// spinning thread.
pub const RETRY: Duration = Duration::from_millis(500);
/// Whether the directories' parents are watched too. Not with FSEvents (macOS), whose streams
/// are recursive underneath: watching `~` would wake notify's thread for every change in the
/// home directory. There a directory that goes is still seen through its own events; only a
/// symlink retargeted elsewhere goes unnoticed.
const WATCH_PARENTS: bool = cfg!(not(target_os = "macos"));
/// A credentials file notify's thread caught half-written is left to the write's next
/// notification, which notify's thread acts on at once; the watcher thread reads it this long
/// after, in case none comes (a writer that died mid-write).
const TORN_FALLBACK: Duration = Duration::from_millis(50);

/// Where a watcher's output goes. Called on the watcher's thread, or on notify's (a credentials
/// save acted on at once, see `credentials_inline`): must not block.
pub trait Sink: Send + 'static {
  fn event(&self, event: AuthEvent);
  /// A problem the watcher met (an unreadable store, a directory it cannot watch).
  fn warn(&self, message: String);
}

/// What a channel sink receives.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
  Event(AuthEvent),
  Warning(String),
}

impl Sink for Sender<Output> {
  fn event(&self, event: AuthEvent) {
    let _ = self.send(Output::Event(event));
  }
  fn warn(&self, message: String) {
    let _ = self.send(Output::Warning(message));
  }
}

/// Settings the owner may change while the watcher runs (as subscriptions come and go).
#[derive(Debug)]
pub struct Settings {
  auto_invalidate: AtomicBool,
  poll_interval_ms: AtomicU64,
}

impl Settings {
  pub fn new(auto_invalidate: bool, poll_interval: Duration) -> Settings {
    Settings {
      auto_invalidate: AtomicBool::new(auto_invalidate),
      poll_interval_ms: AtomicU64::new(poll_interval.as_millis() as u64),
    }
  }

  /// Remove a server's needs-auth entry as soon as its credentials change, and keep removing
  /// entries the superseded rule marks stale whenever the cache changes.
  pub fn set_auto_invalidate(&self, on: bool) {
    self.auto_invalidate.store(on, Ordering::SeqCst);
  }

  /// How often a keychain store is polled; takes effect from the next poll.
  pub fn set_poll_interval(&self, interval: Duration) {
    self.poll_interval_ms.store(interval.as_millis() as u64, Ordering::SeqCst);
  }

  fn auto_invalidate(&self) -> bool {
    self.auto_invalidate.load(Ordering::SeqCst)
  }

  fn poll_interval(&self) -> Duration {
    Duration::from_millis(self.poll_interval_ms.load(Ordering::SeqCst))
  }
}

enum Msg {
  Cache,
  Credentials,
  /// Notify's thread caught the credentials file half-written: read it after `TORN_FALLBACK`
  /// unless a later notification gets it read first.
  CredentialsTorn,
  /// Something happened to a watched directory itself (or to its entry in its parent).
  Dirs,
  Stop,
}

/// A running watcher. Dropping it stops the thread (joined: it never outlives this value).
pub struct Watcher {
  tx: Sender<Msg>,
  thread: Option<JoinHandle<()>>,
}

impl Drop for Watcher {
  fn drop(&mut self) {
    let _ = self.tx.send(Msg::Stop);
    if let Some(t) = self.thread.take() {
      let _ = t.join();
    }
  }
}

/// Starts watching `config_dir`'s cache and `store`. Returns once the baselines are taken: a
/// change made after that is reported. A directory that cannot be watched is not an error
/// (it is warned about through `sink` and retried); only a thread that cannot start is.
pub fn start(config_dir: &Path, store: Store, settings: Arc<Settings>, sink: impl Sink) -> Result<Watcher> {
  let (tx, rx) = mpsc::channel();
  let cache_path = config_dir::cache_path(config_dir);
  let mut dirs = vec![config_dir.to_path_buf()];
  if let Some(d) = store.watched_file().and_then(Path::parent) {
    if !dirs.iter().any(|x| x == d) {
      dirs.push(d.to_path_buf());
    }
  }
  for dir in &dirs {
    // Claude Code creates its config dir on first use anyway; watching is simplest when it
    // exists. A failure here shows up as a watch warning below.
    let _ = std::fs::create_dir_all(dir);
  }
  let shared = Arc::new_cyclic(|me| {
    Mutex::new(Worker {
      me: me.clone(),
      stopped: false,
      config_dir: config_dir.to_path_buf(),
      own: OwnWritesTracker::start(&cache_path),
      cache_path,
      store,
      settings,
      sink,
      tx: tx.clone(),
      fs: None,
      dirs,
      ids: Vec::new(),
      broken: None,
      cache_baseline: Arc::new(Document::new()),
      credentials: Snapshot::default(),
      last_warning: None,
    })
  });
  {
    let mut worker = process_state::lock(&shared);
    // Armed before the baselines are taken, so that nothing falls between the two.
    worker.check_dirs(true);
    if let Ok((doc, _)) = worker.read_cache() {
      worker.cache_baseline = doc;
    }
    if let Ok(snapshot) = credentials::read(&worker.store) {
      credentials::observe(&worker.store, &snapshot, now_ms());
      worker.credentials = snapshot;
    }
  }
  let thread = std::thread::Builder::new()
    .name("mcp-needs-auth-watch".into())
    .spawn(move || run(shared, rx))
    .map_err(|e| Error::new(ErrorCode::Watch, format!("cannot start the watcher thread: {e}")))?;
  Ok(Watcher { tx, thread: Some(thread) })
}

/// A directory's identity: it changes when the directory is replaced or a symlink to it is
/// retargeted. `None`: no directory there.
type DirId = Option<(u64, u64)>;

fn dir_id(path: &Path) -> DirId {
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

/// Most notify watchers left closing (`process_state::CLOSING_FS_WATCHERS`). Closing an inotify
/// instance waits for a kernel grace period (~15 ms), and notify does it on its own thread
/// after `drop` returns. Stopping does not wait for that, unless this many are already
/// closing: tight subscribe/close loops must not pile up instances past the per-user limit.
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

/// One notify instance and what it takes to close it in bounded time.
struct Fs {
  watcher: Option<notify::RecommendedWatcher>,
  /// Disconnects when notify's thread has dropped our handler, after closing its OS handles.
  gone: Receiver<()>,
  closing: Arc<AtomicBool>,
}

impl Drop for Fs {
  fn drop(&mut self) {
    if let Some(w) = self.watcher.take() {
      CLOSING_FS_WATCHERS.fetch_add(1, Ordering::SeqCst);
      self.closing.store(true, Ordering::SeqCst);
      drop(w);
      if CLOSING_FS_WATCHERS.load(Ordering::SeqCst) > MAX_CLOSING_FS_WATCHERS {
        // Bounded: a wedged OS call must not hang a close.
        let _ = self.gone.recv_timeout(Duration::from_secs(2));
      }
    }
  }
}

/// The watcher's state. Its thread holds the lock while it acts; notify's thread takes it, when
/// free, to act on a credentials save at once (see `handler`).
struct Worker<S: Sink> {
  /// Itself, for the notification handler (weak: notify's handler lives inside `fs`).
  me: Weak<Mutex<Worker<S>>>,
  /// The watcher thread has stopped: nothing more is reported.
  stopped: bool,
  config_dir: PathBuf,
  cache_path: PathBuf,
  store: Store,
  settings: Arc<Settings>,
  sink: S,
  tx: Sender<Msg>,
  fs: Option<Fs>,
  /// The directories followed: the config dir, and the credentials file's if elsewhere.
  dirs: Vec<PathBuf>,
  /// Their identities when they were last armed.
  ids: Vec<DirId>,
  /// Why watching does not work right now (warned once per outage).
  broken: Option<String>,
  own: OwnWritesTracker,
  /// The cache as last seen, to name what another process changed.
  cache_baseline: Arc<Document>,
  /// The store as last read: the evidence for the superseded rule.
  credentials: Snapshot,
  last_warning: Option<String>,
}

#[derive(Default)]
struct Todo {
  cache: bool,
  credentials: bool,
  torn: bool,
  dirs: bool,
  tick: bool,
}

impl Todo {
  /// False on `Stop`.
  fn note(&mut self, m: Msg) -> bool {
    match m {
      Msg::Cache => self.cache = true,
      Msg::Credentials => self.credentials = true,
      Msg::CredentialsTorn => self.torn = true,
      Msg::Dirs => self.dirs = true,
      Msg::Stop => return false,
    }
    true
  }

  fn any(&self) -> bool {
    self.cache || self.credentials || self.torn || self.dirs || self.tick
  }
}

/// The watcher's queue, and what arrived while a read of the credentials file waited on it.
struct Inbox {
  rx: Receiver<Msg>,
  /// Noted while a read waited, for the next turn of the loop.
  early: Todo,
  stopped: bool,
}

impl Inbox {
  /// A pause of a read that caught the credentials file half-written (`fs::read_waiting`):
  /// returns at the next notification of that file, which comes when the rest of the write has
  /// landed, rather than sleeping the whole pause. Other messages are kept for later.
  fn pause_for_credentials(&mut self, pause: Duration) {
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

/// The watcher thread. Stops on `Msg::Stop`; the notify instance is closed here, under the lock,
/// so no notification is acted on after `Watcher::drop` returns.
fn run<S: Sink>(shared: Arc<Mutex<Worker<S>>>, rx: Receiver<Msg>) {
  let mut inbox = Inbox { rx, early: Todo::default(), stopped: false };
  turns(&shared, &mut inbox);
  let mut worker = process_state::lock(&shared);
  worker.stopped = true;
  let fs = worker.fs.take();
  drop(worker);
  drop(fs);
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
      let next_wakeup = process_state::lock(shared).next_wakeup();
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
    let mut worker = process_state::lock(shared);
    if todo.dirs && worker.check_dirs(false) {
      // Replaced, gone or back: whatever the files hold now is news.
      todo.cache = true;
      todo.credentials = true;
    }
    if todo.tick && worker.store.source.needs_polling() {
      todo.credentials = true;
    }
    // Credentials first: auto-invalidation writes the cache, and that write is our own.
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

impl<S: Sink> Worker<S> {
  /// `None`: sleep until notified (a healthy watcher of files only).
  fn next_wakeup(&self) -> Option<Duration> {
    let poll = self.store.source.needs_polling().then(|| self.settings.poll_interval());
    let retry = self.broken.is_some().then_some(RETRY);
    match (poll, retry) {
      (Some(a), Some(b)) => Some(a.min(b)),
      (a, b) => a.or(b),
    }
  }

  /// Compares the directories with what is armed and re-arms when one was replaced, removed
  /// or came back, or watching failed last time. Returns whether the files must be looked at
  /// again (anything changed, or watching was broken until now).
  fn check_dirs(&mut self, first: bool) -> bool {
    let now: Vec<DirId> = self.dirs.iter().map(|d| dir_id(d)).collect();
    // Unchanged and healthy; or unchanged and still missing (a `stat` per look while a
    // directory is missing: it is armed again once it appears).
    if !first && now == self.ids && (self.broken.is_none() || now.iter().any(Option::is_none)) {
      return false;
    }
    let changed = now != self.ids;
    match self.arm() {
      Ok(()) => {
        // After an outage, whatever the files hold now is news too: changes made meanwhile
        // were not seen.
        changed || self.broken.take().is_some()
      }
      Err(problem) => {
        if self.broken.is_none() {
          self.sink.warn(format!(
            "{problem}; changes there are not seen until it can be watched again (looked at every {} ms, \
             and at once when its parent directory changes)",
            RETRY.as_millis()
          ));
        }
        self.broken = Some(problem);
        changed
      }
    }
  }

  /// A fresh notify instance on the directories and their parents. A fresh instance rather
  /// than a re-watch: notify keys watches by path, and a late removal event for the old
  /// directory would otherwise drop the new watch.
  fn arm(&mut self) -> std::result::Result<(), String> {
    self.fs = None;
    for _ in 0..3 {
      let before: Vec<DirId> = self.dirs.iter().map(|d| dir_id(d)).collect();
      self.ids = before.clone();
      let (alive, gone) = mpsc::channel::<()>();
      let closing = Arc::new(AtomicBool::new(false));
      let guard = HandlerGuard { closing: Arc::clone(&closing), _gone: alive };
      let watcher = notify::recommended_watcher(handler(
        self.me.clone(),
        self.tx.clone(),
        self.dirs.clone(),
        self.cache_path.clone(),
        self.store.watched_file().map(Path::to_path_buf),
        guard,
      ))
      .map_err(|e| format!("cannot watch {} for changes: {e}", self.config_dir.display()))?;
      let mut fs = Fs { watcher: None, gone, closing };
      let w = fs.watcher.insert(watcher);
      // Parents first and best effort: they only tell when a directory comes or goes.
      let mut parents: Vec<&Path> = self.dirs.iter().filter_map(|d| d.parent()).collect();
      parents.dedup();
      for p in parents.into_iter().filter(|_| WATCH_PARENTS) {
        let _ = w.watch(p, RecursiveMode::NonRecursive);
      }
      let mut failed = None;
      for (dir, id) in self.dirs.iter().zip(&before) {
        let result = match id {
          None => Err("it does not exist".to_owned()),
          Some(_) => w.watch(dir, RecursiveMode::NonRecursive).map_err(|e| e.to_string()),
        };
        if let Err(why) = result {
          failed = Some(format!("cannot watch {} for changes: {why}", dir.display()));
          break;
        }
      }
      // Kept even when a directory failed: its parent's events say when to try again.
      self.fs = Some(fs);
      if let Some(problem) = failed {
        return Err(problem);
      }
      let after: Vec<DirId> = self.dirs.iter().map(|d| dir_id(d)).collect();
      if after == before {
        return Ok(());
      }
      // Replaced while being armed: the watch may be on the old one. Again.
    }
    Err(format!("{} keeps being replaced", self.config_dir.display()))
  }

  fn warn(&mut self, err: &Error) {
    let message = err.to_string();
    if self.last_warning.as_deref() != Some(message.as_str()) {
      self.sink.warn(message.clone());
      self.last_warning = Some(message);
    }
  }

  fn emit(&self, reason: Reason, servers: Vec<String>) {
    self.sink.event(AuthEvent {
      reason,
      servers,
      source: Source::OtherProcess,
      at: now_ms(),
      config_dir: self.config_dir.clone(),
    });
  }

  fn credentials_changed(&mut self, inbox: &mut Inbox) {
    let read = credentials::read_waiting(&self.store, |pause| {
      inbox.pause_for_credentials(pause);
      true
    });
    match read {
      Ok(snapshot) => self.credentials_read(snapshot),
      Err(e) => self.warn(&e),
    }
  }

  /// On notify's thread, for a notification of the credentials file while the watcher thread is
  /// idle: acts on it at once, one thread wake-up sooner. A file caught half-written is left to
  /// the write's next notification (this thread's too; waiting here would hold up the very
  /// notifications it waits for); any error, a store that asks the keychain first, or a watch in
  /// trouble is left to the watcher thread (see `Inline`).
  fn credentials_inline(&mut self) -> Inline {
    if self.stopped {
      return Inline::Done;
    }
    if self.broken.is_some() || self.store.source.needs_polling() {
      return Inline::Busy;
    }
    let mut torn = false;
    let read = credentials::read_waiting(&self.store, |_| {
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

  fn credentials_read(&mut self, snapshot: Snapshot) {
    self.last_warning = None;
    let changed = credentials::observe(&self.store, &snapshot, now_ms());
    self.credentials = snapshot;
    if changed.is_empty() {
      return;
    }
    let signed_in: Vec<String> = changed
      .iter()
      .filter(|name| self.credentials.servers.get(*name).is_some_and(|s| s.has_token()))
      .cloned()
      .collect();
    let mut event = Some(changed);
    if self.settings.auto_invalidate() && !signed_in.is_empty() {
      // Announced as soon as the removal is visible, before it is made durable (under the
      // lock, right after: `fs::write_visible`): a Claude Code a subscriber starts on the event
      // reads the file without the entry, and the fsyncs are off the event's path.
      let announce = || self.emit_once(Reason::CredentialsChanged, &mut event);
      let removed = needs_auth::invalidate_then(&self.cache_path, &Selection::Servers(signed_in), Some(announce));
      if let Err(e) = removed {
        self.warn(&e);
      }
    }
    self.emit_once(Reason::CredentialsChanged, &mut event);
  }

  /// Emits `servers` unless already emitted (taken).
  fn emit_once(&self, reason: Reason, servers: &mut Option<Vec<String>>) {
    if let Some(servers) = servers.take() {
      self.emit(reason, servers);
    }
  }

  /// The cache and this process's own writes since the last look, read together under the
  /// cache lock so that no own write can fall between the two.
  /// Never creates anything: the directory may be going away (`rm -rf`) or not made yet.
  fn read_cache(&self) -> Result<(Arc<Document>, OwnWrites)> {
    let lock = FileLock::acquire_existing(&self.cache_path)?;
    let doc = needs_auth::load(&self.cache_path)?;
    let own = self.own.take();
    if lock.is_some() || !fs::lock_path(&self.cache_path).exists() {
      return Ok((doc, own));
    }
    // No lock file at first, so no write of ours was under way then; one has started since
    // (it made the lock file): read again under the lock, with its record.
    let _lock = FileLock::acquire_existing(&self.cache_path)?;
    let doc = needs_auth::load(&self.cache_path)?;
    let mut later = self.own.take();
    let mut writes = own.writes;
    writes.append(&mut later.writes);
    Ok((doc, OwnWrites { writes, gap: own.gap || later.gap }))
  }

  fn cache_changed(&mut self) {
    let (doc, own) = match self.read_cache() {
      Ok(read) => read,
      Err(e) => return self.warn(&e),
    };
    let servers = others_changes(&self.cache_baseline, own, &doc);
    self.cache_baseline = Arc::clone(&doc);
    if servers.is_empty() {
      return;
    }
    let mut event = Some(servers);
    if self.settings.auto_invalidate() {
      self.remove_superseded(&mut event);
    }
    self.emit_once(Reason::CacheChanged, &mut event);
  }

  /// Sticky invalidation: another process (typically a Claude Code that started before a
  /// sign-in, writing back the copy it read then) may have put back an entry a sign-in has
  /// superseded. Remove every such entry again, by the same rule as `purgeStale`; `event` is
  /// emitted as soon as the removal is visible, as for a sign-in.
  fn remove_superseded(&mut self, event: &mut Option<Vec<String>>) {
    let view = CredentialView { store: self.store.clone(), snapshot: self.credentials.clone() };
    let now = now_ms();
    let superseded = |doc: &Document| -> Vec<String> {
      // The TTL plays no part: a superseded entry is stale however long it would count.
      cache_file::statuses(doc, now, cache_file::DEFAULT_TTL_MS)
        .into_iter()
        .filter(|st| st.timestamp.is_some_and(|ts| staleness::is_superseded(ts, &view.evidence(&st.server))))
        .map(|st| st.server)
        .collect()
    };
    let announce = || self.emit_once(Reason::CacheChanged, event);
    if let Err(e) = needs_auth::remove_picked_then(&self.cache_path, superseded, |s| s.as_str(), Some(announce)) {
      self.warn(&e);
    }
  }
}

/// Servers another process changed between `baseline` and `now`, given this process's own
/// writes in between. Walk baseline -> before(1) -> after(1) -> before(2) ... -> now: the steps
/// between one of our writes and the next are everybody else's changes; the writes are ours.
fn others_changes(baseline: &Arc<Document>, own: OwnWrites, now: &Document) -> Vec<String> {
  let mut servers = Vec::new();
  let mut cursor = Arc::clone(baseline);
  for (i, write) in own.writes.into_iter().enumerate() {
    if !(own.gap && i == 0) {
      servers.extend(changed_servers(&cursor, &write.before));
    }
    cursor = write.after;
  }
  servers.extend(changed_servers(&cursor, now));
  let mut seen = std::collections::HashSet::new();
  servers.retain(|s| seen.insert(s.clone()));
  servers
}

/// Forwards only events that name the cache, the credentials file, or a watched directory
/// itself (an event on the directory, or on its entry in the parent: both carry its path).
fn handler<S: Sink>(
  worker: Weak<Mutex<Worker<S>>>,
  tx: Sender<Msg>,
  dirs: Vec<PathBuf>,
  cache_path: PathBuf,
  creds_file: Option<PathBuf>,
  guard: HandlerGuard,
) -> impl notify::EventHandler {
  move |res: notify::Result<notify::Event>| {
    // Owned by the handler, so dropped with it (see `HandlerGuard`).
    let _guard = &guard;
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
        match credentials_inline(&worker) {
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

/// What became of a credentials save notify's thread tried to act on.
enum Inline {
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

/// A credentials save acted on from notify's thread when the watcher thread is idle (its lock
/// free): the event then costs one thread wake-up (notify's), as a bare `fs.watch` does, instead
/// of two.
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

/// Servers whose entries were added, changed or removed between two documents.
fn changed_servers(before: &Document, after: &Document) -> Vec<String> {
  let mut names: Vec<String> =
    after.iter().filter(|(k, v)| before.get(*k) != Some(*v)).map(|(k, _)| k.to_string()).collect();
  names.extend(before.keys().filter(|k| !after.contains_key(*k)).map(ToString::to_string));
  names
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::credentials::CredentialSource;
  use std::fs;

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

  const WAIT: Duration = Duration::from_secs(5);

  struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    rx: Receiver<Output>,
    _watcher: Watcher,
  }

  fn watch(source: CredentialSource, auto_invalidate: bool) -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("config");
    fs::create_dir(&dir).expect("mkdir");
    let (tx, rx) = mpsc::channel();
    let store = Store::locate(&dir, true, source);
    let settings = Arc::new(Settings::new(auto_invalidate, Duration::from_secs(2)));
    let watcher = start(&dir, store, settings, tx).expect("start");
    Fixture { _tmp: tmp, dir, rx, _watcher: watcher }
  }

  impl Fixture {
    fn cache(&self) -> PathBuf {
      self.dir.join(config_dir::CACHE_FILE_NAME)
    }

    /// The next output that is not a warning (warnings are returned by `next_warning`).
    fn next_event(&self) -> AuthEvent {
      let end = Instant::now() + WAIT;
      loop {
        match self.rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
          Ok(Output::Event(e)) => return e,
          Ok(Output::Warning(_)) => continue,
          Err(e) => panic!("no event within {WAIT:?}: {e}"),
        }
      }
    }

    fn quiet(&self, ms: u64) {
      if let Ok(o) = self.rx.recv_timeout(Duration::from_millis(ms)) {
        panic!("unexpected output {o:?}");
      }
    }

    fn write_token(&self, server: &str, expires_at: f64) {
      let doc = format!(
        r#"{{"mcpOAuth":{{"{server}|0000000000000000":{{"serverName":"{server}","accessToken":"T-{expires_at}","expiresAt":{expires_at}}}}}}}"#
      );
      fs::write(self.dir.join(".credentials.json"), doc).expect("write credentials");
    }
  }

  #[test]
  fn another_writer_is_reported_to_the_sink_own_writes_are_not() {
    let f = watch(CredentialSource::None, false);
    fs::write(f.cache(), br#"{"x":{"timestamp":1}}"#).expect("write");
    let e = f.next_event();
    assert_eq!((e.reason, e.source, e.servers.clone()), (Reason::CacheChanged, Source::OtherProcess, vec!["x".into()]));
    assert_eq!(e.config_dir, f.dir);
    needs_auth::mark(&f.cache(), "own", 2.0, None, None).expect("mark");
    f.quiet(200);
  }

  #[test]
  fn an_in_place_save_caught_half_done_is_reported_once_when_it_lands() {
    let f = watch(CredentialSource::File, false);
    f.write_token("gh", 1.0);
    assert_eq!(f.next_event().servers, vec!["gh"]);
    let creds = f.dir.join(".credentials.json");
    // Claude Code 2.1.108's `writeFile`: the truncate notifies; the bytes come later. Sooner than
    // TORN_FALLBACK, notify's thread reads them at their notification; later, the watcher thread
    // is already waiting for them.
    for (i, gap) in [30, TORN_FALLBACK.as_millis() as u64 + 40].into_iter().enumerate() {
      let mut file = fs::File::create(&creds).expect("truncate");
      std::thread::sleep(Duration::from_millis(gap));
      let doc = format!(
        r#"{{"mcpOAuth":{{"gh|0000000000000000":{{"serverName":"gh","accessToken":"T-{i}","expiresAt":2}}}}}}"#
      );
      std::io::Write::write_all(&mut file, doc.as_bytes()).expect("write");
      drop(file);
      match f.rx.recv_timeout(WAIT).expect("an event") {
        Output::Event(e) => {
          assert_eq!((e.reason, e.servers), (Reason::CredentialsChanged, vec!["gh".to_string()]), "{gap} ms")
        }
        Output::Warning(w) => panic!("the half-done save ({gap} ms) was taken as corrupt: {w}"),
      }
      f.quiet(TORN_FALLBACK.as_millis() as u64 + 150);
    }
  }

  #[test]
  fn every_save_is_reported_once_and_its_entry_is_gone_by_then_whichever_thread_reads_it() {
    let document = |tokens: &[i32; 3]| -> String {
      let entries: Vec<String> = (0..3)
        .map(|k| {
          format!(r#""s{k}|0000000000000000":{{"serverName":"s{k}","accessToken":"T{}","expiresAt":1}}"#, tokens[k])
        })
        .collect();
      format!(r#"{{"mcpOAuth":{{{}}}}}"#, entries.join(","))
    };
    let f = watch(CredentialSource::File, true);
    let creds = f.dir.join(".credentials.json");
    let mut tokens = [-1, -2, -3];
    fs::write(&creds, document(&tokens)).expect("first sign-ins");
    assert_eq!(f.next_event().servers, vec!["s0", "s1", "s2"]);
    for i in 0..30i32 {
      let server = format!("s{}", i % 3);
      // A 401 after the previous sign-in: not superseded, so it stays until this one.
      let entry = format!(r#"{{"{server}":{{"timestamp":{}}}}}"#, now_ms() + 1.0);
      std::thread::sleep(Duration::from_millis(2));
      fs::write(f.cache(), entry).expect("entry");
      let e = f.next_event();
      assert_eq!((e.reason, e.servers), (Reason::CacheChanged, vec![server.clone()]), "save {i}: the entry");
      // Every server keeps its token; this one's is new.
      tokens[(i % 3) as usize] = i;
      let doc = document(&tokens);
      // In place (caught half-done or not: read on notify's thread or the watcher's), or renamed.
      match i % 3 {
        0 => {
          let mut file = fs::File::create(&creds).expect("truncate");
          std::thread::sleep(Duration::from_millis(3));
          std::io::Write::write_all(&mut file, doc.as_bytes()).expect("write");
        }
        1 => fs::write(&creds, &doc).expect("write"),
        _ => {
          let tmp = f.dir.join(".credentials.json.tmp");
          fs::write(&tmp, &doc).expect("write");
          fs::rename(&tmp, &creds).expect("rename");
        }
      }
      let e = f.next_event();
      assert_eq!((e.reason, e.servers), (Reason::CredentialsChanged, vec![server.clone()]), "save {i}, once");
      assert_eq!(fs::read_to_string(f.cache()).expect("read"), "{}", "save {i}: removed before the event");
    }
    f.quiet(300);
  }

  #[test]
  fn a_removed_directory_is_warned_about_once_and_watched_again_when_it_comes_back() {
    let f = watch(CredentialSource::None, false);
    fs::write(f.cache(), br#"{"x":{"timestamp":1}}"#).expect("write");
    assert_eq!(f.next_event().servers, vec!["x"]);
    fs::remove_dir_all(&f.dir).expect("rm -rf");
    // One warning, and (in either order) the entries that went with it: another process's change.
    let (mut warning, mut event) = (None, None);
    while warning.is_none() || event.is_none() {
      match f.rx.recv_timeout(WAIT).expect("a warning and an event") {
        Output::Warning(w) => assert!(warning.replace(w).is_none(), "a second warning"),
        Output::Event(e) => assert!(event.replace(e).is_none(), "a second event"),
      }
    }
    let w = warning.expect("warning");
    assert!(w.contains(&f.dir.display().to_string()) && w.contains("does not exist"), "{w}");
    assert_eq!(event.expect("event").servers, vec!["x"]);
    f.quiet(1200); // still missing: no second warning, no event
    fs::create_dir(&f.dir).expect("mkdir");
    fs::write(f.cache(), br#"{"y":{"timestamp":1}}"#).expect("write");
    assert_eq!(f.next_event().servers, vec!["y"]);
    fs::write(f.cache(), br#"{"y":{"timestamp":1},"z":{"timestamp":1}}"#).expect("write");
    assert_eq!(f.next_event().servers, vec!["z"], "notifications work again on the new directory");
  }

  #[test]
  fn a_directory_renamed_away_and_replaced_is_followed_at_its_path() {
    let f = watch(CredentialSource::None, false);
    let away = f.dir.with_file_name("away");
    fs::rename(&f.dir, &away).expect("mv");
    fs::create_dir(&f.dir).expect("mkdir");
    // Writes to the old directory are no longer this path's business.
    fs::write(away.join(config_dir::CACHE_FILE_NAME), b"{\"old\":{\"timestamp\":1}}").expect("write");
    fs::write(f.cache(), br#"{"new":{"timestamp":1}}"#).expect("write");
    let e = f.next_event();
    assert_eq!(e.servers, vec!["new"]);
    f.quiet(300);
  }

  #[test]
  fn an_entry_written_back_after_a_sign_in_is_removed_again_a_later_one_stays() {
    let f = watch(CredentialSource::File, true);
    let before_sign_in = now_ms() - 60_000.0;
    fs::write(f.cache(), format!(r#"{{"gh":{{"timestamp":{before_sign_in}}}}}"#)).expect("write");
    assert_eq!(f.next_event().reason, Reason::CacheChanged);
    f.write_token("gh", now_ms() - 1000.0); // observed, even with an expired token
    let e = f.next_event();
    assert_eq!((e.reason, e.servers), (Reason::CredentialsChanged, vec!["gh".to_string()]));
    assert_eq!(fs::read_to_string(f.cache()).expect("read"), "{}");
    // The write-back: the old entry, plus a genuine new 401 of another server.
    std::thread::sleep(Duration::from_millis(5));
    let later = now_ms();
    fs::write(f.cache(), format!(r#"{{"gh":{{"timestamp":{before_sign_in}}},"other":{{"timestamp":{later}}}}}"#))
      .expect("write back");
    let e = f.next_event();
    assert_eq!((e.reason, e.servers), (Reason::CacheChanged, vec!["gh".to_string(), "other".to_string()]));
    assert_eq!(
      fs::read_to_string(f.cache()).expect("read"),
      format!(r#"{{"other":{{"timestamp":{later}}}}}"#),
      "gh removed again before the event, other kept"
    );
    f.quiet(200); // the removal is our own write: not reported
                  // A genuine new 401 for gh itself, after the sign-in, stays.
    let newer = now_ms() + 1.0;
    fs::write(f.cache(), format!(r#"{{"other":{{"timestamp":{later}}},"gh":{{"timestamp":{newer}}}}}"#))
      .expect("write");
    assert_eq!(f.next_event().servers, vec!["gh"]);
    assert!(fs::read_to_string(f.cache()).expect("read").contains("\"gh\""));
  }

  #[test]
  fn without_auto_invalidation_a_written_back_entry_stays() {
    let f = watch(CredentialSource::File, false);
    let old = now_ms() - 60_000.0;
    f.write_token("gh", now_ms() + 3_600_000.0);
    f.next_event();
    fs::write(f.cache(), format!(r#"{{"gh":{{"timestamp":{old}}}}}"#)).expect("write");
    f.next_event();
    assert!(fs::read_to_string(f.cache()).expect("read").contains("\"gh\""));
  }
}
