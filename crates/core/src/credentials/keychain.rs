//! The OS keychain read: the one part of the credential reader that differs per platform.
//! Everything around it (naming, parsing, dating) lives in the platform-independent modules.

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
    format!(
      "cannot read the keychain item {service:?}: {kind}. Unlock the keychain or pass options.credentials = 'file'"
    ),
  )
}

/// The item's secret and, where the platform gives it, its modification time (ms).
pub(crate) fn read(service: &str, account: &str) -> Result<Option<(Vec<u8>, Option<f64>)>> {
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

/// macOS and Windows: keyring gives the secret only; `observed::changed_at` dates the item.
#[cfg(not(target_os = "linux"))]
fn read_entry(entry: &keyring::Entry) -> keyring::Result<(Vec<u8>, Option<f64>)> {
  Ok((entry.get_secret()?, None))
}
