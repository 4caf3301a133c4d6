//! One credentials document reduced to what the needs-auth logic needs per server name. No
//! token, nor anything derived from one, leaves here except booleans, `expiresAt` and a
//! fingerprint kept in Rust memory.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};

use serde_json::{Map, Value};

/// One server name's credentials, across all its `mcpOAuth` keys (`name|hash`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerCredentials {
  pub has_access_token: bool,
  pub has_refresh_token: bool,
  /// The latest `expiresAt` among keys that hold an access token.
  pub expires_at: Option<f64>,
  /// A key with neither token whose discovery found OAuth metadata: Claude Code's second skip
  /// rule (written by `claude mcp list` on a 401).
  pub tokenless_stub: bool,
  /// `discoveryState.tokenlessRejectedAt` of that stub (Claude Code 2.1.332+), if any.
  pub(crate) tokenless_rejected_at: Option<f64>,
  /// Changes whenever any token or `expiresAt` of the server changes. Never leaves Rust.
  pub(crate) fingerprint: u64,
}

impl ServerCredentials {
  pub(crate) fn has_token(&self) -> bool {
    self.has_access_token || self.has_refresh_token
  }
}

/// What the store said, at one read.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Snapshot {
  pub(crate) servers: BTreeMap<String, ServerCredentials>,
  /// Whether any credentials document was found.
  pub(crate) present: bool,
  /// When the store last changed (ms since the epoch): the file's mtime, or the keychain item's
  /// modification date; `None` where the platform does not say.
  pub(crate) changed_at: Option<f64>,
  /// The account's tokens (`claudeAiOauth`), if any: what claude.ai connectors are dialed with.
  /// Its fingerprint changes with any of its tokens or `expiresAt`, and never leaves Rust.
  pub(crate) account: Option<ServerCredentials>,
}

/// Parses without ever echoing content: serde_json's syntax errors name a position only.
pub(super) fn parse_document(bytes: &[u8]) -> std::result::Result<Map<String, Value>, String> {
  match serde_json::from_slice::<Value>(bytes) {
    Ok(Value::Object(m)) => Ok(m),
    Ok(_) => Err("the root is not a JSON object".to_owned()),
    Err(e) => Err(format!("not valid JSON (line {}, column {})", e.line(), e.column())),
  }
}

pub(super) fn summarise(doc: &Map<String, Value>, changed_at: Option<f64>) -> Snapshot {
  let mut servers: BTreeMap<String, ServerCredentials> = BTreeMap::new();
  let mut hashers: HashMap<String, std::collections::hash_map::DefaultHasher> = HashMap::new();
  if let Some(Value::Object(entries)) = doc.get("mcpOAuth") {
    for (key, entry) in entries {
      let Some(entry) = entry.as_object() else { continue };
      let name = entry
        .get("serverName")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| key.rsplit_once('|').map(|(n, _)| n.to_owned()))
        .unwrap_or_else(|| key.clone());
      let token = |field: &str| entry.get(field).and_then(Value::as_str).filter(|t| !t.is_empty());
      let access = token("accessToken");
      let refresh = token("refreshToken");
      let expires_at = entry.get("expiresAt").and_then(Value::as_f64);
      let discovery = entry.get("discoveryState").and_then(Value::as_object);
      let metadata_found =
        discovery.and_then(|d| d.get("oauthMetadataFound")).and_then(Value::as_bool).unwrap_or(false);
      let s = servers.entry(name.clone()).or_default();
      s.has_access_token |= access.is_some();
      s.has_refresh_token |= refresh.is_some();
      if access.is_some() {
        s.expires_at = match (s.expires_at, expires_at) {
          (Some(a), Some(b)) => Some(a.max(b)),
          (a, b) => a.or(b),
        };
      }
      if access.is_none() && refresh.is_none() && metadata_found {
        s.tokenless_stub = true;
        s.tokenless_rejected_at = discovery.and_then(|d| d.get("tokenlessRejectedAt")).and_then(Value::as_f64);
      }
      // Only what a sign-in changes goes into the fingerprint: a token-less stub written after a
      // 401 is not a sign-in.
      if access.is_some() || refresh.is_some() {
        let h = hashers.entry(name).or_default();
        key.hash(h);
        access.hash(h);
        refresh.hash(h);
        expires_at.map(f64::to_bits).hash(h);
      }
    }
  }
  for (name, h) in hashers {
    if let Some(s) = servers.get_mut(&name) {
      s.fingerprint = h.finish();
    }
  }
  Snapshot { present: true, servers, changed_at, account: account(doc) }
}

/// `claudeAiOauth` reduced like a server's credentials: booleans, `expiresAt`, a fingerprint.
fn account(doc: &Map<String, Value>) -> Option<ServerCredentials> {
  let entry = doc.get("claudeAiOauth")?.as_object()?;
  let token = |field: &str| entry.get(field).and_then(Value::as_str).filter(|t| !t.is_empty());
  let (access, refresh) = (token("accessToken"), token("refreshToken"));
  let expires_at = entry.get("expiresAt").and_then(Value::as_f64);
  let mut h = std::collections::hash_map::DefaultHasher::new();
  access.hash(&mut h);
  refresh.hash(&mut h);
  expires_at.map(f64::to_bits).hash(&mut h);
  Some(ServerCredentials {
    has_access_token: access.is_some(),
    has_refresh_token: refresh.is_some(),
    expires_at: access.and(expires_at),
    fingerprint: h.finish(),
    ..Default::default()
  })
}

#[cfg(test)]
pub(super) mod tests {
  use super::*;

  pub(crate) fn snapshot(json: &str) -> Snapshot {
    summarise(&parse_document(json.as_bytes()).expect("fixture parses"), Some(1.0))
  }

  pub(crate) const DOC: &str = r#"{"claudeAiOauth":{"accessToken":"ACCOUNT"},"mcpOAuth":{
    "github|3fbf0a9d339f36cf":{"serverName":"github","accessToken":"T1","refreshToken":"R1","expiresAt":2000,
      "discoveryState":{"oauthMetadataFound":true}},
    "github|0000000000000000":{"serverName":"github","accessToken":"T2","expiresAt":5000},
    "linear|1111111111111111":{"serverName":"linear","accessToken":"","expiresAt":0,
      "discoveryState":{"oauthMetadataFound":true}}}}"#;

  #[test]
  fn summarises_per_server_name() {
    let s = snapshot(DOC);
    let gh = &s.servers["github"];
    assert!(gh.has_access_token && gh.has_refresh_token && !gh.tokenless_stub);
    assert_eq!(gh.expires_at, Some(5000.0));
    let lin = &s.servers["linear"];
    assert!(!lin.has_token() && lin.tokenless_stub);
    assert!(!s.servers.contains_key("claudeAiOauth"));
  }

  #[test]
  fn fingerprints_follow_tokens_only() {
    let a = snapshot(DOC);
    let b = snapshot(&DOC.replace("\"T2\"", "\"T3\""));
    assert_ne!(a.servers["github"].fingerprint, b.servers["github"].fingerprint);
    assert_eq!(a.servers["linear"].fingerprint, b.servers["linear"].fingerprint);
    let c = snapshot(&DOC.replace("\"ACCOUNT\"", "\"OTHER\""));
    assert_eq!(a.servers["github"].fingerprint, c.servers["github"].fingerprint);
  }

  #[test]
  fn the_account_is_summarised_apart_with_its_own_fingerprint() {
    let a = snapshot(DOC);
    let acct = a.account.as_ref().expect("claudeAiOauth");
    assert!(acct.has_access_token && !acct.has_refresh_token && acct.expires_at.is_none());
    let b = snapshot(&DOC.replace("\"ACCOUNT\"", "\"OTHER\""));
    assert_ne!(acct.fingerprint, b.account.as_ref().expect("account").fingerprint);
    let c = snapshot(&DOC.replace("\"T2\"", "\"T3\""));
    assert_eq!(
      acct.fingerprint,
      c.account.as_ref().expect("account").fingerprint,
      "a server's save is not the account's"
    );
    assert!(snapshot(r#"{"mcpOAuth":{}}"#).account.is_none());
    let dbg = format!("{a:?}");
    assert!(!dbg.contains("ACCOUNT") && !dbg.contains("T2"), "no token in what the summary holds");
  }

  #[test]
  fn errors_never_echo_content() {
    let err = parse_document(br#"{"mcpOAuth":{"a|b":{"accessToken":"SECRET-TOKEN"#).expect_err("torn");
    assert!(!err.contains("SECRET"));
  }
}
