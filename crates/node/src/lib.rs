//! The napi layer: converts between JavaScript and the core, and nothing else.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod allocator;
mod auth_event;
mod bulk_values;
pub mod cache;
pub mod config_dir_for;
pub mod diagnose;
pub mod duration;
pub mod enums;
mod env_state;
mod fast_call;
mod js_error;
mod js_functions;
mod js_values;
mod last_config_dir;
mod option_fields;
mod option_value;
pub mod options;
mod options_shape;
pub mod purge;
mod read_threw;
mod runtime;
pub mod subscription;
pub mod validate_server_config;
mod warning;

use napi::bindgen_prelude::*;
use napi_derive::napi;

pub use js_error::{core_error, invalid_argument, Code, JsResult, NapiResultExt, ERR_INTERNAL};
pub(crate) use js_values::{decode_arg, js_string, refuse_lone_surrogates, small_str};
pub use js_values::{path_string, server_name, ServerName};
pub use options::NeedsAuthOptions;
pub use warning::emit_warning;

/// What the module adds to its exports once napi-rs made them.
#[napi(module_exports)]
pub fn init(mut exports: Object, env: Env) -> napi::Result<()> {
  subscription::add_dispose(&exports, &env)?;
  fast_call::install(&mut exports, &env)
}
