//! The atomic write, moving a corrupt file aside, and clearing the temp files of dead writers.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::parent_dir::parent_dir;
use crate::error::{Error, ErrorCode, Result};

/// Replaces `path` with `bytes` atomically and durably: the temp file is fsynced before it is
/// renamed over `path`, and the directory after, so at any crash point the file is the old
/// document or the new one. A regular file keeps its mode; a new file (or one replacing a
/// symlink, which is replaced, never written through) gets 0600. Call with the lock held. The
/// caller must not memoise `bytes` as the file's contents: Claude Code's unlocked `writeFile`
/// may land right after the rename (see `needs_auth::forget_memo`).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
  let tmp = TempFile::write(path, bytes)?;
  tmp.file.as_file().sync_all().map_err(|e| write_err("cannot fsync", tmp.file.path(), &e))?;
  let replaced = tmp.rename()?;
  sync_dir(&replaced.dir).map_err(|e| write_err("cannot fsync the directory", &replaced.dir, &e))?;
  remove_orphaned_temps(&replaced.dir, &replaced.tmp_prefix);
  Ok(())
}

/// `write_atomic` for a caller that must announce the change as soon as every reader can see
/// it: returns once the new document is renamed into place, before anything is fsynced. The
/// caller then announces it and calls [`Visible::make_durable`], still holding the lock, so
/// that the change is durable before the next write of this library (which waits for the
/// lock) starts. Crash semantics until then: on a crash of this process nothing is lost (the
/// page cache holds the new file); on a crash of the machine the rename may be undone (the
/// old document is back), or, on a file system that does not order a rename after the data of
/// the file renamed (ext4 does, by its `auto_da_alloc` default; XFS does not), the file may be
/// found empty, which every reader takes as a cache with no entries (Claude Code reads it as
/// `{}`; this library waits it out as a torn write, then counts it corrupt and moves it aside
/// on the next write). Either way no entry is made up: at worst entries are lost, and a lost
/// needs-auth entry only means Claude Code tries the server again.
pub fn write_visible(path: &Path, bytes: &[u8]) -> Result<Visible> {
  let tmp = TempFile::write(path, bytes)?;
  // The file being replaced, held open across the rename: the rename then only unlinks it, and
  // its inode is freed when `make_durable` closes it (freeing it inside the rename cost ~0.1 ms,
  // most of the rename, on ext4). Best effort; not on Windows, where an open file may refuse
  // to be replaced.
  let replaced = hold_open(path);
  // The directory the rename happens in, held open so that `make_durable` fsyncs that one even
  // if its path is renamed away or removed meanwhile (a subscriber acting on the announcement
  // may do just that). Best effort: else it is opened by path then.
  let dir = hold_open_dir(parent_dir(path));
  let mut visible = tmp.rename()?;
  visible.replaced = replaced;
  visible.dir_file = dir;
  Ok(visible)
}

/// `path` opened for reading and never read, or `None`. Non-blocking: whatever is there now may
/// not be what was read (a FIFO put in its place would block a plain `open`).
#[cfg(unix)]
fn hold_open(path: &Path) -> Option<fs::File> {
  use std::os::unix::fs::OpenOptionsExt;
  fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW).open(path).ok()
}

#[cfg(not(unix))]
fn hold_open(_path: &Path) -> Option<fs::File> {
  None
}

/// The directory `dir`, opened to be fsynced later, or `None`. Non-blocking and a directory
/// only, for the same reason as `hold_open`.
#[cfg(unix)]
fn hold_open_dir(dir: &Path) -> Option<fs::File> {
  use std::os::unix::fs::OpenOptionsExt;
  fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_DIRECTORY).open(dir).ok()
}

#[cfg(not(unix))]
fn hold_open_dir(_dir: &Path) -> Option<fs::File> {
  None
}

/// A replacement renamed into place, not yet durable (see [`write_visible`]).
#[must_use = "the write is not durable until make_durable is called"]
pub struct Visible {
  file: fs::File,
  /// The file it replaced, held open until then (see `write_visible`).
  replaced: Option<fs::File>,
  /// Its directory, held open until then (see `write_visible`).
  dir_file: Option<fs::File>,
  path: PathBuf,
  dir: PathBuf,
  tmp_prefix: String,
}

impl Visible {
  /// Fsyncs the file (now at its final name) and its directory. Call with the lock held.
  pub fn make_durable(self) -> Result<()> {
    self.file.sync_all().map_err(|e| write_err("cannot fsync", &self.path, &e))?;
    let synced = match &self.dir_file {
      Some(dir) => dir.sync_all(),
      None => sync_dir(&self.dir),
    };
    synced.map_err(|e| write_err("cannot fsync the directory", &self.dir, &e))?;
    // Last: freeing the replaced file's inode is CPU work the subscribers' threads, just woken
    // by the announcement, would otherwise wait behind on a busy machine.
    drop(self.replaced);
    remove_orphaned_temps(&self.dir, &self.tmp_prefix);
    Ok(())
  }
}

fn write_err(what: &str, p: &Path, e: &io::Error) -> Error {
  Error::io(ErrorCode::CacheWrite, what, p, e)
}

/// The new document in a temp file beside `path`, with the mode `path` keeps.
struct TempFile {
  file: tempfile::NamedTempFile,
  path: PathBuf,
  tmp_prefix: String,
}

impl TempFile {
  fn write(path: &Path, bytes: &[u8]) -> Result<TempFile> {
    let dir = parent_dir(path);
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp_prefix = format!(".{file_name}.tmp-");
    let mut file = tempfile::Builder::new()
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
      file
        .as_file()
        .set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|e| write_err("cannot set the mode of", file.path(), &e))?;
    }
    file.write_all(bytes).map_err(|e| write_err("cannot write", file.path(), &e))?;
    Ok(TempFile { file, path: path.to_path_buf(), tmp_prefix })
  }

  /// Renames it over `path`. The temp files of dead writers are cleared after, by whoever
  /// makes the write durable: off the path to the rename, and still under the lock.
  fn rename(self) -> Result<Visible> {
    let TempFile { file, path, tmp_prefix } = self;
    let file = file.persist(&path).map_err(|e| write_err("cannot rename the temp file over", &path, &e.error))?;
    let dir = parent_dir(&path).to_path_buf();
    Ok(Visible { file, replaced: None, dir_file: None, path, dir, tmp_prefix })
  }
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

  #[cfg(unix)]
  #[test]
  fn a_visible_write_is_made_durable_even_once_its_directory_was_renamed_away() {
    let base = tempfile::tempdir().expect("tempdir");
    let dir = base.path().join("profile");
    fs::create_dir(&dir).expect("mkdir");
    let visible = write_visible(&dir.join("c.json"), b"{}").expect("visible");
    // A subscriber acting on the announcement switches profiles before the fsyncs.
    fs::rename(&dir, base.path().join("away")).expect("mv");
    visible.make_durable().expect("durable: the directory the rename happened in is fsynced");
  }

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

  #[test]
  fn a_visible_write_can_be_read_before_it_is_made_durable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.json");
    fs::write(&path, b"{\"old\":1}").expect("write");
    let orphan = dir.path().join(".c.json.tmp-dead02");
    fs::write(&orphan, b"{\"half").expect("orphan");
    let written = write_visible(&path, b"{}").expect("write");
    assert_eq!(fs::read(&path).expect("read"), b"{}", "renamed into place at once");
    written.make_durable().expect("durable");
    assert_eq!(fs::read(&path).expect("read"), b"{}");
    assert!(!orphan.exists(), "dead writers' temp files are cleared too");
    let temps = fs::read_dir(dir.path()).expect("ls").filter(|e| e.is_ok()).count();
    assert_eq!(temps, 1, "nothing left beside the file");
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
