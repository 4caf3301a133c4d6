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
    // The config dir is made only when it is missing: not a `mkdir` and a `stat` on every write.
    let file = match options.open(&lock_path) {
      Err(e) if e.kind() == io::ErrorKind::NotFound => {
        let dir = parent_dir(data_path);
        fs::create_dir_all(dir)
          .map_err(|e| Error::io(ErrorCode::CacheWrite, "cannot create the config dir", dir, &e))?;
        options.open(&lock_path)
      }
      opened => opened,
    }
    .map_err(|e| Error::io(ErrorCode::CacheWrite, "cannot open the lock file", &lock_path, &e))?;
    // std's own `File::lock` (Rust 1.89+) would shadow the trait method: name fs4's explicitly.
    fs4::FileExt::lock(&file).map_err(|e| Error::io(ErrorCode::CacheWrite, "cannot lock", &lock_path, &e))?;
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
}
