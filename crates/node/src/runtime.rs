//! The one `Runtime` of this process.

use std::sync::OnceLock;

use mcp_needs_auth_core::runtime::Runtime;

/// Process-wide because what it holds is: `invalidateNeedsAuth` anywhere in the process (any
/// copy of the module, any worker thread) must reach every `onAuthChanged` subscriber, two
/// subscribers of one store must share one watcher, a write by any caller must not be reported
/// to this process's watchers as another process's, and the inotify instances are one per-user
/// budget. Made on first use, never dropped.
static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The process's runtime. On the hot path: one atomic load once it exists.
pub(crate) fn runtime() -> &'static Runtime {
  RUNTIME.get_or_init(Runtime::new)
}
