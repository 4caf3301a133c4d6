//! mcp-needs-auth-core: safe, exact control over Claude Code's MCP needs-auth cache.
//!
//! This crate knows nothing of Node: `crates/node` is the one thin napi layer over it, and
//! `cargo test` exercises it alone.

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
pub mod js_json;
pub mod needs_auth;
pub mod process_state;
pub mod server_config;
pub mod server_rules;
pub mod staleness;
pub mod watcher;
