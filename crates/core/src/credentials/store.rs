//! Where one config dir's credentials live: the file path and the keychain item's service and
//! account, named exactly as Claude Code names them. Pure naming, the same on every platform,
//! so Linux tests cover what only macOS reads.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::source::CredentialSource;
use crate::config_dir;

const SERVICE: &str = "Claude Code-credentials";
const FALLBACK_ACCOUNT: &str = "claude-code-user";

/// Where one config dir's credentials live.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Store {
  pub(crate) source: CredentialSource,
  pub(crate) file: PathBuf,
  pub(crate) keychain_service: String,
  pub(crate) keychain_account: String,
}

impl Store {
  /// `explicit`: the config dir came from `options.configDir` (Claude Code would then run with
  /// `CLAUDE_CONFIG_DIR` set, which suffixes the keychain service name).
  pub(crate) fn locate(config_dir: &Path, explicit: bool, source: CredentialSource) -> Store {
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
  pub(crate) fn watched_file(&self) -> Option<&Path> {
    self.source.uses_file().then_some(self.file.as_path())
  }
}

/// `"Claude Code-credentials"`, or with `-<sha256(configDir) first 8 hex>` when the config dir
/// was set explicitly, as Claude Code names its Keychain item.
fn keychain_service(dir: &Path, suffixed: bool) -> String {
  if !suffixed {
    return SERVICE.to_owned();
  }
  let digest = Sha256::digest(dir.to_string_lossy().as_bytes());
  let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
  format!("{SERVICE}-{hex}")
}

/// `$USER`, else the OS user name, else `claude-code-user`; names with characters outside
/// `[A-Za-z0-9._-]` also fall back (Claude Code 2.1.332).
fn keychain_account() -> String {
  account_name(std::env::var("USER").ok(), os_user_name)
}

/// The account rule itself, apart from where the names come from. `os_user` is asked only when
/// `$USER` is unset or empty, as Claude Code asks `os.userInfo()` only then.
fn account_name(user: Option<String>, os_user: impl FnOnce() -> Option<String>) -> String {
  let valid = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
  user.filter(|u| !u.is_empty()).or_else(os_user).filter(|u| valid(u)).unwrap_or_else(|| FALLBACK_ACCOUNT.to_owned())
}

/// The effective user's name as Node's `os.userInfo()` gets it (`getpwuid_r`).
#[cfg(unix)]
fn os_user_name() -> Option<String> {
  let mut buf = vec![0u8; 4096];
  // SAFETY: `passwd` is plain old data; an all-zero value is a valid (empty) one.
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

/// Node's `os.userInfo()` on Windows reports the logon name, which `USERNAME` holds.
#[cfg(not(unix))]
fn os_user_name() -> Option<String> {
  std::env::var("USERNAME").ok()
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn service_is_unsuffixed_for_the_default_dir() {
    assert_eq!(keychain_service(Path::new("/home/u/.claude"), false), "Claude Code-credentials");
  }

  #[test]
  fn service_suffix_is_the_first_8_hex_of_the_dirs_sha256() {
    // sha256("/home/u/.claude-work") starts 9fa37e90 (`printf %s /home/u/.claude-work | sha256sum`).
    assert_eq!(keychain_service(Path::new("/home/u/.claude-work"), true), "Claude Code-credentials-9fa37e90");
    assert_ne!(
      keychain_service(Path::new("/home/u/.claude"), true),
      keychain_service(Path::new("/home/v/.claude"), true)
    );
  }

  #[test]
  fn account_prefers_user_then_os_name_then_fallback() {
    let never = || -> Option<String> { panic!("the OS is asked only when $USER is unset or empty") };
    assert_eq!(account_name(Some("alice".into()), never), "alice");
    assert_eq!(account_name(Some("a.b_c-1".into()), never), "a.b_c-1");
    assert_eq!(account_name(None, || Some("bob".into())), "bob");
    assert_eq!(account_name(Some(String::new()), || Some("bob".into())), "bob");
    assert_eq!(account_name(None, || None), "claude-code-user");
  }

  #[test]
  fn account_names_outside_the_safe_set_fall_back() {
    assert_eq!(account_name(Some("Jane Doe".into()), || Some("jane".into())), "claude-code-user");
    assert_eq!(account_name(Some("josé".into()), || None), "claude-code-user");
    assert_eq!(account_name(None, || Some("DOMAIN\\user".into())), "claude-code-user");
  }

  #[test]
  fn store_names_follow_explicit_dirs() {
    let dir = Path::new("/tmp/store-naming-test/.claude");
    let store = Store::locate(dir, true, CredentialSource::File);
    assert_eq!(store.file, dir.join(".credentials.json"));
    assert_eq!(store.keychain_service, keychain_service(dir, true));
    assert_eq!(store.watched_file(), Some(store.file.as_path()));
    assert_eq!(Store::locate(dir, true, CredentialSource::Keychain).watched_file(), None);
  }
}
