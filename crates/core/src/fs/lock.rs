//! The sidecar lock: an exclusive advisory lock on `<file>.lock`, never on the data file itself,
//! which every write replaces by a rename (a lock on the old inode would guard nothing).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::parent_dir::parent_dir;
use crate::error::{Error, ErrorCode, Result};

/// How long a write waits for another process's lock by default (`lockTimeoutMs`): far longer
/// than any write of this library or Claude Code holds it (milliseconds), short enough that a
/// stopped process or a hung network file system is reported rather than waited on for good.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(10);

/// Pauses between two tries of a lock another process holds: short at first (a write holds it
/// for a millisecond or two), doubling to 1 ms. Not longer: a writer that releases the lock and
/// takes it again at once for its next write (as a busy writer does) leaves it free for
/// microseconds, and a waiter that looks only every few milliseconds can miss every such window
/// for seconds while 16 processes write (a blocking `flock` is woken at once instead). A thousand
/// wake-ups a second, only while another process holds the lock.
const LOCK_RETRY_FIRST_PAUSE: Duration = Duration::from_micros(50);
const LOCK_RETRY_MAX_PAUSE: Duration = Duration::from_millis(1);

/// An exclusive advisory lock on `<path>.lock`, released on drop (and by the OS if the holder
/// dies, even by SIGKILL).
pub struct FileLock {
  file: File,
}

impl FileLock {
  /// Waits at most `wait` for another process to release it, then fails with
  /// `ERR_LOCK_TIMEOUT` naming the lock file.
  pub fn acquire(data_path: &Path, wait: Duration) -> Result<FileLock> {
    let lock_path = lock_path(data_path);
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
      use std::os::unix::fs::OpenOptionsExt;
      options.mode(0o600);
    }
    no_follow(&mut options);
    // The config dir is made only when it is missing: not a `mkdir` and a `stat` on every write.
    let file = match options.open(&lock_path) {
      Err(e) if e.kind() == io::ErrorKind::NotFound => {
        let dir = parent_dir(data_path);
        fs::create_dir_all(dir)
          .map_err(|e| Error::io(ErrorCode::CacheWrite, "cannot create the config dir", dir, &e))?;
        options.open(&lock_path)
      }
      opened => opened,
    };
    let file = checked(file, &lock_path, ErrorCode::CacheWrite)?;
    lock_within(&file, &lock_path, wait, ErrorCode::CacheWrite)?;
    Ok(FileLock { file })
  }

  /// The lock for a reader that must not create anything: `None` when there is no lock file
  /// (then no writer of this library holds it). A directory being removed (`rm -rf`) must not
  /// get a lock file back, which would make its removal fail. Waits at most
  /// `DEFAULT_LOCK_WAIT`, as a write does.
  pub fn acquire_existing(data_path: &Path) -> Result<Option<FileLock>> {
    let lock_path = lock_path(data_path);
    let mut options = OpenOptions::new();
    options.read(true).write(true);
    no_follow(&mut options);
    let file = match options.open(&lock_path) {
      Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
      opened => checked(opened, &lock_path, ErrorCode::CacheRead)?,
    };
    lock_within(&file, &lock_path, DEFAULT_LOCK_WAIT, ErrorCode::CacheRead)?;
    Ok(Some(FileLock { file }))
  }
}

/// Takes the lock, trying again with growing pauses while another process holds it, for at
/// most `wait`. A blocking `flock` cannot be bounded short of a signal or a thread left
/// behind; `try_lock` can. `code` names an I/O failure of the lock itself.
fn lock_within(file: &File, lock_path: &Path, wait: Duration, code: ErrorCode) -> Result<()> {
  let started = Instant::now();
  let mut pause = LOCK_RETRY_FIRST_PAUSE;
  loop {
    // std's own `File::try_lock` (Rust 1.89+) would shadow the trait method: name fs4's.
    match fs4::FileExt::try_lock(file) {
      Ok(()) => return Ok(()),
      Err(fs4::TryLockError::WouldBlock) => {}
      Err(fs4::TryLockError::Error(e)) => return Err(Error::io(code, "cannot lock", lock_path, &e)),
    }
    let waited = started.elapsed();
    if waited >= wait {
      return Err(Error::new(
        ErrorCode::LockTimeout,
        format!(
          "waited {} ms for the lock {}, which another process holds (a stopped process, a hung network \
           file system?); nothing was changed. Retry later, find the holder (fuser or lsof on that path), \
           or wait longer with options.lockTimeoutMs (default {} ms)",
          wait.as_millis(),
          lock_path.display(),
          DEFAULT_LOCK_WAIT.as_millis()
        ),
      ));
    }
    std::thread::sleep(pause.min(wait - waited));
    pause = (pause * 2).min(LOCK_RETRY_MAX_PAUSE);
  }
}

/// The lock file is opened where it is, never through a symlink: a link there (dangling, or
/// to `.credentials.json`) would have this library create a file outside the config dir, or
/// lock the credentials file. Nor can the open block (a FIFO put there).
fn no_follow(options: &mut OpenOptions) {
  #[cfg(unix)]
  {
    use std::os::unix::fs::OpenOptionsExt;
    options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
  }
  #[cfg(windows)]
  {
    use std::os::windows::fs::OpenOptionsExt;
    // FILE_FLAG_OPEN_REPARSE_POINT: open a symlink itself, not its target (`checked` then
    // refuses it).
    options.custom_flags(0x0020_0000);
  }
}

/// The opened lock file, or the error that names it: a symlink or anything but a regular file
/// there is refused, as the open found it.
fn checked(opened: io::Result<File>, lock_path: &Path, code: ErrorCode) -> Result<File> {
  let link = || {
    Error::new(
      code,
      format!(
        "the lock file {} is a symbolic link: the lock is never taken through one (it could create \
         or lock a file outside the config dir). Remove the link; the next write makes a plain lock file",
        lock_path.display()
      ),
    )
  };
  let is_link = || fs::symlink_metadata(lock_path).is_ok_and(|m| m.file_type().is_symlink());
  let file = match opened {
    Ok(f) => f,
    // ELOOP from O_NOFOLLOW (EMLINK on some BSDs): ask the path rather than the errno.
    Err(_) if is_link() => return Err(link()),
    Err(e) => return Err(Error::io(code, "cannot open the lock file", lock_path, &e)),
  };
  let file_type = file.metadata().map_err(|e| Error::io(code, "cannot stat the lock file", lock_path, &e))?.file_type();
  if file_type.is_symlink() {
    return Err(link());
  }
  if !file_type.is_file() {
    return Err(Error::new(
      code,
      format!(
        "the lock file {} is not a regular file: remove it; the next write makes a plain lock file",
        lock_path.display()
      ),
    ));
  }
  Ok(file)
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

#[cfg(all(test, unix))]
mod tests {
  use super::*;

  #[test]
  fn the_lock_file_and_its_dir_are_created_with_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sub/dir/cache.json");
    let _lock = FileLock::acquire(&path, DEFAULT_LOCK_WAIT).expect("lock");
    let mode = fs::metadata(lock_path(&path)).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
  }

  #[test]
  fn a_lock_held_elsewhere_is_waited_for_within_the_bound_then_a_coded_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cache.json");
    let held = FileLock::acquire(&path, DEFAULT_LOCK_WAIT).expect("lock");
    // Another open file description, as another process would have: flock excludes it.
    let err = FileLock::acquire(&path, Duration::from_millis(50)).err().expect("timed out");
    assert_eq!(err.code, ErrorCode::LockTimeout);
    assert!(err.message.contains(&lock_path(&path).display().to_string()), "{}", err.message);
    assert!(err.message.starts_with("waited 50 ms"), "{}", err.message);
    let release = std::thread::spawn(move || {
      std::thread::sleep(Duration::from_millis(100));
      drop(held);
    });
    FileLock::acquire(&path, DEFAULT_LOCK_WAIT).expect("got it once released");
    release.join().expect("join");
  }

  #[test]
  fn a_symlink_at_the_lock_path_is_an_error_and_nothing_is_created_or_locked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cache.json");
    let dangling = outside.path().join("made-by-the-lock");
    std::os::unix::fs::symlink(&dangling, lock_path(&path)).expect("symlink");
    for err in [FileLock::acquire(&path, DEFAULT_LOCK_WAIT).err(), FileLock::acquire_existing(&path).err()] {
      let err = err.expect("refused");
      assert!(err.message.contains("is a symbolic link"), "{}", err.message);
      assert!(err.message.contains(&lock_path(&path).display().to_string()), "{}", err.message);
    }
    assert!(!dangling.exists(), "nothing created outside");
    let target = outside.path().join(".credentials.json");
    fs::write(&target, b"{}").expect("write");
    fs::remove_file(lock_path(&path)).expect("rm");
    std::os::unix::fs::symlink(&target, lock_path(&path)).expect("symlink");
    assert_eq!(FileLock::acquire(&path, DEFAULT_LOCK_WAIT).err().map(|e| e.code), Some(ErrorCode::CacheWrite));
    let other = File::open(&target).expect("open");
    assert!(fs4::FileExt::try_lock(&other).is_ok(), "the target is not locked");
  }

  #[test]
  fn a_fifo_at_the_lock_path_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cache.json");
    crate::fs::read::tests::mkfifo(&lock_path(&path));
    let err = FileLock::acquire(&path, DEFAULT_LOCK_WAIT).err().expect("refused");
    assert!(err.message.contains("is not a regular file"), "{}", err.message);
  }
}
