//! An MCP server's config, reduced to what Claude Code 2.1.332's needs-auth rules read (see
//! `server_rules`): its transport, its `id`, whether it comes from a plugin, and the two things
//! derived from the whole config: a plugin stdio server's hash id and whether a plugin http/sse
//! server is exempt from the 4 h default TTL. Pure: no I/O, no environment.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::cache_file::kind_of;

/// `type` as Claude Code knows it. A missing `type` is stdio; `streamable-http` is Claude Code's
/// own alias of `http` (its settings schema turns one into the other).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
  Stdio,
  Sse,
  Http,
  Ws,
  SseIde,
  WsIde,
  Sdk,
  ClaudeAiProxy,
}

impl Transport {
  pub(crate) const NAMES: &'static str =
    "'stdio', 'sse', 'http', 'streamable-http', 'ws', 'sdk', 'claudeai-proxy', 'sse-ide' or 'ws-ide'";

  pub(crate) fn parse(s: &str) -> Option<Transport> {
    Some(match s {
      "stdio" => Transport::Stdio,
      "sse" => Transport::Sse,
      "http" | "streamable-http" => Transport::Http,
      "ws" => Transport::Ws,
      "sse-ide" => Transport::SseIde,
      "ws-ide" => Transport::WsIde,
      "sdk" => Transport::Sdk,
      "claudeai-proxy" => Transport::ClaudeAiProxy,
      _ => return None,
    })
  }

  pub(crate) fn is_http_or_sse(self) -> bool {
    matches!(self, Transport::Http | Transport::Sse)
  }
}

/// The parts of a server config the 2.1.332 rules read.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
  pub(crate) transport: Transport,
  /// `config.id` (claude.ai proxy servers carry one).
  pub(crate) id: Option<String>,
  /// `config.pluginSource !== undefined`: the server comes from a plugin.
  pub(crate) plugin: bool,
  /// Plugin stdio servers only: the id Claude Code writes into their entries (its config hash).
  pub(crate) plugin_id: Option<String>,
  /// Plugin http/sse servers only: Claude Code keeps them on the 15 min default rather than 4 h
  /// (the server has headers or a headersHelper, or is one of Anthropic's own API endpoints).
  pub(crate) short_default_ttl: bool,
}

/// A config that cannot be judged. `field` is relative to the config (`""`, `".type"`, `".id"`),
/// so the caller can name the full option path.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidConfig {
  pub field: &'static str,
  pub message: String,
}

impl ServerConfig {
  /// Reads a config as the host passes it to the Agent SDK (`options.mcpServers[name]`) or as it
  /// appears in Claude Code's settings. Fields the rules do not read are ignored.
  pub fn from_json(config: &Value) -> Result<ServerConfig, InvalidConfig> {
    let Value::Object(obj) = config else {
      return Err(InvalidConfig {
        field: "",
        message: format!("must be an object (an MCP server config), not {}", kind_of(config)),
      });
    };
    let transport = match obj.get("type") {
      None => Transport::Stdio,
      Some(Value::String(s)) => Transport::parse(s)
        .ok_or_else(|| InvalidConfig { field: ".type", message: format!("must be {}, not {s:?}", Transport::NAMES) })?,
      Some(other) => {
        return Err(InvalidConfig {
          field: ".type",
          message: format!("must be a string ({}), not {}", Transport::NAMES, kind_of(other)),
        })
      }
    };
    let id = match obj.get("id") {
      None => None,
      Some(Value::String(s)) => Some(s.clone()),
      Some(other) => {
        return Err(InvalidConfig { field: ".id", message: format!("must be a string, not {}", kind_of(other)) })
      }
    };
    let plugin = obj.contains_key("pluginSource");
    Ok(ServerConfig {
      transport,
      id,
      plugin,
      plugin_id: (plugin && transport == Transport::Stdio).then(|| config_hash(obj)),
      short_default_ttl: plugin && transport.is_http_or_sse() && keeps_short_ttl(obj),
    })
  }
}

/// Claude Code's `zAe(config)`: a plugin http/sse server that keeps the 15 min default. Two of its
/// inputs are the Claude Code process's own settings and are taken at their defaults: XAA is off
/// (`CLAUDE_CODE_ENABLE_XAA` unset, so `oauth.xaa` does not count) and the API provider is
/// Anthropic's first-party one.
fn keeps_short_ttl(obj: &Map<String, Value>) -> bool {
  obj.get("headersHelper").is_some_and(truthy)
    || obj.get("headers").is_some_and(|h| truthy(h) && js_key_count(h) > 0)
    || obj.get("url").and_then(Value::as_str).is_some_and(is_anthropic_api_mcp_url)
}

/// `CSe(url)`: an https URL on `api.anthropic.com` (default port) under `/v1/design/` or
/// `/v1/claude/test/`, or exactly `/v1/pages/mcp`.
fn is_anthropic_api_mcp_url(url: &str) -> bool {
  let Some(rest) = strip_prefix_ignore_case(url.trim(), "https://") else {
    return false;
  };
  let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
  let authority = &rest[..end];
  let host = authority.rsplit('@').next().unwrap_or(authority).to_ascii_lowercase();
  if host != "api.anthropic.com" && host != "api.anthropic.com:443" {
    return false;
  }
  let path_end = rest[end..].find(['?', '#']).map_or(rest.len(), |i| end + i);
  let path = &rest[end..path_end];
  path.starts_with("/v1/design/") || path.starts_with("/v1/claude/test/") || path == "/v1/pages/mcp"
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
  (s.len() >= prefix.len() && s.is_char_boundary(prefix.len()) && s[..prefix.len()].eq_ignore_ascii_case(prefix))
    .then(|| &s[prefix.len()..])
}

/// JavaScript truthiness of a JSON value.
pub(crate) fn truthy(v: &Value) -> bool {
  match v {
    Value::Null => false,
    Value::Bool(b) => *b,
    Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
    Value::String(s) => !s.is_empty(),
    Value::Array(_) | Value::Object(_) => true,
  }
}

/// `Object.keys(v).length` for a JSON value.
fn js_key_count(v: &Value) -> usize {
  match v {
    Value::Object(o) => o.len(),
    Value::Array(a) => a.len(),
    Value::String(s) => s.encode_utf16().count(),
    _ => 0,
  }
}

/// Fields Claude Code drops before hashing a config (`Wgn`): where it came from, and state it
/// caches on the config object at run time.
const NOT_HASHED: [&str; 23] = [
  "scope",
  "pluginSource",
  "pluginPath",
  "relayed",
  "hostRegistered",
  "pluginEndpointTemplated",
  "pluginOfficialSourceVouched",
  "heldForClaim",
  "declaredIn",
  "readFrom",
  "configError",
  "configErrorReason",
  "expandedFromEnv",
  "configuredCommand",
  "redialToRelearnRegistration",
  "tools",
  "discoveryCache",
  "cachedInitResponse",
  "cachedDiscoverResponse",
  "discoverSupport",
  "eligible",
  "ineligibleReason",
  "enterpriseManaged",
];

/// The `Accept-Encoding` header value Claude Code adds itself and leaves out of the hash.
const OWN_ACCEPT_ENCODING: &str = "gzip, x-ccr-all-but-tool-lists;q=0";

/// Claude Code's `b3(config)`: the first 16 hex digits of the SHA-256 of the config's canonical
/// JSON (`Wgn`). For a plugin stdio server this is the `id` it writes into the entry.
pub(crate) fn config_hash(config: &Map<String, Value>) -> String {
  let digest = Sha256::digest(canonical_config(config).as_bytes());
  digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// `Wgn(config)`: the config without the fields of `NOT_HASHED` (and without `displayName`
/// unless it is a claude.ai proxy), stdio spelled out, the URL's query sorted, serialised as
/// `JSON.stringify` does with every object's keys sorted. (`orgMaxPermission`, which Claude Code
/// also drops when it runs as a remote session, is kept: that is the local default.)
pub(crate) fn canonical_config(config: &Map<String, Value>) -> String {
  let mut e = config.clone();
  for k in NOT_HASHED {
    e.remove(k);
  }
  if e.get("type").and_then(Value::as_str) != Some("claudeai-proxy") {
    e.remove("displayName");
  }
  if let Some(Value::Object(headers)) = e.get_mut("headers") {
    headers.retain(|k, v| !(k.eq_ignore_ascii_case("accept-encoding") && v.as_str() == Some(OWN_ACCEPT_ENCODING)));
  }
  let is_stdio = match e.get("type") {
    Some(t) => t.as_str() == Some("stdio"),
    None => e.contains_key("command"),
  };
  if is_stdio {
    e.insert("type".into(), Value::String("stdio".into()));
    if e.get("args").is_none_or(Value::is_null) {
      e.insert("args".into(), Value::Array(Vec::new()));
    }
  }
  if let Some(Value::String(url)) = e.get_mut("url") {
    *url = sort_query(url);
  }
  let url_empty = !config.get("configError").is_some_and(truthy)
    && config.get("url").and_then(Value::as_str).is_some_and(|u| u.trim().is_empty());
  if config.get("configErrorReason").and_then(Value::as_str) == Some("url_empty") || url_empty {
    e.insert("unconfigured".into(), Value::Bool(true));
  }
  let mut out = String::new();
  write_canonical(&Value::Object(e), &mut out);
  out
}

/// `jOs(url)`: sorts the query's `&`-separated parts by their name (stable), for a URL that
/// parses; anything else is returned as it is. "Parses" is checked as an absolute URL with a
/// scheme, and a host for the schemes that need one.
fn sort_query(url: &str) -> String {
  if !looks_absolute(url) {
    return url.to_owned();
  }
  let Some(q) = url.find(['?', '#']).filter(|&i| url.as_bytes()[i] == b'?') else {
    return url.to_owned();
  };
  let (head, rest) = url.split_at(q + 1);
  let (query, tail) = rest.split_at(rest.find('#').unwrap_or(rest.len()));
  let mut parts: Vec<&str> = query.split('&').collect();
  parts.sort_by(|a, b| utf16_cmp(a.split('=').next().unwrap_or(a), b.split('=').next().unwrap_or(b)));
  format!("{head}{}{tail}", parts.join("&"))
}

fn looks_absolute(url: &str) -> bool {
  let url = url.trim_matches(|c: char| c <= ' ');
  let Some(colon) = url.find(':') else { return false };
  let scheme = &url[..colon];
  let mut chars = scheme.chars();
  if !chars.next().is_some_and(|c| c.is_ascii_alphabetic())
    || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
  {
    return false;
  }
  let special = ["http", "https", "ws", "wss", "ftp"].iter().any(|s| scheme.eq_ignore_ascii_case(s));
  if !special {
    return true;
  }
  let rest = url[colon + 1..].trim_start_matches(['/', '\\']);
  let authority = &rest[..rest.find(['/', '\\', '?', '#']).unwrap_or(rest.len())];
  !authority.rsplit('@').next().unwrap_or("").split(':').next().unwrap_or("").is_empty()
}

/// JavaScript's default string order: by UTF-16 code units.
fn utf16_cmp(a: &str, b: &str) -> std::cmp::Ordering {
  a.encode_utf16().cmp(b.encode_utf16())
}

/// A canonical array index (`"0"`, `"17"`, not `"017"`), which JavaScript enumerates first.
fn array_index(key: &str) -> Option<u32> {
  let n: u32 = key.parse().ok()?;
  (n != u32::MAX && n.to_string() == key).then_some(n)
}

/// `JSON.stringify` of a value whose objects were rebuilt with sorted keys: integer keys come
/// first in numeric order (JavaScript property order), then the others by UTF-16 order.
fn write_canonical(v: &Value, out: &mut String) {
  match v {
    Value::Object(o) => {
      let mut keys: Vec<&String> = o.keys().collect();
      keys.sort_by(|a, b| match (array_index(a), array_index(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => utf16_cmp(a, b),
      });
      out.push('{');
      for (i, k) in keys.into_iter().enumerate() {
        if i > 0 {
          out.push(',');
        }
        out.push_str(&Value::String(k.clone()).to_string());
        out.push(':');
        write_canonical(&o[k.as_str()], out);
      }
      out.push('}');
    }
    Value::Array(a) => {
      out.push('[');
      for (i, item) in a.iter().enumerate() {
        if i > 0 {
          out.push(',');
        }
        write_canonical(item, out);
      }
      out.push(']');
    }
    Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
      (Some(i), _, _) => out.push_str(&i.to_string()),
      (_, Some(u), _) => out.push_str(&js_number(u as f64)),
      (_, _, Some(f)) => out.push_str(&js_number(f)),
      _ => out.push_str("null"),
    },
    other => out.push_str(&other.to_string()),
  }
}

/// JavaScript's `Number.prototype.toString()` for a finite number.
pub(crate) fn js_number(f: f64) -> String {
  if f == 0.0 {
    return "0".into();
  }
  if !f.is_finite() {
    return "null".into();
  }
  // Shortest round-trip digits and the decimal exponent, from Rust's own shortest formatting.
  let sci = format!("{:e}", f.abs());
  let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
  let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
  let k = digits.len() as i32;
  let n = exp.parse::<i32>().unwrap_or(0) + 1;
  let sign = if f < 0.0 { "-" } else { "" };
  let body = if k <= n && n <= 21 {
    format!("{digits}{}", "0".repeat((n - k) as usize))
  } else if 0 < n && n <= 21 {
    format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
  } else if -6 < n && n <= 0 {
    format!("0.{}{digits}", "0".repeat((-n) as usize))
  } else {
    let e = n - 1;
    let e = if e >= 0 { format!("+{e}") } else { e.to_string() };
    if k == 1 {
      format!("{digits}e{e}")
    } else {
      format!("{}.{}e{e}", &digits[..1], &digits[1..])
    }
  };
  format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
  use super::*;
  use serde_json::json;

  fn parse(v: Value) -> ServerConfig {
    ServerConfig::from_json(&v).expect("valid config")
  }

  #[test]
  fn reads_the_agent_sdk_shapes() {
    assert_eq!(parse(json!({"command": "npx"})).transport, Transport::Stdio);
    assert_eq!(parse(json!({"type": "streamable-http", "url": "u"})).transport, Transport::Http);
    let proxy = parse(json!({"type": "claudeai-proxy", "url": "u", "id": "mcpsrv_1"}));
    assert_eq!(
      (proxy.transport, proxy.id.as_deref(), proxy.plugin),
      (Transport::ClaudeAiProxy, Some("mcpsrv_1"), false)
    );
    assert_eq!(parse(json!({"type": "sdk", "name": "x"})).transport, Transport::Sdk);
  }

  #[test]
  fn bad_configs_name_the_field() {
    for (v, field, says) in [
      (json!("http"), "", "not a string"),
      (json!([1]), "", "not an array"),
      (json!(null), "", "not null"),
      (json!({"type": "grpc"}), ".type", "not \"grpc\""),
      (json!({"type": 5}), ".type", "not a number"),
      (json!({"type": null}), ".type", "not null"),
      (json!({"type": "http", "id": 7}), ".id", "not a number"),
    ] {
      let err = ServerConfig::from_json(&v).expect_err("invalid");
      assert_eq!(err.field, field, "{v}");
      assert!(err.message.contains(says), "{v}: {}", err.message);
    }
  }

  #[test]
  fn plugin_http_sse_short_ttl_exemptions() {
    let short = |v: Value| parse(v).short_default_ttl;
    assert!(!short(json!({"type": "http", "url": "https://x.dev/mcp", "pluginSource": "p"})));
    assert!(!short(json!({"type": "http", "url": "https://x.dev/mcp", "pluginSource": "p", "headers": {}})));
    assert!(short(json!({"type": "sse", "url": "https://x.dev/mcp", "pluginSource": "p", "headers": {"a": "b"}})));
    assert!(short(json!({"type": "http", "url": "https://x.dev/mcp", "pluginSource": "p", "headersHelper": "h.sh"})));
    assert!(short(json!({"type": "http", "url": "https://api.anthropic.com/v1/pages/mcp", "pluginSource": "p"})));
    assert!(short(json!({"type": "http", "url": "https://API.anthropic.com:443/v1/design/x", "pluginSource": "p"})));
    assert!(!short(json!({"type": "http", "url": "https://api.anthropic.com:8443/v1/pages/mcp", "pluginSource": "p"})));
    assert!(!short(json!({"type": "http", "url": "http://api.anthropic.com/v1/pages/mcp", "pluginSource": "p"})));
    // Not a plugin: the exemption does not apply (nor does the 4 h default).
    assert!(!short(json!({"type": "http", "url": "u", "headers": {"a": "b"}})));
  }

  #[test]
  fn canonical_json_is_claude_codes() {
    let cfg = json!({
      "scope": "user", "pluginSource": "p@m", "command": "node", "env": {"B": "2", "A": "1"},
      "displayName": "x", "tools": [1], "10": 1, "9": 2, "Z": "\u{1}\"é"
    });
    assert_eq!(
      canonical_config(cfg.as_object().expect("object")),
      "{\"9\":2,\"10\":1,\"Z\":\"\\u0001\\\"é\",\"args\":[],\"command\":\"node\",\"env\":{\"A\":\"1\",\"B\":\"2\"},\"type\":\"stdio\"}"
    );
    let http = json!({"type": "http", "url": "https://h/mcp?b=2&a=1&a=0#f", "headers": {"Accept-Encoding": OWN_ACCEPT_ENCODING}});
    assert_eq!(
      canonical_config(http.as_object().expect("object")),
      r#"{"headers":{},"type":"http","url":"https://h/mcp?a=1&a=0&b=2#f"}"#
    );
    let empty = json!({"type": "http", "url": " "});
    assert_eq!(
      canonical_config(empty.as_object().expect("object")),
      r#"{"type":"http","unconfigured":true,"url":" "}"#
    );
  }

  #[test]
  fn hash_matches_node() {
    // Computed with Node: createHash('sha256').update('{"args":[],"command":"node","type":"stdio"}')
    let cfg = json!({"command": "node", "pluginSource": "p"});
    assert_eq!(config_hash(cfg.as_object().expect("object")), "dd2e536fd1ce2273");
  }

  #[test]
  fn numbers_print_as_javascript_does() {
    for (f, s) in [
      (1.0, "1"),
      (-2.5, "-2.5"),
      (1e21, "1e+21"),
      (1.5e300, "1.5e+300"),
      (1e-7, "1e-7"),
      (0.000001, "0.000001"),
      (123456789012345680000.0, "123456789012345680000"),
      (0.1, "0.1"),
    ] {
      assert_eq!(js_number(f), s);
    }
  }
}
