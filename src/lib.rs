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
pub mod process_state;
pub mod server_config;
pub mod server_rules;
pub mod staleness;
pub mod watcher;

// The bindings need a Node process; unit tests exercise the core alone.
#[cfg(not(test))]
mod bindings;
