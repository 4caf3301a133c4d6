//! When a needs-auth entry is stale: expired (Claude Code ignores it already) or superseded
//! (the server's credentials were saved after the entry was written).
//!
//! The superseded rule: an entry written at `t` is superseded when
//!   (1) this process watched the store and saw the server's tokens change after `t`, and the
//!       server now holds a token; or
//!   (2) the store changed after `t` (file mtime / keychain item modification date) AND the
//!       server holds an access token whose `expiresAt` lies beyond `t + 60 s`.
//! Why (2) is sound: Claude Code sets `expiresAt = save time + expires_in`. A token saved before
//! the failure had expired by `t` (that expiry is why the server answered 401), so its
//! `expiresAt <= t`; a token saved after the failure expires well after `t`. The store's change
//! time alone is not enough (another server's sign-in also changes it), nor is an unexpired token
//! alone (a server can reject a token that has not expired: nothing changed since).

use std::path::Path;

use crate::cache_file::{self, EntryStatus};
use crate::clock::now_ms;
use crate::config_dir;
use crate::credentials::{self, CredentialSource, Observations, ServerCredentials, Snapshot, Store};
use crate::error::Result;
use crate::needs_auth::{self, Writer};
use crate::server_rules::Rules;

/// Tolerance for clocks and for tokens that expire right around the failure.
pub(crate) const SUPERSEDE_MARGIN_MS: f64 = 60_000.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Staleness {
  Expired,
  Superseded,
}

/// What is known about a server's credentials when judging its entry.
pub(crate) struct Evidence<'a> {
  pub(crate) credentials: Option<&'a ServerCredentials>,
  /// When the store last changed, if known.
  pub(crate) store_changed_at: Option<f64>,
  /// When this process saw this server's tokens change, if it did.
  pub(crate) observed_change_at: Option<f64>,
}

pub(crate) fn is_superseded(timestamp: f64, ev: &Evidence) -> bool {
  let Some(creds) = ev.credentials else { return false };
  if ev.observed_change_at.is_some_and(|seen| seen > timestamp) && creds.has_token() {
    return true;
  }
  ev.store_changed_at.is_some_and(|changed| changed > timestamp)
    && creds.has_access_token
    && creds.expires_at.is_some_and(|exp| exp > timestamp + SUPERSEDE_MARGIN_MS)
}

/// Why this entry should go, if it should. Entries without a numeric timestamp, or with one in
/// the future, are neither: Claude Code ignores them and they are kept as they are.
pub(crate) fn judge(entry: &EntryStatus, now: f64, ev: &Evidence) -> Option<Staleness> {
  let ts = entry.timestamp?;
  if entry.cached {
    return is_superseded(ts, ev).then_some(Staleness::Superseded);
  }
  (now - ts >= entry.ttl_ms).then_some(Staleness::Expired)
}

/// The credentials side of a judgement: one read of the store, plus what this process saw
/// (`Observations`).
pub(crate) struct CredentialView {
  pub(crate) store: Store,
  pub(crate) snapshot: Snapshot,
}

impl CredentialView {
  pub(crate) fn load(
    seen: &Observations,
    config_dir: &Path,
    explicit: bool,
    source: CredentialSource,
    now: f64,
  ) -> Result<CredentialView> {
    let store = Store::locate(config_dir, explicit, source);
    let snapshot = credentials::read(seen, &store)?;
    seen.note_seen(&store, now);
    Ok(CredentialView { store, snapshot })
  }

  pub(crate) fn evidence<'a>(&'a self, seen: &Observations, server: &str) -> Evidence<'a> {
    Evidence {
      credentials: self.snapshot.servers.get(server),
      store_changed_at: seen.changed_at(&self.store, &self.snapshot),
      observed_change_at: seen.observed_change(&self.store, server),
    }
  }
}

/// Removes expired and superseded entries in one locked, atomic rewrite and says which went
/// and why. Entries Claude Code ignores for other reasons (for instance, with a config, an `id`
/// that is not the server's) are kept as they are: Claude Code's next 401 replaces them.
/// The cache is read through `memos` and the rewrite reported to `observer`.
pub fn purge(
  w: Writer,
  seen: &Observations,
  config_dir: &Path,
  explicit: bool,
  source: CredentialSource,
  rules: &Rules,
) -> Result<Vec<(String, Staleness)>> {
  let now = now_ms();
  let view = CredentialView::load(seen, config_dir, explicit, source, now)?;
  let stale_in = |doc: &cache_file::Document| -> Vec<(String, Staleness)> {
    rules
      .statuses(doc, now)
      .into_iter()
      .filter_map(|st| judge(&st, now, &view.evidence(seen, &st.server)).map(|why| (st.server, why)))
      .collect()
  };
  let cache = config_dir::cache_path(config_dir);
  needs_auth::remove_picked(w, &cache, stale_in, |(server, _)| server.as_str())
}

#[cfg(test)]
mod tests {
  use super::*;

  const T: f64 = 1_795_668_795_083.0;

  fn creds(access: bool, expires_at: Option<f64>) -> ServerCredentials {
    ServerCredentials { has_access_token: access, expires_at, ..Default::default() }
  }

  fn ev(c: &ServerCredentials, store_changed_at: Option<f64>) -> Evidence<'_> {
    Evidence { credentials: Some(c), store_changed_at, observed_change_at: None }
  }

  #[test]
  fn bug_report_scenario_is_superseded() {
    // Expired token, entry written at T, sign-in elsewhere 2 min later: token valid 1 h.
    let signed_in = T + 120_000.0;
    let c = creds(true, Some(signed_in + 3_600_000.0));
    assert!(is_superseded(T, &ev(&c, Some(signed_in))));
  }

  #[test]
  fn nothing_changed_since_the_entry_keeps_it_even_with_an_unexpired_token() {
    let c = creds(true, Some(T + 3_000_000.0));
    assert!(!is_superseded(T, &ev(&c, Some(T - 10_000.0))));
  }

  #[test]
  fn another_servers_sign_in_keeps_an_entry_whose_token_had_expired() {
    let c = creds(true, Some(T - 5_000.0));
    assert!(!is_superseded(T, &ev(&c, Some(T + 60_000.0))));
  }

  #[test]
  fn a_token_that_expires_within_the_margin_is_not_proof() {
    let c = creds(true, Some(T + 30_000.0));
    assert!(!is_superseded(T, &ev(&c, Some(T + 1.0))));
  }

  #[test]
  fn observation_wins_but_needs_a_token() {
    let c = creds(true, Some(T - 5_000.0));
    let e = Evidence { credentials: Some(&c), store_changed_at: None, observed_change_at: Some(T + 1.0) };
    assert!(is_superseded(T, &e));
    let none = creds(false, None);
    let e = Evidence { credentials: Some(&none), store_changed_at: None, observed_change_at: Some(T + 1.0) };
    assert!(!is_superseded(T, &e));
  }

  #[test]
  fn judge_expired_and_untouchable() {
    let status = |timestamp: Option<f64>, cached: bool| EntryStatus {
      server: "s".into(),
      timestamp,
      ttl_ms: 900_000.0,
      expires_at: None,
      cached,
      id: None,
      judged_by: cache_file::JudgedBy::Name,
      ignored: None,
    };
    let none = Evidence { credentials: None, store_changed_at: None, observed_change_at: None };
    assert_eq!(judge(&status(Some(T), false), T + 900_000.0, &none), Some(Staleness::Expired));
    assert_eq!(judge(&status(Some(T), true), T + 1.0, &none), None);
    assert_eq!(judge(&status(None, false), T, &none), None, "no timestamp: kept");
    assert_eq!(judge(&status(Some(T + 120_000.0), false), T, &none), None, "future: kept");
  }
}
