//! This thread's last config dir resolution (`config_dir::LastResolution`): checks resolve the
//! same options over and over, and an unchanged environment then costs no normalising, home-dir
//! lookup or allocation.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mcp_needs_auth_core::config_dir::LastResolution;
use mcp_needs_auth_core::error::Result;

thread_local! {
  /// Per thread, so that the hot path takes no lock: a Node worker resolves on its own thread.
  static LAST: RefCell<LastResolution> = const { RefCell::new(LastResolution::new()) };
}

/// `config_dir::resolve`, from this thread's last resolution when it still holds.
pub(crate) fn resolve(override_dir: Option<&str>) -> Result<PathBuf> {
  LAST.with_borrow(|last| last.resolve(override_dir))
}

/// `resolve` and `config_dir::cache_path` in one, remembered for this thread's next call.
pub(crate) fn resolve_cache_path(override_dir: Option<&str>) -> Result<Arc<Path>> {
  LAST.with_borrow_mut(|last| last.resolve_cache_path(override_dir))
}
