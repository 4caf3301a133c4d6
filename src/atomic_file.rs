//! The lock and the atomic write.
//!
//! Every change is a read-modify-write under an exclusive advisory lock on a sidecar
//! `<file>.lock` (never the data file itself, which rename replaces), written to a temp file in
//! the same directory, fsynced, renamed over the target and made durable with an fsync of the
//! directory. Claude Code writes the same file with a plain `writeFile` and no lock, so a reader
//! may catch its half-written bytes: reads retry briefly before calling a file corrupt.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cache_file::{self, Parsed, MAX_CACHE_BYTES};
use crate::error::{Error, ErrorCode, Result};

/// How long to wait for a file that does not parse, in case a plain `writeFile` (Claude
/// Code's: truncate, then write) is half done.
#[derive(Debug, Clone, Copy)]
pub struct Patience {
  /// A file unmodified for this long is taken as finished.
  pub settle: Duration,
  /// Never wait longer than this in all.
  pub budget: Duration,
}

impl Patience {
  /// Readers: a torn read is reported as Claude Code would see it (no entries) rather than
  /// stall the caller. 100 ms covers any unhurried `writeFile` of a cache file.
  pub const READER: Patience = Patience { settle: Duration::from_millis(200), budget: Duration::from_millis(100) };
  /// Writers hold the lock and would otherwise move a half-written file aside and replace it,
  /// orphaning the entries a descheduled Claude Code is about to write: they wait for it.
  pub const WRITER: Patience = Patience { settle: Duration::from_secs(2), budget: Duration::from_millis(2500) };
}

/// Pauses between reads of a document that looks cut off: a `writeFile` caught between its
/// truncate and its write usually lands within a fraction of a millisecond, so the first pause is
/// short; doubling bounds the wake-ups of a writer that stalls for longer.
const READ_RETRY_FIRST_PAUSE: Duration = Duration::from_micros(200);
const READ_RETRY_MAX_PAUSE: Duration = Duration::from_millis(5);

/// A file's contents as read.
#[derive(Debug)]
pub enum Contents {
  Missing,
  Parsed(Parsed),
}

/// Identity and version of a file as `stat` sees it, to tell "unchanged" without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
  len: u64,
  modified_ns: i128,
  #[cfg(unix)]
  ino: u64,
  #[cfg(unix)]
  dev: u64,
  #[cfg(unix)]
  ctime_ns: i128,
}

impl Stamp {
  pub fn of(meta: &fs::Metadata) -> Stamp {
    let modified_ns = meta
      .modified()
      .ok()
      .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
      .map_or(0, |d| d.as_nanos() as i128);
    #[cfg(unix)]
    {
      use std::os::unix::fs::MetadataExt;
      Stamp {
        len: meta.len(),
        modified_ns,
        ino: meta.ino(),
        dev: meta.dev(),
        ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
      }
    }
    #[cfg(not(unix))]
    {
      Stamp { len: meta.len(), modified_ns }
    }
  }

  /// How long ago the file was last modified, by the wall clock.
  pub fn age_ns(&self) -> i128 {
    let now = std::time::SystemTime::now()
      .duration_since(std::time::UNIX_EPOCH)
      .map_or(0, |d| d.as_nanos() as i128);
    now - self.modified_ns
  }

  /// The cache file's stamp, or `None` when it does not exist.
  pub fn read(path: &Path) -> Result<Option<Stamp>> {
    stamp_of(path, &CACHE_FILE)
  }

  /// Modification time in ms since the epoch.
  pub fn modified_ms(&self) -> f64 {
    (self.modified_ns / 1_000_000) as f64
  }
}

/// What kind of file is read: its size limit and how its errors are named.
pub struct FileKind {
  pub label: &'static str,
  pub max_bytes: u64,
  pub read_code: ErrorCode,
  pub too_large_code: ErrorCode,
}

pub const CACHE_FILE: FileKind = FileKind {
  label: "the needs-auth cache",
  max_bytes: MAX_CACHE_BYTES,
  read_code: ErrorCode::CacheRead,
  too_large_code: ErrorCode::CacheTooLarge,
};

/// Reads at most `kind.max_bytes`; a larger file is an error, never truncated silently.
pub fn read_bounded(path: &Path, kind: &FileKind) -> Result<Option<Vec<u8>>> {
  let file = match File::open(path) {
    Ok(f) => f,
    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
    Err(e) => return Err(Error::io(kind.read_code, &format!("cannot open {}", kind.label), path, &e)),
  };
  // Sized from the file, so a small file is one `read` (and the one that says "end").
  let hint = file.metadata().map_or(0, |m| m.len().min(kind.max_bytes) as usize);
  let mut bytes = Vec::with_capacity(hint + 1);
  file
    .take(kind.max_bytes + 1)
    .read_to_end(&mut bytes)
    .map_err(|e| Error::io(kind.read_code, &format!("cannot read {}", kind.label), path, &e))?;
  if bytes.len() as u64 > kind.max_bytes {
    return Err(Error::new(
      kind.too_large_code,
      format!(
        "{} {} is larger than {} MiB, so it is not one Claude Code wrote; move it away (it was \
         left untouched)",
        kind.label,
        path.display(),
        kind.max_bytes / (1024 * 1024)
      ),
    ));
  }
  Ok(Some(bytes))
}

/// `None`: no such file. `Some(Err(why))`: it does not parse, and has not for a while.
pub type ReadOutcome<T> = Option<std::result::Result<T, String>>;

/// A half-done `writeFile` (truncate, then write) leaves a prefix of the JSON: empty, or cut
/// off. Garbage in the middle, or a whole document of the wrong shape, never comes from one.
fn looks_truncated(bytes: &[u8]) -> bool {
  matches!(serde_json::from_slice::<serde::de::IgnoredAny>(bytes), Err(e) if e.is_eof())
}

/// Reads and parses a file Claude Code may be writing with a plain `writeFile`. A read that
/// looks truncated is retried while the file is still moving or was modified within
/// `patience.settle` (the write may be half done), for at most `patience.budget`; a file that
/// has been bad for longer is reported at once as `Err(why)` inside `Some`. `None` means the
/// file does not exist. Also returns the stamp when it did not change during the read, so
/// callers can memoise on it.
pub fn read_with<T>(
  path: &Path,
  kind: &FileKind,
  patience: Patience,
  parse: impl Fn(&[u8]) -> std::result::Result<T, String>,
) -> Result<(ReadOutcome<T>, Option<Stamp>)> {
  let started = std::time::Instant::now();
  let mut pause = READ_RETRY_FIRST_PAUSE;
  loop {
    let before = stamp_of(path, kind)?;
    let Some(bytes) = read_bounded(path, kind)? else {
      return Ok((None, None));
    };
    let parsed = parse(&bytes);
    let after = stamp_of(path, kind)?;
    let steady = if before.is_some() && before == after { before } else { None };
    let settled = steady.is_some_and(|s| s.age_ns() > patience.settle.as_nanos() as i128);
    if parsed.is_err() && !settled && started.elapsed() < patience.budget && looks_truncated(&bytes) {
      std::thread::sleep(pause);
      pause = (pause * 2).min(READ_RETRY_MAX_PAUSE);
      continue;
    }
    return Ok((Some(parsed), steady));
  }
}

fn stamp_of(path: &Path, kind: &FileKind) -> Result<Option<Stamp>> {
  match fs::metadata(path) {
    Ok(meta) => Ok(Some(Stamp::of(&meta))),
    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
    Err(e) => Err(Error::io(kind.read_code, &format!("cannot stat {}", kind.label), path, &e)),
  }
}

/// The cache file, read as Claude Code reads it (see `read_with`).
pub fn read(path: &Path, patience: Patience) -> Result<(Contents, Option<Stamp>)> {
  let (outcome, stamp) = read_with(path, &CACHE_FILE, patience, |bytes| match cache_file::parse(bytes) {
    Parsed::Document(d) => Ok(d),
    Parsed::Corrupt(why) => Err(why),
  })?;
  let contents = match outcome {
    None => Contents::Missing,
    Some(Ok(doc)) => Contents::Parsed(Parsed::Document(doc)),
    Some(Err(why)) => Contents::Parsed(Parsed::Corrupt(why)),
  };
  Ok((contents, stamp))
}

/// An exclusive advisory lock on `<path>.lock`, released on drop (and by the OS if the holder
/// dies, even by SIGKILL).
pub struct FileLock {
  file: File,
}

impl FileLock {
  pub fn acquire(data_path: &Path) -> Result<FileLock> {
    let dir = parent_dir(data_path);
    fs::create_dir_all(dir)
      .map_err(|e| Error::io(ErrorCode::CacheWrite, "cannot create the config dir", dir, &e))?;
    let lock_path = lock_path(data_path);
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
      use std::os::unix::fs::OpenOptionsExt;
      options.mode(0o600);
    }
    let file = options
      .open(&lock_path)
      .map_err(|e| Error::io(ErrorCode::CacheWrite, "cannot open the lock file", &lock_path, &e))?;
    // std's own `File::lock` (Rust 1.89+) would shadow the trait method: name fs4's explicitly.
    fs4::FileExt::lock(&file)
      .map_err(|e| Error::io(ErrorCode::CacheWrite, "cannot lock", &lock_path, &e))?;
    Ok(FileLock { file })
  }

  /// The lock for a reader that must not create anything: `None` when there is no lock file
  /// (then no writer of this library holds it). A directory being removed (`rm -rf`) must not
  /// get a lock file back, which would make its removal fail.
  pub fn acquire_existing(data_path: &Path) -> Result<Option<FileLock>> {
    let lock_path = lock_path(data_path);
    let file = match OpenOptions::new().read(true).write(true).open(&lock_path) {
      Ok(f) => f,
      Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
      Err(e) => return Err(Error::io(ErrorCode::CacheRead, "cannot open the lock file", &lock_path, &e)),
    };
    fs4::FileExt::lock(&file).map_err(|e| Error::io(ErrorCode::CacheRead, "cannot lock", &lock_path, &e))?;
    Ok(Some(FileLock { file }))
  }
}

impl Drop for FileLock {
  fn drop(&mut self) {
    // Closing the descriptor releases the lock too; unlocking first just makes it prompt.
    let _ = fs4::FileExt::unlock(&self.file);
  }
}

pub fn lock_path(data_path: &Path) -> PathBuf {
  let mut name = data_path.as_os_str().to_owned();
  name.push(".lock");
  PathBuf::from(name)
}

fn parent_dir(path: &Path) -> &Path {
  match path.parent() {
    Some(p) if !p.as_os_str().is_empty() => p,
    _ => Path::new("."),
  }
}

/// Replaces `path` with `bytes` atomically and durably. A regular file keeps its mode; a new
/// file (or one replacing a symlink, which is replaced, never written through) gets 0600.
/// Call with the lock held. The caller must not memoise `bytes` as the file's contents: Claude
/// Code's unlocked `writeFile` may land right after the rename (see `needs_auth::forget_memo`).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
  let dir = parent_dir(path);
  let write_err = |what: &str, p: &Path, e: &io::Error| Error::io(ErrorCode::CacheWrite, what, p, e);
  let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
  let tmp_prefix = format!(".{file_name}.tmp-");
  remove_orphaned_temps(dir, &tmp_prefix);
  let mut tmp = tempfile::Builder::new()
    .prefix(&tmp_prefix)
    .tempfile_in(dir)
    .map_err(|e| write_err("cannot create a temp file in", dir, &e))?;
  #[cfg(unix)]
  {
    use std::os::unix::fs::PermissionsExt;
    let mode = match fs::symlink_metadata(path) {
      Ok(meta) if meta.file_type().is_file() => meta.permissions().mode() & 0o7777,
      _ => 0o600,
    };
    tmp
      .as_file()
      .set_permissions(fs::Permissions::from_mode(mode))
      .map_err(|e| write_err("cannot set the mode of", tmp.path(), &e))?;
  }
  tmp.write_all(bytes).map_err(|e| write_err("cannot write", tmp.path(), &e))?;
  tmp.as_file().sync_all().map_err(|e| write_err("cannot fsync", tmp.path(), &e))?;
  tmp
    .persist(path)
    .map_err(|e| write_err("cannot rename the temp file over", path, &e.error))?;
  sync_dir(dir).map_err(|e| write_err("cannot fsync the directory", dir, &e))
}

/// Temp files of writers that died mid-write (SIGKILL skips their cleanup). With the lock held
/// no live writer has one, so every match is an orphan. Best effort: a failure here only
/// leaves litter, never affects the write.
fn remove_orphaned_temps(dir: &Path, prefix: &str) {
  let Ok(entries) = fs::read_dir(dir) else { return };
  for entry in entries.flatten() {
    if entry.file_name().to_string_lossy().starts_with(prefix) {
      let _ = fs::remove_file(entry.path());
    }
  }
}

/// Moves a corrupt file aside to `<path>.corrupt-<ms>` (kept, never deleted). Call with the lock
/// held. Returns where it went.
pub fn move_aside(path: &Path, now_ms: u64) -> Result<PathBuf> {
  let mut n = 0u32;
  loop {
    let mut name = path.as_os_str().to_owned();
    name.push(if n == 0 { format!(".corrupt-{now_ms}") } else { format!(".corrupt-{now_ms}-{n}") });
    let aside = PathBuf::from(name);
    if !aside.exists() {
      fs::rename(path, &aside)
        .map_err(|e| Error::io(ErrorCode::CacheWrite, "cannot move the corrupt cache aside from", path, &e))?;
      return Ok(aside);
    }
    n += 1;
    if n > 1000 {
      return Err(Error::new(
        ErrorCode::CacheWrite,
        format!("too many corrupt copies beside {}: remove old *.corrupt-* files", path.display()),
      ));
    }
  }
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
  File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
  // Windows cannot open a directory for flushing; MoveFileEx with WRITE_THROUGH is what
  // tempfile's persist already asks for.
  Ok(())
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn write_then_read_round_trips_with_mode_0600() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sub/dir/cache.json");
    let _lock = FileLock::acquire(&path).expect("lock");
    write_atomic(&path, br#"{"a":{"timestamp":1}}"#).expect("write");
    match read(&path, Patience::READER).expect("read").0 {
      Contents::Parsed(Parsed::Document(d)) => assert!(d.contains_key("a")),
      other => panic!("unexpected {other:?}"),
    }
    #[cfg(unix)]
    {
      use std::os::unix::fs::PermissionsExt;
      let mode = |p: &Path| fs::metadata(p).expect("stat").permissions().mode() & 0o777;
      assert_eq!(mode(&path), 0o600);
      assert_eq!(mode(&lock_path(&path)), 0o600);
      fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
      write_atomic(&path, b"{}").expect("rewrite");
      assert_eq!(mode(&path), 0o644, "an existing file keeps its mode");
    }
  }

  #[test]
  fn too_large_is_an_error_and_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.json");
    let big = vec![b' '; (MAX_CACHE_BYTES + 1) as usize];
    fs::write(&path, &big).expect("write");
    let err = read(&path, Patience::READER).expect_err("too large");
    assert_eq!(err.code, ErrorCode::CacheTooLarge);
    assert!(err.message.contains(&path.display().to_string()));
    assert!(err.message.contains("larger than 1 MiB"), "{}", err.message);
    assert_eq!(fs::read(&path).expect("read"), big);
  }

  #[test]
  fn corrupt_is_reported_after_retries_and_moved_aside_on_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.json");
    fs::write(&path, b"{nope").expect("write");
    assert!(matches!(read(&path, Patience::READER).expect("read").0, Contents::Parsed(Parsed::Corrupt(_))));
    let aside = move_aside(&path, 42).expect("aside");
    assert_eq!(fs::read(&aside).expect("kept"), b"{nope");
    assert!(!path.exists());
  }

  #[test]
  fn a_writer_waits_for_a_half_written_file_instead_of_calling_it_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.json");
    // Claude Code's writeFile: truncate now, the bytes 300 ms later.
    fs::write(&path, b"").expect("truncate");
    let writer = {
      let path = path.clone();
      std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        fs::write(&path, br#"{"cc":{"timestamp":1}}"#).expect("write");
      })
    };
    match read(&path, Patience::WRITER).expect("read").0 {
      Contents::Parsed(Parsed::Document(d)) => assert!(d.contains_key("cc")),
      other => panic!("a writer must wait for the write to land, got {other:?}"),
    }
    writer.join().expect("join");
  }

  #[test]
  fn only_truncated_json_is_waited_for() {
    for torn in [&b""[..], b"  ", b"{\"a\":{\"timestamp\":1", b"{"] {
      assert!(looks_truncated(torn), "{:?}", String::from_utf8_lossy(torn));
    }
    for corrupt in [&b"{nope"[..], b"[1,2]", b"\"x\"", b"{} x", b"{\"a\":}"] {
      assert!(!looks_truncated(corrupt), "{:?}", String::from_utf8_lossy(corrupt));
    }
  }

  #[test]
  fn orphaned_temp_files_are_removed_by_the_next_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.json");
    let orphan = dir.path().join(".c.json.tmp-dead01");
    fs::write(&orphan, b"{\"half").expect("orphan");
    let other = dir.path().join(".credentials.json.tmp.0123abcd");
    fs::write(&other, b"not ours").expect("other");
    write_atomic(&path, b"{}").expect("write");
    assert!(!orphan.exists());
    assert!(other.exists(), "only our own temp files are touched");
  }

  #[cfg(unix)]
  #[test]
  fn a_symlink_is_replaced_not_written_through() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("target.json");
    fs::write(&target, b"{\"t\":1}").expect("write");
    let link = dir.path().join("c.json");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    write_atomic(&link, b"{}").expect("write");
    assert_eq!(fs::read(&target).expect("target"), b"{\"t\":1}");
    assert!(fs::symlink_metadata(&link).expect("stat").file_type().is_file());
  }
}
