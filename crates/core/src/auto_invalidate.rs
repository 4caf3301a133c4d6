//! Auto-invalidation (the `autoInvalidate` option): what a watcher's changes make this process
//! do to the cache, done on a thread of its own before the changes are announced as events.
//!
//! - **A sign-in** (a server's tokens changed, and it holds one): its needs-auth entry is
//!   removed, and the `credentials-changed` event is emitted as soon as the removal is visible
//!   (renamed into place), before it is made durable (`needs_auth::invalidate_then`).
//! - **Sticky removal**: whenever another process changed the cache (typically a Claude Code
//!   that started before a sign-in, writing back the copy it read then), every entry the
//!   superseded rule (`staleness`) marks stale is removed again, by the same rule as
//!   `purgeStale`, before that `cache-changed` event.
//!
//! The watcher only reports (`watcher::Sink`, a queue); the removals take the cache's lock and
//! fsync, so they run here, never on notify's thread, and the watcher's turn never waits for
//! them. Every change and warning goes through this one queue, in order, and out to the
//! [`EventSink`]; with auto-invalidation off they pass straight through. So the entry of a
//! server signed in is gone by the time the event reaches a subscriber, at the cost of one
//! channel send and one thread wake-up.
//!
//! Stopping (dropping the [`AutoInvalidator`]) never waits: delivery stops at once (nothing
//! reaches the sink after the drop returns); a removal already under way (waiting for another
//! process's lock, say) is finished but not announced, nothing queued is started, and the
//! thread exits by itself (see `watcher::threads`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use crate::cache_file::{self, Document};
use crate::clock::now_ms;
use crate::config_dir;
use crate::credentials::{Snapshot, Store};
use crate::error::{Error, Result};
use crate::events::{AuthEvent, EventSink, Reason, Source};
use crate::fs::DEFAULT_LOCK_WAIT;
use crate::mutex::lock;
use crate::needs_auth::{self, Selection, Writer};
use crate::server_rules::CONNECTOR_PREFIX;
use crate::staleness::{self, CredentialView};
use crate::watcher::{self, threads, Change, Shared};

enum Job {
  Change(Change),
  Warning(String),
  Stop,
}

/// The watcher's sink: what it reports is queued for the auto-invalidator's thread.
pub struct Inbox {
  tx: Sender<Job>,
}

impl watcher::Sink for Inbox {
  fn changed(&self, change: Change) {
    let _ = self.tx.send(Job::Change(change));
  }
  fn warn(&self, message: String) {
    let _ = self.tx.send(Job::Warning(message));
  }
}

/// The one way out to the event sink, closed by the owner: once `close` returns, nothing more
/// is delivered (an emit under way finishes first; a sink never blocks).
struct Gate {
  sink: Mutex<Option<Box<dyn EventSink>>>,
}

impl Gate {
  fn is_open(&self) -> bool {
    lock(&self.sink).is_some()
  }

  fn event(&self, event: AuthEvent) {
    if let Some(sink) = lock(&self.sink).as_ref() {
      sink.event(event);
    }
  }

  fn warn(&self, message: String) {
    if let Some(sink) = lock(&self.sink).as_ref() {
      sink.warn(message);
    }
  }

  fn close(&self) {
    let sink = lock(&self.sink).take();
    drop(sink);
  }
}

/// A running auto-invalidator. Dropping it stops it without waiting (see the module's doc).
pub struct AutoInvalidator {
  tx: Sender<Job>,
  gate: Arc<Gate>,
  thread: threads::Stoppable,
}

impl Drop for AutoInvalidator {
  fn drop(&mut self) {
    self.gate.close();
    let _ = self.tx.send(Job::Stop);
    self.thread.stopped();
  }
}

/// Starts the auto-invalidator of `config_dir`'s cache, judged by `store`'s evidence; removes
/// entries while `on` is set, through `process`'s memos and own-writes log. Returns it with the
/// sink its watcher reports to. Fails (`ERR_WATCH`) only when its thread cannot start.
pub fn start(
  config_dir: &Path,
  store: Store,
  on: Arc<AtomicBool>,
  connectors: Arc<Mutex<BTreeSet<String>>>,
  sink: impl EventSink,
  process: Shared,
) -> Result<(AutoInvalidator, Inbox)> {
  let (tx, rx) = mpsc::channel();
  let gate = Arc::new(Gate { sink: Mutex::new(Some(Box::new(sink))) });
  let policy = Policy {
    config_dir: config_dir.to_path_buf(),
    cache_path: config_dir::cache_path(config_dir),
    store,
    on,
    gate: Arc::clone(&gate),
    credentials: Snapshot::default(),
    account: None,
    connectors,
    last_warning: None,
    process,
  };
  let budget = Arc::clone(&policy.process.stopped_threads);
  let thread = threads::spawn(&budget, "mna-invalidator", "the auto-invalidation thread", move || policy.run(rx))?;
  Ok((AutoInvalidator { tx: tx.clone(), gate, thread }, Inbox { tx }))
}

struct Policy {
  config_dir: PathBuf,
  cache_path: PathBuf,
  store: Store,
  on: Arc<AtomicBool>,
  gate: Arc<Gate>,
  /// The store as last reported: the evidence for the superseded rule.
  credentials: Snapshot,
  /// The account tokens' fingerprint as last reported (0: none); `None` before the baseline.
  account: Option<u64>,
  /// The servers the subscribers' `serverConfigs` name as `claudeai-proxy`.
  connectors: Arc<Mutex<BTreeSet<String>>>,
  last_warning: Option<String>,
  process: Shared,
}

impl Policy {
  /// Until `Job::Stop`, or the gate closed (then nothing queued is started).
  fn run(mut self, rx: Receiver<Job>) {
    while let Ok(job) = rx.recv() {
      if !self.gate.is_open() {
        return;
      }
      match job {
        Job::Stop => return,
        Job::Warning(message) => self.gate.warn(message),
        Job::Change(Change::Credentials { servers, snapshot }) => self.credentials_changed(servers, snapshot),
        Job::Change(Change::Cache { servers }) => self.cache_changed(servers),
      }
    }
  }

  fn auto_invalidate(&self) -> bool {
    self.on.load(Ordering::SeqCst)
  }

  /// How its removals reach the cache: through the runtime's memos and own-writes log (so that
  /// its own watcher does not report them back), waiting a bounded time for another process's
  /// lock (`ERR_LOCK_TIMEOUT`, warned about, after that).
  fn writer(&self) -> Writer<'_> {
    Writer { memos: &self.process.memos, observer: &*self.process.own_writes, lock_wait: DEFAULT_LOCK_WAIT }
  }

  fn warn(&mut self, err: &Error) {
    let message = err.to_string();
    if self.last_warning.as_deref() != Some(message.as_str()) {
      self.gate.warn(message.clone());
      self.last_warning = Some(message);
    }
  }

  fn emit(&self, reason: Reason, servers: Vec<String>) {
    self.gate.event(AuthEvent {
      reason,
      servers,
      source: Source::OtherProcess,
      at: now_ms(),
      config_dir: self.config_dir.clone(),
    });
  }

  /// Emits `servers` unless already emitted (taken).
  fn emit_once(&self, reason: Reason, servers: &mut Option<Vec<String>>) {
    if let Some(servers) = servers.take() {
      self.emit(reason, servers);
    }
  }

  /// Whether `server` is a claude.ai connector: configured as one, or named as Claude Code
  /// names them.
  fn is_connector(&self, server: &str) -> bool {
    server.starts_with(CONNECTOR_PREFIX) || lock(&self.connectors).contains(server)
  }

  /// The connectors an account token change concerns: the configured ones and those the cache
  /// names.
  fn connectors(&self) -> Vec<String> {
    let mut names: BTreeSet<String> = lock(&self.connectors).clone();
    if let Ok(doc) = needs_auth::load(&self.process.memos, &self.cache_path) {
      names.extend(doc.keys().filter(|k| k.starts_with(CONNECTOR_PREFIX)).map(ToString::to_string));
    }
    names.into_iter().collect()
  }

  fn credentials_changed(&mut self, mut changed: Vec<String>, snapshot: Snapshot) {
    self.last_warning = None;
    let account = snapshot.account.as_ref().map_or(0, |a| a.fingerprint);
    let account_changed = self.account.replace(account).is_some_and(|before| before != account);
    let account_has_token = snapshot.account.as_ref().is_some_and(|a| a.has_token());
    self.credentials = snapshot;
    // The account's tokens are what connectors are dialed with: a change of them is news for
    // every connector, and (auto-invalidation on) ends the id-less entries written before it.
    let mut connectors = Vec::new();
    if account_changed {
      connectors = self.connectors();
      for c in &connectors {
        if !changed.contains(c) {
          changed.push(c.clone());
        }
      }
    }
    if changed.is_empty() {
      return;
    }
    if self.auto_invalidate() && account_has_token && !connectors.is_empty() {
      // Dated when the watcher saw the save: an entry written after it is a new 401.
      let seen_at = self.process.observations.observed_account_change(&self.store).unwrap_or_else(now_ms);
      self.remove_idless_connector_entries(seen_at);
    }
    let signed_in: Vec<String> = changed
      .iter()
      .filter(|name| self.credentials.servers.get(*name).is_some_and(|s| s.has_token()))
      .cloned()
      .collect();
    let mut event = Some(changed);
    if self.auto_invalidate() && !signed_in.is_empty() {
      // Announced as soon as the removal is visible, before it is made durable (under the
      // lock, right after: `fs::write_visible`): a Claude Code a subscriber starts on the event
      // reads the file without the entry, and the fsyncs are off the event's path.
      let announce = || self.emit_once(Reason::CredentialsChanged, &mut event);
      let selection = Selection::Servers(signed_in);
      let removed = needs_auth::invalidate_then(self.writer(), &self.cache_path, &selection, Some(announce));
      if let Err(e) = removed {
        self.warn(&e);
      }
    }
    self.emit_once(Reason::CredentialsChanged, &mut event);
  }

  /// Removes the id-less connector entries (Claude Code 2.1.108's) written before `changed_at`,
  /// when the account's tokens changed: never an entry with an `id` (2.1.332+: the connector's
  /// own authorization on claude.ai, which no account change proves anything about).
  fn remove_idless_connector_entries(&mut self, changed_at: f64) {
    let pick = |doc: &Document| -> Vec<String> {
      doc
        .iter()
        .filter(|(name, entry)| {
          let obj = entry.as_object();
          let idless = obj.is_none_or(|o| o.get("id").is_none());
          let ts = obj.and_then(|o| o.get("timestamp")).and_then(serde_json::Value::as_f64);
          self.is_connector(name) && idless && ts.is_some_and(|ts| ts < changed_at)
        })
        .map(|(name, _)| name.to_string())
        .collect()
    };
    let removed = needs_auth::remove_picked(self.writer(), &self.cache_path, pick, |s| s.as_str());
    if let Err(e) = removed {
      self.warn(&e);
    }
  }

  fn cache_changed(&mut self, servers: Vec<String>) {
    let mut event = Some(servers);
    if self.auto_invalidate() {
      self.remove_superseded(&mut event);
    }
    self.emit_once(Reason::CacheChanged, &mut event);
  }

  /// Sticky invalidation: removes again every entry a sign-in has superseded, by the same rule
  /// as `purgeStale`; `event` is emitted as soon as the removal is visible, as for a sign-in.
  fn remove_superseded(&mut self, event: &mut Option<Vec<String>>) {
    let view = CredentialView::new(&self.process.observations, &self.store, self.credentials.clone());
    let now = now_ms();
    let superseded = |doc: &Document| -> Vec<String> {
      // The TTL plays no part: a superseded entry is stale however long it would count.
      cache_file::statuses(doc, now, cache_file::DEFAULT_TTL_MS)
        .into_iter()
        .filter(|st| {
          let evidence = view.evidence_for(st, self.is_connector(&st.server));
          st.timestamp.is_some_and(|ts| staleness::is_superseded(ts, &evidence))
        })
        .map(|st| st.server)
        .collect()
    };
    let announce = || self.emit_once(Reason::CacheChanged, event);
    let removed =
      needs_auth::remove_picked_then(self.writer(), &self.cache_path, superseded, |s| s.as_str(), Some(announce));
    if let Err(e) = removed {
      self.warn(&e);
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::credentials::CredentialSource;
  use crate::events::Output;
  use crate::watcher::{Watcher, TORN_FALLBACK};
  use std::fs;
  use std::sync::mpsc::Receiver;
  use std::time::{Duration, Instant};

  const WAIT: Duration = Duration::from_secs(5);

  struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    rx: Receiver<Output>,
    // Taken by the Linux-only test of a stop during a removal (it finds the waiter in /proc).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    policy: Option<AutoInvalidator>,
    process: Shared,
    _watcher: Watcher,
  }

  fn watch(source: CredentialSource, auto_invalidate: bool) -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("config");
    fs::create_dir(&dir).expect("mkdir");
    let (tx, rx) = mpsc::channel();
    let store = Store::locate(&dir, true, source);
    let process = Shared::default();
    let on = Arc::new(AtomicBool::new(auto_invalidate));
    let connectors = Arc::new(Mutex::new(BTreeSet::from(["figma".to_string()])));
    let (policy, inbox) = start(&dir, store.clone(), on, connectors, tx, process.clone()).expect("start");
    let settings = Arc::new(watcher::Settings::new(Duration::from_secs(2)));
    let watcher = watcher::start(&dir, store, settings, inbox, process.clone()).expect("watch");
    Fixture { _tmp: tmp, dir, rx, policy: Some(policy), process, _watcher: watcher }
  }

  impl Fixture {
    fn cache(&self) -> PathBuf {
      self.dir.join(config_dir::CACHE_FILE_NAME)
    }

    /// The next output that is not a warning (warnings are returned by `next_warning`).
    fn next_event(&self) -> AuthEvent {
      let end = Instant::now() + WAIT;
      loop {
        match self.rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
          Ok(Output::Event(e)) => return e,
          Ok(Output::Warning(_)) => continue,
          Err(e) => panic!("no event within {WAIT:?}: {e}"),
        }
      }
    }

    fn quiet(&self, ms: u64) {
      if let Ok(o) = self.rx.recv_timeout(Duration::from_millis(ms)) {
        panic!("unexpected output {o:?}");
      }
    }

    fn write_token(&self, server: &str, expires_at: f64) {
      let doc = format!(
        r#"{{"mcpOAuth":{{"{server}|0000000000000000":{{"serverName":"{server}","accessToken":"T-{expires_at}","expiresAt":{expires_at}}}}}}}"#
      );
      fs::write(self.dir.join(".credentials.json"), doc).expect("write credentials");
    }
  }

  #[test]
  fn another_writer_is_reported_to_the_sink_own_writes_are_not() {
    let f = watch(CredentialSource::None, false);
    fs::write(f.cache(), br#"{"x":{"timestamp":1}}"#).expect("write");
    let e = f.next_event();
    assert_eq!((e.reason, e.source, e.servers.clone()), (Reason::CacheChanged, Source::OtherProcess, vec!["x".into()]));
    assert_eq!(e.config_dir, f.dir);
    let w = Writer { memos: &f.process.memos, observer: &*f.process.own_writes, lock_wait: DEFAULT_LOCK_WAIT };
    needs_auth::mark(w, &f.cache(), "own", 2.0, None, None).expect("mark");
    f.quiet(200);
  }

  #[test]
  fn an_in_place_save_caught_half_done_is_reported_once_when_it_lands() {
    let f = watch(CredentialSource::File, false);
    f.write_token("gh", 1.0);
    assert_eq!(f.next_event().servers, vec!["gh"]);
    let creds = f.dir.join(".credentials.json");
    // Claude Code 2.1.108's `writeFile`: the truncate notifies; the bytes come later. Sooner than
    // TORN_FALLBACK, notify's thread reads them at their notification; later, the watcher thread
    // is already waiting for them.
    for (i, gap) in [30, TORN_FALLBACK.as_millis() as u64 + 40].into_iter().enumerate() {
      let mut file = fs::File::create(&creds).expect("truncate");
      std::thread::sleep(Duration::from_millis(gap));
      let doc = format!(
        r#"{{"mcpOAuth":{{"gh|0000000000000000":{{"serverName":"gh","accessToken":"T-{i}","expiresAt":2}}}}}}"#
      );
      std::io::Write::write_all(&mut file, doc.as_bytes()).expect("write");
      drop(file);
      match f.rx.recv_timeout(WAIT).expect("an event") {
        Output::Event(e) => {
          assert_eq!((e.reason, e.servers), (Reason::CredentialsChanged, vec!["gh".to_string()]), "{gap} ms")
        }
        Output::Warning(w) => panic!("the half-done save ({gap} ms) was taken as corrupt: {w}"),
      }
      f.quiet(TORN_FALLBACK.as_millis() as u64 + 150);
    }
  }

  #[test]
  fn every_save_is_reported_once_and_its_entry_is_gone_by_then_whichever_thread_reads_it() {
    let document = |tokens: &[i32; 3]| -> String {
      let entries: Vec<String> = (0..3)
        .map(|k| {
          format!(r#""s{k}|0000000000000000":{{"serverName":"s{k}","accessToken":"T{}","expiresAt":1}}"#, tokens[k])
        })
        .collect();
      format!(r#"{{"mcpOAuth":{{{}}}}}"#, entries.join(","))
    };
    let f = watch(CredentialSource::File, true);
    let creds = f.dir.join(".credentials.json");
    let mut tokens = [-1, -2, -3];
    fs::write(&creds, document(&tokens)).expect("first sign-ins");
    assert_eq!(f.next_event().servers, vec!["s0", "s1", "s2"]);
    for i in 0..30i32 {
      let server = format!("s{}", i % 3);
      // A 401 after the previous sign-in: not superseded, so it stays until this one.
      let entry = format!(r#"{{"{server}":{{"timestamp":{}}}}}"#, now_ms() + 1.0);
      std::thread::sleep(Duration::from_millis(2));
      fs::write(f.cache(), entry).expect("entry");
      let e = f.next_event();
      assert_eq!((e.reason, e.servers), (Reason::CacheChanged, vec![server.clone()]), "save {i}: the entry");
      // Every server keeps its token; this one's is new.
      tokens[(i % 3) as usize] = i;
      let doc = document(&tokens);
      // In place (caught half-done or not: read on notify's thread or the watcher's), or renamed.
      match i % 3 {
        0 => {
          let mut file = fs::File::create(&creds).expect("truncate");
          std::thread::sleep(Duration::from_millis(3));
          std::io::Write::write_all(&mut file, doc.as_bytes()).expect("write");
        }
        1 => fs::write(&creds, &doc).expect("write"),
        _ => {
          let tmp = f.dir.join(".credentials.json.tmp");
          fs::write(&tmp, &doc).expect("write");
          fs::rename(&tmp, &creds).expect("rename");
        }
      }
      let e = f.next_event();
      assert_eq!((e.reason, e.servers), (Reason::CredentialsChanged, vec![server.clone()]), "save {i}, once");
      assert_eq!(fs::read_to_string(f.cache()).expect("read"), "{}", "save {i}: removed before the event");
    }
    f.quiet(300);
  }

  #[test]
  fn a_removed_directory_is_warned_about_once_and_watched_again_when_it_comes_back() {
    let f = watch(CredentialSource::None, false);
    fs::write(f.cache(), br#"{"x":{"timestamp":1}}"#).expect("write");
    assert_eq!(f.next_event().servers, vec!["x"]);
    fs::remove_dir_all(&f.dir).expect("rm -rf");
    // One warning, and (in either order) the entries that went with it: another process's change.
    let (mut warning, mut event) = (None, None);
    while warning.is_none() || event.is_none() {
      match f.rx.recv_timeout(WAIT).expect("a warning and an event") {
        Output::Warning(w) => assert!(warning.replace(w).is_none(), "a second warning"),
        Output::Event(e) => assert!(event.replace(e).is_none(), "a second event"),
      }
    }
    let w = warning.expect("warning");
    assert!(w.contains(&f.dir.display().to_string()) && w.contains("does not exist"), "{w}");
    assert_eq!(event.expect("event").servers, vec!["x"]);
    f.quiet(1200); // still missing: no second warning, no event
    fs::create_dir(&f.dir).expect("mkdir");
    fs::write(f.cache(), br#"{"y":{"timestamp":1}}"#).expect("write");
    assert_eq!(f.next_event().servers, vec!["y"]);
    fs::write(f.cache(), br#"{"y":{"timestamp":1},"z":{"timestamp":1}}"#).expect("write");
    assert_eq!(f.next_event().servers, vec!["z"], "notifications work again on the new directory");
  }

  #[test]
  fn a_directory_renamed_away_and_replaced_is_followed_at_its_path() {
    let f = watch(CredentialSource::None, false);
    let away = f.dir.with_file_name("away");
    fs::rename(&f.dir, &away).expect("mv");
    fs::create_dir(&f.dir).expect("mkdir");
    // Writes to the old directory are no longer this path's business.
    fs::write(away.join(config_dir::CACHE_FILE_NAME), b"{\"old\":{\"timestamp\":1}}").expect("write");
    fs::write(f.cache(), br#"{"new":{"timestamp":1}}"#).expect("write");
    let e = f.next_event();
    assert_eq!(e.servers, vec!["new"]);
    f.quiet(300);
  }

  #[test]
  fn an_entry_written_back_after_a_sign_in_is_removed_again_a_later_one_stays() {
    let f = watch(CredentialSource::File, true);
    let before_sign_in = now_ms() - 60_000.0;
    fs::write(f.cache(), format!(r#"{{"gh":{{"timestamp":{before_sign_in}}}}}"#)).expect("write");
    assert_eq!(f.next_event().reason, Reason::CacheChanged);
    f.write_token("gh", now_ms() - 1000.0); // observed, even with an expired token
    let e = f.next_event();
    assert_eq!((e.reason, e.servers), (Reason::CredentialsChanged, vec!["gh".to_string()]));
    assert_eq!(fs::read_to_string(f.cache()).expect("read"), "{}");
    // The write-back: the old entry, plus a genuine new 401 of another server.
    std::thread::sleep(Duration::from_millis(5));
    let later = now_ms();
    fs::write(f.cache(), format!(r#"{{"gh":{{"timestamp":{before_sign_in}}},"other":{{"timestamp":{later}}}}}"#))
      .expect("write back");
    let e = f.next_event();
    assert_eq!((e.reason, e.servers), (Reason::CacheChanged, vec!["gh".to_string(), "other".to_string()]));
    assert_eq!(
      fs::read_to_string(f.cache()).expect("read"),
      format!(r#"{{"other":{{"timestamp":{later}}}}}"#),
      "gh removed again before the event, other kept"
    );
    f.quiet(200); // the removal is our own write: not reported
                  // A genuine new 401 for gh itself, after the sign-in, stays.
    let newer = now_ms() + 1.0;
    fs::write(f.cache(), format!(r#"{{"other":{{"timestamp":{later}}},"gh":{{"timestamp":{newer}}}}}"#))
      .expect("write");
    assert_eq!(f.next_event().servers, vec!["gh"]);
    assert!(fs::read_to_string(f.cache()).expect("read").contains("\"gh\""));
  }

  fn write_account(f: &Fixture, token: &str) {
    let doc = format!(
      r#"{{"claudeAiOauth":{{"accessToken":"{token}","scopes":["user:mcp_servers"],"expiresAt":{}}}}}"#,
      now_ms() + 3_600_000.0
    );
    fs::write(f.dir.join(".credentials.json"), doc).expect("write credentials");
  }

  #[test]
  fn an_account_token_change_removes_idless_connector_entries_only_and_names_the_connectors() {
    let f = watch(CredentialSource::File, true);
    write_account(&f, "A1");
    assert_eq!(f.next_event().servers, vec!["figma"], "the first save: the configured connector");
    // 401s after that save (an entry older than the account's tokens would be superseded already).
    std::thread::sleep(Duration::from_millis(20));
    let before = now_ms();
    fs::write(
      f.cache(),
      format!(
        r#"{{"claude.ai Figma":{{"timestamp":{before}}},"claude.ai Linear":{{"timestamp":{before},"id":"mcpsrv_02"}},"figma":{{"timestamp":{before}}},"gh":{{"timestamp":{before}}}}}"#
      ),
    )
    .expect("entries");
    assert_eq!(f.next_event().reason, Reason::CacheChanged);
    // The save a whole millisecond after them: an entry dated in the save's own millisecond is
    // kept (it may be a 401 after it), which a fast machine would otherwise hit here.
    std::thread::sleep(Duration::from_millis(5));
    write_account(&f, "A2");
    let e = f.next_event();
    assert_eq!(e.reason, Reason::CredentialsChanged);
    assert_eq!(e.servers, vec!["claude.ai Figma", "claude.ai Linear", "figma"], "configured and named connectors");
    let left = fs::read_to_string(f.cache()).expect("read");
    assert!(!left.contains("Figma") && !left.contains("\"figma\""), "id-less connector entries removed: {left}");
    assert!(
      left.contains("claude.ai Linear") && left.contains("\"gh\""),
      "an entry with an id, and an http server's, kept: {left}"
    );
    // Written back by a process that read the cache before the save: removed again (sticky).
    fs::write(f.cache(), format!(r#"{{"claude.ai Figma":{{"timestamp":{before}}}}}"#)).expect("write back");
    assert_eq!(f.next_event().servers, vec!["claude.ai Figma", "claude.ai Linear", "gh"]);
    assert_eq!(fs::read_to_string(f.cache()).expect("read"), "{}");
    // A 401 after the save stays.
    let later = now_ms() + 1.0;
    fs::write(f.cache(), format!(r#"{{"claude.ai Figma":{{"timestamp":{later}}}}}"#)).expect("new 401");
    f.next_event();
    assert!(fs::read_to_string(f.cache()).expect("read").contains("Figma"));
  }

  #[test]
  fn without_auto_invalidation_an_account_change_is_reported_and_nothing_removed() {
    let f = watch(CredentialSource::File, false);
    write_account(&f, "A1");
    f.next_event();
    let before = now_ms() - 60_000.0;
    fs::write(f.cache(), format!(r#"{{"claude.ai Figma":{{"timestamp":{before}}}}}"#)).expect("entry");
    f.next_event();
    write_account(&f, "A2");
    assert_eq!(f.next_event().servers, vec!["claude.ai Figma", "figma"]);
    assert!(fs::read_to_string(f.cache()).expect("read").contains("Figma"));
  }

  #[test]
  fn without_auto_invalidation_a_written_back_entry_stays() {
    let f = watch(CredentialSource::File, false);
    let old = now_ms() - 60_000.0;
    f.write_token("gh", now_ms() + 3_600_000.0);
    f.next_event();
    fs::write(f.cache(), format!(r#"{{"gh":{{"timestamp":{old}}}}}"#)).expect("write");
    f.next_event();
    assert!(fs::read_to_string(f.cache()).expect("read").contains("\"gh\""));
  }

  /// How many files of this process are `lock` opened: a thread waiting for it has it open
  /// (the lock is polled, so a wait shows as an open file, not as a blocked flock).
  #[cfg(target_os = "linux")]
  fn opens_of(lock: &Path) -> usize {
    let fds = fs::read_dir("/proc/self/fd").expect("/proc/self/fd");
    fds.filter_map(|fd| fs::read_link(fd.ok()?.path()).ok()).filter(|target| target == lock).count()
  }

  #[cfg(target_os = "linux")]
  #[test]
  fn stopped_while_a_removal_waits_for_the_lock_it_returns_at_once_finishes_and_announces_nothing() {
    let mut f = watch(CredentialSource::File, true);
    fs::write(f.cache(), format!(r#"{{"gh":{{"timestamp":{}}}}}"#, now_ms() - 60_000.0)).expect("write");
    assert_eq!(f.next_event().reason, Reason::CacheChanged);
    // Another holder of the lock (flock locks of two opens conflict within one process too).
    let held = crate::fs::FileLock::acquire(&f.cache(), DEFAULT_LOCK_WAIT).expect("lock");
    f.write_token("gh", now_ms() + 3_600_000.0);
    let lock = crate::fs::lock_path(&f.cache());
    let end = Instant::now() + WAIT;
    // Held by `held` once; a second open is the removal waiting for it.
    while opens_of(&lock) < 2 {
      assert!(Instant::now() < end, "the sign-in's removal never waited for the lock");
      std::thread::sleep(Duration::from_millis(5));
    }
    let policy = f.policy.take().expect("running");
    let (done, dropped) = mpsc::channel();
    std::thread::spawn(move || {
      drop(policy);
      let _ = done.send(());
    });
    dropped.recv_timeout(Duration::from_secs(20)).expect("the stop waited for the blocked thread");
    drop(held);
    let end = Instant::now() + WAIT;
    while fs::read_to_string(f.cache()).expect("read").contains("\"gh\"") {
      assert!(Instant::now() < end, "the removal under way did not land once the lock was free");
      std::thread::sleep(Duration::from_millis(5));
    }
    f.quiet(300);
  }
}
