//! What this process has seen of each store: the token fingerprints its watcher last saw, when
//! a server's tokens changed while it watched, and when any read first saw the store. The last
//! is the change time of a store whose platform gives none (the macOS and Windows keychains).

use std::collections::HashMap;
use std::sync::Mutex;

use super::keychain::Flights;
use super::store::Store;
use super::summary::Snapshot;
use crate::mutex::lock;

/// What one process observed of every store it read, and its keychain reads still in flight.
/// One per process in use: it is that process's memory of the stores, which every reader
/// (purge, diagnose, the watchers) consults, and its bound on threads parked in a keychain
/// call that never returns (one per item).
#[derive(Default)]
pub struct Observations {
  stores: Mutex<HashMap<Store, Observed>>,
  keychain_reads: Flights,
}

/// What one process had seen of one store at one moment (`Observations::seen_of`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Seen {
  /// When the store last changed, as far as this process can tell: the platform's own
  /// modification time (file mtime, Secret Service `Modified`) where the snapshot has one, else
  /// when this process first saw the store (the macOS and Windows keychains give none; the
  /// superseded rule still needs an access token that outlives the entry then).
  pub(crate) store_changed_at: Option<f64>,
  /// When this process saw the account's tokens change, if it did.
  pub(crate) account_changed_at: Option<f64>,
  /// When this process saw each server's tokens change, for those it did.
  pub(crate) changed_at: HashMap<String, f64>,
}

#[derive(Default)]
struct Observed {
  /// `None` until a watcher takes its baseline.
  fingerprints: Option<HashMap<String, u64>>,
  changed_at: HashMap<String, f64>,
  /// The account's (`claudeAiOauth`) fingerprint in the watcher's baseline (0: none), and when
  /// this process saw it change.
  account_fingerprint: u64,
  account_changed_at: Option<f64>,
  first_seen: Option<f64>,
}

impl Observations {
  /// The keychain reads in flight, by item (see `keychain::read`).
  pub(super) fn keychain_reads(&self) -> &Flights {
    &self.keychain_reads
  }

  /// Runs `f` on the record of `store`.
  fn with<R>(&self, store: &Store, f: impl FnOnce(&mut Observed) -> R) -> R {
    let mut all = lock(&self.stores);
    // Looked up before the store is copied for an insert: `purgeStale` asks once per entry.
    if let Some(seen) = all.get_mut(store) {
      return f(seen);
    }
    f(all.entry(store.clone()).or_default())
  }

  /// For watchers: records `snapshot` as seen at `now` and returns the servers whose tokens
  /// changed since the previous call (none on the first, which only takes the baseline).
  pub(crate) fn observe(&self, store: &Store, snapshot: &Snapshot, now: f64) -> Vec<String> {
    self.with(store, |seen| {
      seen.first_seen.get_or_insert(now);
      let current: HashMap<String, u64> = snapshot.servers.iter().map(|(n, s)| (n.clone(), s.fingerprint)).collect();
      let account = snapshot.account.as_ref().map_or(0, |a| a.fingerprint);
      let account_before = std::mem::replace(&mut seen.account_fingerprint, account);
      let Some(before) = seen.fingerprints.replace(current.clone()) else {
        return Vec::new();
      };
      if account != account_before {
        seen.account_changed_at = Some(now);
      }
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
  pub(crate) fn note_seen(&self, store: &Store, now: f64) {
    self.with(store, |seen| {
      seen.first_seen.get_or_insert(now);
    });
  }

  /// When this process saw the account's tokens (`claudeAiOauth`) change, if it did.
  pub(crate) fn observed_account_change(&self, store: &Store) -> Option<f64> {
    self.with(store, |seen| seen.account_changed_at)
  }

  /// What this process has seen of `store`, taken at once: for a judgement of many entries,
  /// which would otherwise look the store up (hashing its paths, under the lock) per entry.
  pub(crate) fn seen_of(&self, store: &Store, snapshot: &Snapshot) -> Seen {
    self.with(store, |seen| Seen {
      store_changed_at: snapshot.changed_at.or(seen.first_seen),
      account_changed_at: seen.account_changed_at,
      changed_at: seen.changed_at.clone(),
    })
  }
}

#[cfg(test)]
mod tests {
  use std::path::Path;

  use super::super::source::CredentialSource;
  use super::super::summary::tests::{snapshot, DOC};
  use super::*;

  fn store(source: CredentialSource) -> Store {
    Store::locate(Path::new("/config"), true, source)
  }

  #[test]
  fn observe_reports_changed_servers_after_the_baseline() {
    let (seen, store) = (Observations::default(), store(CredentialSource::File));
    assert!(seen.observe(&store, &snapshot(DOC), 1.0).is_empty(), "the first look is the baseline");
    assert!(seen.observe(&store, &snapshot(DOC), 2.0).is_empty());
    let changed = seen.observe(&store, &snapshot(&DOC.replace("\"T1\"", "\"T9\"")), 3.0);
    assert_eq!(changed, vec!["github".to_string()]);
    let now = seen.seen_of(&store, &Snapshot::default());
    assert_eq!(now.changed_at.get("github"), Some(&3.0));
    assert_eq!(now.changed_at.get("linear"), None);
  }

  #[test]
  fn an_account_token_change_is_dated_apart_from_the_servers() {
    let (seen, store) = (Observations::default(), store(CredentialSource::File));
    seen.observe(&store, &snapshot(DOC), 1.0);
    assert_eq!(seen.observed_account_change(&store), None, "the baseline is no change");
    let changed = seen.observe(&store, &snapshot(&DOC.replace("\"ACCOUNT\"", "\"NEW\"")), 2.0);
    assert!(changed.is_empty(), "no server's tokens changed");
    assert_eq!(seen.observed_account_change(&store), Some(2.0));
    seen.observe(&store, &snapshot(&DOC.replace("\"ACCOUNT\"", "\"NEW\"").replace("\"T1\"", "\"T9\"")), 3.0);
    assert_eq!(seen.observed_account_change(&store), Some(2.0), "a server's save leaves the account's date");
  }

  #[test]
  fn a_removed_server_counts_as_changed() {
    let (seen, store) = (Observations::default(), store(CredentialSource::File));
    seen.observe(&store, &snapshot(DOC), 1.0);
    let changed = seen.observe(&store, &Snapshot { present: true, ..Snapshot::default() }, 2.0);
    assert_eq!(changed, vec!["github".to_string()], "linear had no token, so nothing of it changed");
  }

  #[test]
  fn note_seen_dates_the_store_without_taking_a_baseline() {
    let (seen, store) = (Observations::default(), store(CredentialSource::Keychain));
    let first_seen = || seen.seen_of(&store, &Snapshot::default()).store_changed_at;
    assert_eq!(first_seen(), None);
    seen.note_seen(&store, 10.0);
    seen.note_seen(&store, 20.0);
    assert_eq!(first_seen(), Some(10.0), "the first sighting sticks");
    // A watcher starting later still takes its baseline first: nothing is reported as changed.
    assert!(seen.observe(&store, &snapshot(DOC), 30.0).is_empty());
    assert_eq!(first_seen(), Some(10.0));
  }

  #[test]
  fn changed_at_prefers_the_platforms_time_and_falls_back_to_first_sight() {
    // A keychain that gives no modification time (macOS, Windows): dated at first sight.
    let (seen, store) = (Observations::default(), store(CredentialSource::Keychain));
    let undated = Snapshot { changed_at: None, ..snapshot(DOC) };
    assert_eq!(seen.seen_of(&store, &undated).store_changed_at, None, "never seen, no date");
    seen.note_seen(&store, 500.0);
    assert_eq!(seen.seen_of(&store, &undated).store_changed_at, Some(500.0));
    // A store whose platform dates it (file mtime, Secret Service): that date wins.
    let dated = Snapshot { changed_at: Some(42.0), ..snapshot(DOC) };
    assert_eq!(seen.seen_of(&store, &dated).store_changed_at, Some(42.0));
  }
}
