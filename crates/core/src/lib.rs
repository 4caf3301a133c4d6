//! mcp-needs-auth-core: safe, exact control over Claude Code's MCP needs-auth cache.
//!
//! This crate knows nothing of Node: `crates/node` is the one thin napi layer over it, and
//! `cargo test` exercises it alone.

mod auto_invalidate;
pub mod cache_file;
mod cache_read;
mod change_notice;
pub mod clock;
pub mod config_dir;
pub mod credentials;
pub mod diagnose;
pub mod duration;
pub mod error;
pub mod event_bus;
pub mod events;
mod fs;
mod js_json;
mod mutex;
pub mod needs_auth;
mod own_writes;
pub mod runtime;
pub mod server_config;
pub mod server_rules;
pub mod staleness;
pub mod watch_mode;
mod watcher;
