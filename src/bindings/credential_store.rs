//! `options.credentials`: which credential store to read, and how it maps to the core's.

use crate::credentials::CredentialSource;

/// Where credentials are read from. `'auto'`: the macOS Keychain first, then the file;
/// elsewhere the file. `'none'`: no credentials (only in-process signals and the cache).
#[derive(Clone, Copy)]
pub enum CredentialStore {
  Auto,
  File,
  Keychain,
  None,
}

impl CredentialStore {
  /// What a bad `options.credentials` is told it must be.
  pub const EXPECTED: &'static str = "'auto', 'file', 'keychain' or 'none'";

  pub fn parse(s: &str) -> Option<Self> {
    Some(match s {
      "auto" => CredentialStore::Auto,
      "file" => CredentialStore::File,
      "keychain" => CredentialStore::Keychain,
      "none" => CredentialStore::None,
      _ => return None,
    })
  }
}

impl From<CredentialStore> for CredentialSource {
  fn from(s: CredentialStore) -> Self {
    match s {
      CredentialStore::Auto => CredentialSource::Auto,
      CredentialStore::File => CredentialSource::File,
      CredentialStore::Keychain => CredentialSource::Keychain,
      CredentialStore::None => CredentialSource::None,
    }
  }
}
