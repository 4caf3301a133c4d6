//! The directory a file lives in: where its lock, its temp file and its fsync go.

use std::path::Path;

/// The directory a file lives in (`.` for a bare file name).
pub(super) fn parent_dir(path: &Path) -> &Path {
  match path.parent() {
    Some(p) if !p.as_os_str().is_empty() => p,
    _ => Path::new("."),
  }
}
