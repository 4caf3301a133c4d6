//! The needs-auth cache as an API: read (memoised, validated by one `stat`), and change
//! (a locked, atomic read-modify-write). Paths are the cache file's; callers resolve them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::atomic_file::{self, Contents, FileLock, Patience, Stamp};
use crate::cache_file::{self, Document, EntryStatus, Parsed};
use crate::error::Result;
use crate::server_rules::Rules;

/// Milliseconds since the Unix epoch, as `Date.now()`.
pub fn now_ms() -> f64 {
  std::time::SystemTime::now()
    .duration_since(std::time::UNIX_EPOCH)
    .map_or(0.0, |d| d.as_millis() as f64)
}

struct Memo {
  stamp: Stamp,
  doc: Arc<Document>,
}

fn memo() -> &'static Mutex<HashMap<PathBuf, Memo>> {
  static MEMO: OnceLock<Mutex<HashMap<PathBuf, Memo>>> = OnceLock::new();
  MEMO.get_or_init(Default::default)
}

/// The document as Claude Code would read it now: a missing or corrupt file is empty.
pub fn load(path: &Path) -> Result<Arc<Document>> {
  let Some(stamp) = Stamp::read(path)? else {
    return Ok(Arc::new(Document::new()));
  };
  if let Some(m) = crate::lock(memo()).get(path) {
    if m.stamp == stamp {
      return Ok(Arc::clone(&m.doc));
    }
  }
  let (contents, steady) = atomic_file::read(path, Patience::READER)?;
  let doc = Arc::new(match contents {
    Contents::Parsed(Parsed::Document(d)) => d,
    Contents::Missing | Contents::Parsed(Parsed::Corrupt(_)) => Document::new(),
  });
  if let Some(stamp) = steady {
    crate::lock(memo()).insert(path.to_path_buf(), Memo { stamp, doc: Arc::clone(&doc) });
  }
  Ok(doc)
}

pub fn list(path: &Path, now: f64, rules: &Rules) -> Result<Vec<EntryStatus>> {
  Ok(rules.statuses(&*load(path)?, now))
}

pub fn status(path: &Path, server: &str, now: f64, rules: &Rules) -> Result<Option<EntryStatus>> {
  cache_file::validate_server_name(server)?;
  let doc = load(path)?;
  Ok(doc.get(server).map(|e| rules.status(server, e, now)))
}

pub fn is_cached(path: &Path, server: &str, now: f64, rules: &Rules) -> Result<bool> {
  Ok(status(path, server, now, rules)?.is_some_and(|s| s.cached))
}

/// Locked read-modify-write. `change` edits the document and says whether it changed it; only
/// then is the file rewritten (a corrupt one is first moved aside, kept). Returns its result.
pub fn update<R>(path: &Path, change: impl FnOnce(&mut Document) -> (R, bool)) -> Result<R> {
  let _lock = FileLock::acquire(path)?;
  let (contents, _) = atomic_file::read(path, Patience::WRITER)?;
  let (mut doc, corrupt) = match contents {
    Contents::Missing => (Document::new(), false),
    Contents::Parsed(Parsed::Document(d)) => (d, false),
    Contents::Parsed(Parsed::Corrupt(_)) => (Document::new(), true),
  };
  // What this write started from, for a watcher in this process (see `take_own_writes`).
  let before = is_tracked(path).then(|| Arc::new(doc.clone()));
  let (result, changed) = change(&mut doc);
  if changed {
    if corrupt {
      atomic_file::move_aside(path, now_ms() as u64)?;
    }
    atomic_file::write_atomic(path, &cache_file::serialize(&doc))?;
    let doc = Arc::new(doc);
    if let Some(before) = before {
      // Still under the lock: a watcher reading under it sees the file and this record together.
      record_own_write(path, OwnWrite { before, after: Arc::clone(&doc) });
    }
    if let Ok(Some(stamp)) = Stamp::read(path) {
      crate::lock(memo()).insert(path.to_path_buf(), Memo { stamp, doc });
    }
  }
  Ok(result)
}

/// Writes `{timestamp: now, ttlMs?, id?}` for `server`, replacing its entry, as Claude Code does.
pub fn mark(path: &Path, server: &str, now: f64, ttl_ms: Option<f64>, id: Option<&str>) -> Result<()> {
  cache_file::validate_server_name(server)?;
  update(path, |doc| {
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
  pub fn validate(&self) -> Result<()> {
    match self {
      Selection::All => Ok(()),
      Selection::Servers(names) => names.iter().try_for_each(|n| cache_file::validate_server_name(n)),
    }
  }
}

/// Removes the entries `pick` selects, in one locked, atomic rewrite, and returns what `pick`
/// selected under the lock (`name` gives each one's server). Most calls select nothing: those
/// are answered from a read, without the lock and without a write.
pub fn remove_picked<T>(
  path: &Path,
  pick: impl Fn(&Document) -> Vec<T>,
  name: impl Fn(&T) -> &str,
) -> Result<Vec<T>> {
  if pick(&*load(path)?).is_empty() {
    return Ok(Vec::new());
  }
  update(path, |doc| {
    let picked = pick(doc);
    for p in &picked {
      doc.shift_remove(name(p));
    }
    let changed = !picked.is_empty();
    (picked, changed)
  })
}

/// Removes the selected entries and returns the names actually removed (file order for `All`,
/// the caller's order otherwise). Nothing to remove means no write at all.
pub fn invalidate(path: &Path, selection: &Selection) -> Result<Vec<String>> {
  selection.validate()?;
  let present = |doc: &Document| match selection {
    Selection::All => doc.keys().cloned().collect::<Vec<_>>(),
    Selection::Servers(names) => {
      let mut seen = Vec::new();
      for n in names {
        if doc.contains_key(n) && !seen.contains(n) {
          seen.push(n.clone());
        }
      }
      seen
    }
  };
  remove_picked(path, present, |n| n.as_str())
}

/// One change this process made: the document it read under the lock, and the one it wrote.
/// A watcher chains these to tell its own process's changes from everybody else's.
#[derive(Clone)]
pub struct OwnWrite {
  pub before: Arc<Document>,
  pub after: Arc<Document>,
}

/// Most own writes kept between two looks of a watcher; past that the oldest are dropped and
/// the watcher is told there is a gap.
const OWN_WRITES_KEPT: usize = 1024;

#[derive(Default)]
struct OwnLog {
  /// How many watchers follow this path; nothing is recorded without one.
  trackers: usize,
  writes: std::collections::VecDeque<OwnWrite>,
  gap: bool,
}

fn own_logs() -> &'static Mutex<HashMap<PathBuf, OwnLog>> {
  static OWN: OnceLock<Mutex<HashMap<PathBuf, OwnLog>>> = OnceLock::new();
  OWN.get_or_init(Default::default)
}

/// A watcher starts (`true`) or stops (`false`) following this process's writes to `path`.
pub fn track_own_writes(path: &Path, on: bool) {
  let mut logs = crate::lock(own_logs());
  let log = logs.entry(path.to_path_buf()).or_default();
  if on {
    log.trackers += 1;
  } else {
    log.trackers = log.trackers.saturating_sub(1);
    if log.trackers == 0 {
      logs.remove(path);
    }
  }
}

fn is_tracked(path: &Path) -> bool {
  crate::lock(own_logs()).get(path).is_some_and(|l| l.trackers > 0)
}

fn record_own_write(path: &Path, write: OwnWrite) {
  let mut logs = crate::lock(own_logs());
  if let Some(log) = logs.get_mut(path).filter(|l| l.trackers > 0) {
    if log.writes.len() == OWN_WRITES_KEPT {
      log.writes.pop_front();
      log.gap = true;
    }
    log.writes.push_back(write);
  }
}

/// The own writes recorded since a watcher last looked.
#[derive(Default)]
pub struct OwnWrites {
  /// Oldest first.
  pub writes: Vec<OwnWrite>,
  /// Some were dropped before `writes[0]` (more than `OWN_WRITES_KEPT` between two looks).
  pub gap: bool,
}

/// Takes the own writes recorded since the last call. Call with the cache lock held, right
/// after reading the file, so that the file and the record agree.
pub fn take_own_writes(path: &Path) -> OwnWrites {
  let mut logs = crate::lock(own_logs());
  match logs.get_mut(path) {
    Some(log) => OwnWrites { writes: log.writes.drain(..).collect(), gap: std::mem::take(&mut log.gap) },
    None => OwnWrites::default(),
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use std::fs;

  fn tmp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("mcp-needs-auth-cache.json");
    (dir, path)
  }

  #[test]
  fn mark_list_invalidate() {
    let (_d, path) = tmp();
    assert!(list(&path, 0.0, &Rules::default()).expect("list").is_empty());
    mark(&path, "github", 1000.0, None, None).expect("mark");
    mark(&path, "figma", 1000.0, Some(90_000.0), Some("mcpsrv_1")).expect("mark");
    assert_eq!(
      fs::read_to_string(&path).expect("read"),
      r#"{"github":{"timestamp":1000},"figma":{"timestamp":1000,"ttlMs":90000,"id":"mcpsrv_1"}}"#
    );
    assert!(is_cached(&path, "github", 2000.0, &Rules::default()).expect("check"));
    let removed = invalidate(&path, &Selection::Servers(vec!["nope".into(), "github".into(), "github".into()]))
      .expect("invalidate");
    assert_eq!(removed, vec!["github".to_string()]);
    assert!(!is_cached(&path, "github", 2000.0, &Rules::default()).expect("check"));
    assert_eq!(invalidate(&path, &Selection::All).expect("all"), vec!["figma".to_string()]);
    assert_eq!(fs::read_to_string(&path).expect("read"), "{}");
  }

  #[test]
  fn invalidate_with_nothing_to_remove_does_not_write() {
    let (_d, path) = tmp();
    assert!(invalidate(&path, &Selection::All).expect("all").is_empty());
    assert!(!path.exists(), "no file is created");
    fs::write(&path, b"{nope").expect("write");
    assert!(invalidate(&path, &Selection::All).expect("all").is_empty());
    assert_eq!(fs::read(&path).expect("read"), b"{nope", "a corrupt file is left alone");
  }

  #[test]
  fn mark_moves_a_corrupt_file_aside() {
    let (dir, path) = tmp();
    fs::write(&path, b"[1,2]").expect("write");
    mark(&path, "a", 5.0, None, None).expect("mark");
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
  fn memo_sees_external_rewrites() {
    let (_d, path) = tmp();
    fs::write(&path, br#"{"a":{"timestamp":1000}}"#).expect("write");
    assert!(is_cached(&path, "a", 1001.0, &Rules::default()).expect("check"));
    fs::write(&path, br#"{"b":{"timestamp":1000}}"#).expect("write");
    assert!(!is_cached(&path, "a", 1001.0, &Rules::default()).expect("check"));
    assert!(is_cached(&path, "b", 1001.0, &Rules::default()).expect("check"));
  }

  #[test]
  fn concurrent_threads_lose_nothing() {
    let (_d, path) = tmp();
    let handles: Vec<_> = (0..8)
      .map(|t| {
        let path = path.clone();
        std::thread::spawn(move || {
          for i in 0..25 {
            mark(&path, &format!("t{t}-{i}"), 1.0, None, None).expect("mark");
          }
        })
      })
      .collect();
    for h in handles {
      h.join().expect("join");
    }
    assert_eq!(list(&path, 0.0, &Rules::default()).expect("list").len(), 200);
  }
}
