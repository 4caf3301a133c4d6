//! The event bus: this process's subscribers, and the one registry of the watchers they share.
//! It knows nothing of JavaScript: a subscriber is anything that can `deliver`.
//!
//! Watchers are keyed by (config dir, credential store): subscribers that asked for the same
//! store share one, and subscribers of one dir that asked for different stores get one each, so
//! every subscriber gets exactly the semantics it asked for, whatever the order of subscribing
//! and closing. A watcher's events go to the subscribers of that watcher only; this process's
//! own signals (`emit_invalidated`) go to every subscriber of the dir.
//!
//! A watcher is two parts the bus puts together: the `watcher` (OS watches, the loop, the diff)
//! reports to an `auto_invalidate::AutoInvalidator`, which acts on the changes and emits the
//! events to the bus. The registry lock is only ever held to look up or change the maps:
//! starting a watcher (which reads the cache under its file lock and may ask the keychain)
//! happens outside it; stopping one never waits for its threads.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use crate::auto_invalidate::{self, AutoInvalidator};
use crate::clock::now_ms;
use crate::credentials::{CredentialSource, Store};
use crate::error::Result;
use crate::events::{AuthEvent, EventSink, Reason, Source};
use crate::mutex::lock;
use crate::watcher::{self, Settings, Shared, Watcher};

/// What a subscriber is. `deliver` must not block: it queues.
pub trait Listener: Send + Sync {
  /// Returns false when the listener can never receive again (its runtime is shutting down).
  /// `emit_invalidated` then unsubscribes it; a watcher's thread ignores it and leaves the
  /// listener to its own teardown (unsubscribing there would stop that very thread).
  fn deliver(&self, event: &AuthEvent) -> bool;
  /// A problem the subscriber should hear about (a watcher that failed to read a store).
  fn warn(&self, message: &str);
}

/// What a subscriber that watches other processes asked for.
#[derive(Debug, Clone)]
pub struct WatchSpec {
  pub credentials: CredentialSource,
  /// Remove a server's needs-auth entry as soon as its credentials change, and keep
  /// superseded entries removed when another process writes them back.
  pub auto_invalidate: bool,
  pub poll_interval_ms: u64,
  /// The config dir came from `options.configDir` rather than the environment.
  pub explicit_config_dir: bool,
  /// The servers its `serverConfigs` name as claude.ai connectors (`claudeai-proxy`): an
  /// account token change is news for them (as for every server named `claude.ai …`).
  pub connectors: Vec<String>,
}

/// One watcher per (config dir, credential store).
type Key = (PathBuf, Store);

struct Subscriber {
  config_dir: PathBuf,
  listener: Arc<dyn Listener>,
  watch: Option<(Key, WatchSpec)>,
}

/// A watcher and its subscribers' combined settings. The watcher is started and stopped
/// under `watcher`'s own lock, never under the registry's.
struct Slot {
  subscribers: usize,
  settings: Arc<Settings>,
  auto_invalidate: Arc<AtomicBool>,
  /// Every subscriber's `connectors`, for the auto-invalidator (names are only ever added).
  connectors: Arc<Mutex<BTreeSet<String>>>,
  watcher: Arc<Mutex<Option<Running>>>,
}

/// A running watcher: its auto-invalidator first, so that dropping the pair closes delivery
/// before anything else.
struct Running {
  _auto_invalidator: AutoInvalidator,
  _watcher: Watcher,
}

/// Starts the pair for `key`, the watcher reporting to the auto-invalidator, which emits to the
/// bus.
fn start(
  config_dir: &Path,
  store: Store,
  auto_invalidate: Arc<AtomicBool>,
  connectors: Arc<Mutex<BTreeSet<String>>>,
  settings: Arc<Settings>,
  sink: BusSink,
  process: Shared,
) -> Result<Running> {
  let (auto_invalidator, inbox) =
    auto_invalidate::start(config_dir, store.clone(), auto_invalidate, connectors, sink, process.clone())?;
  let watcher = watcher::start(config_dir, store, settings, inbox, process)?;
  Ok(Running { _auto_invalidator: auto_invalidator, _watcher: watcher })
}

#[derive(Default)]
struct Registry {
  subscribers: BTreeMap<u64, Subscriber>,
  watchers: HashMap<Key, Slot>,
}

/// The subscribers of one process and the watchers they share. One per process in use:
/// `invalidateNeedsAuth` in any part of a host must reach every subscriber, and two subscribers
/// of one store must share one watcher.
pub struct Bus {
  /// Shared (weakly) with the watchers' sinks, which run on the watchers' threads.
  registry: Arc<Mutex<Registry>>,
  /// The id of the next subscriber (ids are never reused within a bus).
  next_subscriber_id: AtomicU64,
  /// What the watchers this bus starts share with the rest of the process.
  process: Shared,
}

impl Bus {
  pub(crate) fn new(process: Shared) -> Bus {
    Bus { registry: Arc::default(), next_subscriber_id: AtomicU64::new(1), process }
  }

  fn locked(&self) -> MutexGuard<'_, Registry> {
    lock(&self.registry)
  }
}

impl Drop for Bus {
  /// Stops the watchers still running, here and outside the registry lock: none may be left to
  /// drop the registry (and so join itself) on its own thread.
  fn drop(&mut self) {
    let slots: Vec<Slot> = self.locked().watchers.drain().map(|(_, slot)| slot).collect();
    for slot in slots {
      drop(lock(&slot.watcher).take());
    }
  }
}

/// Adds a subscriber; with `watch`, makes sure the watcher for its (config dir, store) runs
/// before returning, so that a change made after this returns is reported. (The binding takes
/// an id first, `subscribe_as`: its listener must know it.)
#[cfg(test)]
pub(crate) fn subscribe(
  bus: &Bus,
  config_dir: &Path,
  listener: Arc<dyn Listener>,
  watch: Option<WatchSpec>,
) -> Result<u64> {
  let id = next_subscriber_id(bus);
  subscribe_as(bus, id, config_dir, listener, watch).map(|()| id)
}

/// A subscriber id never used before on `bus`, for `subscribe_as`.
pub fn next_subscriber_id(bus: &Bus) -> u64 {
  bus.next_subscriber_id.fetch_add(1, Ordering::Relaxed)
}

/// `subscribe`, under an id from `next_subscriber_id` (for a listener that must know its id).
pub fn subscribe_as(
  bus: &Bus,
  id: u64,
  config_dir: &Path,
  listener: Arc<dyn Listener>,
  watch: Option<WatchSpec>,
) -> Result<()> {
  let Some(spec) = watch else {
    bus.locked().subscribers.insert(id, Subscriber { config_dir: config_dir.to_path_buf(), listener, watch: None });
    return Ok(());
  };
  let store = Store::locate(config_dir, spec.explicit_config_dir, spec.credentials);
  let key: Key = (config_dir.to_path_buf(), store.clone());
  let (watcher, settings, auto_invalidate, connectors) = {
    let mut reg = bus.locked();
    // Registered first, so that a warning the watcher gives while starting reaches it.
    reg.subscribers.insert(
      id,
      Subscriber { config_dir: config_dir.to_path_buf(), listener, watch: Some((key.clone(), spec.clone())) },
    );
    let slot = reg.watchers.entry(key.clone()).or_insert_with(|| Slot {
      subscribers: 0,
      settings: Arc::new(Settings::new(Duration::from_millis(spec.poll_interval_ms))),
      auto_invalidate: Arc::new(AtomicBool::new(spec.auto_invalidate)),
      connectors: Arc::default(),
      watcher: Arc::default(),
    });
    slot.subscribers += 1;
    lock(&slot.connectors).extend(spec.connectors.iter().cloned());
    (
      Arc::clone(&slot.watcher),
      Arc::clone(&slot.settings),
      Arc::clone(&slot.auto_invalidate),
      Arc::clone(&slot.connectors),
    )
  };
  apply_settings(bus, &key);
  let mut running = lock(&watcher);
  if running.is_none() {
    let sink = BusSink { key: key.clone(), registry: Arc::downgrade(&bus.registry) };
    match start(config_dir, store, auto_invalidate, connectors, settings, sink, bus.process.clone()) {
      Ok(w) => *running = Some(w),
      Err(e) => {
        drop(running);
        unsubscribe(bus, id);
        return Err(e);
      }
    }
  }
  Ok(())
}

/// Removes a subscriber (idempotent). The last subscriber of a watcher stops it.
pub fn unsubscribe(bus: &Bus, id: u64) -> bool {
  let (stopped, key) = {
    let mut reg = bus.locked();
    let Some(sub) = reg.subscribers.remove(&id) else {
      return false;
    };
    let Some((key, _)) = sub.watch else { return true };
    let mut stopped = None;
    if let Some(slot) = reg.watchers.get_mut(&key) {
      slot.subscribers -= 1;
      if slot.subscribers == 0 {
        stopped = reg.watchers.remove(&key).map(|s| s.watcher);
      }
    }
    (stopped, key)
  };
  match stopped {
    // Outside the registry lock: the auto-invalidator may be emitting right now, and closing
    // its delivery waits for that emit (never for the threads).
    Some(watcher) => drop(lock(&watcher).take()),
    None => apply_settings(bus, &key),
  }
  true
}

/// A watcher does what any of its live subscribers asked for: auto-invalidation when one of
/// them wants it (the removal is a change to a shared file, which a subscriber that did not ask
/// for it cannot undo for the others anyway), the shortest poll interval.
fn apply_settings(bus: &Bus, key: &Key) {
  let reg = bus.locked();
  let Some(slot) = reg.watchers.get(key) else { return };
  let specs = || reg.subscribers.values().filter_map(|s| s.watch.as_ref()).filter(|(k, _)| k == key).map(|(_, s)| s);
  slot.auto_invalidate.store(specs().any(|s| s.auto_invalidate), Ordering::SeqCst);
  if let Some(ms) = specs().map(|s| s.poll_interval_ms).min() {
    slot.settings.set_poll_interval(Duration::from_millis(ms));
  }
}

/// Where a watcher's events go: the subscribers of that watcher.
struct BusSink {
  key: Key,
  registry: Weak<Mutex<Registry>>,
}

impl BusSink {
  fn listeners(&self) -> Vec<(u64, Arc<dyn Listener>)> {
    let Some(registry) = self.registry.upgrade() else { return Vec::new() };
    listeners(&registry, |s| s.watch.as_ref().is_some_and(|(k, _)| *k == self.key))
  }
}

impl EventSink for BusSink {
  fn event(&self, event: AuthEvent) {
    // A listener that can no longer receive is left to its own teardown: unsubscribing here
    // would close the very delivery this emit holds open.
    for (_, listener) in self.listeners() {
      listener.deliver(&event);
    }
  }

  fn warn(&self, message: String) {
    for (_, listener) in self.listeners() {
      listener.warn(&message);
    }
  }
}

fn listeners(registry: &Mutex<Registry>, pick: impl Fn(&Subscriber) -> bool) -> Vec<(u64, Arc<dyn Listener>)> {
  lock(registry).subscribers.iter().filter(|(_, s)| pick(s)).map(|(id, s)| (*id, Arc::clone(&s.listener))).collect()
}

/// "Auth changed, retry connections", said in this process (by `invalidateNeedsAuth` or
/// `purgeStale`) about `servers` of `config_dir` (empty = all): to every subscriber of the dir,
/// watching or not, in subscription order, outside the registry lock.
pub fn emit_invalidated(bus: &Bus, config_dir: PathBuf, servers: Vec<String>) {
  let event = AuthEvent { reason: Reason::Invalidated, servers, source: Source::ThisProcess, at: now_ms(), config_dir };
  for (id, listener) in listeners(&bus.registry, |s| s.config_dir == event.config_dir) {
    if !listener.deliver(&event) {
      unsubscribe(bus, id);
    }
  }
}

/// Running watchers of a config dir, for leak tests.
#[cfg(test)]
fn watchers_of(bus: &Bus, dir: &Path) -> usize {
  bus.locked().watchers.keys().filter(|(d, _)| d == dir).count()
}

#[cfg(test)]
pub(crate) mod tests {
  use super::*;

  #[derive(Default)]
  pub(crate) struct Collect(pub(crate) Mutex<Vec<AuthEvent>>);
  impl Listener for Collect {
    fn deliver(&self, event: &AuthEvent) -> bool {
      self.0.lock().expect("lock").push(event.clone());
      true
    }
    fn warn(&self, _message: &str) {}
  }
  impl Collect {
    pub(crate) fn servers(&self) -> Vec<Vec<String>> {
      self.0.lock().expect("lock").iter().map(|e| e.servers.clone()).collect()
    }
    pub(crate) fn wait_for(&self, n: usize) {
      let end = std::time::Instant::now() + Duration::from_secs(5);
      while self.0.lock().expect("lock").len() < n && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
      }
    }
  }

  pub(crate) fn spec(credentials: CredentialSource, auto_invalidate: bool) -> WatchSpec {
    WatchSpec {
      credentials,
      auto_invalidate,
      poll_interval_ms: 1000,
      explicit_config_dir: true,
      connectors: Vec::new(),
    }
  }

  #[test]
  fn invalidations_reach_only_subscribers_of_that_dir_until_unsubscribed() {
    let bus = Bus::new(Shared::default());
    let a = Arc::new(Collect::default());
    let b = Arc::new(Collect::default());
    let ida = subscribe(&bus, Path::new("/config/a"), a.clone(), None).expect("sub");
    let idb = subscribe(&bus, Path::new("/config/b"), b.clone(), None).expect("sub");
    emit_invalidated(&bus, PathBuf::from("/config/a"), vec![]);
    assert_eq!(a.0.lock().expect("lock").len(), 1);
    assert_eq!(b.0.lock().expect("lock").len(), 0);
    assert!(unsubscribe(&bus, ida));
    assert!(!unsubscribe(&bus, ida), "idempotent");
    emit_invalidated(&bus, PathBuf::from("/config/a"), vec![]);
    assert_eq!(a.0.lock().expect("lock").len(), 1);
    assert!(unsubscribe(&bus, idb));
  }

  #[test]
  fn each_store_gets_its_own_watcher_whatever_the_order() {
    let bus = Bus::new(Shared::default());
    let dir = tempfile::tempdir().expect("tempdir");
    let none = Arc::new(Collect::default());
    let file = Arc::new(Collect::default());
    let quiet = Arc::new(Collect::default());
    let n = subscribe(&bus, dir.path(), none.clone(), Some(spec(CredentialSource::None, true))).expect("sub");
    let f = subscribe(&bus, dir.path(), file.clone(), Some(spec(CredentialSource::File, true))).expect("sub");
    let q = subscribe(&bus, dir.path(), quiet.clone(), None).expect("sub");
    let creds = r#"{"mcpOAuth":{"s|0":{"serverName":"s","accessToken":"T","expiresAt":1}}}"#;
    std::fs::write(dir.path().join(".credentials.json"), creds).expect("write");
    file.wait_for(1);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(file.servers(), vec![vec!["s".to_string()]], "the file store hears the sign-in");
    assert!(none.servers().is_empty(), "credentials: 'none' hears no sign-in");
    assert!(quiet.servers().is_empty(), "watch: false hears nothing from other processes");
    // The first subscriber leaves; the other keeps its semantics.
    assert!(unsubscribe(&bus, n));
    std::fs::write(dir.path().join(".credentials.json"), creds.replace("\"T\"", "\"U\"")).expect("write");
    file.wait_for(2);
    assert_eq!(file.servers().len(), 2);
    assert!(unsubscribe(&bus, f) && unsubscribe(&bus, q));
  }

  #[test]
  fn the_last_subscriber_of_a_watcher_stops_it() {
    let bus = Bus::new(Shared::default());
    let dir = tempfile::tempdir().expect("tempdir");
    let sub = |source, auto| subscribe(&bus, dir.path(), Arc::new(Collect::default()), Some(spec(source, auto)));
    let a = sub(CredentialSource::None, false).expect("a");
    let b = sub(CredentialSource::None, true).expect("b");
    assert_eq!(watchers_of(&bus, dir.path()), 1, "one watcher for one (dir, store)");
    let c = sub(CredentialSource::File, true).expect("c");
    assert_eq!(watchers_of(&bus, dir.path()), 2, "another store, another watcher");
    assert!(unsubscribe(&bus, a) && unsubscribe(&bus, c));
    assert_eq!(watchers_of(&bus, dir.path()), 1);
    assert!(unsubscribe(&bus, b));
    assert_eq!(watchers_of(&bus, dir.path()), 0);
  }
}
