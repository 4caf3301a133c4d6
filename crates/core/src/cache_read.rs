//! The needs-auth cache file read from disk, as Claude Code reads it: bounded, and waiting out a
//! half-done `writeFile` (see `fs::read_with`). The format is `cache_file`'s; the I/O is `fs`'s.

use std::path::Path;
use std::sync::Arc;

use crate::cache_file::{self, Document, Parsed, MAX_CACHE_BYTES};
use crate::error::{ErrorCode, Result};
use crate::fs::{self, FileKind, Patience, Stamp};

/// The cache file, for `fs`'s reads: its size limit and error codes.
pub const CACHE_FILE: FileKind = FileKind {
  label: "the needs-auth cache",
  max_bytes: MAX_CACHE_BYTES,
  read_code: ErrorCode::CacheRead,
  too_large_code: ErrorCode::CacheTooLarge,
};

/// A file's contents as read.
#[derive(Debug)]
pub enum Contents {
  Missing,
  /// With the bytes it was parsed from, when asked to keep them.
  Document(Arc<Document>, Option<Vec<u8>>),
  /// Not JSON, or not an object: Claude Code reads it as `{}`.
  Corrupt,
}

/// The cache file, read as Claude Code reads it (see `fs::read_with`). With `keep`, the bytes
/// are kept beside the document. When they are `known`'s, `known`'s document is the file's
/// (the same bytes parse to the same document), and they are not parsed again.
pub fn read(
  path: &Path,
  patience: Patience,
  keep: bool,
  known: Option<(&[u8], &Arc<Document>)>,
) -> Result<(Contents, Option<Stamp>)> {
  let (outcome, stamp) = fs::read_with(path, &CACHE_FILE, patience, |bytes| {
    let doc = match known {
      Some((same, doc)) if same == bytes => Arc::clone(doc),
      _ => match cache_file::parse(bytes) {
        Parsed::Document(d) => Arc::new(d),
        Parsed::Corrupt(why) => return Err(why),
      },
    };
    Ok((doc, keep.then(|| bytes.to_vec())))
  })?;
  let contents = match outcome {
    None => Contents::Missing,
    Some(Ok((doc, bytes))) => Contents::Document(doc, bytes),
    Some(Err(_)) => Contents::Corrupt,
  };
  Ok((contents, stamp))
}

/// The cache file's stamp, or `None` when it does not exist.
pub fn stamp(path: &Path) -> Result<Option<Stamp>> {
  Stamp::read(path, &CACHE_FILE)
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::fs::{write_atomic, FileLock};
  use std::fs;
  use std::time::Duration;

  #[test]
  fn write_then_read_round_trips_with_mode_0600() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sub/dir/cache.json");
    let _lock = FileLock::acquire(&path, crate::fs::DEFAULT_LOCK_WAIT).expect("lock");
    write_atomic(&path, br#"{"a":{"timestamp":1}}"#).expect("write");
    match read(&path, Patience::READER, false, None).expect("read").0 {
      Contents::Document(d, _) => assert!(d.contains_key("a")),
      other => panic!("unexpected {other:?}"),
    }
    #[cfg(unix)]
    {
      use std::os::unix::fs::PermissionsExt;
      let mode = |p: &Path| fs::metadata(p).expect("stat").permissions().mode() & 0o777;
      assert_eq!(mode(&path), 0o600);
      assert_eq!(mode(&crate::fs::lock_path(&path)), 0o600);
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
    let err = read(&path, Patience::READER, false, None).expect_err("too large");
    assert_eq!(err.code, ErrorCode::CacheTooLarge);
    assert!(err.message.contains(&path.display().to_string()));
    assert!(err.message.contains("larger than 1 MiB"), "{}", err.message);
    assert_eq!(fs::read(&path).expect("read"), big);
  }

  /// Moving it aside on request: `fs::write`'s `a_corrupt_file_is_moved_aside_and_kept`.
  #[test]
  fn corrupt_is_reported_after_retries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.json");
    fs::write(&path, b"{nope").expect("write");
    assert!(matches!(read(&path, Patience::READER, false, None).expect("read").0, Contents::Corrupt));
    assert_eq!(fs::read(&path).expect("kept"), b"{nope", "a read leaves it as it is");
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
    match read(&path, Patience::WRITER, false, None).expect("read").0 {
      Contents::Document(d, _) => assert!(d.contains_key("cc")),
      other => panic!("a writer must wait for the write to land, got {other:?}"),
    }
    writer.join().expect("join");
  }
}
