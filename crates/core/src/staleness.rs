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
//!
//! claude.ai connectors (`claudeai-proxy`) have no tokens of their own: they are dialed with the
//! account's (`claudeAiOauth`). Claude Code 2.1.108 cached any 401 of a connector as an id-less
//! entry, so for an id-less connector entry the same rule runs with the account's tokens as the
//! evidence (its `expiresAt` is also save time + the server's `expires_in`; the save time is
//! never read off it). An entry with an `id` (2.1.332+) is written only when claude.ai said the
//! connector's own authorization lapsed, with a good account token: no account change proves
//! anything about it, so nothing local supersedes it (its TTL still expires it).

use std::path::Path;

use crate::cache_file::{self, EntryStatus};
use crate::clock::now_ms;
use crate::config_dir;
use crate::credentials::{self, CredentialSource, Observations, Seen, ServerCredentials, Snapshot, Store};
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

/// The credentials side of a judgement: one read of the store, and what this process had seen
/// of it (`Observations`) when the judgement began.
pub(crate) struct CredentialView {
  pub(crate) snapshot: Snapshot,
  seen: Seen,
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
    Ok(CredentialView::new(seen, &store, snapshot))
  }

  /// The view of `store` as `snapshot` shows it, with what `seen` holds of it now.
  pub(crate) fn new(seen: &Observations, store: &Store, snapshot: Snapshot) -> CredentialView {
    let seen = seen.seen_of(store, &snapshot);
    CredentialView { snapshot, seen }
  }

  pub(crate) fn evidence(&self, server: &str) -> Evidence<'_> {
    Evidence {
      credentials: self.snapshot.servers.get(server),
      store_changed_at: self.seen.store_changed_at,
      observed_change_at: self.seen.changed_at.get(server).copied(),
    }
  }

  /// The evidence for `entry`: a server's own credentials; for an id-less connector entry the
  /// account's; for a connector entry with an `id`, none (see the module's doc).
  pub(crate) fn evidence_for(&self, entry: &EntryStatus, connector: bool) -> Evidence<'_> {
    if !connector {
      return self.evidence(&entry.server);
    }
    if entry.id.is_some() {
      return Evidence { credentials: None, store_changed_at: None, observed_change_at: None };
    }
    Evidence {
      credentials: self.snapshot.account.as_ref(),
      store_changed_at: self.seen.store_changed_at,
      observed_change_at: self.seen.account_changed_at,
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
      .filter_map(|st| {
        judge(&st, now, &view.evidence_for(&st, rules.is_connector(&st.server))).map(|why| (st.server, why))
      })
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

  fn connector_entry(id: Option<&str>, timestamp: f64) -> EntryStatus {
    EntryStatus {
      server: "claude.ai Figma".into(),
      timestamp: Some(timestamp),
      ttl_ms: 900_000.0,
      expires_at: None,
      cached: true,
      id: id.map(str::to_owned),
      judged_by: cache_file::JudgedBy::Name,
      ignored: None,
    }
  }

  /// A config dir with `creds` as its credentials file (its mtime: now) and the view of it.
  fn view_of(creds: &str) -> (tempfile::TempDir, CredentialView, Observations) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(".credentials.json"), creds).expect("write");
    let seen = Observations::default();
    let view = CredentialView::load(&seen, dir.path(), true, CredentialSource::File, now_ms()).expect("load");
    (dir, view, seen)
  }

  #[test]
  fn an_idless_connector_entry_is_judged_by_the_accounts_tokens() {
    let now = now_ms();
    let account = |expires_at: f64| {
      format!(r#"{{"claudeAiOauth":{{"accessToken":"A","scopes":["user:mcp_servers"],"expiresAt":{expires_at}}}}}"#)
    };
    // The account token saved (now) after a 2.1.108 entry of 5 min ago, valid 1 h.
    let (_d, view, _) = view_of(&account(now + 3_600_000.0));
    let old = connector_entry(None, now - 300_000.0);
    assert!(is_superseded(old.timestamp.unwrap(), &view.evidence_for(&old, true)));
    // Judged as a plain server, a connector has no credentials of its own: nothing proves it.
    assert!(!is_superseded(old.timestamp.unwrap(), &view.evidence_for(&old, false)));
    // An entry with an id (2.1.332+): the account's tokens prove nothing about it.
    let with_id = connector_entry(Some("mcpsrv_01"), now - 300_000.0);
    assert!(!is_superseded(with_id.timestamp.unwrap(), &view.evidence_for(&with_id, true)));
    // A 401 after the save (the store older than the entry) stays.
    let newer = connector_entry(None, now + 30_000.0);
    assert!(!is_superseded(newer.timestamp.unwrap(), &view.evidence_for(&newer, true)));
    // An account token that had expired by the entry (another save changed the file): kept.
    let (_d, view, _) = view_of(&account(now - 400_000.0));
    assert!(!is_superseded(old.timestamp.unwrap(), &view.evidence_for(&old, true)));
    // No account token at all: kept.
    let (_d, view, _) = view_of(r#"{"mcpOAuth":{}}"#);
    assert!(!is_superseded(old.timestamp.unwrap(), &view.evidence_for(&old, true)));
  }

  #[test]
  fn purge_removes_idless_connector_entries_superseded_by_the_account_and_nothing_else() {
    let now = now_ms();
    let (dir, _view, seen) =
      view_of(&format!(r#"{{"claudeAiOauth":{{"accessToken":"A","expiresAt":{}}}}}"#, now + 3_600_000.0));
    let five_min_ago = now - 300_000.0;
    std::fs::write(
      dir.path().join(crate::config_dir::CACHE_FILE_NAME),
      format!(
        r#"{{"claude.ai Figma":{{"timestamp":{five_min_ago}}},"claude.ai Linear":{{"timestamp":{five_min_ago},"id":"mcpsrv_02"}},"gh":{{"timestamp":{five_min_ago}}}}}"#
      ),
    )
    .expect("write cache");
    let memos = needs_auth::Memos::new();
    let log = crate::own_writes::OwnWritesLog::default();
    let w = Writer { memos: &memos, observer: &log, lock_wait: crate::fs::DEFAULT_LOCK_WAIT };
    let removed = purge(w, &seen, dir.path(), true, CredentialSource::File, &Rules::default()).expect("purge");
    assert_eq!(removed, vec![("claude.ai Figma".to_string(), Staleness::Superseded)]);
    let left = std::fs::read_to_string(dir.path().join(crate::config_dir::CACHE_FILE_NAME)).expect("read");
    assert!(left.contains("claude.ai Linear") && left.contains("\"gh\"") && !left.contains("Figma"), "{left}");
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
