//! What kind of file a primitive of `fs` reads: the one thing they know of a file's meaning.

use crate::error::ErrorCode;

/// What kind of file is read: its size limit and how its errors are named.
pub struct FileKind {
  pub label: &'static str,
  pub max_bytes: u64,
  pub read_code: ErrorCode,
  pub too_large_code: ErrorCode,
}
