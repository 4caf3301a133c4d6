//! The OS keychain read: the one part of the credential reader that differs per platform.
//! Everything around it (naming, parsing, dating) lives in the platform-independent modules.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorCode, Result};
use crate::mutex::lock;

/// Longest one keychain read may take. A Secret Service (or any keychain) that accepts the call
/// and never answers would otherwise block the caller, the JS thread for a call, for good.
/// An unlocked store answers in milliseconds; a prompt to unlock is not something a background
/// read can wait for.
pub const KEYCHAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// One read of one keychain item on its helper thread: its result once it has one.
#[derive(Default)]
pub(crate) struct Flight {
  result: Mutex<Option<Result<Option<Found>>>>,
  done: Condvar,
}

/// Per keychain service, the read in flight and when it started: at most one helper thread per
/// item is ever parked in a call that does not return. Shared with the helper threads, which
/// clear their item's slot when their call returns.
pub(crate) type Flights = Arc<Mutex<std::collections::HashMap<String, (Instant, Arc<Flight>)>>>;

type Found = (Vec<u8>, Option<f64>);

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

/// The item's secret and, where the platform gives it, its modification time (ms), read on a
/// helper thread and waited for at most `KEYCHAIN_TIMEOUT` (see `bounded`).
pub(crate) fn read(flights: &Flights, service: &str, account: &str) -> Result<Option<Found>> {
  let (svc, acct) = (service.to_owned(), account.to_owned());
  bounded(flights, service, KEYCHAIN_TIMEOUT, move || read_now(&svc, &acct))
}

/// Runs `read` on a helper thread and waits for it at most `timeout`; then `ERR_CREDENTIALS_READ`,
/// and the helper is left parked in its call. While one read of `service` is in flight, another
/// starts no thread: it waits for that one for the rest of that one's time (failing once it is
/// spent) and then reads anew, so at most one thread per item is ever parked and a call waits at
/// most twice `timeout`. No thread to be had (a pids limit) is an error, never an abort.
fn bounded(
  flights: &Flights,
  service: &str,
  timeout: Duration,
  read: impl FnOnce() -> Result<Option<Found>> + Send + 'static,
) -> Result<Option<Found>> {
  let mut read = Some(read);
  loop {
    let (started, flight, ours) = {
      let mut all = lock(flights);
      match all.get(service) {
        Some((started, flight)) => (*started, Arc::clone(flight), false),
        None => {
          let Some(read) = read.take() else { return Err(no_answer(service, timeout)) };
          let flight = Arc::new(Flight::default());
          start(flights, service, &flight, read)?;
          let now = Instant::now();
          all.insert(service.to_owned(), (now, Arc::clone(&flight)));
          (now, flight, true)
        }
      }
    };
    let deadline = started + timeout;
    let mut result = lock(&flight.result);
    while result.is_none() {
      let left = deadline.saturating_duration_since(Instant::now());
      if left.is_zero() {
        return Err(no_answer(service, timeout));
      }
      result = flight.done.wait_timeout(result, left).map_or_else(|p| p.into_inner().0, |(r, _)| r);
    }
    if ours {
      return result.take().unwrap_or_else(|| Err(no_answer(service, timeout)));
    }
    // Another caller's read, started before this call, has finished: read anew.
  }
}

/// Starts `flight`'s read on its own thread, which clears the item's slot when done.
fn start(
  flights: &Flights,
  service: &str,
  flight: &Arc<Flight>,
  read: impl FnOnce() -> Result<Option<Found>> + Send + 'static,
) -> Result<()> {
  let (svc, flight, flights) = (service.to_owned(), Arc::clone(flight), Arc::clone(flights));
  std::thread::Builder::new()
    .name("mna-keychain".into())
    .spawn(move || {
      let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)).unwrap_or_else(|_| {
        Err(Error::new(
          ErrorCode::Keychain,
          format!("cannot read the keychain item {svc:?}: the keyring library failed"),
        ))
      });
      *lock(&flight.result) = Some(result);
      flight.done.notify_all();
      let mut all = lock(&flights);
      if all.get(&svc).is_some_and(|(_, f)| Arc::ptr_eq(f, &flight)) {
        all.remove(&svc);
      }
    })
    .map(drop)
    .map_err(|e| {
      Error::new(
        ErrorCode::CredentialsRead,
        format!("cannot read the keychain item {service:?}: no thread to read it on ({e}). Try again later"),
      )
    })
}

fn no_answer(service: &str, timeout: Duration) -> Error {
  // Linux's keychain is whichever daemon owns the Secret Service name (gnome-keyring, KeePassXC…).
  let store = if cfg!(target_os = "linux") { "the Secret Service" } else { "the keychain" };
  Error::new(
    ErrorCode::CredentialsRead,
    format!(
      "cannot read the keychain item {service:?}: {store} did not answer within {} s (waiting for an unlock \
       prompt, or hung). Unlock it, check its daemon, or pass options.credentials = 'file'",
      timeout.as_secs_f64()
    ),
  )
}

/// The read itself, on the calling thread.
fn read_now(service: &str, account: &str) -> Result<Option<Found>> {
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

#[cfg(test)]
mod tests {
  use super::*;
  use std::sync::mpsc;

  fn flights() -> Flights {
    Flights::default()
  }

  #[test]
  fn an_answer_in_time_is_returned() {
    let got = bounded(&flights(), "s", Duration::from_secs(5), || Ok(Some((b"{}".to_vec(), Some(1.0)))));
    assert_eq!(got, Ok(Some((b"{}".to_vec(), Some(1.0)))));
    assert_eq!(bounded(&flights(), "s", Duration::from_secs(5), || Ok(None)), Ok(None));
  }

  #[test]
  fn a_read_that_never_returns_is_given_up_and_parks_one_thread_per_item() {
    let all = flights();
    let (release, parked) = mpsc::channel::<()>();
    let parked = Arc::new(Mutex::new(parked));
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let wedged = || {
      let (parked, calls) = (Arc::clone(&parked), Arc::clone(&calls));
      move || {
        calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _ = lock(&parked).recv();
        Ok(None)
      }
    };
    let timeout = Duration::from_millis(200);
    for _ in 0..3 {
      let err = bounded(&all, "Claude Code-credentials", timeout, wedged()).expect_err("no answer");
      assert_eq!(err.code, ErrorCode::CredentialsRead);
      assert!(
        err.message.contains("\"Claude Code-credentials\"") && err.message.contains("did not answer"),
        "{}",
        err.message
      );
    }
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1, "one read in flight per item");
    // Another item is not held up by this one.
    assert_eq!(bounded(&all, "other", timeout, || Ok(None)), Ok(None));
    // Once the wedged read returns, the item is read anew.
    release.send(()).expect("release");
    let deadline = Instant::now() + Duration::from_secs(30);
    while lock(&all).contains_key("Claude Code-credentials") && Instant::now() < deadline {
      std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(bounded(&all, "Claude Code-credentials", timeout, || Ok(None)), Ok(None));
  }
}
