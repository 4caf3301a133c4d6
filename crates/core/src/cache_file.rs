//! The needs-auth cache file's format and Claude Code's "cached" rule. Pure: no I/O here.
//!
//! Shape (2.1.108): `{"<server>": {"timestamp": ms}}`; 2.1.120+ may add `ttlMs`, `id` and
//! `lapsedCcrSignInKey`. The document is kept as an order-preserving JSON map so that entries
//! and fields this library does not know survive every rewrite, byte for byte.

use serde_json::{Map, Value};

use crate::error::{Error, ErrorCode, Result};

/// Claude Code's TTL when an entry has no `ttlMs`.
pub const DEFAULT_TTL_MS: f64 = 900_000.0;
/// Claude Code 2.1.332 treats a timestamp up to this far in the future as valid (clock skew).
pub(crate) const CLOCK_SKEW_MS: f64 = 60_000.0;
/// Largest cache file this library reads; Claude Code's own files are a few hundred bytes.
pub(crate) const MAX_CACHE_BYTES: u64 = 1024 * 1024;
/// Longest server name accepted, in UTF-8 bytes.
pub(crate) const MAX_SERVER_NAME_BYTES: usize = 4096;

/// The parsed cache document: server name -> entry, in file order.
pub(crate) type Document = Map<String, Value>;

/// What a file's bytes turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Parsed {
  Document(Document),
  /// Not JSON, or JSON whose root is not an object. Claude Code reads this as `{}`.
  Corrupt(String),
}

pub(crate) fn parse(bytes: &[u8]) -> Parsed {
  match serde_json::from_slice::<Value>(bytes) {
    Ok(Value::Object(map)) => Parsed::Document(map),
    Ok(other) => Parsed::Corrupt(format!("the root is {}, not an object", kind_of(&other))),
    Err(err) => Parsed::Corrupt(format!("not valid JSON ({err})")),
  }
}

/// Compact JSON, as Claude Code's `JSON.stringify(obj)` writes it.
pub(crate) fn serialize(doc: &Document) -> Vec<u8> {
  // A map of JSON values always serialises; the fallback only keeps this total.
  serde_json::to_vec(doc).unwrap_or_else(|_| b"{}".to_vec())
}

/// `serialize`, refused when the bytes would be over `MAX_CACHE_BYTES`: this library never
/// writes a file it would then refuse to read (every later call, removals included, would fail).
/// A removal from a file this library wrote only shrinks it, so it is never refused. `path`
/// only names the file in the error.
pub fn serialize_within_limit(doc: &Document, path: &std::path::Path) -> Result<Vec<u8>> {
  let bytes = serialize(doc);
  if bytes.len() as u64 > MAX_CACHE_BYTES {
    return Err(Error::new(
      ErrorCode::CacheTooLarge,
      format!(
        "this change would make the needs-auth cache {} {} bytes, over the {} MiB ({MAX_CACHE_BYTES} bytes) \
         this library reads; nothing was written (the file is untouched). Use a shorter id or server name, \
         or remove entries first",
        path.display(),
        bytes.len(),
        MAX_CACHE_BYTES / (1024 * 1024)
      ),
    ));
  }
  Ok(bytes)
}

/// Rejects names Claude Code could never have written and that would make bad keys.
pub(crate) fn validate_server_name(name: &str) -> Result<()> {
  let problem = if name.is_empty() {
    "is empty"
  } else if name.contains('\0') {
    "contains a NUL character"
  } else if name.len() > MAX_SERVER_NAME_BYTES {
    "is longer than 4096 bytes"
  } else {
    return Ok(());
  };
  let shown: String = name.chars().take(64).filter(|c| *c != '\0').collect();
  Err(Error::new(
    ErrorCode::InvalidServerName,
    format!("invalid MCP server name {shown:?}: it {problem}. Use the name the server has in Claude Code's MCP config"),
  ))
}

/// Which rule judged an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JudgedBy {
  /// No config for this server: the name-only rule.
  Name,
  /// Claude Code 2.1.332's rules with the server's config.
  Config,
}

/// Why Claude Code 2.1.332 ignores an entry whatever its age.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
  /// The server's transport never consults the cache (plain stdio, ws, sdk, IDE servers).
  Transport,
  /// The entry's `id` is not the server's (claude.ai proxy id, or a plugin stdio config hash).
  IdMismatch,
  /// A plugin http/sse server's entry that carries an `id`.
  PluginEntryHasId,
}

/// One entry as Claude Code would judge it at `now`.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryStatus {
  pub server: String,
  /// `None` when the entry is not an object or its timestamp is missing or not a number.
  pub timestamp: Option<f64>,
  pub ttl_ms: f64,
  pub expires_at: Option<f64>,
  pub cached: bool,
  pub id: Option<String>,
  pub judged_by: JudgedBy,
  /// Why Claude Code ignores this entry whatever its age (judged with a config only).
  pub ignored: Option<Ignored>,
}

/// The name-only rule (see `server_rules`): cached while `-60 s < now - timestamp < ttl`, where ttl is the
/// entry's numeric `ttlMs`, else `default_ttl_ms`. A missing or non-numeric timestamp, or an
/// entry that is not an object, is never cached.
pub(crate) fn entry_status(server: &str, entry: &Value, now: f64, default_ttl_ms: f64) -> EntryStatus {
  judge_by_name(entry, now, default_ttl_ms).status(server)
}

/// `entry_status` without the copies: what a check needs, borrowed from the entry.
pub(crate) fn judge_by_name(entry: &Value, now: f64, default_ttl_ms: f64) -> Judgement<'_> {
  let obj = entry.as_object();
  let timestamp = obj.and_then(|o| o.get("timestamp")).and_then(Value::as_f64).filter(|t| t.is_finite());
  let ttl_ms =
    obj.and_then(|o| o.get("ttlMs")).and_then(Value::as_f64).filter(|t| t.is_finite()).unwrap_or(default_ttl_ms);
  let cached = timestamp.is_some_and(|ts| {
    let age = now - ts;
    age < ttl_ms && age > -CLOCK_SKEW_MS
  });
  Judgement {
    timestamp,
    ttl_ms,
    cached,
    id: obj.and_then(|o| o.get("id")).and_then(Value::as_str),
    judged_by: JudgedBy::Name,
    ignored: None,
  }
}

/// One entry judged, borrowing from it (a check on the hot path copies nothing); `status`
/// makes the owned `EntryStatus`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Judgement<'e> {
  pub(crate) timestamp: Option<f64>,
  pub(crate) ttl_ms: f64,
  pub(crate) cached: bool,
  pub(crate) id: Option<&'e str>,
  pub(crate) judged_by: JudgedBy,
  pub(crate) ignored: Option<Ignored>,
}

impl Judgement<'_> {
  pub(crate) fn status(self, server: &str) -> EntryStatus {
    EntryStatus {
      server: server.to_owned(),
      timestamp: self.timestamp,
      ttl_ms: self.ttl_ms,
      expires_at: self.timestamp.map(|ts| ts + self.ttl_ms),
      cached: self.cached,
      id: self.id.map(str::to_owned),
      judged_by: self.judged_by,
      ignored: self.ignored,
    }
  }
}

pub(crate) fn statuses(doc: &Document, now: f64, default_ttl_ms: f64) -> Vec<EntryStatus> {
  doc.iter().map(|(server, entry)| entry_status(server, entry, now, default_ttl_ms)).collect()
}

/// The entry `markNeedsAuth` writes: what Claude Code writes, plus the optional 2.1.120+ fields.
pub(crate) fn new_entry(now: f64, ttl_ms: Option<f64>, id: Option<&str>) -> Value {
  let mut entry = Map::new();
  entry.insert("timestamp".into(), json_number(now));
  if let Some(ttl) = ttl_ms {
    entry.insert("ttlMs".into(), json_number(ttl));
  }
  if let Some(id) = id {
    entry.insert("id".into(), Value::String(id.to_owned()));
  }
  Value::Object(entry)
}

/// Whole milliseconds are written as integers, as `Date.now()` gives them.
fn json_number(n: f64) -> Value {
  if n.fract() == 0.0 && n.abs() < 9.0e15 {
    Value::from(n as i64)
  } else {
    serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
  }
}

pub(crate) fn kind_of(v: &Value) -> &'static str {
  match v {
    Value::Null => "null",
    Value::Bool(_) => "a boolean",
    Value::Number(_) => "a number",
    Value::String(_) => "a string",
    Value::Array(_) => "an array",
    Value::Object(_) => "an object",
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  const NOW: f64 = 1_795_668_800_000.0;

  fn doc(s: &str) -> Document {
    match parse(s.as_bytes()) {
      Parsed::Document(d) => d,
      Parsed::Corrupt(why) => panic!("fixture is corrupt: {why}"),
    }
  }

  #[test]
  fn round_trips_claude_code_2_1_108_bytes() {
    let bytes = r#"{"github":{"timestamp":1795668795083},"linear":{"timestamp":1795668700000}}"#;
    assert_eq!(serialize(&doc(bytes)), bytes.as_bytes());
  }

  #[test]
  fn round_trips_2_1_120_fields_and_unknown_ones() {
    let bytes = r#"{"claude.ai Figma":{"timestamp":1795668795083,"ttlMs":14400000,"id":"mcpsrv_01","lapsedCcrSignInKey":"k","future":{"x":[1,2.5,null]}},"__proto__":{"timestamp":1}}"#;
    let d = doc(bytes);
    assert_eq!(serialize(&d), bytes.as_bytes());
    assert!(d.contains_key("__proto__"));
  }

  #[test]
  fn ttl_rule_default_and_explicit() {
    let d = doc(
      r#"{"a":{"timestamp":1795668795083},"b":{"timestamp":1795667000000},"c":{"timestamp":1795667000000,"ttlMs":14400000}}"#,
    );
    let s = statuses(&d, NOW, DEFAULT_TTL_MS);
    assert!(s[0].cached, "5 s old, 15 min TTL");
    assert!(!s[1].cached, "30 min old, 15 min TTL");
    assert!(s[2].cached, "30 min old, 4 h TTL");
    assert_eq!(s[2].ttl_ms, 14_400_000.0);
    assert_eq!(s[0].expires_at, Some(1_795_668_795_083.0 + DEFAULT_TTL_MS));
    // A caller-provided default applies only to entries without ttlMs.
    let s = statuses(&d, NOW, 14_400_000.0);
    assert!(s[1].cached);
  }

  #[test]
  fn ttl_boundary_is_exclusive() {
    let e = doc(r#"{"a":{"timestamp":1000}}"#);
    assert!(entry_status("a", &e["a"], 1000.0 + DEFAULT_TTL_MS - 1.0, DEFAULT_TTL_MS).cached);
    assert!(!entry_status("a", &e["a"], 1000.0 + DEFAULT_TTL_MS, DEFAULT_TTL_MS).cached);
  }

  #[test]
  fn clock_skew_up_to_60_s_is_tolerated() {
    let e = doc(r#"{"a":{"timestamp":1795668859000},"b":{"timestamp":1795668860000}}"#);
    assert!(entry_status("a", &e["a"], NOW, DEFAULT_TTL_MS).cached, "59 s ahead");
    assert!(!entry_status("b", &e["b"], NOW, DEFAULT_TTL_MS).cached, "60 s ahead");
  }

  #[test]
  fn odd_entries_are_not_cached_and_survive() {
    let bytes = r#"{"n":5,"s":{"timestamp":"1795668795083"},"m":{},"x":{"timestamp":null},"arr":[1]}"#;
    let d = doc(bytes);
    for st in statuses(&d, NOW, DEFAULT_TTL_MS) {
      assert!(!st.cached, "{} must not be cached", st.server);
      assert_eq!(st.timestamp, None);
      assert_eq!(st.expires_at, None);
    }
    assert_eq!(serialize(&d), bytes.as_bytes());
  }

  #[test]
  fn corrupt_inputs() {
    for bad in ["", "{", "[]", "\"x\"", "null", "42", "{\"a\":1", "\u{feff}{}"] {
      assert!(matches!(parse(bad.as_bytes()), Parsed::Corrupt(_)), "{bad:?} must be corrupt");
    }
    assert_eq!(parse(b"{}"), Parsed::Document(Map::new()));
    assert_eq!(parse(b" {} \n"), Parsed::Document(Map::new()));
  }

  #[test]
  fn server_names() {
    for ok in ["github", "claude.ai Figma", "__proto__", "constructor", "caf\u{e9}", "cafe\u{301}"] {
      assert!(validate_server_name(ok).is_ok(), "{ok:?}");
    }
    let long = "x".repeat(MAX_SERVER_NAME_BYTES + 1);
    for bad in ["", "a\0b", long.as_str()] {
      let err = validate_server_name(bad).expect_err("rejected");
      assert_eq!(err.code, ErrorCode::InvalidServerName);
      assert!(!err.message.contains('\0'));
    }
    assert!(validate_server_name(&"x".repeat(MAX_SERVER_NAME_BYTES)).is_ok());
  }

  #[test]
  fn new_entries_are_written_like_claude_code() {
    assert_eq!(new_entry(1795668795083.0, None, None).to_string(), r#"{"timestamp":1795668795083}"#);
    assert_eq!(
      new_entry(1795668795083.0, Some(90000.0), Some("mcpsrv_1")).to_string(),
      r#"{"timestamp":1795668795083,"ttlMs":90000,"id":"mcpsrv_1"}"#
    );
  }
}
