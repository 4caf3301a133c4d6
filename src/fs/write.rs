//! The atomic write, moving a corrupt file aside, and clearing the temp files of dead writers.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::parent_dir;
use crate::error::{Error, ErrorCode, Result};

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
  tmp.persist(path).map_err(|e| write_err("cannot rename the temp file over", path, &e.error))?;
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
  fs::File::open(dir)?.sync_all()
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
  fn a_corrupt_file_is_moved_aside_and_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.json");
    fs::write(&path, b"{nope").expect("write");
    let aside = move_aside(&path, 42).expect("aside");
    assert_eq!(fs::read(&aside).expect("kept"), b"{nope");
    assert!(!path.exists());
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
