//! The needs-auth cache as an API: read (memoised, validated by a change notice or one `stat`), and change
//! (a locked, atomic read-modify-write). Paths are the cache file's; callers resolve them. Reads
//! go through the caller's `Memos`; each write is reported to the caller's `WriteObserver`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cache_file::{self, Document, EntryStatus, Parsed};
use crate::cache_read::{self, Contents, CACHE_FILE};
use crate::change_notice::{Event, Notices, Watch};
use crate::clock::now_ms;
use crate::error::Result;
use crate::fs::filesystem::{self, Filesystem};
use crate::fs::{self, FileLock, Opened, Patience, Stamp};
use crate::mutex::lock;
use crate::server_rules::Rules;

/// What the file was when a memo's document was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
  Missing,
  File(Stamp),
  /// Changed while it was read: matches nothing, so the next call reads again.
  Unknown,
}

/// One cache file's document, and what says whether it is still current.
struct Memo {
  path: PathBuf,
  seen: Seen,
  doc: Arc<Document>,
  /// Armed before `doc` was read; with it, "no event since" proves `doc` current without a stat.
  watch: Option<Watch>,
  /// Arming was tried for the file as `seen` says, and could not be done: try again only once the
  /// file (or its directory) changed, not on every call.
  arm_tried: bool,
  /// How many times it was loaded.
  loads: u32,
  /// How many events of `watch` may have meant a change.
  changes: u64,
  /// `doc` is current as long as `changes` still equals this.
  current_at: Option<u64>,
  used: u64,
  /// What the file's directory (or its nearest existing ancestor) is on, once looked at: on a
  /// remote one neither a watch nor a `stat` is trusted (see `load_remote`). Looked at again
  /// after the mount table changed.
  filesystem: Option<Filesystem>,
  /// On a remote filesystem, the bytes `doc` was parsed from: an unchanged file costs a read
  /// and a comparison, not a parse.
  bytes: Option<Bytes>,
}

/// Most cache files memoised (each with up to one inotify watch per directory of its path).
const MEMOS_KEPT: usize = 16;

/// The last documents read of the few most used cache files, and the change notices (one
/// inotify instance, made on first need) that say when one changed. One per process in use: so
/// that the hot path (`is_cached`, per call) costs a queue check, not a read, whoever calls it,
/// and one inotify instance because instances are a small per-user budget.
pub struct Memos(Mutex<MemoTable>);

impl Memos {
  pub(crate) fn new() -> Memos {
    Memos::with_notices(Notices::new())
  }

  pub(crate) fn with_notices(notices: Notices) -> Memos {
    Memos(Mutex::new(MemoTable { notices, memos: Vec::new(), clock: 0 }))
  }
}

impl Default for Memos {
  fn default() -> Memos {
    Memos::new()
  }
}

/// The memos and the change notices that keep them honest.
struct MemoTable {
  notices: Notices,
  memos: Vec<Memo>,
  clock: u64,
}

impl MemoTable {
  /// Drains the change notices into the memos they concern. A memo whose directory moved or
  /// went away loses its watch (it `stat`s until re-armed).
  fn poll(&mut self) {
    let memos = &mut self.memos;
    let mut broken = Vec::new();
    self.notices.poll(|event| {
      if matches!(event, Event::Mounts) {
        // A mount may have put another filesystem under any memo's path.
        for m in memos.iter_mut() {
          m.filesystem = None;
        }
      }
      for (i, m) in memos.iter_mut().enumerate() {
        if let Some(w) = m.watch.as_ref().filter(|w| w.hit(event)) {
          m.changes += 1;
          if w.broken(event) {
            broken.push(i);
          }
        }
      }
    });
    for i in broken {
      self.memos[i].arm_tried = false;
      if let Some(w) = self.memos[i].watch.take() {
        self.notices.unwatch(w);
      }
    }
  }

  fn find(&mut self, path: &Path) -> Option<&mut Memo> {
    self.memos.iter_mut().find(|m| m.path.as_os_str() == path.as_os_str())
  }

  /// The memo of `path`, made (the least recently used one evicted) if there is none.
  fn entry(&mut self, path: &Path) -> &mut Memo {
    self.clock += 1;
    let i = match self.memos.iter().position(|m| m.path.as_os_str() == path.as_os_str()) {
      Some(i) => i,
      None => {
        if self.memos.len() >= MEMOS_KEPT {
          let lru = (0..self.memos.len()).min_by_key(|&i| self.memos[i].used).unwrap_or(0);
          if let Some(w) = self.memos.swap_remove(lru).watch {
            self.notices.unwatch(w);
          }
        }
        self.memos.push(Memo {
          path: path.to_path_buf(),
          seen: Seen::Unknown,
          doc: Arc::new(Document::new()),
          watch: None,
          arm_tried: false,
          loads: 0,
          changes: 0,
          current_at: None,
          used: 0,
          filesystem: None,
          bytes: None,
        });
        self.memos.len() - 1
      }
    };
    let m = &mut self.memos[i];
    m.used = self.clock;
    m
  }
}

/// The file as `lstat` sees it, and whether a watch on its directory sees every change of it
/// (not through a symlink, nor a hard link elsewhere).
fn look(path: &Path) -> Result<(Seen, bool)> {
  match std::fs::symlink_metadata(path) {
    Ok(meta) if meta.file_type().is_symlink() => {
      Ok((cache_read::stamp(path)?.map_or(Seen::Missing, Seen::File), false))
    }
    Ok(meta) => {
      #[cfg(unix)]
      let single = std::os::unix::fs::MetadataExt::nlink(&meta) == 1;
      #[cfg(not(unix))]
      let single = true;
      Ok((Seen::File(Stamp::of(&meta)), meta.is_file() && single))
    }
    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((Seen::Missing, true)),
    Err(_) => Ok((cache_read::stamp(path)?.map_or(Seen::Missing, Seen::File), false)),
  }
}

/// The document as Claude Code would read it now: a missing or corrupt file is empty. Where a
/// watch guards its memo, an unchanged file costs one non-blocking look at the notice queue;
/// elsewhere one `stat`. A file is read without the memos' lock held, so one slow read never
/// stalls the other threads' checks.
pub(crate) fn load(memos: &Memos, path: &Path) -> Result<Arc<Document>> {
  Ok(load_keeping(memos, path, false)?.0)
}

/// `load`; with `keep`, also the bytes the document was parsed from when this call read the
/// file (`None` when the memo answered, or the file was missing or corrupt), so that a write
/// that follows can tell the file under its lock is the same without parsing it again.
fn load_keeping(memos: &Memos, path: &Path, keep: bool) -> Result<(Arc<Document>, Option<Vec<u8>>)> {
  let (start, seen_before, doc_before, watched) = {
    let mut all = lock(&memos.0);
    all.poll();
    let active = all.notices.is_active();
    let m = all.entry(path);
    m.loads = m.loads.saturating_add(1);
    if m.current_at == Some(m.changes) {
      return Ok((Arc::clone(&m.doc), None));
    }
    let filesystem = m.filesystem.get_or_insert_with(|| Filesystem::near(path.parent().unwrap_or(Path::new("."))));
    if !filesystem.local {
      let (doc_before, bytes_before) = (Arc::clone(&m.doc), m.bytes.clone());
      drop(all);
      // No bytes handed on: a write that follows parses again under its lock.
      return load_remote(memos, path, doc_before, bytes_before).map(|doc| (doc, None));
    }
    let start = m.changes;
    let (seen, doc, has_watch) = (m.seen, Arc::clone(&m.doc), m.watch.is_some());
    // Armed before the file is looked at, so that any change from here on is queued.
    // Not on a path's first load: a process that checks once (a CLI, a writer) needs no watch.
    if !has_watch && active && !m.arm_tried && m.loads > 1 {
      m.arm_tried = true;
      let watch = all.notices.watch(path);
      let m = all.entry(path);
      m.watch = watch;
      (start, seen, doc, m.watch.is_some())
    } else {
      (start, seen, doc, has_watch)
    }
  };
  let (doc, seen, watchable, bytes) = match if watched { fs::open_plain(path) } else { Opened::Other } {
    // Under a watch, an event brought us here: the file most likely changed, so open it
    // straight away (its stamp comes from the descriptor).
    Opened::Missing => (Arc::new(Document::new()), Seen::Missing, true, None),
    // Read even when the stamp looks the same: the event is the proof of a change, and a stamp is
    // not (file times tick coarsely on many kernels, so two same-size writes a moment apart can
    // leave equal stamps).
    Opened::File { file, stamp, len, single_link: true } => {
      let (doc, seen, bytes) =
        read_watched(path, fs::read_opened(file, len, path, &CACHE_FILE)?, Seen::File(stamp), keep)?;
      (doc, seen, true, bytes)
    }
    _ => {
      let (seen, watchable) = look(path)?;
      let (doc, seen, bytes) = if seen == seen_before && seen != Seen::Unknown {
        (doc_before, seen, None)
      } else if seen == Seen::Missing {
        (Arc::new(Document::new()), seen, None)
      } else if watched && watchable {
        match fs::read_bounded(path, &CACHE_FILE)? {
          None => (Arc::new(Document::new()), Seen::Missing, None),
          Some(bytes) => read_watched(path, bytes, seen, keep)?,
        }
      } else {
        read_steady(path, keep)?
      };
      (doc, seen, watchable, bytes)
    }
  };
  // No second look at the notices: an event queued since `start` stays queued, and the next
  // call's `poll` counts it before trusting this document.
  let mut all = lock(&memos.0);
  if let Some(m) = all.find(path) {
    // A symlinked path, say, is not re-examined on every call: only once the file changed.
    m.arm_tried &= m.seen == seen;
    m.seen = seen;
    m.doc = Arc::clone(&doc);
    m.current_at = (m.watch.is_some() && watchable && seen != Seen::Unknown && m.changes == start).then_some(start);
  }
  Ok((doc, bytes))
}

/// `load` on a filesystem whose changes may come from elsewhere (NFS, SMB, FUSE, 9p, …): no
/// inotify event is sent for those, and `stat` may answer from a cache (FUSE keeps attributes
/// for a second by default; NFS for several), so the file is read on every call, through the
/// same path as a fresh reader's `readFileSync` (an open, which on NFS revalidates: close-to-open
/// consistency). Bytes equal to the memo's cost no parse. Never an answer such a read, made
/// now, would contradict.
fn load_remote(
  memos: &Memos,
  path: &Path,
  doc_before: Arc<Document>,
  bytes_before: Option<Bytes>,
) -> Result<Arc<Document>> {
  // The common case, unchanged: an open and a read, as few syscalls (each perhaps a round trip)
  // as a bare readFileSync.
  if bytes_before.as_deref().is_some_and(|b| fs::holds_exactly(path, b)) {
    return Ok(doc_before);
  }
  let (doc, bytes) = match fs::read_bounded(path, &CACHE_FILE)? {
    None => (Arc::new(Document::new()), None),
    Some(bytes) if bytes_before.as_deref() == Some(&bytes) => (doc_before, bytes_before),
    Some(bytes) => match cache_file::parse(&bytes) {
      Parsed::Document(d) => (Arc::new(d), Some(Arc::new(bytes))),
      Parsed::Corrupt(_) => read_remote_steady(path)?,
    },
  };
  let mut all = lock(&memos.0);
  if let Some(m) = all.find(path) {
    m.seen = Seen::Unknown;
    m.current_at = None;
    m.doc = Arc::clone(&doc);
    m.bytes = bytes;
  }
  Ok(doc)
}

/// The bytes a remote memo's document was parsed from.
type Bytes = Arc<Vec<u8>>;

/// A remote file that did not parse: cut off at a size the kernel cached (a file another machine
/// grew, seen through FUSE), or caught half-written. Read again, each time after asking the
/// filesystem for its size (so that every reader's next read sees it too; a size cached in the
/// middle of a write would otherwise cut every retry short), for at most a reader's patience;
/// then taken as Claude Code takes it, empty, and memoised by those bytes (a file that stays
/// corrupt costs one read per check, not a wait).
fn read_remote_steady(path: &Path) -> Result<(Arc<Document>, Option<Bytes>)> {
  let end = std::time::Instant::now() + Patience::READER.budget;
  let mut pause = Duration::from_micros(200);
  loop {
    filesystem::refresh_metadata(path);
    let Some(bytes) = fs::read_bounded(path, &CACHE_FILE)? else {
      return Ok((Arc::new(Document::new()), None));
    };
    match cache_file::parse(&bytes) {
      Parsed::Document(d) => return Ok((Arc::new(d), Some(Arc::new(bytes)))),
      Parsed::Corrupt(_) if std::time::Instant::now() >= end => {
        return Ok((Arc::new(Document::new()), Some(Arc::new(bytes))));
      }
      Parsed::Corrupt(_) => {
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
      }
    }
  }
}

/// The document in `bytes`, read under a watch: one plain read will do, since a change during it
/// is queued, and `looked` (taken before the read) can only make a later `stat` compare re-read.
/// Bytes that do not parse go through `read_steady`'s retries, so that a half-written file is
/// never taken as the truth.
fn read_watched(path: &Path, bytes: Vec<u8>, looked: Seen, keep: bool) -> Result<Loaded> {
  match cache_file::parse(&bytes) {
    Parsed::Document(d) => Ok((Arc::new(d), looked, keep.then_some(bytes))),
    Parsed::Corrupt(_) => read_steady(path, keep),
  }
}

/// A document read, what the file was, and (when asked to keep them) the bytes it was parsed from.
type Loaded = (Arc<Document>, Seen, Option<Vec<u8>>);

/// Reads and parses the file as `cache_read::read` does (waiting out a half-done `writeFile`),
/// with the stamp it had throughout, if it held still.
fn read_steady(path: &Path, keep: bool) -> Result<Loaded> {
  let (contents, steady) = cache_read::read(path, Patience::READER, keep, None)?;
  let seen = steady.map_or(Seen::Unknown, Seen::File);
  Ok(match contents {
    Contents::Missing => (Arc::new(Document::new()), Seen::Missing, None),
    Contents::Document(d, bytes) => (d, seen, bytes),
    Contents::Corrupt => (Arc::new(Document::new()), seen, None),
  })
}

pub fn list(memos: &Memos, path: &Path, now: f64, rules: &Rules) -> Result<Vec<EntryStatus>> {
  Ok(rules.statuses(&*load(memos, path)?, now))
}

pub(crate) fn status(memos: &Memos, path: &Path, server: &str, now: f64, rules: &Rules) -> Result<Option<EntryStatus>> {
  cache_file::validate_server_name(server)?;
  let doc = load(memos, path)?;
  Ok(doc.get(server).map(|e| rules.status(server, e, now)))
}

pub fn is_cached(memos: &Memos, path: &Path, server: &str, now: f64, rules: &Rules) -> Result<bool> {
  cache_file::validate_server_name(server)?;
  let doc = load(memos, path)?;
  Ok(doc.get(server).is_some_and(|e| rules.judgement(server, e, now).cached))
}

/// Who hears of each write this API makes (a watcher of this process must not take it for
/// another process's). The API knows nothing more of them.
pub trait WriteObserver {
  /// Whether `wrote` wants writes to `path`: when not, the document a write started from is not
  /// kept for it.
  fn follows(&self, path: &Path) -> bool;
  /// `path` went from `before` (as read under the lock) to `after`. Called under the cache lock,
  /// so that whoever reads the file under it sees the file and this report together.
  fn wrote(&self, path: &Path, before: Arc<Document>, after: Arc<Document>);
}

/// Nobody observes.
impl WriteObserver for () {
  fn follows(&self, _: &Path) -> bool {
    false
  }
  fn wrote(&self, _: &Path, _: Arc<Document>, _: Arc<Document>) {}
}

/// How long a write waits for another process's lock on the cache by default, before
/// `ERR_LOCK_TIMEOUT` (a stopped process, a hung NFS client: never without a bound).
pub use crate::fs::DEFAULT_LOCK_WAIT;

/// How a change reaches the cache: the memos it keeps honest, who hears of it (a runtime's
/// own-writes log, or `&()`), and how long it waits for another process's lock.
#[derive(Clone, Copy)]
pub struct Writer<'a> {
  pub memos: &'a Memos,
  pub observer: &'a dyn WriteObserver,
  pub lock_wait: Duration,
}

/// Locked read-modify-write. `change` edits the document and says whether it changed it; only
/// then is the file rewritten (a corrupt one is first moved aside, kept), durably before this
/// returns, and the write reported to `observer`. Returns `change`'s result. Waits at most
/// `lock_wait` for another process's lock (`ERR_LOCK_TIMEOUT` after that).
pub(crate) fn update<R>(w: Writer, path: &Path, change: impl FnOnce(&mut Document) -> (R, bool)) -> Result<R> {
  update_then(w, path, change, None::<fn()>)
}

/// `update`; with `visible`, the rewrite is announced by calling it as soon as every reader can
/// see it, and made durable right after, before the lock is released (`fs::write_visible`).
/// `visible` is not called when nothing was written.
fn update_then<R>(
  w: Writer,
  path: &Path,
  change: impl FnOnce(&mut Document) -> (R, bool),
  visible: Option<impl FnOnce()>,
) -> Result<R> {
  let _lock = FileLock::acquire(path, w.lock_wait)?;
  let (doc, corrupt) = read_locked(path, None)?;
  let mut doc = Arc::unwrap_or_clone(doc);
  // What this write started from, for the observer.
  let before = w.observer.follows(path).then(|| Arc::new(doc.clone()));
  let (result, changed) = change(&mut doc);
  if changed {
    write_locked(w, path, doc, corrupt, before, visible)?;
  }
  Ok(result)
}

/// The file as read under its lock, and whether it is corrupt (read as empty); not parsed again
/// when its bytes are `known`'s (see `cache_read::read`).
fn read_locked(path: &Path, known: Option<(&[u8], &Arc<Document>)>) -> Result<(Arc<Document>, bool)> {
  Ok(match cache_read::read(path, Patience::WRITER, false, known)?.0 {
    Contents::Missing => (Arc::new(Document::new()), false),
    Contents::Document(doc, _) => (doc, false),
    Contents::Corrupt => (Arc::new(Document::new()), true),
  })
}

/// Rewrites the file (under its lock) as `doc`: refused whole when it could not be read back, a
/// corrupt file first moved aside (kept), durably before this returns, reported to the observer
/// as changed from `before`.
fn write_locked(
  w: Writer,
  path: &Path,
  doc: Document,
  corrupt: bool,
  before: Option<Arc<Document>>,
  visible: Option<impl FnOnce()>,
) -> Result<()> {
  // Before anything is touched: a write that could not be read back is refused whole.
  let bytes = cache_file::serialize_within_limit(&doc, path)?;
  if corrupt {
    fs::move_aside(path, now_ms() as u64)?;
  }
  let pending = match visible {
    None => {
      fs::write_atomic(path, &bytes)?;
      None
    }
    Some(announce) => Some((fs::write_visible(path, &bytes)?, announce)),
  };
  if let Some(before) = before {
    // Still under the lock: a reader under it sees the file and this report together.
    w.observer.wrote(path, before, Arc::new(doc));
  }
  forget_memo(w.memos, path);
  if let Some((written, announce)) = pending {
    announce();
    written.make_durable()?;
  }
  Ok(())
}

/// After this process wrote the file, the next load reads it again. Not memoised from here: a
/// `stat` taken after the rename may already show another process's write (Claude Code takes no
/// lock), and would then vouch for this document in its place.
fn forget_memo(memos: &Memos, path: &Path) {
  let mut all = lock(&memos.0);
  all.poll();
  if let Some(m) = all.find(path) {
    m.seen = Seen::Unknown;
    m.current_at = None;
  }
}

/// Writes `{timestamp: now, ttlMs?, id?}` for `server`, replacing its entry, as Claude Code does.
pub fn mark(w: Writer, path: &Path, server: &str, now: f64, ttl_ms: Option<f64>, id: Option<&str>) -> Result<()> {
  cache_file::validate_server_name(server)?;
  update(w, path, |doc| {
    doc.insert(server.to_owned(), cache_file::new_entry(now, ttl_ms, id));
    ((), true)
  })
}

/// Which entries `invalidate` removes.
#[derive(Debug, Clone)]
pub enum Selection {
  All,
  Servers(Vec<String>),
}

impl Selection {
  pub(crate) fn validate(&self) -> Result<()> {
    match self {
      Selection::All => Ok(()),
      Selection::Servers(names) => names.iter().try_for_each(|n| cache_file::validate_server_name(n)),
    }
  }
}

/// Removes the entries `pick` selects, in one locked, atomic rewrite, and returns what `pick`
/// selected under the lock (`name` gives each one's server); `pick` must depend on the document
/// alone (it is not asked twice about one document). Most calls select nothing: those
/// are answered from a read, without the lock and without a write; the others wait at most
/// `lock_wait` for it.
pub(crate) fn remove_picked<T>(
  w: Writer,
  path: &Path,
  pick: impl Fn(&Document) -> Vec<T>,
  name: impl Fn(&T) -> &str,
) -> Result<Vec<T>> {
  remove_picked_then(w, path, pick, name, None::<fn()>)
}

/// `remove_picked`, announcing the removal through `visible` as soon as it can be seen, before
/// it is made durable (see `update_then`): for a watcher, whose subscribers act on the event by
/// starting processes that read the file. `visible` is not called when nothing was removed.
pub(crate) fn remove_picked_then<T>(
  w: Writer,
  path: &Path,
  pick: impl Fn(&Document) -> Vec<T>,
  name: impl Fn(&T) -> &str,
  visible: Option<impl FnOnce()>,
) -> Result<Vec<T>> {
  let (seen, bytes) = load_keeping(w.memos, path, true)?;
  let first = pick(&seen);
  if first.is_empty() {
    return Ok(Vec::new());
  }
  let _lock = FileLock::acquire(path, w.lock_wait)?;
  // Most often the file is still what was just read: then it is not parsed again, nor picked
  // from again (`pick` depends on the document alone).
  let (doc, corrupt) = read_locked(path, bytes.as_deref().map(|b| (b, &seen)))?;
  let picked = if Arc::ptr_eq(&doc, &seen) { first } else { pick(&doc) };
  drop(seen);
  if !picked.is_empty() {
    // The rest copied, not `doc` cloned and then cut: a clear copies nothing.
    let kept = doc.without(&picked.iter().map(&name).collect());
    let before = w.observer.follows(path).then_some(doc);
    write_locked(w, path, kept, corrupt, before, visible)?;
  }
  Ok(picked)
}

/// Removes the selected entries and returns the names actually removed (file order for `All`,
/// the caller's order otherwise). Nothing to remove means no write at all.
pub fn invalidate(w: Writer, path: &Path, selection: &Selection) -> Result<Vec<String>> {
  remove_selected(w, path, selection, None, None::<fn()>)
}

/// `invalidate` of the selected entries written before `before` (ms) only: those whose
/// `timestamp` is a number below it, judged under the lock, so that an entry written since (a
/// new 401, after a list the caller made) stays. An entry without a numeric timestamp stays too.
pub fn invalidate_written_before(w: Writer, path: &Path, selection: &Selection, before: f64) -> Result<Vec<String>> {
  remove_selected(w, path, selection, Some(before), None::<fn()>)
}

/// `invalidate`, announcing the removal through `visible` before it is made durable (see
/// `remove_picked_then`).
pub(crate) fn invalidate_then(
  w: Writer,
  path: &Path,
  selection: &Selection,
  visible: Option<impl FnOnce()>,
) -> Result<Vec<String>> {
  remove_selected(w, path, selection, None, visible)
}

fn remove_selected(
  w: Writer,
  path: &Path,
  selection: &Selection,
  before: Option<f64>,
  visible: Option<impl FnOnce()>,
) -> Result<Vec<String>> {
  selection.validate()?;
  let written_in_time = |entry: &cache_file::Entry| {
    before.is_none_or(|before| entry.get("timestamp").and_then(serde_json::Value::as_f64).is_some_and(|t| t < before))
  };
  let present = |doc: &Document| match selection {
    Selection::All => doc.iter().filter(|(_, e)| written_in_time(e)).map(|(k, _)| k.to_string()).collect::<Vec<_>>(),
    Selection::Servers(names) => {
      let mut seen = HashSet::new();
      names
        .iter()
        .filter(|n| doc.get(n.as_str()).is_some_and(written_in_time) && seen.insert(n.as_str()))
        .cloned()
        .collect()
    }
  };
  remove_picked_then(w, path, present, |n| n.as_str(), visible)
}

#[cfg(test)]
mod tests {
  use super::*;
  use std::fs;

  const W: Duration = crate::fs::DEFAULT_LOCK_WAIT;

  fn tmp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("mcp-needs-auth-cache.json");
    (dir, path)
  }

  /// Writes no observer follows.
  const NOBODY: &() = &();

  fn w(memos: &Memos) -> Writer<'_> {
    Writer { memos, observer: NOBODY, lock_wait: W }
  }

  #[test]
  fn mark_list_invalidate() {
    let (_d, path) = tmp();
    let memos = Memos::new();
    assert!(list(&memos, &path, 0.0, &Rules::default()).expect("list").is_empty());
    mark(w(&memos), &path, "github", 1000.0, None, None).expect("mark");
    mark(w(&memos), &path, "figma", 1000.0, Some(90_000.0), Some("mcpsrv_1")).expect("mark");
    assert_eq!(
      fs::read_to_string(&path).expect("read"),
      r#"{"github":{"timestamp":1000},"figma":{"timestamp":1000,"ttlMs":90000,"id":"mcpsrv_1"}}"#
    );
    assert!(is_cached(&memos, &path, "github", 2000.0, &Rules::default()).expect("check"));
    let servers = Selection::Servers(vec!["nope".into(), "github".into(), "github".into()]);
    let removed = invalidate(w(&memos), &path, &servers).expect("invalidate");
    assert_eq!(removed, vec!["github".to_string()]);
    assert!(!is_cached(&memos, &path, "github", 2000.0, &Rules::default()).expect("check"));
    assert_eq!(invalidate(w(&memos), &path, &Selection::All).expect("all"), vec!["figma".to_string()]);
    assert_eq!(fs::read_to_string(&path).expect("read"), "{}");
  }

  #[test]
  fn invalidate_then_announces_once_the_removal_is_visible() {
    let (_d, path) = tmp();
    let memos = Memos::new();
    mark(w(&memos), &path, "a", 1.0, None, None).expect("mark");
    mark(w(&memos), &path, "b", 1.0, None, None).expect("mark");
    let mut seen = Vec::new();
    let removed = invalidate_then(
      w(&memos),
      &path,
      &Selection::Servers(vec!["a".into()]),
      Some(|| seen.push(fs::read_to_string(&path).expect("read"))),
    )
    .expect("invalidate");
    assert_eq!(removed, vec!["a".to_string()]);
    assert_eq!(seen, vec![r#"{"b":{"timestamp":1}}"#.to_string()], "announced once, after the rename");
    let mut called = false;
    invalidate_then(w(&memos), &path, &Selection::Servers(vec!["a".into()]), Some(|| called = true)).expect("again");
    assert!(!called, "nothing removed, nothing announced");
  }

  #[test]
  fn invalidate_written_before_keeps_what_was_written_since_and_entries_without_a_time() {
    let (_d, path) = tmp();
    let memos = Memos::new();
    fs::write(&path, br#"{"old":{"timestamp":10},"new":{"timestamp":20},"odd":{"timestamp":"5"},"none":{}}"#)
      .expect("write");
    let all = Selection::All;
    assert_eq!(invalidate_written_before(w(&memos), &path, &all, 20.0).expect("all"), vec!["old".to_string()]);
    let named = Selection::Servers(vec!["new".into(), "odd".into(), "none".into()]);
    assert!(invalidate_written_before(w(&memos), &path, &named, 20.0).expect("named").is_empty());
    assert_eq!(invalidate_written_before(w(&memos), &path, &named, 21.0).expect("named"), vec!["new".to_string()]);
    assert_eq!(fs::read_to_string(&path).expect("read"), r#"{"odd":{"timestamp":"5"},"none":{}}"#);
  }

  #[test]
  fn invalidate_with_nothing_to_remove_does_not_write() {
    let (_d, path) = tmp();
    let memos = Memos::new();
    assert!(invalidate(w(&memos), &path, &Selection::All).expect("all").is_empty());
    assert!(!path.exists(), "no file is created");
    fs::write(&path, b"{nope").expect("write");
    assert!(invalidate(w(&memos), &path, &Selection::All).expect("all").is_empty());
    assert_eq!(fs::read(&path).expect("read"), b"{nope", "a corrupt file is left alone");
  }

  #[test]
  fn mark_moves_a_corrupt_file_aside() {
    let (dir, path) = tmp();
    fs::write(&path, b"[1,2]").expect("write");
    mark(w(&Memos::new()), &path, "a", 5.0, None, None).expect("mark");
    let aside: Vec<_> = fs::read_dir(dir.path())
      .expect("ls")
      .filter_map(|e| e.ok())
      .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
      .collect();
    assert_eq!(aside.len(), 1);
    assert_eq!(fs::read(aside[0].path()).expect("read"), b"[1,2]");
    assert_eq!(fs::read_to_string(&path).expect("read"), r#"{"a":{"timestamp":5}}"#);
  }

  #[test]
  fn a_write_past_the_read_limit_is_refused_and_removals_always_work() {
    let (_d, path) = tmp();
    let memos = Memos::new();
    mark(w(&memos), &path, "a", 1.0, None, None).expect("mark");
    let before = fs::read(&path).expect("read");
    let huge = "x".repeat(2 * 1024 * 1024);
    let err = mark(w(&memos), &path, "b", 1.0, None, Some(&huge)).expect_err("too large");
    assert_eq!(err.code, crate::error::ErrorCode::CacheTooLarge);
    assert!(err.message.contains(&path.display().to_string()), "{}", err.message);
    assert!(err.message.contains("1048576 bytes"), "{}", err.message);
    assert_eq!(fs::read(&path).expect("read"), before, "untouched");
    // Names of 4 KiB until the next one no longer fits: the file stays readable throughout.
    let mut n = 0;
    let last = loop {
      match mark(w(&memos), &path, &format!("{n:04}{}", "n".repeat(4092)), 1.0, None, None) {
        Ok(()) => n += 1,
        Err(e) => break e,
      }
      assert!(n < 1000, "bounded");
    };
    assert_eq!(last.code, crate::error::ErrorCode::CacheTooLarge);
    let len = fs::metadata(&path).expect("stat").len();
    assert!(len <= cache_file::MAX_CACHE_BYTES && len > cache_file::MAX_CACHE_BYTES - 8192, "{len}");
    assert_eq!(list(&memos, &path, 0.0, &Rules::default()).expect("readable").len(), n + 1);
    let first = format!("0000{}", "n".repeat(4092));
    assert_eq!(invalidate(w(&memos), &path, &Selection::Servers(vec![first.clone()])).expect("one"), vec![first]);
    assert_eq!(invalidate(w(&memos), &path, &Selection::All).expect("all").len(), n);
  }

  #[test]
  fn bulk_removals_on_a_large_file_remove_exactly_what_was_asked_in_order() {
    let (_d, path) = tmp();
    let memos = Memos::new();
    let names: Vec<String> = (0..27_000).map(|i| format!("server-{i:05}")).collect();
    let mut doc = Document::new();
    for n in &names {
      doc.insert(n.clone(), cache_file::new_entry(1.0, None, None));
    }
    fs::write(&path, cache_file::serialize(&doc)).expect("write");
    // Every third name, twice, plus one that is not there, in reverse order.
    let mut asked: Vec<String> = names.iter().step_by(3).rev().cloned().collect();
    asked.push("absent".into());
    asked.extend(names.iter().step_by(3).cloned());
    let removed = invalidate(w(&memos), &path, &Selection::Servers(asked)).expect("invalidate");
    let expected: Vec<String> = names.iter().step_by(3).rev().cloned().collect();
    assert_eq!(removed, expected, "the caller's order, each once");
    let kept: Vec<String> = names.iter().enumerate().filter(|(i, _)| i % 3 != 0).map(|(_, n)| n.clone()).collect();
    let left: Vec<String> =
      list(&memos, &path, 0.0, &Rules::default()).expect("list").into_iter().map(|e| e.server).collect();
    assert_eq!(left, kept, "the rest kept, in file order");
    assert_eq!(invalidate(w(&memos), &path, &Selection::All).expect("all"), kept, "file order");
    assert_eq!(fs::read_to_string(&path).expect("read"), "{}");
  }

  #[test]
  fn memo_sees_external_rewrites() {
    let (_d, path) = tmp();
    let memos = Memos::new();
    fs::write(&path, br#"{"a":{"timestamp":1000}}"#).expect("write");
    assert!(is_cached(&memos, &path, "a", 1001.0, &Rules::default()).expect("check"));
    fs::write(&path, br#"{"b":{"timestamp":1000}}"#).expect("write");
    assert!(!is_cached(&memos, &path, "a", 1001.0, &Rules::default()).expect("check"));
    assert!(is_cached(&memos, &path, "b", 1001.0, &Rules::default()).expect("check"));
  }

  /// Read-after-write through a given set of memos: every change is seen by the very next load,
  /// whichever way it was written, with change notices or with `stat` alone.
  fn sees_every_change(memos: &Memos) {
    let d = tempfile::tempdir().expect("tempdir");
    let dir = fs::canonicalize(d.path()).expect("canon").join("cfg");
    fs::create_dir(&dir).expect("mkdir");
    let path = dir.join("mcp-needs-auth-cache.json");
    let has = |server: &str| load(memos, &path).expect("load").contains_key(server);
    assert!(!has("a"), "missing file");
    assert!(!has("a"), "missing file, memoised");
    for i in 0..200 {
      let name = format!("s{i}");
      let bytes = format!(r#"{{"{name}":{{"timestamp":1}}}}"#);
      if i % 2 == 0 {
        fs::write(&path, &bytes).expect("in place");
      } else {
        let tmp = dir.join(".tmp");
        fs::write(&tmp, &bytes).expect("tmp");
        fs::rename(&tmp, &path).expect("rename");
      }
      assert!(has(&name), "change {i} seen by the next load");
      assert!(has(&name), "and by the one after");
    }
    // The directory deleted and made again, then the file written back.
    fs::remove_dir_all(&dir).expect("rm -r");
    assert!(!has("s199"), "gone with its directory");
    fs::create_dir(&dir).expect("mkdir");
    assert!(!has("s199"));
    fs::write(&path, br#"{"back":{"timestamp":1}}"#).expect("write");
    assert!(has("back"), "seen in the new directory");
    fs::write(&path, br#"{"again":{"timestamp":1}}"#).expect("write");
    assert!(has("again"), "and watched again");
    // A directory moved away and another put in its place.
    let moved = dir.with_file_name("cfg-old");
    fs::rename(&dir, &moved).expect("mv");
    fs::create_dir(&dir).expect("mkdir");
    fs::write(&path, br#"{"new":{"timestamp":1}}"#).expect("write");
    assert!(has("new"), "the new directory's file");
    fs::write(moved.join("mcp-needs-auth-cache.json"), br#"{"old":{"timestamp":1}}"#).expect("write");
    assert!(has("new") && !has("old"), "the moved directory is not followed");
  }

  #[test]
  fn change_notices_see_every_change() {
    let memos = Memos::with_notices(Notices::new());
    sees_every_change(&memos);
    let all = lock(&memos.0);
    assert!(cfg!(not(target_os = "linux")) || all.memos.iter().all(|m| m.watch.is_some()), "watched on Linux");
  }

  #[test]
  fn stat_alone_sees_every_change() {
    let memos = Memos::with_notices(Notices::inactive());
    sees_every_change(&memos);
    assert!(lock(&memos.0).memos.iter().all(|m| m.watch.is_none()));
  }

  #[test]
  fn an_unchanged_watched_file_is_not_even_stated() {
    let memos = Memos::with_notices(Notices::new());
    if !lock(&memos.0).notices.is_active() {
      return;
    }
    let d = tempfile::tempdir().expect("tempdir");
    let path = fs::canonicalize(d.path()).expect("canon").join("c.json");
    fs::write(&path, br#"{"a":{"timestamp":1}}"#).expect("write");
    load(&memos, &path).expect("load");
    load(&memos, &path).expect("load");
    let all = lock(&memos.0);
    let m = all.memos.iter().find(|m| m.path == path).expect("memo");
    assert_eq!(m.current_at, Some(m.changes), "current without a stat");
  }

  #[test]
  fn on_a_remote_filesystem_every_load_reads_and_equal_bytes_cost_no_parse() {
    let memos = Memos::with_notices(Notices::new());
    let d = tempfile::tempdir().expect("tempdir");
    let path = fs::canonicalize(d.path()).expect("canon").join("c.json");
    fs::write(&path, br#"{"a":{"timestamp":1}}"#).expect("write");
    let first = load(&memos, &path).expect("load");
    // As if the directory were on NFS or FUSE (the filesystem is known from the first load on).
    lock(&memos.0).find(&path).expect("memo").filesystem =
      Some(Filesystem { name: std::borrow::Cow::Borrowed("nfs"), local: false });
    let read = load(&memos, &path).expect("load");
    let again = load(&memos, &path).expect("load");
    assert!(Arc::ptr_eq(&read, &again), "unchanged bytes: the same document, not parsed again");
    assert_eq!(first.get("a").is_some(), again.get("a").is_some());
    // A same-size rewrite with the old times put back, and no watch trusted: still seen.
    let meta = fs::metadata(&path).expect("meta");
    fs::write(&path, br#"{"b":{"timestamp":1}}"#).expect("rewrite");
    fs::File::options()
      .write(true)
      .open(&path)
      .expect("open")
      .set_modified(meta.modified().expect("mtime"))
      .expect("touch");
    let changed = load(&memos, &path).expect("load");
    assert!(changed.get("b").is_some() && changed.get("a").is_none(), "read, not trusted");
    assert!(lock(&memos.0).find(&path).expect("memo").watch.is_none(), "no watch armed for it");
    fs::remove_file(&path).expect("rm");
    assert!(load(&memos, &path).expect("load").is_empty(), "gone");
  }

  #[cfg(unix)]
  #[test]
  fn a_symlinked_or_hard_linked_file_is_validated_by_stat() {
    let memos = Memos::with_notices(Notices::new());
    let d = tempfile::tempdir().expect("tempdir");
    let root = fs::canonicalize(d.path()).expect("canon");
    fs::create_dir(root.join("elsewhere")).expect("mkdir");
    let target = root.join("elsewhere/real.json");
    fs::write(&target, br#"{"a":{"timestamp":1}}"#).expect("write");
    let link = root.join("c.json");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let hard = root.join("h.json");
    fs::hard_link(&target, &hard).expect("link");
    for path in [&link, &hard] {
      assert!(load(&memos, path).expect("load").contains_key("a"));
      // Written through the other name, in another directory: no event in this one.
      fs::write(&target, br#"{"b":{"timestamp":1}}"#).expect("write");
      assert!(load(&memos, path).expect("load").contains_key("b"), "{}", path.display());
      fs::write(&target, br#"{"a":{"timestamp":1}}"#).expect("write");
      assert!(load(&memos, path).expect("load").contains_key("a"), "{}", path.display());
    }
  }

  #[test]
  fn memos_and_watches_are_bounded() {
    let memos = Memos::with_notices(Notices::new());
    let d = tempfile::tempdir().expect("tempdir");
    let root = fs::canonicalize(d.path()).expect("canon");
    for i in 0..(MEMOS_KEPT * 3) {
      let dir = root.join(format!("d{i}"));
      fs::create_dir(&dir).expect("mkdir");
      load(&memos, &dir.join("c.json")).expect("load");
    }
    let all = lock(&memos.0);
    assert_eq!(all.memos.len(), MEMOS_KEPT);
  }

  #[test]
  fn concurrent_threads_lose_nothing() {
    let (_d, path) = tmp();
    let memos = Memos::new();
    std::thread::scope(|s| {
      for t in 0..8 {
        let (memos, path) = (&memos, &path);
        s.spawn(move || {
          for i in 0..25 {
            mark(w(memos), path, &format!("t{t}-{i}"), 1.0, None, None).expect("mark");
          }
        });
      }
    });
    assert_eq!(list(&memos, &path, 0.0, &Rules::default()).expect("list").len(), 200);
  }

  /// The removal reuses the document it read without the lock only when the file under the
  /// lock is byte for byte the same; a file changed in between is parsed again, and the
  /// change kept.
  #[test]
  fn a_file_changed_between_the_first_read_and_the_lock_is_read_again() {
    let (_d, path) = tmp();
    let memos = Memos::new();
    fs::write(&path, r#"{"a":{"timestamp":1},"b":{"timestamp":1}}"#).expect("write");
    let calls = std::cell::Cell::new(0);
    let removed = remove_picked(
      w(&memos),
      &path,
      |doc| {
        calls.set(calls.get() + 1);
        if calls.get() == 1 {
          // Another process (Claude Code takes no lock) rewrites it before the lock is taken.
          fs::write(&path, r#"{"a":{"timestamp":2},"c":{"timestamp":3}}"#).expect("rewrite");
        }
        doc.keys().filter(|k| &***k == "a").map(ToString::to_string).collect::<Vec<_>>()
      },
      |n| n.as_str(),
    )
    .expect("remove");
    assert_eq!(removed, ["a"]);
    assert_eq!(calls.get(), 2);
    assert_eq!(fs::read_to_string(&path).expect("read"), r#"{"c":{"timestamp":3}}"#);
  }

  /// Unchanged since the first read, the file is not parsed again, and the rewrite is the
  /// same as from a fresh parse.
  #[test]
  fn a_bulk_removal_from_an_unchanged_file_keeps_the_rest_exactly() {
    let (_d, path) = tmp();
    let memos = Memos::new();
    let text = r#"{"1":{"timestamp":1},"x\ud800":{"timestamp":1e400,"n":[1,{"d":-0}]},"y":{"timestamp":5}}"#;
    fs::write(&path, text).expect("write");
    let removed = invalidate(w(&memos), &path, &Selection::Servers(vec!["y".into()])).expect("invalidate");
    assert_eq!(removed, ["y"]);
    assert_eq!(
      fs::read_to_string(&path).expect("read"),
      r#"{"1":{"timestamp":1},"x\ud800":{"timestamp":null,"n":[1,{"d":0}]}}"#
    );
    assert_eq!(invalidate(w(&memos), &path, &Selection::All).expect("all").len(), 2);
    assert_eq!(fs::read_to_string(&path).expect("read"), "{}");
  }
}
