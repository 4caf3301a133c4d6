//! Where credentials are read from: the one choice `options.credentials` makes.

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
  pub(super) fn uses_keychain(self) -> bool {
    matches!(self, CredentialSource::Keychain) || (cfg!(target_os = "macos") && self == CredentialSource::Auto)
  }

  pub(super) fn uses_file(self) -> bool {
    matches!(self, CredentialSource::Auto | CredentialSource::File)
  }

  /// Whether reading needs polling (a keychain has no change notification to watch).
  pub(crate) fn needs_polling(self) -> bool {
    self.uses_keychain()
  }
}
