//! The credential reader: read-only access to Claude Code's credentials, reduced to what the
//! needs-auth logic needs per server name. It never writes, locks, renames or chmods a
//! credentials file or keychain item, and no token, nor anything derived from one, leaves this
//! module except as booleans, `expiresAt`, and change detection kept in Rust memory.
//!
//! Only `keychain` differs per platform; naming (`store`), parsing (`summary`) and dating
//! (`observed`) are the same everywhere, so the Linux tests cover them for macOS and Windows.

mod keychain;
mod observed;
mod source;
mod store;
mod summary;

pub use keychain::KEYCHAIN_TIMEOUT;
pub use observed::Observations;
pub(crate) use observed::Seen;
pub use source::CredentialSource;
pub(crate) use store::Store;
pub use summary::ServerCredentials;
pub(crate) use summary::Snapshot;

use crate::error::{Error, ErrorCode, Result};
use crate::fs::{self, FileKind, Patience, Stamp};
use summary::{parse_document, summarise};

const CREDENTIALS_FILE: FileKind = FileKind {
  label: "the credentials file",
  max_bytes: 16 * 1024 * 1024,
  read_code: ErrorCode::CredentialsRead,
  too_large_code: ErrorCode::CredentialsCorrupt,
};

/// Reads the store as Claude Code would: keychain first where it is used, then the file.
/// A keychain read goes through `seen`'s reads in flight (one parked thread per item at most).
pub(crate) fn read(seen: &Observations, store: &Store) -> Result<Snapshot> {
  read_waiting(seen, store, |pause| {
    std::thread::sleep(pause);
    true
  })
}

/// `read`, for a watcher told of the file's changes: a file caught half-written is read again
/// when `wait` returns true, and reported as corrupt when it returns false (see
/// `fs::read_waiting`).
pub(crate) fn read_waiting(
  seen: &Observations,
  store: &Store,
  wait: impl FnMut(std::time::Duration) -> bool,
) -> Result<Snapshot> {
  if store.source == CredentialSource::None {
    return Ok(Snapshot::default());
  }
  if store.source.uses_keychain() {
    let flights = seen.keychain_reads();
    if let Some((secret, changed_at)) = keychain::read(flights, &store.keychain_service, &store.keychain_account)? {
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
  let (outcome, stamp) = fs::read_waiting(&store.file, &CREDENTIALS_FILE, Patience::READER, parse_document, wait)?;
  match outcome {
    None => Ok(Snapshot::default()),
    Some(Ok(doc)) => {
      let changed_at = match stamp {
        Some(s) => Some(s.modified_ms()),
        None => Stamp::read(&store.file, &CREDENTIALS_FILE).ok().flatten().map(|s| s.modified_ms()),
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

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn sources_say_what_they_read() {
    assert!(CredentialSource::File.uses_file() && !CredentialSource::File.uses_keychain());
    assert!(CredentialSource::Keychain.needs_polling() && !CredentialSource::Keychain.uses_file());
    assert_eq!(CredentialSource::Auto.uses_keychain(), cfg!(target_os = "macos"));
    assert!(!CredentialSource::None.uses_file() && !CredentialSource::None.uses_keychain());
  }

  #[test]
  fn the_none_source_reads_nothing() {
    let store = Store::locate(std::path::Path::new("/nonexistent/none-test"), true, CredentialSource::None);
    assert_eq!(read(&Observations::default(), &store).ok(), Some(Snapshot::default()));
  }
}
