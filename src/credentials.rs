//! The credential reader: read-only access to Claude Code's credentials, reduced to what the
//! needs-auth logic needs per server name. It never writes, locks, renames or chmods a
//! credentials file or keychain item, and no token, nor anything derived from one, leaves this
//! module except as booleans, `expiresAt`, and change detection kept in Rust memory.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::atomic_file::{self, FileKind, Patience};
use crate::config_dir;
use crate::error::{Error, ErrorCode, Result};

/// Where credentials are read from (`options.credentials`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialSource {
  /// As Claude Code: on macOS the Keychain item first, then the file; elsewhere the file.
  Auto,
  File,
  Keychain,
  None,
}

impl CredentialSource {
  pub fn parse(s: Option<&str>) -> Result<Self> {
    match s.unwrap_or("auto") {
      "auto" => Ok(CredentialSource::Auto),
      "file" => Ok(CredentialSource::File),
      "keychain" => Ok(CredentialSource::Keychain),
      "none" => Ok(CredentialSource::None),
      other => Err(Error::new(
        ErrorCode::InvalidArgument,
        format!("options.credentials must be 'auto', 'file', 'keychain' or 'none', not {other:?}"),
      )),
    }
  }

  fn uses_keychain(self) -> bool {
    matches!(self, CredentialSource::Keychain) || (cfg!(target_os = "macos") && self == CredentialSource::Auto)
  }

  fn uses_file(self) -> bool {
    matches!(self, CredentialSource::Auto | CredentialSource::File)
  }

  /// Whether reading needs polling (a keychain has no change notification to watch).
  pub fn needs_polling(self) -> bool {
    self.uses_keychain()
  }
}

/// Where one config dir's credentials live.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Store {
  pub source: CredentialSource,
  pub file: PathBuf,
  pub keychain_service: String,
  pub keychain_account: String,
}

impl Store {
  /// `explicit`: the config dir came from `options.configDir` (Claude Code would then run with
  /// `CLAUDE_CONFIG_DIR` set, which suffixes the keychain service name).
  pub fn locate(config_dir: &Path, explicit: bool, source: CredentialSource) -> Store {
    let storage_dir = config_dir::secure_storage_dir(config_dir, explicit);
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    let suffixed = explicit || set("CLAUDE_CONFIG_DIR") || set("CLAUDE_SECURESTORAGE_CONFIG_DIR");
    Store {
      source,
      file: config_dir::credentials_path(&storage_dir),
      keychain_service: keychain_service(&storage_dir, suffixed),
      keychain_account: keychain_account(),
    }
  }

  /// The file whose changes a watcher should follow, when the file is read at all.
  pub fn watched_file(&self) -> Option<&Path> {
    self.source.uses_file().then_some(self.file.as_path())
  }
}

/// `"Claude Code-credentials"`, or with `-<sha256(configDir) first 8 hex>` when the config dir
/// was set explicitly, as Claude Code names its Keychain item.
pub fn keychain_service(dir: &Path, suffixed: bool) -> String {
  if !suffixed {
    return "Claude Code-credentials".to_owned();
  }
  let digest = Sha256::digest(dir.to_string_lossy().as_bytes());
  let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
  format!("Claude Code-credentials-{hex}")
}

/// `$USER`, else the OS user name, else `claude-code-user`; names with characters outside
/// `[A-Za-z0-9._-]` also fall back (Claude Code 2.1.332).
pub fn keychain_account() -> String {
  let valid = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
  std::env::var("USER")
    .ok()
    .filter(|u| !u.is_empty())
    .or_else(os_user_name)
    .filter(|u| valid(u))
    .unwrap_or_else(|| "claude-code-user".to_owned())
}

#[cfg(unix)]
fn os_user_name() -> Option<String> {
  let mut buf = vec![0u8; 4096];
  let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
  let mut result: *mut libc::passwd = std::ptr::null_mut();
  // SAFETY: all pointers are valid for the call; `buf` outlives the use of `pwd`'s strings.
  let rc = unsafe { libc::getpwuid_r(libc::geteuid(), &mut pwd, buf.as_mut_ptr().cast(), buf.len(), &mut result) };
  if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
    return None;
  }
  // SAFETY: getpwuid_r succeeded, so pw_name points at a NUL-terminated string inside `buf`.
  let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
  Some(name.to_string_lossy().into_owned())
}

#[cfg(not(unix))]
fn os_user_name() -> Option<String> {
  std::env::var("USERNAME").ok()
}

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
  pub tokenless_rejected_at: Option<f64>,
  /// Changes whenever any token or `expiresAt` of the server changes. Never leaves Rust.
  pub(crate) fingerprint: u64,
}

impl ServerCredentials {
  pub fn has_token(&self) -> bool {
    self.has_access_token || self.has_refresh_token
  }
}

/// What the store said, at one read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
  pub servers: BTreeMap<String, ServerCredentials>,
  /// Whether any credentials document was found.
  pub present: bool,
  /// When the store last changed (ms since the epoch): the file's mtime, or the keychain item's
  /// modification date; `None` where the platform does not say.
  pub changed_at: Option<f64>,
}

const CREDENTIALS_FILE: FileKind = FileKind {
  label: "the credentials file",
  max_bytes: 16 * 1024 * 1024,
  read_code: ErrorCode::CredentialsRead,
  too_large_code: ErrorCode::CredentialsCorrupt,
};

/// Reads the store as Claude Code would: keychain first where it is used, then the file.
pub fn read(store: &Store) -> Result<Snapshot> {
  if store.source == CredentialSource::None {
    return Ok(Snapshot::default());
  }
  if store.source.uses_keychain() {
    if let Some((secret, changed_at)) = keychain::read(&store.keychain_service, &store.keychain_account)? {
      let doc = parse_document(&secret).map_err(|why| {
        Error::new(
          ErrorCode::CredentialsCorrupt,
          format!(
            "the keychain item {:?} (account {:?}) is not a credentials document: {why}",
            store.keychain_service, store.keychain_account
          ),
        )
      })?;
      return Ok(summarise(&doc, changed_at));
    }
  }
  if !store.source.uses_file() {
    return Ok(Snapshot::default());
  }
  let (outcome, stamp) = atomic_file::read_with(&store.file, &CREDENTIALS_FILE, Patience::READER, parse_document)?;
  match outcome {
    None => Ok(Snapshot::default()),
    Some(Ok(doc)) => {
      let changed_at = match stamp {
        Some(s) => Some(s.modified_ms()),
        None => atomic_file::Stamp::read(&store.file).ok().flatten().map(|s| s.modified_ms()),
      };
      Ok(summarise(&doc, changed_at))
    }
    Some(Err(why)) => Err(Error::new(
      ErrorCode::CredentialsCorrupt,
      format!(
        "the credentials file {} is not a credentials document: {why}. It was left untouched; \
         sign in again with Claude Code to rewrite it, or pass credentials: 'none' to judge the \
         needs-auth cache alone",
        store.file.display()
      ),
    )),
  }
}

/// Parses without ever echoing content: serde_json's syntax errors name a position only.
fn parse_document(bytes: &[u8]) -> std::result::Result<Map<String, Value>, String> {
  match serde_json::from_slice::<Value>(bytes) {
    Ok(Value::Object(m)) => Ok(m),
    Ok(_) => Err("the root is not a JSON object".to_owned()),
    Err(e) => Err(format!("not valid JSON (line {}, column {})", e.line(), e.column())),
  }
}

fn summarise(doc: &Map<String, Value>, changed_at: Option<f64>) -> Snapshot {
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
      let metadata_found = discovery
        .and_then(|d| d.get("oauthMetadataFound"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
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
        s.tokenless_rejected_at = discovery
          .and_then(|d| d.get("tokenlessRejectedAt"))
          .and_then(Value::as_f64);
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
  Snapshot { present: true, servers, changed_at }
}

/// What this process has seen of a store: the token fingerprints its watcher last saw, when a
/// server's tokens changed while it watched, and when any read first saw the store.
#[derive(Default)]
struct Observed {
  /// `None` until a watcher takes its baseline.
  fingerprints: Option<HashMap<String, u64>>,
  changed_at: HashMap<String, f64>,
  first_seen: Option<f64>,
}

fn with_observed<R>(store: &Store, f: impl FnOnce(&mut Observed) -> R) -> R {
  static OBSERVED: OnceLock<Mutex<HashMap<Store, Observed>>> = OnceLock::new();
  let mut all = crate::lock(OBSERVED.get_or_init(Default::default));
  f(all.entry(store.clone()).or_default())
}

/// For watchers: records `snapshot` as seen at `now` and returns the servers whose tokens
/// changed since the previous call (none on the first, which only takes the baseline).
pub fn observe(store: &Store, snapshot: &Snapshot, now: f64) -> Vec<String> {
  with_observed(store, |seen| {
    seen.first_seen.get_or_insert(now);
    let current: HashMap<String, u64> = snapshot.servers.iter().map(|(n, s)| (n.clone(), s.fingerprint)).collect();
    let Some(before) = seen.fingerprints.replace(current.clone()) else {
      return Vec::new();
    };
    let mut names: Vec<&String> = current.keys().chain(before.keys()).collect();
    names.sort();
    names.dedup();
    let changed: Vec<String> = names
      .into_iter()
      .filter(|n| current.get(*n).copied().unwrap_or(0) != before.get(*n).copied().unwrap_or(0))
      .cloned()
      .collect();
    for name in &changed {
      seen.changed_at.insert(name.clone(), now);
    }
    changed
  })
}

/// For one-off reads: notes that the store was seen at `now` without moving a watcher's
/// baseline (which would hide a change that watcher is about to report).
pub fn note_seen(store: &Store, now: f64) {
  with_observed(store, |seen| {
    seen.first_seen.get_or_insert(now);
  });
}

/// When this process saw `server`'s tokens change, if it did.
pub fn observed_change(store: &Store, server: &str) -> Option<f64> {
  with_observed(store, |seen| seen.changed_at.get(server).copied())
}

/// When this process first read `store`: the change time of a store whose platform gives none.
pub fn first_seen(store: &Store) -> Option<f64> {
  with_observed(store, |seen| seen.first_seen)
}

mod keychain {
  use crate::error::{Error, ErrorCode, Result};

  fn failure(service: &str, err: &keyring::Error) -> Error {
    // Only the error's kind: some keyring errors carry the secret's bytes.
    let kind = match err {
      keyring::Error::PlatformFailure(e) => format!("platform failure: {e}"),
      keyring::Error::NoStorageAccess(e) => format!("no access to the store (is it locked?): {e}"),
      keyring::Error::BadEncoding(_) => "the item is not UTF-8".to_owned(),
      keyring::Error::Ambiguous(_) => "more than one item matches".to_owned(),
      _ => "unexpected keyring error".to_owned(),
    };
    Error::new(
      ErrorCode::Keychain,
      format!("cannot read the keychain item {service:?}: {kind}. Unlock the keychain or pass options.credentials = 'file'"),
    )
  }

  /// The item's secret and, where the platform gives it, its modification time (ms).
  pub fn read(service: &str, account: &str) -> Result<Option<(Vec<u8>, Option<f64>)>> {
    let entry = keyring::Entry::new(service, account).map_err(|e| failure(service, &e))?;
    match read_entry(&entry) {
      Ok(found) => Ok(Some(found)),
      Err(keyring::Error::NoEntry) => Ok(None),
      Err(e) => Err(failure(service, &e)),
    }
  }

  #[cfg(target_os = "linux")]
  fn read_entry(entry: &keyring::Entry) -> keyring::Result<(Vec<u8>, Option<f64>)> {
    use keyring::secret_service::SsCredential;
    if let Some(ss) = entry.get_credential().downcast_ref::<SsCredential>() {
      // One search gives both the secret and the item's `Modified` (whole seconds). The change
      // is placed at the end of that second: "changed after" must never be claimed too early.
      let mut found = ss.map_matching_items(
        |item| {
          let secret = item.get_secret().map_err(|e| keyring::Error::PlatformFailure(Box::new(e)))?;
          let modified = item.get_modified().ok().map(|s| s as f64 * 1000.0 + 999.0);
          Ok((secret, modified))
        },
        true,
      )?;
      return found.pop().ok_or(keyring::Error::NoEntry);
    }
    Ok((entry.get_secret()?, None))
  }

  #[cfg(not(target_os = "linux"))]
  fn read_entry(entry: &keyring::Entry) -> keyring::Result<(Vec<u8>, Option<f64>)> {
    Ok((entry.get_secret()?, None))
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn snapshot(json: &str) -> Snapshot {
    summarise(&parse_document(json.as_bytes()).expect("fixture parses"), Some(1.0))
  }

  const DOC: &str = r#"{"claudeAiOauth":{"accessToken":"ACCOUNT"},"mcpOAuth":{
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
  fn observe_reports_changed_servers_after_the_baseline() {
    let store = Store::locate(Path::new("/observe-test"), true, CredentialSource::File);
    assert!(observe(&store, &snapshot(DOC), 1.0).is_empty(), "the first look is the baseline");
    assert!(observe(&store, &snapshot(DOC), 2.0).is_empty());
    let changed = observe(&store, &snapshot(&DOC.replace("\"T1\"", "\"T9\"")), 3.0);
    assert_eq!(changed, vec!["github".to_string()]);
    assert_eq!(observed_change(&store, "github"), Some(3.0));
    assert_eq!(observed_change(&store, "linear"), None);
  }

  #[test]
  fn errors_never_echo_content() {
    let err = parse_document(br#"{"mcpOAuth":{"a|b":{"accessToken":"SECRET-TOKEN"#).expect_err("torn");
    assert!(!err.contains("SECRET"));
  }

  #[test]
  fn keychain_service_names() {
    assert_eq!(keychain_service(Path::new("/x"), false), "Claude Code-credentials");
    let s = keychain_service(Path::new("/home/u/.claude-work"), true);
    assert!(s.starts_with("Claude Code-credentials-") && s.len() == "Claude Code-credentials-".len() + 8);
  }
}
