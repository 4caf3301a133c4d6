//! Where Claude Code keeps its state: `CLAUDE_CONFIG_DIR`, else `~/.claude`, NFC-normalised,
//! exactly as Claude Code resolves it (so both sides name the same file).

use std::ffi::{CStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use unicode_normalization::UnicodeNormalization;

use crate::error::{Error, ErrorCode, Result};

/// The needs-auth cache file name inside the config dir.
pub(crate) const CACHE_FILE_NAME: &str = "mcp-needs-auth-cache.json";
/// The plaintext credentials file name inside the secure-storage dir.
pub(crate) const CREDENTIALS_FILE_NAME: &str = ".credentials.json";

/// The variable that names Claude Code's config dir.
pub const CONFIG_DIR_VAR: &str = c_name(CONFIG_DIR_VAR_C);
const CONFIG_DIR_VAR_C: &CStr = c"CLAUDE_CONFIG_DIR";

/// The variable Node's `os.homedir()` reads first, and so the one a Claude Code child's home comes from.
pub const HOME_VAR: &str = c_name(HOME_VAR_C);
const HOME_VAR_C: &CStr = if cfg!(windows) { c"USERPROFILE" } else { c"HOME" };

/// A variable's name as `&str`, from the C string `env_is` compares with (one spelling of each).
const fn c_name(name: &'static CStr) -> &'static str {
  match name.to_str() {
    Ok(s) => s,
    Err(_) => panic!("environment variable names are ASCII"),
  }
}

/// Resolves the config dir: an explicit override, else this process's environment by [`from_env`].
pub fn resolve(override_dir: Option<&str>) -> Result<PathBuf> {
  LastResolution::new().resolve(override_dir)
}

/// An override, checked and normalised.
fn resolve_override(dir: &str) -> Result<PathBuf> {
  if dir.is_empty() {
    return Err(Error::new(
      ErrorCode::InvalidArgument,
      "options.configDir is an empty string: pass a directory path or leave it out",
    ));
  }
  Ok(nfc(dir))
}

/// What a resolution depends on: the override, or the raw environment values.
#[derive(PartialEq)]
enum Source {
  Override(String),
  Env(Option<OsString>, Option<OsString>),
}

impl Source {
  /// `None` when the result cannot be remembered: without CLAUDE_CONFIG_DIR and HOME the
  /// user database decides, and it has no cheap version to compare.
  fn env() -> Option<Source> {
    let config = std::env::var_os(CONFIG_DIR_VAR);
    // HOME matters only without CLAUDE_CONFIG_DIR.
    let home = if config.is_none() { std::env::var_os(HOME_VAR) } else { None };
    (config.is_some() || home.is_some()).then_some(Source::Env(config, home))
  }

  fn is(&self, override_dir: Option<&str>) -> bool {
    match (self, override_dir) {
      (Source::Override(s), Some(o)) => s == o,
      // CLAUDE_CONFIG_DIR set: HOME does not matter. Unset: HOME must be as it was.
      (Source::Env(Some(config), None), None) => env_is(CONFIG_DIR_VAR_C, Some(config)),
      (Source::Env(None, home), None) => env_is(CONFIG_DIR_VAR_C, None) && env_is(HOME_VAR_C, home.as_deref()),
      _ => false,
    }
  }
}

/// Whether the environment variable `name` holds `want` (`None`: unset). On Unix the C
/// environment is compared in place, without the copy `var_os` makes: this runs on every
/// check. It is read as `var_os` reads it (Node's `process.env` setter is a `setenv`, which
/// takes none of Rust's locks either way).
fn env_is(name: &CStr, want: Option<&std::ffi::OsStr>) -> bool {
  #[cfg(unix)]
  {
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: `name` is NUL-terminated; the result is read before this thread calls into
    // anything that could change the environment.
    let got = unsafe { libc::getenv(name.as_ptr()) };
    match want {
      None => got.is_null(),
      // SAFETY: a non-null `getenv` result is a NUL-terminated string.
      Some(w) => !got.is_null() && unsafe { CStr::from_ptr(got) }.to_bytes() == w.as_bytes(),
    }
  }
  #[cfg(not(unix))]
  {
    std::env::var_os(name.to_str().unwrap_or_default()).as_deref() == want
  }
}

/// The last resolution (`resolve_cache_path`), with what it depended on: checks call with the
/// same options over and over. The environment is read on every call (Node's
/// `process.env.X = v` is a `setenv` of this C environment), so a change is always seen; an
/// unchanged one skips normalising, the home-dir lookup and the allocations. Owned by its
/// caller (the binding keeps one per thread, so that it needs no lock).
#[derive(Default)]
pub struct LastResolution {
  last: Option<(Source, PathBuf, Arc<Path>)>,
}

impl LastResolution {
  pub const fn new() -> LastResolution {
    LastResolution { last: None }
  }

  /// [`resolve`], answered from the last resolution when the environment it read is unchanged.
  pub fn resolve(&self, override_dir: Option<&str>) -> Result<PathBuf> {
    match override_dir {
      Some(dir) => resolve_override(dir),
      None => match self.last.as_ref().filter(|(k, ..)| k.is(None)) {
        Some((_, dir, _)) => Ok(dir.clone()),
        None => from_env_uncached(),
      },
    }
  }

  /// `resolve` and `cache_path` in one, remembered with what they depend on.
  pub fn resolve_cache_path(&mut self, override_dir: Option<&str>) -> Result<Arc<Path>> {
    if let Some((.., p)) = self.last.as_ref().filter(|(k, ..)| k.is(override_dir)) {
      return Ok(Arc::clone(p));
    }
    let dir = self.resolve(override_dir)?;
    let path: Arc<Path> = cache_path(&dir).into();
    let source = match override_dir {
      Some(o) => Some(Source::Override(o.to_owned())),
      None => Source::env(),
    };
    if let Some(source) = source {
      self.last = Some((source, dir, Arc::clone(&path)));
    }
    Ok(path)
  }
}

fn from_env_uncached() -> Result<PathBuf> {
  // `None` for the home: `home_dir` reads this process's HOME itself, then the user database.
  let claude_config_dir = std::env::var_os(CONFIG_DIR_VAR);
  from_env(claude_config_dir.as_deref().map(|d| d.to_string_lossy()).as_deref(), None)
}

/// Claude Code's rule for the environment a Claude Code process runs with, given that
/// environment's `CLAUDE_CONFIG_DIR` and [`HOME_VAR`] (`None`: unset):
/// `CLAUDE_CONFIG_DIR ?? join(home ?? os.homedir(), ".claude")`, NFC-normalised. Claude Code uses
/// `??`, so a set but empty variable still wins (and names the current directory); this does the
/// same. Without a home variable, this process's home stands in, as `os.homedir()` does.
pub fn from_env(claude_config_dir: Option<&str>, home: Option<&str>) -> Result<PathBuf> {
  if let Some(dir) = claude_config_dir {
    return Ok(nfc(dir));
  }
  let home = match home {
    Some(home) => PathBuf::from(home),
    None => home_dir().ok_or_else(|| {
      Error::new(
        ErrorCode::NoConfigDir,
        "cannot resolve Claude Code's config dir: CLAUDE_CONFIG_DIR is not set and no home \
         directory is known (HOME is unset and the user database has no entry). Set \
         CLAUDE_CONFIG_DIR or pass options.configDir",
      )
    })?,
  };
  Ok(nfc(&home.join(".claude").to_string_lossy()))
}

/// Where the credentials live: `CLAUDE_SECURESTORAGE_CONFIG_DIR` (Claude Code 2.1.332+) moves
/// them, but only when no explicit config dir was asked for; the cache never moves with it.
pub(crate) fn secure_storage_dir(config_dir: &Path, explicit: bool) -> PathBuf {
  match env_non_empty("CLAUDE_SECURESTORAGE_CONFIG_DIR") {
    Some(dir) if !explicit => nfc(&dir),
    _ => config_dir.to_path_buf(),
  }
}

pub fn cache_path(config_dir: &Path) -> PathBuf {
  config_dir.join(CACHE_FILE_NAME)
}

pub(crate) fn credentials_path(storage_dir: &Path) -> PathBuf {
  storage_dir.join(CREDENTIALS_FILE_NAME)
}

fn nfc(s: &str) -> PathBuf {
  // Nearly every path is already NFC (all ASCII ones are): skip the rebuild then.
  if unicode_normalization::is_nfc_quick(s.chars()) == unicode_normalization::IsNormalized::Yes {
    return PathBuf::from(s);
  }
  PathBuf::from(s.nfc().collect::<String>())
}

fn env_non_empty(name: &str) -> Option<String> {
  std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Node's `os.homedir()`: `HOME` (USERPROFILE on Windows), else the user database.
/// std's `home_dir` has had exactly these semantics since Rust 1.85.
#[allow(deprecated)]
fn home_dir() -> Option<PathBuf> {
  std::env::home_dir().filter(|p| !p.as_os_str().is_empty())
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn override_is_nfc_normalised() {
    // "é" as e + COMBINING ACUTE (NFD) becomes U+00E9 (NFC), as String.prototype.normalize does.
    let dir = resolve(Some("/tmp/cafe\u{301}")).expect("resolves");
    assert_eq!(dir, PathBuf::from("/tmp/caf\u{e9}"));
  }

  #[test]
  fn empty_override_is_an_error() {
    let err = resolve(Some("")).expect_err("empty is rejected");
    assert_eq!(err.code, ErrorCode::InvalidArgument);
  }

  #[test]
  fn env_rule_prefers_claude_config_dir_and_keeps_it_when_empty() {
    assert_eq!(from_env(Some("/cfg/x"), Some("/h")).expect("resolves"), PathBuf::from("/cfg/x"));
    assert_eq!(from_env(Some(""), Some("/h")).expect("resolves"), PathBuf::from(""));
  }

  #[test]
  fn env_rule_joins_the_home_and_normalises() {
    let expected = Path::new("/tmp/caf\u{e9}").join(".claude");
    assert_eq!(from_env(None, Some("/tmp/cafe\u{301}")).expect("resolves"), expected);
    assert_eq!(from_env(Some("/tmp/cafe\u{301}"), None).expect("resolves"), PathBuf::from("/tmp/caf\u{e9}"));
  }

  #[test]
  fn env_rule_without_a_home_variable_uses_this_process_home() {
    // Whatever this process's home is (HOME or the user database), the rule names its .claude.
    if let Some(home) = home_dir() {
      assert_eq!(from_env(None, None).expect("resolves"), nfc(&home.join(".claude").to_string_lossy()));
    }
  }

  #[test]
  fn the_last_resolution_is_reused_only_for_the_same_override() {
    let mut last = LastResolution::new();
    let a = last.resolve_cache_path(Some("/cfg/a")).expect("a");
    assert_eq!(&*a, Path::new("/cfg/a/mcp-needs-auth-cache.json"));
    assert!(Arc::ptr_eq(&a, &last.resolve_cache_path(Some("/cfg/a")).expect("a again")), "remembered");
    let b = last.resolve_cache_path(Some("/cfg/b")).expect("b");
    assert_eq!(&*b, Path::new("/cfg/b/mcp-needs-auth-cache.json"));
    assert_eq!(
      last.resolve(Some("/cfg/a")).expect("resolve"),
      PathBuf::from("/cfg/a"),
      "an override never reads the memo"
    );
    assert_eq!(last.resolve_cache_path(Some("")).expect_err("empty").code, ErrorCode::InvalidArgument);
  }

  #[test]
  fn file_names() {
    let dir = Path::new("/x");
    assert_eq!(cache_path(dir), PathBuf::from("/x/mcp-needs-auth-cache.json"));
    assert_eq!(credentials_path(dir), PathBuf::from("/x/.credentials.json"));
  }
}
