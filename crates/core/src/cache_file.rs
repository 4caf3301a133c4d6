//! The needs-auth cache file's format and Claude Code's "cached" rule. Pure: no I/O here.
//!
//! Shape (2.1.108): `{"<server>": {"timestamp": ms}}`; 2.1.120+ may add `ttlMs`, `id` and
//! `lapsedCcrSignInKey`. The file is read as Claude Code reads it (`JSON.parse` of the file
//! decoded as UTF-8: `js_json`), and each entry keeps the JSON text `JSON.stringify` would write
//! for it, so that entries and fields this library does not know survive every rewrite exactly
//! as Claude Code reads them (byte for byte for what Claude Code itself wrote).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::error::{Error, ErrorCode, Result};
use crate::js_json::{self, JsStr, Json, Member};

/// Claude Code's TTL when an entry has no `ttlMs`.
pub const DEFAULT_TTL_MS: f64 = 900_000.0;
/// Claude Code 2.1.332 treats a timestamp up to this far in the future as valid (clock skew).
pub(crate) const CLOCK_SKEW_MS: f64 = 60_000.0;
/// Largest cache file this library reads; Claude Code's own files are a few hundred bytes.
pub(crate) const MAX_CACHE_BYTES: u64 = 1024 * 1024;
/// Longest server name accepted, in UTF-8 bytes.
pub(crate) const MAX_SERVER_NAME_BYTES: usize = 4096;
/// How deep into an entry the judging view (`Entry`'s `Value`) goes: the rules read the
/// entry's own fields only; anything deeper is kept, exactly, in the entry's JSON text.
const VIEW_DEPTH: usize = 32;

/// An entry's name: the cache key as JavaScript has it. A key with a lone surrogate (which
/// no Rust string holds) shows U+FFFD in its text, and is kept exactly beside it: it is never
/// found by a name given as text, so it can never stand for another server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
  text: String,
  /// The WTF-8 bytes, only when they are not UTF-8 (the key holds a lone surrogate).
  exact: Option<Box<[u8]>>,
}

impl Key {
  fn from_wtf8(bytes: JsStr) -> Key {
    match String::from_utf8(bytes) {
      Ok(text) => Key { text, exact: None },
      Err(e) => {
        let bytes = e.into_bytes();
        Key { text: js_json::lossy(&bytes).into_owned(), exact: Some(bytes.into_boxed_slice()) }
      }
    }
  }

  /// Whether the key is a well-formed string, one a caller can name.
  pub fn is_well_formed(&self) -> bool {
    self.exact.is_none()
  }

  fn wtf8(&self) -> &[u8] {
    self.exact.as_deref().unwrap_or(self.text.as_bytes())
  }
}

/// Hashed by its text alone, so that a lookup by name (`ByName`) hashes alike.
impl Hash for Key {
  fn hash<H: Hasher>(&self, state: &mut H) {
    self.text.hash(state);
  }
}

impl Deref for Key {
  type Target = str;
  fn deref(&self) -> &str {
    &self.text
  }
}

impl fmt::Display for Key {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str(&self.text)
  }
}

/// A name given as text: equal to well-formed keys only.
struct ByName<'a>(&'a str);

impl Hash for ByName<'_> {
  fn hash<H: Hasher>(&self, state: &mut H) {
    self.0.hash(state);
  }
}

impl indexmap::Equivalent<Key> for ByName<'_> {
  fn equivalent(&self, key: &Key) -> bool {
    key.exact.is_none() && key.text == self.0
  }
}

/// What a document can be searched by: a server name, or a key taken from a document.
pub trait EntryName {
  fn index_in(&self, entries: &IndexMap<Key, Entry>) -> Option<usize>;
}

impl EntryName for str {
  fn index_in(&self, entries: &IndexMap<Key, Entry>) -> Option<usize> {
    entries.get_index_of(&ByName(self))
  }
}

impl EntryName for String {
  fn index_in(&self, entries: &IndexMap<Key, Entry>) -> Option<usize> {
    self.as_str().index_in(entries)
  }
}

impl EntryName for Key {
  fn index_in(&self, entries: &IndexMap<Key, Entry>) -> Option<usize> {
    entries.get_index_of(self)
  }
}

/// One entry: its JSON text as `JSON.stringify` writes the value `JSON.parse` made of it, which
/// is what a rewrite puts back (exactly what Claude Code reads), and a view to judge it by, made
/// when first asked for (a check judges one entry of the file it re-read). Two entries are equal
/// when their texts are.
#[derive(Clone)]
pub struct Entry {
  /// Kept as built: shrinking it to a `Box<str>` would cost a reallocation per entry.
  json: String,
  /// The parsed value, for the view; `None` when `json` is the text the entry was read from
  /// (parsed for the view when one is asked for), or for an entry made here (its view is set).
  tree: Option<Arc<Json>>,
  /// The value, for the rules: strings with U+FFFD for lone surrogates, ±Infinity as the
  /// strings "Infinity"/"-Infinity" (which JavaScript's `Number` reads alike, and which are no
  /// number to the name-only rule, as a non-finite number is not), cut at `VIEW_DEPTH`.
  view: OnceLock<Value>,
}

impl Entry {
  fn from_json(v: Json) -> Entry {
    let mut json = String::with_capacity(64);
    js_json::stringify(&v, &mut json);
    Entry { json, tree: Some(Arc::new(v)), view: OnceLock::new() }
  }

  /// An entry read as `text`, already what `JSON.stringify` writes for it (`js_json::Member`).
  fn from_text(text: &str) -> Entry {
    Entry { json: text.to_owned(), tree: None, view: OnceLock::new() }
  }

  /// An entry made here (not read): its JSON is that of the value.
  pub fn from_value(v: Value) -> Entry {
    let mut json = String::new();
    js_json::stringify(&json_of(&v), &mut json);
    Entry { json, tree: None, view: OnceLock::from(v) }
  }

  /// The entry's JSON text, as a rewrite writes it.
  pub fn json(&self) -> &str {
    &self.json
  }
}

impl Deref for Entry {
  type Target = Value;
  fn deref(&self) -> &Value {
    self.view.get_or_init(|| match self.tree.as_deref() {
      Some(tree) => view_of(tree, VIEW_DEPTH),
      None => view_of_text(&self.json),
    })
  }
}

impl PartialEq for Entry {
  fn eq(&self, other: &Entry) -> bool {
    self.json == other.json
  }
}

/// Its text: a value nested 100,000 deep is printed without recursion.
impl fmt::Debug for Entry {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "Entry({})", self.json)
  }
}

impl fmt::Display for Entry {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str(&self.json)
  }
}

fn view_of(v: &Json, depth: usize) -> Value {
  match v {
    Json::Null => Value::Null,
    Json::Bool(b) => Value::Bool(*b),
    Json::Number(n) => match serde_json::Number::from_f64(*n) {
      Some(n) => Value::Number(n),
      None if *n > 0.0 => Value::String("Infinity".into()),
      None => Value::String("-Infinity".into()),
    },
    Json::String(s) => Value::String(js_json::lossy(s).into_owned()),
    _ if depth == 0 => Value::Null,
    Json::Array(items) => Value::Array(items.iter().map(|i| view_of(i, depth - 1)).collect()),
    Json::Object(entries) => {
      Value::Object(entries.iter().map(|(k, v)| (js_json::lossy(k).into_owned(), view_of(v, depth - 1))).collect())
    }
  }
}

/// The view of a value kept as its text (`js_json::canonical_end`: literals, strings with the
/// simple escapes only, integers of at most 15 digits, one level of object or array, distinct
/// non-index keys), read by serde_json, on which it and `view_of(js_json::parse(text))` agree
/// once integers are made f64 as JavaScript has them: a check of one entry parses it once.
fn view_of_text(text: &str) -> Value {
  let Ok(mut v) = serde_json::from_str::<Value>(text) else {
    return js_json::parse(text.as_bytes()).map_or(Value::Null, |tree| view_of(&tree, VIEW_DEPTH));
  };
  let as_f64 = |v: &mut Value| {
    if let Value::Number(n) = v {
      if let Some(f) = n.as_f64().and_then(serde_json::Number::from_f64) {
        *n = f;
      }
    }
  };
  match &mut v {
    Value::Object(fields) => fields.values_mut().for_each(as_f64),
    Value::Array(items) => items.iter_mut().for_each(as_f64),
    other => as_f64(other),
  }
  v
}

/// A value made here (shallow: a new entry) as JSON.
fn json_of(v: &Value) -> Json {
  match v {
    Value::Null => Json::Null,
    Value::Bool(b) => Json::Bool(*b),
    Value::Number(n) => Json::Number(n.as_f64().unwrap_or(f64::NAN)),
    Value::String(s) => Json::String(s.as_bytes().to_vec()),
    Value::Array(items) => Json::Array(items.iter().map(json_of).collect()),
    Value::Object(m) => Json::Object(m.iter().map(|(k, v)| (k.as_bytes().to_vec(), json_of(v))).collect()),
  }
}

/// The parsed cache document: server name -> entry, in JavaScript's order (the file's, with
/// array-index names first, ascending), each name once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Document {
  entries: IndexMap<Key, Entry>,
}

impl Document {
  pub fn new() -> Document {
    Document::default()
  }

  pub fn len(&self) -> usize {
    self.entries.len()
  }

  pub fn is_empty(&self) -> bool {
    self.entries.is_empty()
  }

  pub fn get<N: EntryName + ?Sized>(&self, name: &N) -> Option<&Entry> {
    name.index_in(&self.entries).and_then(|i| self.entries.get_index(i)).map(|(_, e)| e)
  }

  pub fn contains_key<N: EntryName + ?Sized>(&self, name: &N) -> bool {
    name.index_in(&self.entries).is_some()
  }

  /// Sets `name`'s entry, where JavaScript would put it: in place when it exists, else last,
  /// or among the leading array-index names when it is one.
  pub fn insert(&mut self, name: String, entry: Entry) -> Option<Entry> {
    if let Some(i) = name.index_in(&self.entries) {
      return self.entries.get_index_mut(i).map(|(_, e)| std::mem::replace(e, entry));
    }
    let key = Key { text: name, exact: None };
    match js_json::array_index(key.text.as_bytes()) {
      Some(n) => {
        let at = self.entries.keys().take_while(|k| js_json::array_index(k.wtf8()).is_some_and(|m| m < n)).count();
        self.entries.shift_insert(at, key, entry);
      }
      None => {
        self.entries.insert(key, entry);
      }
    }
    None
  }

  /// Removes `name`'s entry, keeping the others' order. A name taken from this document's
  /// `keys()` that only a key with a lone surrogate shows (as U+FFFD) removes that entry: the
  /// document's own names always reach their entries (removing all, purging).
  pub fn shift_remove<N: EntryName + AsRef<str> + ?Sized>(&mut self, name: &N) -> Option<Entry> {
    let i = name.index_in(&self.entries).or_else(|| {
      let text = name.as_ref();
      self.entries.keys().position(|k| !k.is_well_formed() && k.text == text)
    })?;
    self.entries.shift_remove_index(i).map(|(_, e)| e)
  }

  /// Removes the entries of every name in `names`, each as `shift_remove` would find it, in
  /// one pass keeping the others' order: `shift_remove` of each would move every later entry
  /// each time (seconds for a clear of 27,000 entries).
  pub fn remove_many(&mut self, names: &std::collections::HashSet<&str>) {
    let entries = &self.entries;
    let keep: Vec<bool> = entries.keys().map(|k| !self.named(k, names)).collect();
    let mut keep = keep.into_iter();
    self.entries.retain(|_, _| keep.next().unwrap_or(true));
  }

  /// The document `remove_many(names)` would leave, copied from this one (which a memo may
  /// share): only the entries kept are copied.
  pub fn without(&self, names: &std::collections::HashSet<&str>) -> Document {
    let entries = self.entries.iter().filter(|(k, _)| !self.named(k, names)).map(|(k, e)| (k.clone(), e.clone()));
    Document { entries: entries.collect() }
  }

  /// Whether `key` is the entry `shift_remove` finds for one of `names`.
  fn named(&self, key: &Key, names: &std::collections::HashSet<&str>) -> bool {
    names.contains(key.text.as_str())
      && (key.is_well_formed() || self.entries.get_index_of(&ByName(&key.text)).is_none())
  }

  pub fn iter(&self) -> indexmap::map::Iter<'_, Key, Entry> {
    self.entries.iter()
  }

  pub fn keys(&self) -> indexmap::map::Keys<'_, Key, Entry> {
    self.entries.keys()
  }
}

impl<'d> IntoIterator for &'d Document {
  type Item = (&'d Key, &'d Entry);
  type IntoIter = indexmap::map::Iter<'d, Key, Entry>;
  fn into_iter(self) -> Self::IntoIter {
    self.entries.iter()
  }
}

/// What a file's bytes turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Parsed {
  Document(Document),
  /// Not JSON, or JSON whose root is not an object. Claude Code reads this as `{}`.
  Corrupt(String),
}

/// The bytes as Claude Code's `JSON.parse(readFile(…, 'utf8'))` reads them (see `js_json`).
pub(crate) fn parse(bytes: &[u8]) -> Parsed {
  let members = match js_json::parse_root_members(bytes) {
    Ok(members) => members,
    Err(Ok(root)) => return Parsed::Corrupt(format!("the root is {}, not an object", json_kind(&root))),
    Err(Err(err)) => return Parsed::Corrupt(format!("not valid JSON ({err})")),
  };
  // The root's members as written: made into properties here, as `JSON.parse` makes them (a
  // repeated name keeps its first place and takes its last value; array indices first).
  let mut entries = IndexMap::with_capacity(members.len());
  let mut indices = false;
  for (k, v) in members {
    indices |= js_json::array_index(&k).is_some();
    let entry = match v {
      Member::Text(text) => Entry::from_text(text),
      Member::Value(v) => Entry::from_json(v),
    };
    entries.insert(Key::from_wtf8(k), entry);
  }
  if indices {
    entries.sort_by_cached_key(|k, _| js_json::array_index(k.wtf8()).map_or((1, 0), |n| (0, n)));
  }
  Parsed::Document(Document { entries })
}

/// Compact JSON, as Claude Code's `JSON.stringify(obj)` writes it.
pub(crate) fn serialize(doc: &Document) -> Vec<u8> {
  let mut out = String::with_capacity(2 + doc.iter().map(|(k, e)| k.text.len() + e.json.len() + 4).sum::<usize>());
  out.push('{');
  for (i, (key, entry)) in doc.iter().enumerate() {
    if i > 0 {
      out.push(',');
    }
    js_json::write_string(key.wtf8(), &mut out);
    out.push(':');
    out.push_str(&entry.json);
  }
  out.push('}');
  out.into_bytes()
}

fn json_kind(v: &Json) -> &'static str {
  match v {
    Json::Null => "null",
    Json::Bool(_) => "a boolean",
    Json::Number(_) => "a number",
    Json::String(_) => "a string",
    Json::Array(_) => "an array",
    Json::Object(_) => "an object",
  }
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
pub(crate) fn new_entry(now: f64, ttl_ms: Option<f64>, id: Option<&str>) -> Entry {
  let mut entry = Map::new();
  entry.insert("timestamp".into(), json_number(now));
  if let Some(ttl) = ttl_ms {
    entry.insert("ttlMs".into(), json_number(ttl));
  }
  if let Some(id) = id {
    entry.insert("id".into(), Value::String(id.to_owned()));
  }
  Entry::from_value(Value::Object(entry))
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
  fn an_entry_kept_as_text_is_viewed_as_its_parsed_value() {
    let texts = [
      r#"{"timestamp":1795668795083}"#,
      r#"{"timestamp":-1,"ttlMs":0,"id":"mcpsrv_01","lapsedCcrSignInKey":"k\n\"\\","x":null,"y":false}"#,
      "{\"id\":\"\u{e9}\u{2028}\",\"t\":true}",
      r#"[1,-2,"x"]"#,
      r#""just a string""#,
      "123456789012345",
      "{}",
      "[]",
    ];
    for t in texts {
      assert!(js_json::canonical_end(t.as_bytes(), 0).is_some(), "{t} takes the fast path");
      let tree = js_json::parse(t.as_bytes()).expect("parses");
      assert_eq!(view_of_text(t), view_of(&tree, VIEW_DEPTH), "{t}");
    }
    let d = doc(r#"{"a":{"timestamp":1795668795083,"id":"x"}}"#);
    assert_eq!(d.get("a").and_then(|e| e.get("timestamp")).and_then(Value::as_f64), Some(1_795_668_795_083.0));
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
    assert!(entry_status("a", e.get("a").expect("entry"), 1000.0 + DEFAULT_TTL_MS - 1.0, DEFAULT_TTL_MS).cached);
    assert!(!entry_status("a", e.get("a").expect("entry"), 1000.0 + DEFAULT_TTL_MS, DEFAULT_TTL_MS).cached);
  }

  #[test]
  fn clock_skew_up_to_60_s_is_tolerated() {
    let e = doc(r#"{"a":{"timestamp":1795668859000},"b":{"timestamp":1795668860000}}"#);
    assert!(entry_status("a", e.get("a").expect("entry"), NOW, DEFAULT_TTL_MS).cached, "59 s ahead");
    assert!(!entry_status("b", e.get("b").expect("entry"), NOW, DEFAULT_TTL_MS).cached, "60 s ahead");
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
    assert_eq!(parse(b"{}"), Parsed::Document(Document::new()));
    assert_eq!(parse(b" {} \n"), Parsed::Document(Document::new()));
  }

  #[test]
  fn what_json_parse_accepts_is_a_document_written_back_as_stringify_would() {
    let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    let cases = [
      (
        format!(r#"{{"a":{{"timestamp":1}},"b":{{"x":{deep}}}}}"#),
        format!(r#"{{"a":{{"timestamp":1}},"b":{{"x":{deep}}}}}"#),
      ),
      (
        r#"{"a\ud800":{"timestamp":1},"b":{"n":1e400,"m":-0,"s":1e-400}}"#.into(),
        r#"{"a\ud800":{"timestamp":1},"b":{"n":null,"m":0,"s":0}}"#.into(),
      ),
      (r#" {"z":1, "2":{"b":1,"a":2,"b":3}, "1":0, "z":4 } "#.into(), r#"{"1":0,"2":{"b":3,"a":2},"z":4}"#.into()),
    ];
    for (src, want) in cases {
      let d = doc(&src);
      assert_eq!(String::from_utf8(serialize(&d)).expect("utf8"), want);
      // What the watchers and writers do with documents, at any depth without recursion.
      let copy = d.clone();
      assert_eq!(copy, d);
      assert!(!format!("{copy:?}").is_empty());
      // Every view made (the deep one cut at its depth).
      assert_eq!(d.iter().filter(|(_, e)| !e.is_string()).count(), d.len());
    }
    let latin1 = parse(b"{\"caf\xe9\":{\"timestamp\":1}}");
    assert!(matches!(&latin1, Parsed::Document(d) if d.contains_key("caf\u{fffd}")), "{latin1:?}");
  }

  #[test]
  fn a_key_with_a_lone_surrogate_is_never_found_by_another_name() {
    let mut d = doc(r#"{"a\ud800":{"timestamp":1795668795083},"a\udbff":{"timestamp":2}}"#);
    assert!(!d.contains_key("a\u{fffd}"), "U+FFFD is another name");
    assert_eq!(d.len(), 2, "two lone surrogates are two names");
    assert!(d.keys().all(|k| !k.is_well_formed() && &**k == "a\u{fffd}"));
    d.insert("a\u{fffd}".into(), new_entry(3.0, None, None));
    assert_eq!(d.len(), 3);
    let want =
      "{\"a\\ud800\":{\"timestamp\":1795668795083},\"a\\udbff\":{\"timestamp\":2},\"a\u{fffd}\":{\"timestamp\":3}}";
    assert_eq!(serialize(&d), want.as_bytes());
    // Its own names remove every entry: the well-formed one first, then the others.
    let names: Vec<String> = d.keys().map(ToString::to_string).collect();
    for n in &names {
      assert!(d.shift_remove(n).is_some(), "{n:?}");
    }
    assert!(d.is_empty());
  }

  #[test]
  fn array_index_names_go_first_as_javascript_puts_them() {
    let mut d = doc(r#"{"b":{"timestamp":1},"7":{"timestamp":1}}"#);
    d.insert("3".into(), new_entry(2.0, None, None));
    d.insert("c".into(), new_entry(2.0, None, None));
    d.insert("10".into(), new_entry(2.0, None, None));
    d.insert("7".into(), new_entry(5.0, None, None));
    let names: Vec<&str> = d.keys().map(|k| &**k).collect();
    assert_eq!(names, ["3", "7", "10", "b", "c"]);
    assert_eq!(d.get("7").map(ToString::to_string).as_deref(), Some(r#"{"timestamp":5}"#));
  }

  #[test]
  fn out_of_range_numbers_are_judged_as_javascript_numbers() {
    let d = doc(r#"{"inf":{"timestamp":1e400},"big":{"timestamp":1795668795083,"ttlMs":1e400}}"#);
    let s = statuses(&d, NOW, DEFAULT_TTL_MS);
    assert_eq!((s[0].timestamp, s[0].cached), (None, false), "not a finite timestamp");
    assert_eq!((s[1].ttl_ms, s[1].cached), (DEFAULT_TTL_MS, true), "the name-only rule's default TTL");
    assert_eq!(crate::server_rules::js_to_number(&d.get("big").expect("big")["ttlMs"]), f64::INFINITY);
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
