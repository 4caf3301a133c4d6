//! Which rule judges a needs-auth entry: Claude Code 2.1.332's own, when the server's config is
//! known, else the name-only rule. Pure: no I/O here.
//!
//! What 2.1.332 does, read off its native binary (`strings` of
//! `@anthropic-ai/claude-code-linux-x64/claude`; its judgement function is
//! `async function Nl(name, config, store)`, called from the start-up connection loop):
//!
//! 1. The loop consults the cache only for `claudeai-proxy`, `http` and `sse` servers (status
//!    `needs-auth`, logged as "Skipping connection (cached needs-auth)" for plain http/sse) and
//!    for plugin stdio servers (status `failed`, "Skipping connection (recent failure cached; ...)").
//!    Plain stdio, `ws`, `sdk`, `sse-ide` and `ws-ide` servers are always dialed.
//! 2. `entry = cache[name]`; a missing or falsy entry is not cached.
//! 3. `claudeai-proxy`: not cached when `entry.id !== config.id`.
//! 4. stdio (a missing `type` is stdio) without `pluginSource`: not cached.
//! 5. stdio with `pluginSource`: not cached when `entry.id !== hash(config)` (the first 16 hex
//!    digits of the SHA-256 of the config's canonical JSON: `server_config::config_hash`).
//! 6. `http`/`sse` with `pluginSource`: not cached when the entry has an `id` at all.
//! 7. TTL: `entry.ttlMs ?? default`, the default being 4 h (14400000 ms) for `claudeai-proxy` and
//!    for plugin http/sse servers without headers, a headersHelper or an Anthropic API URL, else
//!    15 min (900000 ms). `options.defaultTtlMs` does not apply: these are Claude Code's constants.
//! 8. Cached while `-60000 < now - entry.timestamp < ttl` (60 s of clock skew), with JavaScript's
//!    number conversion of `timestamp` and `ttlMs` (a numeric string counts; junk never does).
//!
//! Not modelled, because the host cannot know them: configs Claude Code creates for itself, the
//! diskless (storage-backend) session mode, `CLAUDE_CODE_ENABLE_XAA`, a non-first-party API
//! provider. Without a config the name-only rule applies: cached while
//! `-60000 < now - timestamp < (ttlMs ?? options.defaultTtlMs ?? 900000)`, whatever the transport,
//! with a numeric timestamp only (what Claude Code 2.1.108 does for its http/sse servers).

use std::collections::HashMap;

use serde_json::Value;

use crate::cache_file::{self, Document, EntryStatus, Ignored, JudgedBy, Judgement, CLOCK_SKEW_MS, DEFAULT_TTL_MS};
use crate::server_config::{truthy, ServerConfig, Transport};

/// Claude Code 2.1.332's default TTL for claude.ai proxy and plugin http/sse servers.
pub(crate) const LONG_DEFAULT_TTL_MS: f64 = 14_400_000.0;

/// Server configs by server name, as in the Agent SDK's `options.mcpServers`.
pub type ServerConfigs = HashMap<String, ServerConfig>;

/// How to judge entries: the name-only default TTL, and the configs known by server name.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
  pub default_ttl_ms: f64,
  pub configs: Option<&'a ServerConfigs>,
}

impl Rules<'static> {
  pub(crate) fn name_only(default_ttl_ms: f64) -> Rules<'static> {
    Rules { default_ttl_ms, configs: None }
  }
}

impl Default for Rules<'static> {
  fn default() -> Self {
    Rules::name_only(DEFAULT_TTL_MS)
  }
}

/// How Claude Code names a claude.ai connector: `"claude.ai " + display name` (collisions get
/// ` (2)`, ` (3)`), in 2.1.108 as in 2.1.332+.
pub(crate) const CONNECTOR_PREFIX: &str = "claude.ai ";

/// Whether `server` is a claude.ai connector (`claudeai-proxy`): its config says so, or, with no
/// config for it, its name is one Claude Code gives connectors.
pub(crate) fn is_connector(config: Option<&ServerConfig>, server: &str) -> bool {
  match config {
    Some(c) => c.transport == Transport::ClaudeAiProxy,
    None => server.starts_with(CONNECTOR_PREFIX),
  }
}

/// The servers `configs` name as claude.ai connectors.
pub fn connector_names(configs: &ServerConfigs) -> Vec<String> {
  let mut names: Vec<String> =
    configs.iter().filter(|(_, c)| c.transport == Transport::ClaudeAiProxy).map(|(n, _)| n.clone()).collect();
  names.sort();
  names
}

impl<'a> Rules<'a> {
  pub(crate) fn config(&self, server: &str) -> Option<&'a ServerConfig> {
    self.configs.and_then(|c| c.get(server))
  }

  /// Whether `server` is a claude.ai connector, by its config or else by its name.
  pub fn is_connector(&self, server: &str) -> bool {
    is_connector(self.config(server), server)
  }

  /// The entry as Claude Code would judge it at `now`.
  pub(crate) fn status(&self, server: &str, entry: &Value, now: f64) -> EntryStatus {
    self.judgement(server, entry, now).status(server)
  }

  /// `status` without the copies.
  pub(crate) fn judgement<'e>(&self, server: &str, entry: &'e Value, now: f64) -> Judgement<'e> {
    match self.config(server) {
      Some(config) => judgement(entry, config, now),
      None => cache_file::judge_by_name(entry, now, self.default_ttl_ms),
    }
  }

  pub(crate) fn statuses(&self, doc: &Document, now: f64) -> Vec<EntryStatus> {
    doc.iter().map(|(server, entry)| self.status(server, entry, now)).collect()
  }
}

/// Claude Code 2.1.332's judgement of `entry` for a server with this `config` (steps 1-8 above).
#[cfg(test)]
fn judge(server: &str, entry: &Value, config: &ServerConfig, now: f64) -> EntryStatus {
  judgement(entry, config, now).status(server)
}

/// `judge` without the copies.
fn judgement<'e>(entry: &'e Value, config: &ServerConfig, now: f64) -> Judgement<'e> {
  let obj = entry.as_object();
  let field = |k: &str| obj.and_then(|o| o.get(k));
  let entry_id = field("id");
  let same_id = |id: Option<&str>| match (entry_id, id) {
    (None, None) => true,
    (Some(Value::String(a)), Some(b)) => a == b,
    _ => false,
  };
  let consulted = match config.transport {
    Transport::ClaudeAiProxy | Transport::Http | Transport::Sse => true,
    Transport::Stdio => config.plugin,
    Transport::Ws | Transport::Sdk | Transport::SseIde | Transport::WsIde => false,
  };
  // The id an entry must carry: a proxy's own id, a plugin stdio server's config hash.
  let own_id = match config.transport {
    Transport::ClaudeAiProxy => Some(config.id.as_deref()),
    Transport::Stdio => Some(config.plugin_id.as_deref()),
    _ => None,
  };
  let ignored = if !consulted {
    Some(Ignored::Transport)
  } else if own_id.is_some_and(|id| !same_id(id)) {
    Some(Ignored::IdMismatch)
  } else if config.plugin && config.transport.is_http_or_sse() && entry_id.is_some() {
    Some(Ignored::PluginEntryHasId)
  } else {
    None
  };
  let long = config.transport == Transport::ClaudeAiProxy
    || (config.plugin && config.transport.is_http_or_sse() && !config.short_default_ttl);
  let default_ttl = if long { LONG_DEFAULT_TTL_MS } else { DEFAULT_TTL_MS };
  let ttl_ms = field("ttlMs").filter(|v| !v.is_null()).map_or(default_ttl, js_to_number);
  let timestamp = field("timestamp").map(js_to_number).filter(|t| t.is_finite());
  let in_window = timestamp.is_some_and(|ts| {
    let age = now - ts;
    age > -CLOCK_SKEW_MS && age < ttl_ms
  });
  Judgement {
    timestamp,
    ttl_ms,
    cached: ignored.is_none() && truthy(entry) && in_window,
    id: entry_id.and_then(Value::as_str),
    judged_by: JudgedBy::Config,
    ignored,
  }
}

/// JavaScript's `Number(v)` for a JSON value (what `Date.now() - entry.timestamp` and
/// `age < entry.ttlMs` do to a value that is not a number).
pub(crate) fn js_to_number(v: &Value) -> f64 {
  match v {
    Value::Null => 0.0,
    Value::Bool(b) => f64::from(u8::from(*b)),
    Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
    Value::String(s) => js_string_to_number(s),
    // Through `String(array)`: "" for [], the element's own string for [x], "a,b" (NaN) beyond.
    Value::Array(a) => match a.as_slice() {
      [] | [Value::Null] => 0.0,
      [one @ (Value::Number(_) | Value::String(_) | Value::Array(_))] => js_to_number(one),
      _ => f64::NAN,
    },
    Value::Object(_) => f64::NAN,
  }
}

fn js_string_to_number(s: &str) -> f64 {
  let s = s.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
  if s.is_empty() {
    return 0.0;
  }
  let radix = |prefix: [&str; 2], radix: u32| {
    prefix.iter().find_map(|p| s.strip_prefix(p)).map(|digits| {
      if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return f64::NAN;
      }
      digits.chars().fold(0.0, |acc, c| acc * f64::from(radix) + f64::from(c.to_digit(radix).unwrap_or(0)))
    })
  };
  if let Some(n) = radix(["0x", "0X"], 16).or_else(|| radix(["0o", "0O"], 8)).or_else(|| radix(["0b", "0B"], 2)) {
    return n;
  }
  let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
  let negative = s.starts_with('-');
  if unsigned == "Infinity" {
    return if negative { f64::NEG_INFINITY } else { f64::INFINITY };
  }
  // StrDecimalLiteral: digits, an optional fraction, an optional exponent; nothing else.
  let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
    Some(i) => (&unsigned[..i], Some(&unsigned[i + 1..])),
    None => (unsigned, None),
  };
  let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
  let digits = |d: &str| d.chars().all(|c| c.is_ascii_digit());
  let valid = (!int.is_empty() || !frac.is_empty())
    && digits(int)
    && digits(frac)
    && exponent.is_none_or(|e| {
      let e = e.strip_prefix(['+', '-']).unwrap_or(e);
      !e.is_empty() && digits(e)
    });
  if !valid {
    return f64::NAN;
  }
  s.parse::<f64>().unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
  use super::*;
  use serde_json::json;

  const NOW: f64 = 1_795_668_800_000.0;
  const MIN: f64 = 60_000.0;

  fn cfg(v: Value) -> ServerConfig {
    ServerConfig::from_json(&v).expect("valid config")
  }

  fn at(age_ms: f64) -> Value {
    json!({ "timestamp": NOW - age_ms })
  }

  fn with(mut entry: Value, k: &str, v: Value) -> Value {
    entry.as_object_mut().expect("object").insert(k.into(), v);
    entry
  }

  /// Every rule of 2.1.332, one row each: (what, config, entry, cached, ignored, ttl).
  #[rustfmt::skip] // one row per line reads as the table it is
  #[test]
  fn every_2_1_332_rule() {
    let http = json!({"type": "http", "url": "https://h.dev/mcp"});
    let sse = json!({"type": "sse", "url": "https://h.dev/sse"});
    let proxy = json!({"type": "claudeai-proxy", "url": "https://mcp-proxy.anthropic.com/v1/mcp/x", "id": "mcpsrv_A"});
    let proxy_no_id = json!({"type": "claudeai-proxy", "url": "https://p"});
    let stdio = json!({"command": "node", "args": ["s.js"]});
    let stdio_typed = json!({"type": "stdio", "command": "node"});
    let plugin_stdio = json!({"command": "node", "args": ["s.js"], "pluginSource": "p@m", "scope": "dynamic"});
    let plugin_hash = cfg(plugin_stdio.clone()).plugin_id.expect("hash");
    let plugin_http = json!({"type": "http", "url": "https://h.dev/mcp", "pluginSource": "p@m"});
    let plugin_sse = json!({"type": "sse", "url": "https://h.dev/sse", "pluginSource": "p@m"});
    let plugin_http_headers = json!({"type": "http", "url": "https://h.dev/mcp", "pluginSource": "p", "headers": {"X": "1"}});
    let ws = json!({"type": "ws", "url": "ws://h"});
    let sdk = json!({"type": "sdk", "name": "x"});
    let sse_ide = json!({"type": "sse-ide", "url": "u"});
    let ws_ide = json!({"type": "ws-ide", "url": "u"});
    let four_h = LONG_DEFAULT_TTL_MS;
    let fifteen = DEFAULT_TTL_MS;
    use Ignored::*;
    /// (what, config, entry, counts as cached, why ignored, effective TTL)
    type Row<'a> = (&'a str, &'a Value, Value, bool, Option<Ignored>, f64);
    let rows: Vec<Row> = vec![
      ("http, no ttlMs, 14 min", &http, at(14.0 * MIN), true, None, fifteen),
      ("http, no ttlMs, 16 min", &http, at(16.0 * MIN), false, None, fifteen),
      ("http, exactly 15 min (exclusive)", &http, at(fifteen), false, None, fifteen),
      ("sse, 1 min", &sse, at(MIN), true, None, fifteen),
      ("http, explicit ttlMs wins (90 s, 2 min old)", &http, with(at(2.0 * MIN), "ttlMs", json!(90_000)), false, None, 90_000.0),
      ("http, explicit ttlMs wins (1 h, 30 min old)", &http, with(at(30.0 * MIN), "ttlMs", json!(3_600_000)), true, None, 3_600_000.0),
      ("http, ttlMs null means the default", &http, with(at(MIN), "ttlMs", Value::Null), true, None, fifteen),
      ("http, entry id is irrelevant", &http, with(at(MIN), "id", json!("x")), true, None, fifteen),
      ("http, 59 s in the future (skew)", &http, at(-59_000.0), true, None, fifteen),
      ("http, 60 s in the future", &http, at(-MIN), false, None, fifteen),
      ("http, string timestamp (JS converts)", &http, json!({"timestamp": (NOW - MIN).to_string()}), true, None, fifteen),
      ("http, junk timestamp", &http, json!({"timestamp": "soon"}), false, None, fifteen),
      ("http, no timestamp", &http, json!({}), false, None, fifteen),
      ("http, entry not an object", &http, json!(5), false, None, fifteen),
      ("http, null entry", &http, Value::Null, false, None, fifteen),
      ("proxy, same id, 3 h", &proxy, with(at(180.0 * MIN), "id", json!("mcpsrv_A")), true, None, four_h),
      ("proxy, same id, 4 h", &proxy, with(at(four_h), "id", json!("mcpsrv_A")), false, None, four_h),
      ("proxy, other id", &proxy, with(at(MIN), "id", json!("mcpsrv_B")), false, Some(IdMismatch), four_h),
      ("proxy, entry without id", &proxy, at(MIN), false, Some(IdMismatch), four_h),
      ("proxy, explicit ttlMs wins", &proxy, with(with(at(20.0 * MIN), "id", json!("mcpsrv_A")), "ttlMs", json!(fifteen)), false, None, fifteen),
      ("proxy without id, entry without id", &proxy_no_id, at(MIN), true, None, four_h),
      ("proxy without id, entry with id", &proxy_no_id, with(at(MIN), "id", json!("x")), false, Some(IdMismatch), four_h),
      ("proxy, entry id null", &proxy_no_id, with(at(MIN), "id", Value::Null), false, Some(IdMismatch), four_h),
      ("stdio, never", &stdio, at(MIN), false, Some(Transport), fifteen),
      ("stdio typed, never", &stdio_typed, at(MIN), false, Some(Transport), fifteen),
      ("plugin stdio, hash id, 14 min", &plugin_stdio, with(at(14.0 * MIN), "id", json!(plugin_hash)), true, None, fifteen),
      ("plugin stdio, hash id, 16 min", &plugin_stdio, with(at(16.0 * MIN), "id", json!(plugin_hash)), false, None, fifteen),
      ("plugin stdio, other id", &plugin_stdio, with(at(MIN), "id", json!("0000000000000000")), false, Some(IdMismatch), fifteen),
      ("plugin stdio, no id", &plugin_stdio, at(MIN), false, Some(IdMismatch), fifteen),
      ("plugin http, no id, 3 h", &plugin_http, at(180.0 * MIN), true, None, four_h),
      ("plugin http, no id, 4 h", &plugin_http, at(four_h + 1.0), false, None, four_h),
      ("plugin sse, no id, 3 h", &plugin_sse, at(180.0 * MIN), true, None, four_h),
      ("plugin http, with id", &plugin_http, with(at(MIN), "id", json!("x")), false, Some(PluginEntryHasId), four_h),
      ("plugin sse, with id null", &plugin_sse, with(at(MIN), "id", Value::Null), false, Some(PluginEntryHasId), four_h),
      ("plugin http with headers: 15 min", &plugin_http_headers, at(16.0 * MIN), false, None, fifteen),
      ("plugin http, explicit ttlMs wins", &plugin_http, with(at(2.0 * MIN), "ttlMs", json!(90_000)), false, None, 90_000.0),
      ("ws, never", &ws, at(MIN), false, Some(Transport), fifteen),
      ("sdk, never", &sdk, at(MIN), false, Some(Transport), fifteen),
      ("sse-ide, never", &sse_ide, at(MIN), false, Some(Transport), fifteen),
      ("ws-ide, never", &ws_ide, at(MIN), false, Some(Transport), fifteen),
    ];
    for (what, config, entry, cached, ignored, ttl) in rows {
      let st = judge("s", &entry, &cfg(config.clone()), NOW);
      assert_eq!((st.cached, st.ignored, st.ttl_ms), (cached, ignored, ttl), "{what}");
      assert_eq!(st.judged_by, JudgedBy::Config, "{what}");
    }
  }

  #[test]
  fn without_a_config_the_name_only_rule_applies() {
    let configs: ServerConfigs =
      [("proxy".to_string(), cfg(json!({"type": "claudeai-proxy", "url": "u", "id": "a"})))].into();
    let rules = Rules { default_ttl_ms: DEFAULT_TTL_MS, configs: Some(&configs) };
    let json = json!({"proxy": at(30.0 * MIN), "other": at(30.0 * MIN)}).to_string();
    let cache_file::Parsed::Document(doc) = cache_file::parse(json.as_bytes()) else { panic!("a document") };
    let s = rules.statuses(&doc, NOW);
    assert_eq!((s[0].judged_by, s[0].cached, s[0].ignored), (JudgedBy::Config, false, Some(Ignored::IdMismatch)));
    assert_eq!((s[1].judged_by, s[1].cached, s[1].ttl_ms), (JudgedBy::Name, false, DEFAULT_TTL_MS));
    let s = Rules::name_only(LONG_DEFAULT_TTL_MS).statuses(&doc, NOW);
    assert!(s.iter().all(|st| st.cached && st.judged_by == JudgedBy::Name));
  }

  #[test]
  fn default_ttl_option_does_not_bend_the_exact_rule() {
    let configs: ServerConfigs = [("h".to_string(), cfg(json!({"type": "http", "url": "u"})))].into();
    let rules = Rules { default_ttl_ms: LONG_DEFAULT_TTL_MS, configs: Some(&configs) };
    assert!(!rules.status("h", &at(30.0 * MIN), NOW).cached);
  }

  #[test]
  fn javascript_number_conversion() {
    for (v, n) in [
      (json!(" 12 "), 12.0),
      (json!(""), 0.0),
      (json!("0x1f"), 31.0),
      (json!("1e3"), 1000.0),
      (json!(".5"), 0.5),
      (json!("-Infinity"), f64::NEG_INFINITY),
      (json!(true), 1.0),
      (json!(null), 0.0),
      (json!([]), 0.0),
      (json!([["7"]]), 7.0),
    ] {
      assert_eq!(js_to_number(&v), n, "{v}");
    }
    for v in [
      json!("12px"),
      json!("inf"),
      json!("NaN"),
      json!("-0x1"),
      json!("1_000"),
      json!([1, 2]),
      json!({}),
      json!([true]),
    ] {
      assert!(js_to_number(&v).is_nan(), "{v}");
    }
  }
}
