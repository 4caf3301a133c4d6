//! What the addon keeps per JavaScript environment (the main thread, each worker, each of an
//! embedder's environments on one thread): the options sorter, the array assemblers and the
//! subscription hub, held as the environment's napi instance data. It is made on first use and
//! dropped by napi's finalizer when the environment is torn down, so a worker's exit ends that
//! worker's state and subscriptions only, and an environment made later (even at the same
//! address) starts afresh.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi::sys;

use crate::auth_event::{AuthChangedEvent, Tsfn};
use crate::runtime::runtime;
use crate::{Code, JsResult};
use mcp_needs_auth_core::event_bus;

/// One environment's state, shared as `Rc` (a call holds its own share, so a re-entrant call, a
/// getter calling back into the addon, never invalidates it). Borrows of its cells are never held
/// across a call into JavaScript.
#[derive(Default)]
pub(crate) struct EnvState {
  /// The options sorter (`options_shape`), compiled on first use.
  pub sorter: RefCell<Option<Sorter>>,
  /// The array assemblers (`bulk_values`), compiled on first use.
  pub assemblers: RefCell<Option<Assemblers>>,
  /// The subscription hub (`subscription`), made on the first subscription.
  pub hub: RefCell<Option<Hub>>,
}

/// The options sorter's functions, kept by references, and the config dir it last handed back.
/// The references are never deleted: they end with the environment, as the sorter does.
pub(crate) struct Sorter {
  pub sort: sys::napi_ref,
  pub remember: sys::napi_ref,
  pub take_thrown: sys::napi_ref,
  /// The sorter's `last`, as Rust decoded it. Set only after `remember` ran, and cleared before
  /// it runs, so `Some` always holds the very string the sorter compares with.
  pub last: Option<Arc<str>>,
}

/// The array assemblers' functions, kept by references that end with the environment.
#[derive(Clone, Copy)]
pub(crate) struct Assemblers {
  pub strings: sys::napi_ref,
  pub entries: sys::napi_ref,
}

/// The environment's share of every subscription it made: one weak threadsafe function (it
/// never keeps the process alive) and the callbacks of the open subscriptions, by subscriber id.
pub(crate) struct Hub {
  pub tsfn: Arc<Tsfn>,
  pub callbacks: HashMap<u64, FunctionRef<AuthChangedEvent, ()>>,
}

/// Dropped with its environment: every subscription it left open is closed.
impl Drop for Hub {
  fn drop(&mut self) {
    for id in self.callbacks.keys() {
      event_bus::unsubscribe(runtime().bus(), *id);
    }
  }
}

impl EnvState {
  /// The state of `env`, made (and handed to napi with its finalizer) if there is none.
  ///
  /// Node-API's own calls rather than `Env::get_instance_data`: that one also looks the pointer
  /// up in napi-rs's process-wide registry under a mutex, which cost about 50 ns (5%) of a cached
  /// `isNeedsAuthCached` here. Nothing else can set this slot: instance data is per addon and
  /// per environment, and only this function sets ours.
  pub(crate) fn of(env: &Env) -> JsResult<Rc<EnvState>> {
    let ok = |s: sys::napi_status| s == sys::Status::napi_ok;
    let failed = |what: &str| {
      napi::Error::new(Code::Napi(Status::GenericFailure), format!("cannot {what} this environment's state"))
    };
    let mut data = std::ptr::null_mut();
    // SAFETY: a plain napi call on the live env of this call.
    if !ok(unsafe { sys::napi_get_instance_data(env.raw(), &mut data) }) {
      return Err(failed("read"));
    }
    if !data.is_null() {
      // SAFETY: only the code below sets this env's instance data, always to a leaked
      // `Box<Rc<EnvState>>` that lives until the finalizer; only shared references are made.
      return Ok(Rc::clone(unsafe { &*data.cast::<Rc<EnvState>>() }));
    }
    let state = Rc::new(EnvState::default());
    let data = Box::into_raw(Box::new(Rc::clone(&state)));
    // SAFETY: `finalize` takes back exactly this box, once, at the environment's teardown.
    if !ok(unsafe { sys::napi_set_instance_data(env.raw(), data.cast(), Some(finalize), std::ptr::null_mut()) }) {
      // SAFETY: napi did not take the box: it is still ours alone.
      drop(unsafe { Box::from_raw(data) });
      return Err(failed("keep"));
    }
    Ok(state)
  }
}

/// napi's finalizer of the instance data, at the environment's teardown: drops its share (and so
/// the state, with its hub, which closes the subscriptions left open).
unsafe extern "C" fn finalize(_env: sys::napi_env, data: *mut std::ffi::c_void, _hint: *mut std::ffi::c_void) {
  // SAFETY: `data` is the box `EnvState::of` leaked; napi calls this once.
  let state = unsafe { Box::from_raw(data.cast::<Rc<EnvState>>()) };
  // A panic must not unwind into Node (it would abort the process).
  let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(state)));
}
