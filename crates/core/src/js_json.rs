//! JSON exactly as Node reads and writes it: `JSON.parse(fs.readFileSync(f, 'utf8'))` and
//! `JSON.stringify(value)`. A leaf module: no other module of this crate is used here.
//!
//! Why not serde_json: it recurses (a document nested a few hundred levels deep fails, or
//! overflows the stack without its limit), rejects an escaped lone surrogate (`"\ud800"`, what
//! `JSON.stringify` writes for such a string) and numbers beyond f64 (`1e400`), and keeps
//! duplicate keys' order and integer-like keys where the file had them. `JSON.parse` accepts all
//! of these. This parser is iterative (any depth, bounded only by memory, which the file size
//! bounds), keeps strings as WTF-8 (UTF-8 in which a lone surrogate is encoded as its own code
//! point, so every JavaScript string has exactly one encoding), turns out-of-range numbers into
//! ±Infinity, and builds objects as JavaScript does (the last of duplicate keys wins, at the
//! first one's place; array-index keys first, ascending). Bytes that are not UTF-8 become U+FFFD
//! as Node's decoder makes them (maximal subparts, as Rust's `from_utf8_lossy`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;

/// A JavaScript string, as WTF-8 bytes: valid UTF-8 unless it holds a lone surrogate.
pub type JsStr = Vec<u8>;

/// A value as `JSON.parse` makes it. (`Debug` and `PartialEq` recurse: for tests of small
/// values; nothing else uses them.)
#[derive(Debug, PartialEq)]
pub enum Json {
  Null,
  Bool(bool),
  Number(f64),
  String(JsStr),
  Array(Vec<Json>),
  /// Own properties in JavaScript's order, each key once.
  Object(Vec<(JsStr, Json)>),
}

/// Dropped without recursion: a value nested 100,000 deep must not overflow the stack.
impl Drop for Json {
  fn drop(&mut self) {
    let nested =
      |v: &Json| matches!(v, Json::Array(a) if !a.is_empty()) || matches!(v, Json::Object(o) if !o.is_empty());
    let deep = match self {
      Json::Array(items) => items.iter().any(nested),
      Json::Object(entries) => entries.iter().any(|(_, v)| nested(v)),
      _ => false,
    };
    if !deep {
      // Leaves only: the fields' own drop does not recurse (the usual entry, no allocation here).
      return;
    }
    let mut stack = Vec::new();
    take_children(self, &mut stack);
    while let Some(mut v) = stack.pop() {
      take_children(&mut v, &mut stack);
    }
  }
}

fn take_children(v: &mut Json, into: &mut Vec<Json>) {
  match v {
    Json::Array(items) if !items.is_empty() => into.append(items),
    Json::Object(entries) if !entries.is_empty() => into.extend(entries.drain(..).map(|(_, v)| v)),
    _ => {}
  }
}

/// Why bytes are not a JSON document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
  /// The input ended where more was due: what a write caught half done leaves.
  pub truncated: bool,
  pub at: usize,
  pub what: &'static str,
}

impl std::fmt::Display for SyntaxError {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    if self.truncated {
      write!(f, "the JSON ends early at byte {}", self.at)
    } else {
      write!(f, "{} at byte {}", self.what, self.at)
    }
  }
}

/// `JSON.parse` of the bytes decoded as UTF-8.
pub fn parse(bytes: &[u8]) -> Result<Json, SyntaxError> {
  Parser { src: bytes, pos: 0 }.document()
}

/// A root object's member value: its text when that is already what `JSON.stringify` would
/// write for it (no tree needed to write it back: `parse` of the text gives the value), or
/// else the value.
#[derive(Debug, PartialEq)]
pub enum Member<'a> {
  Text(&'a str),
  Value(Json),
}

/// `parse`, but a root object's members are left as written (duplicates included, in file
/// order), for a caller that builds its own map of them (`js_object` says how JavaScript would),
/// each value kept as its text where that is already canonical (`Member`): the usual entry of
/// a cache file costs no tree. A root that is no object is `Err(Ok(value))`.
#[allow(clippy::type_complexity)]
pub fn parse_root_members(bytes: &[u8]) -> Result<Vec<(JsStr, Member<'_>)>, Result<Json, SyntaxError>> {
  let mut p = Parser { src: bytes, pos: 0 };
  if p.peek() != Some(b'{') {
    return Err(p.document());
  }
  p.pos += 1;
  let mut members = Vec::new();
  if p.peek() == Some(b'}') {
    p.pos += 1;
  } else {
    loop {
      let key = p.key().map_err(Err)?;
      p.skip_ws();
      let value = match canonical_end(bytes, p.pos) {
        // UTF-8 by `canonical_end`'s checks (verified here, not assumed).
        Some(end) => match std::str::from_utf8(&bytes[p.pos..end]) {
          Ok(text) => {
            p.pos = end;
            Member::Text(text)
          }
          Err(_) => Member::Value(p.value().map_err(Err)?),
        },
        None => Member::Value(p.value().map_err(Err)?),
      };
      members.push((key, value));
      match p.peek() {
        Some(b',') => p.pos += 1,
        Some(b'}') => {
          p.pos += 1;
          break;
        }
        _ => return Err(Err(p.fail("expected ',' or '}'"))),
      }
    }
  }
  if p.peek().is_some() {
    return Err(Err(SyntaxError { truncated: false, at: p.pos, what: "unexpected text after the JSON" }));
  }
  Ok(members)
}

/// Where the value at `start` ends, when its text is exactly what `JSON.stringify(JSON.parse(
/// text))` writes: a literal, a string with no escape `JSON.stringify` would write otherwise
/// (and no `\u` at all), an integer of at most 15 digits (exact in f64, written as is), or an
/// object or array of those with no whitespace (an object's keys distinct and no array index,
/// at most 8 of them). Anything else, valid or not, is `None`: the parser decides it.
pub fn canonical_end(src: &[u8], start: usize) -> Option<usize> {
  match src.get(start)? {
    b'{' => {
      let mut pos = start + 1;
      if src.get(pos) == Some(&b'}') {
        return Some(pos + 1);
      }
      let mut keys: [&[u8]; 8] = [&[]; 8];
      for n in 0..keys.len() {
        let end = canonical_string_end(src, pos)?;
        let key = &src[pos + 1..end - 1];
        if array_index(key).is_some() || keys[..n].contains(&key) || src.get(end) != Some(&b':') {
          return None;
        }
        keys[n] = key;
        pos = canonical_scalar_end(src, end + 1)?;
        match src.get(pos)? {
          b',' => pos += 1,
          b'}' => return Some(pos + 1),
          _ => return None,
        }
      }
      None
    }
    b'[' => {
      let mut pos = start + 1;
      if src.get(pos) == Some(&b']') {
        return Some(pos + 1);
      }
      loop {
        pos = canonical_scalar_end(src, pos)?;
        match src.get(pos)? {
          b',' => pos += 1,
          b']' => return Some(pos + 1),
          _ => return None,
        }
      }
    }
    _ => canonical_scalar_end(src, start),
  }
}

fn canonical_scalar_end(src: &[u8], start: usize) -> Option<usize> {
  let rest = &src[start.min(src.len())..];
  match rest.first()? {
    b'"' => canonical_string_end(src, start),
    b't' => rest.starts_with(b"true").then_some(start + 4),
    b'f' => rest.starts_with(b"false").then_some(start + 5),
    b'n' => rest.starts_with(b"null").then_some(start + 4),
    b'-' | b'0'..=b'9' => {
      let negative = rest[0] == b'-';
      let digits = rest[usize::from(negative)..].iter().take_while(|b| b.is_ascii_digit()).count();
      let int = &rest[usize::from(negative)..usize::from(negative) + digits];
      let end = start + usize::from(negative) + digits;
      // Not `-0` (written `0`), no leading zero, no fraction or exponent (their shortest form
      // is for `write_number` to say).
      let plain = match int {
        [b'0'] => !negative,
        [b'1'..=b'9', ..] => digits <= 15,
        _ => false,
      };
      (plain && !matches!(src.get(end), Some(b'.' | b'e' | b'E'))).then_some(end)
    }
    _ => None,
  }
}

/// The end of the string at `start` (its closing quote's next byte) when `JSON.stringify`
/// writes it as it stands: UTF-8, no raw control character, escapes only `\"`, `\\`, `\b`,
/// `\f`, `\n`, `\r`, `\t` (each as `JSON.stringify` writes that character).
fn canonical_string_end(src: &[u8], start: usize) -> Option<usize> {
  if src.get(start) != Some(&b'"') {
    return None;
  }
  let mut pos = start + 1;
  let mut ascii = true;
  loop {
    match *src.get(pos)? {
      b'"' => break,
      b'\\' => match src.get(pos + 1)? {
        b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => pos += 2,
        _ => return None,
      },
      0..0x20 => return None,
      b => {
        ascii &= b.is_ascii();
        pos += 1;
      }
    }
  }
  (ascii || std::str::from_utf8(&src[start + 1..pos]).is_ok()).then_some(pos + 1)
}

/// Whether `bytes` are a cut-off prefix of some JSON text (empty, or ending mid-value): what a
/// plain `writeFile` (truncate, then write) leaves when read half done. Garbage in the middle,
/// or a whole document, never is.
pub fn looks_truncated(bytes: &[u8]) -> bool {
  matches!(parse(bytes), Err(SyntaxError { truncated: true, .. }))
}

enum Frame {
  Array(Vec<Json>),
  Object(Vec<(JsStr, Json)>, JsStr),
}

struct Parser<'a> {
  src: &'a [u8],
  pos: usize,
}

impl Parser<'_> {
  fn fail(&self, what: &'static str) -> SyntaxError {
    SyntaxError { truncated: self.pos >= self.src.len(), at: self.pos, what }
  }

  fn skip_ws(&mut self) {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.src.get(self.pos) {
      self.pos += 1;
    }
  }

  fn peek(&mut self) -> Option<u8> {
    self.skip_ws();
    self.src.get(self.pos).copied()
  }

  fn document(mut self) -> Result<Json, SyntaxError> {
    let value = self.value()?;
    if self.peek().is_some() {
      return Err(SyntaxError { truncated: false, at: self.pos, what: "unexpected text after the JSON" });
    }
    Ok(value)
  }

  /// An object member's key and its colon.
  fn key(&mut self) -> Result<JsStr, SyntaxError> {
    if self.peek() != Some(b'"') {
      return Err(self.fail("expected a string key"));
    }
    self.pos += 1;
    let key = self.string()?;
    if self.peek() != Some(b':') {
      return Err(self.fail("expected ':'"));
    }
    self.pos += 1;
    Ok(key)
  }

  fn value(&mut self) -> Result<Json, SyntaxError> {
    let mut stack: Vec<Frame> = Vec::new();
    'value: loop {
      let mut v = match self.peek() {
        None => return Err(self.fail("expected a value")),
        Some(b'{') => {
          self.pos += 1;
          if self.peek() == Some(b'}') {
            self.pos += 1;
            Json::Object(Vec::new())
          } else {
            let key = self.key()?;
            stack.push(Frame::Object(Vec::new(), key));
            continue 'value;
          }
        }
        Some(b'[') => {
          self.pos += 1;
          if self.peek() == Some(b']') {
            self.pos += 1;
            Json::Array(Vec::new())
          } else {
            stack.push(Frame::Array(Vec::new()));
            continue 'value;
          }
        }
        Some(b'"') => {
          self.pos += 1;
          Json::String(self.string()?)
        }
        Some(b't') => self.literal(b"true", Json::Bool(true))?,
        Some(b'f') => self.literal(b"false", Json::Bool(false))?,
        Some(b'n') => self.literal(b"null", Json::Null)?,
        Some(b'-' | b'0'..=b'9') => Json::Number(self.number()?),
        Some(_) => return Err(self.fail("unexpected character")),
      };
      // Hand the finished value to the containers it completes.
      loop {
        match stack.last_mut() {
          None => return Ok(v),
          Some(Frame::Array(items)) => {
            items.push(v);
            match self.peek() {
              Some(b',') => {
                self.pos += 1;
                continue 'value;
              }
              Some(b']') => {
                self.pos += 1;
                match stack.pop() {
                  Some(Frame::Array(items)) => v = Json::Array(items),
                  _ => return Err(self.fail("internal: parser frame lost")),
                }
              }
              _ => return Err(self.fail("expected ',' or ']'")),
            }
          }
          Some(Frame::Object(entries, key)) => {
            entries.push((std::mem::take(key), v));
            match self.peek() {
              Some(b',') => {
                self.pos += 1;
                *key = self.key()?;
                continue 'value;
              }
              Some(b'}') => {
                self.pos += 1;
                match stack.pop() {
                  Some(Frame::Object(entries, _)) => v = Json::Object(js_object(entries)),
                  _ => return Err(self.fail("internal: parser frame lost")),
                }
              }
              _ => return Err(self.fail("expected ',' or '}'")),
            }
          }
        }
      }
    }
  }

  fn literal(&mut self, word: &'static [u8], v: Json) -> Result<Json, SyntaxError> {
    let rest = &self.src[self.pos..];
    let n = rest.iter().zip(word).take_while(|(a, b)| a == b).count();
    if n == word.len() {
      self.pos += n;
      return Ok(v);
    }
    self.pos += n;
    Err(self.fail("unexpected character"))
  }

  fn digits(&mut self) -> usize {
    let start = self.pos;
    while self.src.get(self.pos).is_some_and(u8::is_ascii_digit) {
      self.pos += 1;
    }
    self.pos - start
  }

  fn number(&mut self) -> Result<f64, SyntaxError> {
    let start = self.pos;
    if self.src[self.pos] == b'-' {
      self.pos += 1;
    }
    match self.src.get(self.pos) {
      Some(b'0') => self.pos += 1,
      Some(b'1'..=b'9') => {
        self.digits();
      }
      _ => return Err(self.fail("expected a digit")),
    }
    if self.src.get(self.pos) == Some(&b'.') {
      self.pos += 1;
      if self.digits() == 0 {
        return Err(self.fail("expected a digit"));
      }
    }
    if let Some(b'e' | b'E') = self.src.get(self.pos) {
      self.pos += 1;
      if let Some(b'+' | b'-') = self.src.get(self.pos) {
        self.pos += 1;
      }
      if self.digits() == 0 {
        return Err(self.fail("expected a digit"));
      }
    }
    // ASCII digits, signs, '.' and 'e': always UTF-8, and always a float Rust reads, rounding
    // as JavaScript does (to nearest, out of range to ±Infinity or ±0).
    std::str::from_utf8(&self.src[start..self.pos]).ok().and_then(|s| s.parse::<f64>().ok()).ok_or(SyntaxError {
      truncated: false,
      at: start,
      what: "bad number",
    })
  }

  /// The rest of a string after its opening quote, through the closing one.
  fn string(&mut self) -> Result<JsStr, SyntaxError> {
    let mut out = Vec::new();
    loop {
      let start = self.pos;
      while self.src.get(self.pos).is_some_and(|&b| b != b'"' && b != b'\\' && b >= 0x20) {
        self.pos += 1;
      }
      let run = &self.src[start..self.pos];
      if run.is_ascii() {
        out.extend_from_slice(run);
      } else {
        match String::from_utf8_lossy(run) {
          Cow::Borrowed(s) => out.extend_from_slice(s.as_bytes()),
          Cow::Owned(s) => out.extend_from_slice(s.as_bytes()),
        }
      }
      match self.src.get(self.pos) {
        None => return Err(self.fail("unterminated string")),
        Some(b'"') => {
          self.pos += 1;
          return Ok(out);
        }
        Some(b'\\') => {
          self.pos += 1;
          self.escape(&mut out)?;
        }
        Some(_) => return Err(self.fail("a control character in a string")),
      }
    }
  }

  fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), SyntaxError> {
    let Some(&c) = self.src.get(self.pos) else { return Err(self.fail("unterminated string")) };
    self.pos += 1;
    let simple = match c {
      b'"' => b'"',
      b'\\' => b'\\',
      b'/' => b'/',
      b'b' => 0x08,
      b'f' => 0x0c,
      b'n' => b'\n',
      b'r' => b'\r',
      b't' => b'\t',
      b'u' => {
        let unit = self.hex4()?;
        let code = if (0xd800..0xdc00).contains(&unit) && self.src[self.pos..].starts_with(b"\\u") {
          // A high surrogate: with an escaped low one after it, the pair is one code point.
          let save = self.pos;
          self.pos += 2;
          let low = self.hex4()?;
          if (0xdc00..0xe000).contains(&low) {
            0x10000 + ((u32::from(unit) - 0xd800) << 10) + (u32::from(low) - 0xdc00)
          } else {
            self.pos = save;
            u32::from(unit)
          }
        } else {
          u32::from(unit)
        };
        push_wtf8(out, code);
        return Ok(());
      }
      _ => {
        self.pos -= 1;
        return Err(self.fail("bad escape"));
      }
    };
    out.push(simple);
    Ok(())
  }

  fn hex4(&mut self) -> Result<u16, SyntaxError> {
    let mut unit = 0u16;
    for _ in 0..4 {
      let Some(&b) = self.src.get(self.pos) else { return Err(self.fail("unterminated string")) };
      let d = match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => return Err(self.fail("bad \\u escape")),
      };
      unit = unit << 4 | u16::from(d);
      self.pos += 1;
    }
    Ok(unit)
  }
}

/// A code point (a surrogate included) in WTF-8: UTF-8's encoding extended to surrogates.
fn push_wtf8(out: &mut Vec<u8>, code: u32) {
  // The casts keep the low bits of values just masked or shifted into range.
  match code {
    0..=0x7f => out.push(code as u8),
    0x80..=0x7ff => out.extend_from_slice(&[0xc0 | (code >> 6) as u8, 0x80 | (code & 0x3f) as u8]),
    0x800..=0xffff => {
      out.extend_from_slice(&[0xe0 | (code >> 12) as u8, 0x80 | ((code >> 6) & 0x3f) as u8, 0x80 | (code & 0x3f) as u8])
    }
    _ => out.extend_from_slice(&[
      0xf0 | (code >> 18) as u8,
      0x80 | ((code >> 12) & 0x3f) as u8,
      0x80 | ((code >> 6) & 0x3f) as u8,
      0x80 | (code & 0x3f) as u8,
    ]),
  }
}

/// Whether `key` is an array index (`"0"`, `"1"`, … `"4294967294"`, canonical): JavaScript
/// lists those keys first, in ascending order.
pub fn array_index(key: &[u8]) -> Option<u32> {
  match key {
    [b'0'] => Some(0),
    [b'1'..=b'9', rest @ ..] if rest.len() < 10 && rest.iter().all(u8::is_ascii_digit) => {
      let n = key.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
      (n < u64::from(u32::MAX)).then_some(n as u32)
    }
    _ => None,
  }
}

/// Members as parsed (duplicates included) into an object's own properties as `JSON.parse`
/// makes them: each key once, with its last value at its first place; array indices first.
fn js_object(mut members: Vec<(JsStr, Json)>) -> Vec<(JsStr, Json)> {
  if members.len() > 1 {
    // Where each key first appeared.
    let first: Vec<usize> = if members.len() <= 8 {
      (0..members.len()).map(|i| members[..i].iter().position(|(k, _)| *k == members[i].0).unwrap_or(i)).collect()
    } else {
      let mut seen = HashMap::with_capacity(members.len());
      members.iter().enumerate().map(|(i, (k, _))| *seen.entry(k.as_slice()).or_insert(i)).collect()
    };
    if first.iter().enumerate().any(|(i, &f)| f != i) {
      // Indexed like `members`: a repeated key's value goes to its first place.
      let mut slots: Vec<Option<(JsStr, Json)>> = Vec::with_capacity(members.len());
      for (i, (k, v)) in members.drain(..).enumerate() {
        if first[i] == i {
          slots.push(Some((k, v)));
        } else {
          if let Some(Some(slot)) = slots.get_mut(first[i]) {
            slot.1 = v;
          }
          slots.push(None);
        }
      }
      members = slots.into_iter().flatten().collect();
    }
  }
  if members.iter().any(|(k, _)| array_index(k).is_some()) {
    // Stable: the other keys keep their order.
    members.sort_by_key(|(k, _)| array_index(k).map_or((1, 0), |n| (0, n)));
  }
  members
}

/// `JSON.stringify(value)`, without recursion. Non-finite numbers are written `null`, as
/// JavaScript writes them.
pub fn stringify(value: &Json, out: &mut String) {
  enum Open<'v> {
    Array(std::slice::Iter<'v, Json>),
    Object(std::slice::Iter<'v, (JsStr, Json)>),
  }
  let mut stack: Vec<Open<'_>> = Vec::new();
  let mut next = Some(value);
  loop {
    if let Some(v) = next.take() {
      match v {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => write_number(*n, out),
        Json::String(s) => write_string(s, out),
        Json::Array(items) => {
          out.push('[');
          stack.push(Open::Array(items.iter()));
        }
        Json::Object(entries) => {
          out.push('{');
          stack.push(Open::Object(entries.iter()));
        }
      }
    }
    let Some(top) = stack.last_mut() else { return };
    let first = matches!(out.as_bytes().last(), Some(b'[' | b'{'));
    match top {
      Open::Array(items) => match items.next() {
        Some(v) => {
          if !first {
            out.push(',');
          }
          next = Some(v);
        }
        None => {
          out.push(']');
          stack.pop();
        }
      },
      Open::Object(entries) => match entries.next() {
        Some((k, v)) => {
          if !first {
            out.push(',');
          }
          write_string(k, out);
          out.push(':');
          next = Some(v);
        }
        None => {
          out.push('}');
          stack.pop();
        }
      },
    }
  }
}

/// A string as `JSON.stringify` quotes it: `"` and `\` escaped, control characters as `\b`,
/// `\f`, `\n`, `\r`, `\t` or `\u00xx`, a lone surrogate as `\udxxx`, everything else as it is.
pub fn write_string(s: &[u8], out: &mut String) {
  out.push('"');
  let mut rest = s;
  loop {
    let (text, tail) = split_well_formed(rest);
    escape_into(text, out);
    rest = tail;
    match surrogate_at(rest) {
      Some(unit) => {
        let _ = write!(out, "\\u{unit:04x}");
        rest = &rest[3..];
      }
      // Not WTF-8 this module made; never dropped silently, never looped on.
      None if !rest.is_empty() => {
        out.push('\u{fffd}');
        rest = &rest[1..];
      }
      None => break,
    }
  }
  out.push('"');
}

/// Well-formed text with `JSON.stringify`'s escapes, copied in runs between them.
fn escape_into(text: &str, out: &mut String) {
  let mut start = 0;
  for (i, &b) in text.as_bytes().iter().enumerate() {
    let escape = match b {
      b'"' => "\\\"",
      b'\\' => "\\\\",
      0x08 => "\\b",
      0x0c => "\\f",
      b'\n' => "\\n",
      b'\r' => "\\r",
      b'\t' => "\\t",
      0..=0x1f => "",
      _ => continue,
    };
    // `i` is an ASCII byte, so a character boundary.
    out.push_str(&text[start..i]);
    if escape.is_empty() {
      let _ = write!(out, "\\u{b:04x}");
    } else {
      out.push_str(escape);
    }
    start = i + 1;
  }
  out.push_str(&text[start..]);
}

/// The longest well-formed (UTF-8) prefix of WTF-8 bytes, and the rest.
fn split_well_formed(s: &[u8]) -> (&str, &[u8]) {
  match std::str::from_utf8(s) {
    Ok(text) => (text, &[]),
    Err(e) => {
      let (head, tail) = s.split_at(e.valid_up_to());
      // `valid_up_to` bytes are UTF-8 by its definition.
      (std::str::from_utf8(head).unwrap_or_default(), tail)
    }
  }
}

/// The surrogate WTF-8 encodes at the start of `s`, if any.
fn surrogate_at(s: &[u8]) -> Option<u16> {
  match s {
    [0xed, b1 @ 0xa0..=0xbf, b2, ..] => Some(0xd000 | (u16::from(b1 & 0x3f) << 6) | u16::from(b2 & 0x3f)),
    _ => None,
  }
}

/// WTF-8 as a Rust string, each lone surrogate as U+FFFD (what napi makes of such a string).
pub fn lossy(s: &[u8]) -> Cow<'_, str> {
  match std::str::from_utf8(s) {
    Ok(text) => Cow::Borrowed(text),
    Err(_) => {
      let mut out = String::with_capacity(s.len());
      let mut rest = s;
      while !rest.is_empty() {
        let (text, tail) = split_well_formed(rest);
        out.push_str(text);
        rest = tail;
        if surrogate_at(rest).is_some() {
          out.push('\u{fffd}');
          rest = &rest[3..];
        } else if !rest.is_empty() {
          // Not WTF-8 this module made; never dropped silently.
          out.push('\u{fffd}');
          rest = &rest[1..];
        }
      }
      Cow::Owned(out)
    }
  }
}

/// `String(n)` for a finite number, `null` for a non-finite one: what `JSON.stringify` writes.
pub fn write_number(n: f64, out: &mut String) {
  if !n.is_finite() {
    out.push_str("null");
    return;
  }
  if n == 0.0 {
    // -0 included.
    out.push('0');
    return;
  }
  if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
    // A safe integer (a timestamp, a TTL): all its digits are the shortest ones.
    let _ = write!(out, "{}", n as i64);
    return;
  }
  if n < 0.0 {
    out.push('-');
  }
  // Rust's `{:e}` gives the shortest digits that read back as `n`, as JavaScript picks them.
  let sci = format!("{:e}", n.abs());
  let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
  let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
  let k = digits.len() as i32;
  // n = 0.digits × 10^point
  let point = exp.parse::<i32>().unwrap_or(0) + 1;
  if k <= point && point <= 21 {
    out.push_str(&digits);
    out.extend(std::iter::repeat_n('0', (point - k) as usize));
  } else if 0 < point && point <= 21 {
    out.push_str(&digits[..point as usize]);
    out.push('.');
    out.push_str(&digits[point as usize..]);
  } else if -6 < point && point <= 0 {
    out.push_str("0.");
    out.extend(std::iter::repeat_n('0', (-point) as usize));
    out.push_str(&digits);
  } else {
    out.push_str(&digits[..1]);
    if k > 1 {
      out.push('.');
      out.push_str(&digits[1..]);
    }
    let e = point - 1;
    let _ = write!(out, "e{}{}", if e < 0 { '-' } else { '+' }, e.abs());
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn text(v: &Json) -> String {
    let mut s = String::new();
    stringify(v, &mut s);
    s
  }

  fn round(src: &str) -> String {
    text(&parse(src.as_bytes()).expect("parses"))
  }

  #[test]
  fn a_value_kept_as_its_text_is_what_stringify_writes_of_it() {
    // Pieces a value's text can be made of, canonical and not (each alone or as an entry field).
    let scalars = [
      "0",
      "-0",
      "1",
      "-1",
      "01",
      "123456789012345",
      "1234567890123456",
      "9007199254740993",
      "1.5",
      "1e3",
      "1E3",
      "-",
      "true",
      "false",
      "null",
      "nul",
      r#""""#,
      r#""a""#,
      r#""\n\t\"\\""#,
      r#""\/""#,
      r#""\u0041""#,
      r#""\ud800""#,
      "\"\u{e9}\"",
      "\"\u{2028}\"",
      "\"\x01\"",
      r#""\x""#,
      r#""unterminated"#,
    ];
    let mut texts: Vec<String> = scalars.iter().map(|s| s.to_string()).collect();
    for a in scalars {
      texts.push(format!("[{a}]"));
      texts.push(format!("[{a},{a}]"));
      texts.push(format!("[ {a}]"));
      texts.push(format!(r#"{{"timestamp":{a}}}"#));
      texts.push(format!(r#"{{"timestamp":1,"id":{a}}}"#));
      texts.push(format!(r#"{{"a":{a},"a":{a}}}"#));
      texts.push(format!(r#"{{"1":{a}}}"#));
      texts.push(format!(r#"{{"k": {a}}}"#));
      texts.push(format!(r#"{{"k":[{a}]}}"#));
    }
    texts.push(format!("{{{}}}", (0..9).map(|i| format!("\"k{i}\":1")).collect::<Vec<_>>().join(",")));
    let mut kept = 0;
    for t in &texts {
      let Some(end) = canonical_end(t.as_bytes(), 0) else { continue };
      kept += 1;
      assert_eq!(end, t.len(), "{t}: the whole value");
      let v = parse(t.as_bytes()).unwrap_or_else(|e| panic!("{t} kept as text but does not parse: {e}"));
      assert_eq!(text(&v), *t, "kept as its text, so it must be what stringify writes");
      assert!(serde_json::from_str::<serde_json::Value>(t).is_ok(), "{t}: serde_json reads it too (cache_file's view)");
    }
    assert!(kept > 40 && kept < texts.len() / 2, "both kinds covered: {kept} of {}", texts.len());
    // Claude Code's own entries take the fast path.
    for t in [r#"{"timestamp":1795668795083}"#, r#"{"timestamp":1,"ttlMs":14400000,"id":"mcpsrv_01"}"#] {
      assert_eq!(canonical_end(t.as_bytes(), 0), Some(t.len()), "{t}");
    }
  }

  #[test]
  fn root_members_are_kept_as_text_where_canonical() {
    let src = br#"{"a":{"timestamp":1}, "b" : {"timestamp":1.50},"c":{"x":{"y":1}}}"#;
    let members = parse_root_members(src).expect("an object");
    assert_eq!(members[0], (b"a".to_vec(), Member::Text(r#"{"timestamp":1}"#)));
    assert!(matches!(&members[1], (k, Member::Value(_)) if k == b"b"), "1.50 is written 1.5");
    assert!(matches!(&members[2], (k, Member::Value(_)) if k == b"c"), "nested: parsed");
    assert!(matches!(parse_root_members(b"[1]"), Err(Ok(Json::Array(_)))));
    assert!(matches!(parse_root_members(br#"{"a":1} x"#), Err(Err(_))));
    assert!(matches!(parse_root_members(br#"{"a":1"#), Err(Err(SyntaxError { truncated: true, .. }))));
  }

  #[test]
  fn parses_and_writes_like_json_parse_and_stringify() {
    assert_eq!(
      round(r#" { "a" : [ 1 , 2.5 , true , false , null , "x" ] , "b" : { } } "#),
      r#"{"a":[1,2.5,true,false,null,"x"],"b":{}}"#
    );
    assert_eq!(
      round(r#"{"b":1,"2":1,"1":2,"b":3,"4294967295":0,"4294967294":0}"#),
      r#"{"1":2,"2":1,"4294967294":0,"b":3,"4294967295":0}"#
    );
    assert_eq!(round(r#"{"01":1,"1":2,"-1":3,"0":4}"#), r#"{"0":4,"1":2,"01":1,"-1":3}"#);
  }

  #[test]
  fn duplicate_keys_keep_the_last_value_at_the_first_place() {
    assert_eq!(round(r#"{"a":1,"b":2,"a":3}"#), r#"{"a":3,"b":2}"#);
    let many: String = (0..20).map(|i| format!("\"k{}\":{i},", i % 5)).collect();
    assert_eq!(round(&format!("{{{many}\"z\":0}}")), r#"{"k0":15,"k1":16,"k2":17,"k3":18,"k4":19,"z":0}"#);
  }

  #[test]
  fn numbers_are_javascript_numbers() {
    let cases = [
      ("1e400", "null"),
      ("-1e400", "null"),
      ("1e-400", "0"),
      ("-0", "0"),
      ("-0.0e5", "0"),
      ("1e21", "1e+21"),
      ("1e20", "100000000000000000000"),
      ("123e-20", "1.23e-18"),
      ("0.000001", "0.000001"),
      ("0.0000001", "1e-7"),
      ("0.1", "0.1"),
      ("5e-324", "5e-324"),
      ("1.7976931348623157e308", "1.7976931348623157e+308"),
      ("1795668795083", "1795668795083"),
      ("12.50", "12.5"),
      ("9007199254740993", "9007199254740992"),
      ("-1.5E+3", "-1500"),
    ];
    for (src, want) in cases {
      assert_eq!(round(&format!("[{src}]")), format!("[{want}]"), "{src}");
    }
    assert_eq!(parse(b"1e400").expect("n"), Json::Number(f64::INFINITY));
    assert!(matches!(parse(b"-0").expect("n"), Json::Number(z) if z == 0.0 && z.is_sign_negative()));
  }

  #[test]
  fn strings_keep_lone_surrogates_and_escape_as_stringify() {
    let v =
      parse(br#"["\ud800","a\uDBFFb","\ud83d\ude00","\ude00\ud83d","\u0000\u001f\u007f","\"\\\/\b\f\n\r\t","\u2028"]"#)
        .expect("parses");
    assert_eq!(
      text(&v),
      "[\"\\ud800\",\"a\\udbffb\",\"\u{1f600}\",\"\\ude00\\ud83d\",\"\\u0000\\u001f\u{7f}\",\"\\\"\\\\/\\b\\f\\n\\r\\t\",\"\u{2028}\"]"
    );
    let Json::Array(items) = &v else { panic!("array") };
    let Json::String(s) = &items[0] else { panic!("string") };
    assert_eq!(lossy(s), "\u{fffd}");
    assert_ne!(items[0], Json::String("\u{fffd}".into()), "a lone surrogate is not U+FFFD");
  }

  #[test]
  fn invalid_utf8_becomes_replacement_characters_as_node_decodes() {
    // Latin-1 é, a cut-off 3-byte sequence, an encoded surrogate, an overlong '/'.
    let v = parse(b"{\"caf\xe9\":1,\"x\xe2\x82y\":2,\"\xed\xa0\x80\":3,\"\xc0\xaf\":4}").expect("parses");
    assert_eq!(text(&v), "{\"caf\u{fffd}\":1,\"x\u{fffd}y\":2,\"\u{fffd}\u{fffd}\u{fffd}\":3,\"\u{fffd}\u{fffd}\":4}");
    // Outside a string, any non-ASCII byte is an error, as U+FFFD there is.
    assert!(parse(b"{\"a\":1}\xe9").is_err());
  }

  #[test]
  fn any_depth_without_recursion() {
    let depth = 200_000;
    let deep = format!("{{\"a\":{}1{}}}", "[".repeat(depth), "]".repeat(depth));
    let v = parse(deep.as_bytes()).expect("parses");
    assert_eq!(text(&v), deep);
    let objs = format!("{}{}", "{\"x\":".repeat(depth), "}".repeat(depth));
    assert!(parse(objs.as_bytes()).is_err(), "an empty value is an error at any depth");
    let objs = format!("{}0{}", "{\"x\":".repeat(depth), "}".repeat(depth));
    assert_eq!(text(&parse(objs.as_bytes()).expect("parses")), objs);
  }

  #[test]
  fn truncated_is_told_from_corrupt() {
    let doc = br#"{"a\ud800":{"timestamp":1795668795083,"x":[1,-2.5e3,"s\u00e9",true,null]}}"#;
    for n in 0..doc.len() {
      let err = parse(&doc[..n]).expect_err("a prefix is not a document");
      assert!(err.truncated, "prefix {n}: {err}");
    }
    assert!(parse(doc).is_ok());
    for bad in [
      &b"{nope"[..],
      b"[1,]",
      b"{\"a\":}",
      b"{} x",
      b"{\"a\":01}",
      b"{\"a\":1.}",
      b"{\"a\":\"\x01\"}",
      b"\xef\xbb\xbf{}",
    ] {
      let err = parse(bad).expect_err("corrupt");
      assert!(!err.truncated, "{:?}: {err}", String::from_utf8_lossy(bad));
    }
    assert!(looks_truncated(b"") && looks_truncated(b"  {") && !looks_truncated(b"{}"));
  }

  #[test]
  fn array_indices() {
    assert_eq!(array_index(b"0"), Some(0));
    assert_eq!(array_index(b"4294967294"), Some(4_294_967_294));
    for no in [&b"4294967295"[..], b"01", b"-1", b"1.0", b"", b"99999999999", b"1a"] {
      assert_eq!(array_index(no), None, "{:?}", String::from_utf8_lossy(no));
    }
  }
}
