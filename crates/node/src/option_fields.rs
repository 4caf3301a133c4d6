//! The fields of `NeedsAuthOptions`, each spelled once: the struct below is the one table, and
//! `option_fields!` derives from it everything else that names a field: `Opt` (the fields by
//! their JavaScript names, which the options sorter and the decoder match keys against), and
//! the per-field dispatch of decoding (`set`) and of range checks (`check`). A field's
//! JavaScript name is its Rust name in camelCase, the rule napi uses for the generated
//! TypeScript, computed at compile time (`camel_case`). Its type says how its value is read
//! (`OptionValue`).

use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::collections::HashMap;
use std::sync::Arc;

use crate::enums::CredentialStore;
use crate::option_value::OptionValue;
use crate::JsResult;

/// Emits the struct as written, and derives `Opt`, `set` and `check` from its fields (each
/// written `pub name: Option<Type>`).
//
// The docs inside are `#[doc = "..."]`, not `///`: a doc comment that passes through a macro
// reaches napi as a raw string literal (`r"..."`), which napi's TypeScript generator copies
// into the `.d.ts` quotes and all.
macro_rules! option_fields {
  (
    $(#[$($struct_attr:tt)*])*
    pub struct $name:ident {
      $(
        $(#[$($field_attr:tt)*])*
        pub $field:ident: Option<$ty:ty>,
      )*
    }
  ) => {
    $(#[$($struct_attr)*])*
    pub struct $name {
      $(
        $(#[$($field_attr)*])*
        pub $field: Option<$ty>,
      )*
    }

    /// The fields of `NeedsAuthOptions`, named as the struct's fields.
    #[allow(non_camel_case_types)]
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Opt {
      $($field,)*
    }

    impl Opt {
      pub(crate) const ALL: &[Opt] = &[$(Opt::$field,)*];

      /// The field's JavaScript name (the key of an options object).
      pub(crate) fn key(self) -> &'static str {
        match self {
          $(Opt::$field => {
            const LEN: usize = camel_case_len(stringify!($field));
            const KEY: [u8; LEN] = camel_case(stringify!($field));
            const { as_str(&KEY) }
          })*
        }
      }
    }

    impl $name {
      /// Reads `value` as the field `opt`.
      pub(crate) fn set(&mut self, env: &Env, opt: Opt, value: Unknown) -> JsResult<()> {
        match opt {
          $(Opt::$field => self.$field = <$ty as OptionValue>::read(env, value, opt.key())?,)*
        }
        Ok(())
      }

      /// The checks of each field given that need every field read first (ranges).
      pub(crate) fn check(&self) -> JsResult<()> {
        $(if let Some(v) = &self.$field {
          <$ty as OptionValue>::check(v, Opt::$field.key())?;
        })*
        Ok(())
      }
    }
  };
}

option_fields! {
  #[doc = " Options every function accepts as its optional last argument. Each function reads the"]
  #[doc = " fields that concern it and ignores the rest. The TypeScript interface is generated from"]
  #[doc = " this struct; decoding is by hand (`decode`), which costs half of napi's generated decoding"]
  #[doc = " on `isNeedsAuthCached`'s hot path."]
  #[napi(object, object_from_js = false, object_to_js = false)]
  #[derive(Default, Clone)]
  pub struct NeedsAuthOptions {
    #[doc = " Claude Code's config dir. Default: `process.env.CLAUDE_CONFIG_DIR ?? ~/.claude`,"]
    #[doc = " NFC-normalised, exactly as Claude Code resolves it."]
    // Shared, not copied: the common options hand back the dir of the previous call.
    #[napi(ts_type = "string")]
    pub config_dir: Option<Arc<str>>,
    #[doc = " TTL in ms for entries without their own `ttlMs`. Default 900000 (15 min). Claude Code"]
    #[doc = " 2.1.332 uses 14400000 (4 h) for claude.ai-proxy and plugin http/sse servers."]
    pub default_ttl_ms: Option<f64>,
    #[doc = " `markNeedsAuth`: write this `ttlMs` into the entry (Claude Code 2.1.120+ shape)."]
    pub ttl_ms: Option<f64>,
    #[doc = " `markNeedsAuth`: write this server `id` into the entry (Claude Code 2.1.120+ shape)."]
    pub id: Option<String>,
    #[doc = " Where credentials are read from: `'auto'` (default: the macOS Keychain first, then the"]
    #[doc = " file; elsewhere the file), `'file'`, `'keychain'` or `'none'`."]
    pub credentials: Option<CredentialStore>,
    #[doc = " `onAuthChanged`: also watch other processes' changes to the cache and the credentials"]
    #[doc = " store (default true). `false` keeps in-process signals only."]
    pub watch: Option<bool>,
    #[doc = " `onAuthChanged`: when a server's credentials change, remove its needs-auth entry before"]
    #[doc = " the callback runs, and remove again any superseded entry another process writes back"]
    #[doc = " (default true). On while any subscription of the same dir and store asks for it."]
    pub auto_invalidate: Option<bool>,
    #[doc = " `onAuthChanged`: how often to poll the keychain, in ms (default 2000). Files are watched"]
    #[doc = " with OS notifications, never polled."]
    pub poll_interval_ms: Option<f64>,
    #[doc = " `invalidateNeedsAuth`: remove only entries written before this time (a numeric"]
    #[doc = " `timestamp` below it, ms since the epoch), judged under the lock: an entry written"]
    #[doc = " since (a new 401 after a `listNeedsAuth` the caller acted on) stays."]
    pub written_before: Option<f64>,
    #[doc = " `markNeedsAuth`, `invalidateNeedsAuth`, `purgeStale`: how long to wait, in ms, while"]
    #[doc = " another process holds the cache's lock (default 10000), before throwing"]
    #[doc = " `ERR_LOCK_TIMEOUT`. Reads never wait for the lock."]
    pub lock_timeout_ms: Option<f64>,
    #[doc = " `isNeedsAuthCached`, `diagnose`: the server's config (as passed to the Agent SDK in"]
    #[doc = " `options.mcpServers[server]`). With it the answer is Claude Code 2.1.332's exact rule;"]
    #[doc = " without it, the name-only rule (see the README)."]
    // Kept as JSON (a plugin stdio config is hashed whole), so napi cannot name its type.
    #[napi(ts_type = "McpServerConfig")]
    pub server_config: Option<serde_json::Value>,
    #[doc = " `listNeedsAuth`, `purgeStale`, `isNeedsAuthCached`, `diagnose`: configs by server name (the"]
    #[doc = " Agent SDK's `options.mcpServers`). Entries of servers without one get the name-only rule."]
    #[napi(ts_type = "Record<string, McpServerConfig>")]
    pub server_configs: Option<HashMap<String, serde_json::Value>>,
  }
}

/// The length of `snake`'s camelCase spelling (each `_` dropped).
const fn camel_case_len(snake: &str) -> usize {
  let bytes = snake.as_bytes();
  let (mut i, mut len) = (0, 0);
  while i < bytes.len() {
    if bytes[i] != b'_' {
      len += 1;
    }
    i += 1;
  }
  len
}

/// `snake` (ASCII snake_case) in camelCase: `config_dir` is `configDir`.
const fn camel_case<const LEN: usize>(snake: &str) -> [u8; LEN] {
  let bytes = snake.as_bytes();
  let mut out = [0u8; LEN];
  let (mut i, mut o, mut upper) = (0, 0, false);
  while i < bytes.len() {
    if bytes[i] == b'_' {
      upper = true;
    } else {
      out[o] = if upper { bytes[i].to_ascii_uppercase() } else { bytes[i] };
      upper = false;
      o += 1;
    }
    i += 1;
  }
  out
}

/// The key as a `str` (a field name is ASCII, so this never fails at compile time).
const fn as_str(bytes: &'static [u8]) -> &'static str {
  match std::str::from_utf8(bytes) {
    Ok(s) => s,
    Err(_) => panic!("a field name is ASCII"),
  }
}
