//! mcp-needs-auth: safe, exact control over Claude Code's MCP needs-auth cache.
//!
//! The core modules know nothing of Node; `bindings` is the one thin napi layer over them.
#![deny(clippy::unwrap_used)]

pub mod cache_file;
pub mod cache_read;
pub mod change_notice;
pub mod clock;
pub mod config_dir;
pub mod credentials;
pub mod diagnose;
pub mod duration;
pub mod error;
pub mod event_bus;
pub mod events;
pub mod fs;
pub mod needs_auth;
pub mod server_config;
pub mod server_rules;
pub mod staleness;
pub mod watcher;

// The bindings need a Node process; unit tests exercise the core alone.
#[cfg(not(test))]
mod bindings;

/// Locks a process-wide map or setting. A panic while one was held cannot leave it half
/// updated (each change is a single insert, remove or assignment), so a poisoned lock is
/// still good to use rather than a reason to fail every later call.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
  m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
