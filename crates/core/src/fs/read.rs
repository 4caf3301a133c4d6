//! Bounded reads, and the read that waits out a half-done `writeFile`.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::Path;
use std::time::Duration;

use super::file_kind::FileKind;
use super::stamp::Stamp;
use crate::error::{Error, Result};

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

/// Whether `path` now holds exactly `expected`, told with one `open` and one `read` (no `fstat`,
/// no flags to reset): for a caller that must read an unchanged file on every call (a memo on a
/// network filesystem), where each syscall may be a round trip. `O_NONBLOCK` keeps a FIFO from
/// blocking the open or the read. Anything else (another length or other bytes, an error, a
/// file that is not there) is `false`, and the caller reads the file properly. A short read is
/// taken as the end, as of a regular file (the only kind `expected` was read from).
pub fn holds_exactly(path: &Path, expected: &[u8]) -> bool {
  #[cfg(unix)]
  {
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(mut file) = OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path) else {
      return false;
    };
    let mut buf = vec![0u8; expected.len() + 1];
    let mut n = 0;
    while n < buf.len() {
      match file.read(&mut buf[n..]) {
        Ok(0) => break,
        Ok(k) => {
          n += k;
          if n < buf.len() {
            break;
          }
        }
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
        Err(_) => return false,
      }
    }
    n == expected.len() && buf[..n] == *expected
  }
  #[cfg(not(unix))]
  {
    let _ = (path, expected);
    false
  }
}

/// Reads at most `kind.max_bytes`; a larger file is an error, never truncated silently.
pub fn read_bounded(path: &Path, kind: &FileKind) -> Result<Option<Vec<u8>>> {
  let Some((file, len)) = open_regular(path, kind)? else {
    return Ok(None);
  };
  read_opened(file, len, path, kind).map(Some)
}

/// Opens `path` for reading (following symlinks) without blocking, and checks with `fstat` that
/// it is a regular file: a FIFO (some secret managers expose files as named pipes) would block
/// the `open` until a writer appears, and its `read` until one writes. `None`: no such file.
/// Returns the file and its size, for `read_opened`.
pub fn open_regular(path: &Path, kind: &FileKind) -> Result<Option<(File, u64)>> {
  let mut options = OpenOptions::new();
  options.read(true);
  #[cfg(unix)]
  {
    use std::os::unix::fs::OpenOptionsExt;
    options.custom_flags(libc::O_NONBLOCK);
  }
  let file = match options.open(path) {
    Ok(f) => f,
    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
    Err(e) => return Err(Error::io(kind.read_code, &format!("cannot open {}", kind.label), path, &e)),
  };
  let meta =
    file.metadata().map_err(|e| Error::io(kind.read_code, &format!("cannot stat {}", kind.label), path, &e))?;
  if !meta.is_file() {
    return Err(not_regular(path, kind, &meta.file_type()));
  }
  #[cfg(unix)]
  clear_nonblocking(&file).map_err(|e| Error::io(kind.read_code, &format!("cannot read {}", kind.label), path, &e))?;
  Ok(Some((file, meta.len())))
}

/// A regular file ignores `O_NONBLOCK` on Linux and macOS, but a FUSE or network file system
/// may see the flag: reads are plain blocking reads, as for any other file.
#[cfg(unix)]
fn clear_nonblocking(file: &File) -> io::Result<()> {
  use std::os::unix::io::AsRawFd;
  let fd = file.as_raw_fd();
  // SAFETY: `fd` is an open descriptor owned by `file`, alive for this call; F_GETFL and
  // F_SETFL only read and set its status flags.
  let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
  if flags < 0 {
    return Err(io::Error::last_os_error());
  }
  // SAFETY: as above.
  if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
    return Err(io::Error::last_os_error());
  }
  Ok(())
}

/// The error for a path that holds something other than a regular file.
pub fn not_regular(path: &Path, kind: &FileKind, file_type: &std::fs::FileType) -> Error {
  Error::new(
    kind.read_code,
    format!(
      "{} {} is not a regular file ({}): only a regular file is read there, and nothing that could block \
       is opened. Replace it with a regular file, or remove it",
      kind.label,
      path.display(),
      describe_type(file_type)
    ),
  )
}

fn describe_type(t: &std::fs::FileType) -> &'static str {
  #[cfg(unix)]
  {
    use std::os::unix::fs::FileTypeExt;
    if t.is_fifo() {
      return "a FIFO";
    }
    if t.is_socket() {
      return "a socket";
    }
    if t.is_char_device() || t.is_block_device() {
      return "a device";
    }
  }
  if t.is_dir() {
    "a directory"
  } else if t.is_symlink() {
    "a symbolic link"
  } else {
    "not a file"
  }
}

/// A file as `open_plain` found it. Not on Unix, `open_plain` answers `Other` only (no
/// `O_NOFOLLOW` to open with), and callers take the general path.
#[cfg_attr(not(unix), allow(dead_code))]
pub enum Opened {
  Missing,
  /// A symlink, not a regular file, or not openable here: the caller takes its general path
  /// (which reports any error).
  Other,
  /// A regular file, opened, with its stamp from the open descriptor and whether `path` is its
  /// only name.
  File {
    file: File,
    stamp: Stamp,
    len: u64,
    single_link: bool,
  },
}

/// Opens `path` for reading without following a final symlink (nor blocking on a FIFO) and
/// `fstat`s the descriptor: two syscalls where `lstat`, `open` and `fstat` would be three. For
/// a caller that expects the file to have changed (else `Stamp::read` alone is cheaper).
pub fn open_plain(path: &Path) -> Opened {
  #[cfg(unix)]
  {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let opened = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path);
    let file = match opened {
      Ok(f) => f,
      Err(e) if e.kind() == io::ErrorKind::NotFound => return Opened::Missing,
      Err(_) => return Opened::Other,
    };
    match file.metadata() {
      Ok(meta) if meta.is_file() => {
        Opened::File { stamp: Stamp::of(&meta), len: meta.len(), single_link: meta.nlink() == 1, file }
      }
      _ => Opened::Other,
    }
  }
  #[cfg(not(unix))]
  {
    let _ = path;
    Opened::Other
  }
}

/// Reads an open file of `len` bytes (as its `fstat` said), at most `kind.max_bytes`: a larger
/// file is an error, never truncated silently. A file no longer than `len` costs one `read`: a
/// regular file's short read is its end, so the usual zero-length read that proves it is
/// skipped.
pub fn read_opened(mut file: File, len: u64, path: &Path, kind: &FileKind) -> Result<Vec<u8>> {
  let err = |e: io::Error| Error::io(kind.read_code, &format!("cannot read {}", kind.label), path, &e);
  let want = len.min(kind.max_bytes) as usize + 1;
  let mut bytes = vec![0u8; want];
  let n = loop {
    match file.read(&mut bytes) {
      Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
      other => break other.map_err(err)?,
    }
  };
  bytes.truncate(n);
  if n == want {
    // It grew since the `fstat`: read the rest, up to the bound.
    file.take(kind.max_bytes + 1 - n as u64).read_to_end(&mut bytes).map_err(err)?;
    if bytes.len() as u64 > kind.max_bytes {
      return Err(too_large(path, kind));
    }
  }
  Ok(bytes)
}

fn too_large(path: &Path, kind: &FileKind) -> Error {
  Error::new(
    kind.too_large_code,
    format!(
      "{} {} is larger than {} MiB, so it is not one Claude Code wrote; move it away (it was left \
       untouched)",
      kind.label,
      path.display(),
      kind.max_bytes / (1024 * 1024)
    ),
  )
}

/// `None`: no such file. `Some(Err(why))`: it does not parse, and has not for a while.
pub type ReadOutcome<T> = Option<std::result::Result<T, String>>;

/// A half-done `writeFile` (truncate, then write) leaves a prefix of the JSON: empty, or cut
/// off. Garbage in the middle, or a whole document of the wrong shape, never comes from one.
/// Judged by `JSON.parse`'s grammar (`js_json`), at any depth.
fn looks_truncated(bytes: &[u8]) -> bool {
  crate::js_json::looks_truncated(bytes)
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
  read_waiting(path, kind, patience, parse, |pause| {
    std::thread::sleep(pause);
    true
  })
}

/// `read_with`, spending each pause between two reads in `wait(pause)` instead of sleeping it.
/// A caller that is told of the file's changes returns as soon as the next one comes (the rest
/// of the torn write has landed) rather than sleeping the whole pause; `wait` must not return
/// early otherwise, or the retries would spin. `wait` returning false ends the retries: the
/// read is returned as it is (a torn document as `Some(Err(why))`).
pub fn read_waiting<T>(
  path: &Path,
  kind: &FileKind,
  patience: Patience,
  parse: impl Fn(&[u8]) -> std::result::Result<T, String>,
  mut wait: impl FnMut(Duration) -> bool,
) -> Result<(ReadOutcome<T>, Option<Stamp>)> {
  let started = std::time::Instant::now();
  let mut pause = READ_RETRY_FIRST_PAUSE;
  loop {
    let before = Stamp::read(path, kind)?;
    let Some(bytes) = read_bounded(path, kind)? else {
      return Ok((None, None));
    };
    let parsed = parse(&bytes);
    let after = Stamp::read(path, kind)?;
    let steady = if before.is_some() && before == after { before } else { None };
    let settled = steady.is_some_and(|s| s.age_ns() > patience.settle.as_nanos() as i128);
    if parsed.is_err() && !settled && started.elapsed() < patience.budget && looks_truncated(&bytes) && wait(pause) {
      pause = (pause * 2).min(READ_RETRY_MAX_PAUSE);
      continue;
    }
    return Ok((Some(parsed), steady));
  }
}

#[cfg(test)]
pub(crate) mod tests {
  use super::*;
  use crate::error::ErrorCode;
  use std::fs;

  const TEST_FILE: FileKind = FileKind {
    label: "the test file",
    max_bytes: 64,
    read_code: ErrorCode::CacheRead,
    too_large_code: ErrorCode::CacheTooLarge,
  };

  /// Any JSON object; anything else is corrupt.
  fn object(bytes: &[u8]) -> std::result::Result<serde_json::Map<String, serde_json::Value>, String> {
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
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
  fn missing_is_none_and_too_large_is_the_kinds_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("f.json");
    assert!(read_with(&path, &TEST_FILE, Patience::READER, object).expect("read").0.is_none());
    fs::write(&path, vec![b' '; 65]).expect("write");
    let err = read_with(&path, &TEST_FILE, Patience::READER, object).expect_err("too large");
    assert_eq!(err.code, ErrorCode::CacheTooLarge);
    assert!(err.message.starts_with("the test file "), "{}", err.message);
  }

  #[cfg(unix)]
  #[test]
  fn open_plain_tells_files_links_and_missing_apart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("f.json");
    assert!(matches!(open_plain(&path), Opened::Missing));
    fs::write(&path, b"{\"a\":1}").expect("write");
    let Opened::File { file, stamp, len, single_link } = open_plain(&path) else { panic!("a regular file") };
    assert!(single_link);
    assert_eq!(Some(stamp), Stamp::read(&path, &TEST_FILE).expect("stat"));
    assert_eq!(read_opened(file, len, &path, &TEST_FILE).expect("read"), b"{\"a\":1}");
    fs::hard_link(&path, dir.path().join("other")).expect("link");
    assert!(matches!(open_plain(&path), Opened::File { single_link: false, .. }), "a second name");
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(&path, &link).expect("symlink");
    assert!(matches!(open_plain(&link), Opened::Other), "a symlink is not followed");
    assert!(matches!(open_plain(dir.path()), Opened::Other), "a directory");
  }

  #[cfg(unix)]
  #[test]
  fn read_opened_reads_what_grew_after_the_fstat_and_keeps_the_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("f.json");
    fs::write(&path, b"{}").expect("write");
    let Opened::File { file, .. } = open_plain(&path) else { panic!("a regular file") };
    fs::write(&path, b"{\"grown\":true}").expect("grow in place");
    // As if the `fstat` had seen 2 bytes: the rest is still read.
    assert_eq!(read_opened(file, 2, &path, &TEST_FILE).expect("read"), b"{\"grown\":true}");
    let Opened::File { file, .. } = open_plain(&path) else { panic!("a regular file") };
    fs::write(&path, vec![b' '; 65]).expect("too large");
    let err = read_opened(file, 2, &path, &TEST_FILE).expect_err("over the bound");
    assert_eq!(err.code, ErrorCode::CacheTooLarge);
  }

  /// A real FIFO at `path`, as `mkfifo` makes one.
  #[cfg(unix)]
  pub(crate) fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("no NUL");
    // SAFETY: `c` is a NUL-terminated path that lives across the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", path.display());
  }

  #[cfg(unix)]
  #[test]
  fn holds_exactly_is_true_only_for_the_same_bytes_and_never_blocks_on_a_fifo() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("c.json");
    std::fs::write(&file, b"{\"a\":1}").unwrap();
    assert!(holds_exactly(&file, b"{\"a\":1}"));
    assert!(!holds_exactly(&file, b"{\"a\":2}"), "other bytes");
    assert!(!holds_exactly(&file, b"{\"a\":1"), "longer than expected");
    assert!(!holds_exactly(&file, b"{\"a\":1} "), "shorter than expected");
    assert!(!holds_exactly(&d.path().join("missing"), b""), "missing");
    assert!(!holds_exactly(d.path(), b""), "a directory");
    let fifo = d.path().join("fifo");
    mkfifo(&fifo);
    assert!(!holds_exactly(&fifo, b"x"), "a FIFO without a writer: at once, and not the bytes");
  }

  #[cfg(unix)]
  #[test]
  fn a_fifo_is_an_error_naming_it_and_never_blocks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("f.json");
    mkfifo(&path);
    // No writer ever opens it: a blocking open or read would hang this test.
    let err = read_with(&path, &TEST_FILE, Patience::READER, object).expect_err("a FIFO");
    assert_eq!(err.code, ErrorCode::CacheRead);
    assert!(err.message.contains(&path.display().to_string()), "{}", err.message);
    assert!(err.message.contains("is not a regular file (a FIFO)"), "{}", err.message);
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(&path, &link).expect("symlink");
    let err = read_bounded(&link, &TEST_FILE).expect_err("a link to a FIFO");
    assert!(err.message.contains("(a FIFO)"), "{}", err.message);
    let err = read_bounded(dir.path(), &TEST_FILE).expect_err("a directory");
    assert!(err.message.contains("(a directory)"), "{}", err.message);
  }

  #[cfg(unix)]
  #[test]
  fn a_regular_file_is_read_with_blocking_reads() {
    use std::os::unix::io::AsRawFd;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("f.json");
    fs::write(&path, b"{}").expect("write");
    let (file, len) = open_regular(&path, &TEST_FILE).expect("open").expect("exists");
    assert_eq!(len, 2);
    // SAFETY: a live descriptor owned by `file`; F_GETFL only reads its flags.
    let flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
    assert_eq!(flags & libc::O_NONBLOCK, 0);
  }

  #[test]
  fn a_torn_read_is_retried_when_wait_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("f.json");
    fs::write(&path, b"{\"a\":").expect("truncated");
    let mut pauses = Vec::new();
    let (outcome, _) = read_waiting(&path, &TEST_FILE, Patience::READER, object, |pause| {
      // The rest of the write lands, and its notification ends the pause at once.
      pauses.push(pause);
      fs::write(&path, b"{\"a\":1}").expect("write");
      true
    })
    .expect("read");
    assert!(outcome.expect("exists").expect("parses").contains_key("a"));
    assert_eq!(pauses, vec![READ_RETRY_FIRST_PAUSE], "one pause, ended by the write");
  }

  #[test]
  fn a_steady_file_is_read_with_its_stamp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("f.json");
    fs::write(&path, b"{\"a\":1}").expect("write");
    let (outcome, stamp) = read_with(&path, &TEST_FILE, Patience::READER, object).expect("read");
    assert!(outcome.expect("exists").expect("parses").contains_key("a"));
    assert_eq!(stamp, Stamp::read(&path, &TEST_FILE).expect("stat"));
  }
}
