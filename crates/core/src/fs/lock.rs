//! The sidecar lock: an exclusive advisory lock on `<file>.lock`, never on the data file itself,
//! which every write replaces by a rename (a lock on the old inode would guard nothing).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use super::parent_dir;
use crate::error::{Error, ErrorCode, Result};

/// An exclusive advisory lock on `<path>.lock`, released on drop (and by the OS if the holder
/// dies, even by SIGKILL).
pub struct FileLock {
  file: File,
}

impl FileLock {
  pub fn acquire(data_path: &Path) -> Result<FileLock> {
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
    // std's own `File::lock` (Rust 1.89+) would shadow the trait method: name fs4's explicitly.
    fs4::FileExt::lock(&file).map_err(|e| Error::io(ErrorCode::CacheWrite, "cannot lock", &lock_path, &e))?;
    Ok(FileLock { file })
  }

  /// The lock for a reader that must not create anything: `None` when there is no lock file
  /// (then no writer of this library holds it). A directory being removed (`rm -rf`) must not
  /// get a lock file back, which would make its removal fail.
  pub fn acquire_existing(data_path: &Path) -> Result<Option<FileLock>> {
    let lock_path = lock_path(data_path);
    let mut options = OpenOptions::new();
    options.read(true).write(true);
    no_follow(&mut options);
    let file = match options.open(&lock_path) {
      Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
      opened => checked(opened, &lock_path, ErrorCode::CacheRead)?,
    };
    fs4::FileExt::lock(&file).map_err(|e| Error::io(ErrorCode::CacheRead, "cannot lock", &lock_path, &e))?;
    Ok(Some(FileLock { file }))
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
    let _lock = FileLock::acquire(&path).expect("lock");
    let mode = fs::metadata(lock_path(&path)).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
  }

  #[test]
  fn a_symlink_at_the_lock_path_is_an_error_and_nothing_is_created_or_locked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cache.json");
    let dangling = outside.path().join("made-by-the-lock");
    std::os::unix::fs::symlink(&dangling, lock_path(&path)).expect("symlink");
    for err in [FileLock::acquire(&path).err(), FileLock::acquire_existing(&path).err()] {
      let err = err.expect("refused");
      assert!(err.message.contains("is a symbolic link"), "{}", err.message);
      assert!(err.message.contains(&lock_path(&path).display().to_string()), "{}", err.message);
    }
    assert!(!dangling.exists(), "nothing created outside");
    let target = outside.path().join(".credentials.json");
    fs::write(&target, b"{}").expect("write");
    fs::remove_file(lock_path(&path)).expect("rm");
    std::os::unix::fs::symlink(&target, lock_path(&path)).expect("symlink");
    assert_eq!(FileLock::acquire(&path).err().map(|e| e.code), Some(ErrorCode::CacheWrite));
    let other = File::open(&target).expect("open");
    assert!(fs4::FileExt::try_lock(&other).is_ok(), "the target is not locked");
  }

  #[test]
  fn a_fifo_at_the_lock_path_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cache.json");
    crate::fs::read::tests::mkfifo(&lock_path(&path));
    let err = FileLock::acquire(&path).err().expect("refused");
    assert!(err.message.contains("is not a regular file"), "{}", err.message);
  }
}
