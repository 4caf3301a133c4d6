//! File stamps: identity and version of a file as `stat` sees it.

use std::fs;
use std::io;
use std::path::Path;

use super::file_kind::FileKind;
use crate::clock;
use crate::error::{Error, Result};

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
    let modified_ns = meta.modified().map_or(0, clock::ns_since_epoch);
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
    clock::now_ns() - self.modified_ns
  }

  /// The stamp of `path` (followed through symlinks), or `None` when it does not exist.
  pub fn read(path: &Path, kind: &FileKind) -> Result<Option<Stamp>> {
    match fs::metadata(path) {
      Ok(meta) => Ok(Some(Stamp::of(&meta))),
      Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
      Err(e) => Err(Error::io(kind.read_code, &format!("cannot stat {}", kind.label), path, &e)),
    }
  }

  /// Modification time in ms since the epoch.
  pub fn modified_ms(&self) -> f64 {
    (self.modified_ns / 1_000_000) as f64
  }
}
