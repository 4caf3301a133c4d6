//! `onAuthChanged` and the `Subscription` it returns.
//!
//! Every subscription of one JS environment (the main thread, or one worker) shares that
//! environment's hub (`env_state::Hub`): one weak threadsafe function (it never keeps the
//! process alive) whose JavaScript side is one small dispatcher made here, and the callbacks by
//! subscriber id. The dispatcher drops events of a subscription closed since they were queued,
//! calls the user's callback, and turns a throw into `process.emitWarning`, so one bad listener
//! cannot stop the others. Events are always queued, so a callback never runs synchronously
//! inside the call that caused it. Sharing keeps a subscription to a few hundred bytes: a
//! threadsafe function (with its libuv handle) and a JS function per subscription cost more than
//! the callback itself.

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::auth_event::{AuthChangedEvent, JsListener, Message, Tsfn};
use crate::env_state::{EnvState, Hub};
use crate::read_threw::ReadResultExt;
use crate::runtime::runtime;
use crate::{core_error, decode_arg, emit_warning, invalid_argument, Code, JsResult, NapiResultExt, NeedsAuthOptions};

/// `EventTarget.prototype.addEventListener(type, listener, options)`.
type AddEventListener<'a> = Function<'a, FnArgs<(&'a str, Function<'a, (), ()>, Object<'a>)>, Unknown<'a>>;

/// The user's callback: any function; its return value is ignored.
type Callback<'a> = Function<'a, AuthChangedEvent, ()>;

/// An `onAuthChanged` callback, held by a reference from the moment it is read (the
/// subscription's dispatcher keeps it).
#[napi(transparent, object_from_js = false, object_to_js = false)]
pub struct AuthChangedCallback(FunctionRef<AuthChangedEvent, ()>);

impl FromNapiValue for AuthChangedCallback {
  unsafe fn from_napi_value(env: napi::sys::napi_env, value: napi::sys::napi_value) -> napi::Result<Self> {
    // SAFETY: napi passes a live value of this call's scope.
    unsafe {
      decode_arg(env, value, |_, v| match v.get_type().js()? {
        // SAFETY: checked to be a function.
        ValueType::Function => Ok(AuthChangedCallback(v.cast::<Callback>().js()?.create_ref().js()?)),
        other => Err(invalid_argument(format!("onAuthChanged needs a callback function, not {other:?}"))),
      })
    }
  }
}
use mcp_needs_auth_core::event_bus::{self, WatchSpec};

/// The hub of `env`, made (with its threadsafe function) if there is none.
fn hub_tsfn(env: &Env, state: &EnvState) -> JsResult<Arc<Tsfn>> {
  if let Some(hub) = state.hub.borrow().as_ref() {
    return Ok(Arc::clone(&hub.tsfn));
  }
  let tsfn = Arc::new(dispatcher(env)?);
  *state.hub.borrow_mut() = Some(Hub { tsfn: Arc::clone(&tsfn), callbacks: HashMap::new() });
  Ok(tsfn)
}

/// A live `onAuthChanged` subscription. Close it with `close()`, `using`, or `options.signal`.
#[napi]
pub struct Subscription {
  handle: Rc<Handle>,
}

/// What closing needs, shared by the subscription and its signal's abort listener (both live
/// on the JS thread of the env that subscribed).
struct Handle {
  id: u64,
  closed: Cell<bool>,
  /// The state of the env that subscribed: weak, so that only napi's finalizer owns it (and the
  /// hub closes what is left at teardown, whatever JS objects outlive it).
  state: Weak<EnvState>,
}

impl Handle {
  fn close(&self) {
    if !self.closed.replace(true) {
      // Taken out before it is dropped: dropping a reference must not happen inside the borrow.
      let state = self.state.upgrade();
      let callback = state.as_ref().and_then(|s| s.hub.borrow_mut().as_mut()?.callbacks.remove(&self.id));
      drop(callback);
      event_bus::unsubscribe(runtime().bus(), self.id);
    }
  }
}

#[napi]
impl Subscription {
  /// Stops delivery at once (events already queued are dropped) and releases the watcher when
  /// this was its last subscription. Idempotent. Also available as `[Symbol.dispose]()`.
  #[napi]
  pub fn close(&self) {
    self.handle.close();
  }

  /// True once `close()` ran (or the signal aborted).
  #[napi(getter)]
  pub fn closed(&self) -> bool {
    self.handle.closed.get()
  }
}

/// Calls `callback` whenever auth may have changed for servers of this config dir: on
/// `invalidateNeedsAuth`/`purgeStale` in this process, and (with `watch`, the default) when any
/// process changes the credentials store or the needs-auth cache. Always called on the JS
/// thread, never synchronously. A callback that throws is reported with
/// `process.emitWarning` and does not stop the others. The subscription never keeps the
/// process alive, and ends with the JS environment that made it (a worker thread's exit).
#[napi]
pub fn on_auth_changed(
  env: Env,
  callback: AuthChangedCallback,
  // Read by hand: napi's objects cannot say "NeedsAuthOptions plus a signal".
  #[napi(ts_arg_type = "NeedsAuthOptions & { signal?: AbortSignal }")] options: Option<Unknown>,
) -> Result<Subscription, Code> {
  // Every argument is checked before anything is registered: a bad one leaves nothing behind.
  let AuthChangedCallback(callback) = callback;
  let signal = signal_of(&env, options)?;
  let opts = NeedsAuthOptions::from_arg(&env, options)?;
  let config_dir = opts.config_dir()?;
  let watch = if opts.watch.unwrap_or(true) {
    Some(WatchSpec {
      credentials: opts.credential_source(),
      auto_invalidate: opts.auto_invalidate.unwrap_or(true),
      poll_interval_ms: opts.poll_interval_ms.map_or(2000, |ms| ms.max(50.0) as u64),
      explicit_config_dir: opts.explicit_config_dir()?,
      connectors: opts.connector_names()?,
    })
  } else {
    None
  };
  if let Some((_, true)) = &signal {
    return Ok(Subscription { handle: Rc::new(Handle { id: 0, closed: Cell::new(true), state: Weak::new() }) });
  }

  let state = EnvState::of(&env)?;
  let tsfn = hub_tsfn(&env, &state)?;
  let bus = runtime().bus();
  let id = event_bus::next_subscriber_id(bus);
  // In the hub before the bus can deliver anything for it.
  if let Some(hub) = state.hub.borrow_mut().as_mut() {
    hub.callbacks.insert(id, callback);
  }
  let handle = Rc::new(Handle { id, closed: Cell::new(false), state: Rc::downgrade(&state) });
  if let Err(e) = event_bus::subscribe_as(bus, id, &config_dir, Arc::new(JsListener { id, tsfn }), watch) {
    handle.close();
    return Err(core_error(e));
  }
  if let Some((signal, _)) = signal {
    // A failure here is inside the engine only; it undoes the registration.
    on_abort(&env, signal, Rc::clone(&handle)).inspect_err(|_| handle.close())?;
  }
  Ok(Subscription { handle })
}

/// The hub's threadsafe function: one JS-side dispatcher that finds the subscriber's callback
/// (none: closed since the event was queued, so it is dropped), calls it, and turns a throw into
/// a warning.
fn dispatcher(env: &Env) -> JsResult<Tsfn> {
  let dispatcher = env
    .create_function_from_closure::<FnArgs<(f64, Unknown)>, (), _>("onAuthChangedDispatch", move |ctx| {
      let id = ctx.get::<f64>(0)? as u64;
      let arg: Unknown = ctx.get(1)?;
      // SAFETY: the argument stays alive for this whole call, which is all the callee needs.
      let arg: Unknown<'static> = unsafe { Unknown::from_raw_unchecked(ctx.env.raw(), arg.raw()) };
      let env: &Env = ctx.env;
      // The callback's handle is taken out of the hub before it runs: it may subscribe or close.
      let state = EnvState::of(env).map_err(|e| napi::Error::new(Status::GenericFailure, e.reason))?;
      let callback =
        state.hub.borrow().as_ref().and_then(|h| h.callbacks.get(&id)).map(|cb| cb.borrow_back(env).map(|f| f.raw()));
      let Some(callback) = callback.transpose()? else { return Ok(()) };
      if arg.get_type()? == ValueType::String {
        // A warning from the watcher, not an event.
        // SAFETY: `arg` is a live string of this call's scope.
        let message = unsafe { String::from_napi_value(env.raw(), arg.raw()) }?;
        emit_warning(env, &message, "MCP_NEEDS_AUTH_WATCH");
        return Ok(());
      }
      if let Some(thrown) = call_catching(env, callback, arg) {
        emit_warning(env, &format!("an onAuthChanged callback threw: {thrown}"), "MCP_NEEDS_AUTH_LISTENER_THREW");
      }
      Ok(())
    })
    .js()?;
  dispatcher
    .build_threadsafe_function::<(u64, Message)>()
    .callee_handled::<false>()
    .weak::<true>()
    .build_callback(|ctx| {
      let (id, message) = ctx.value;
      let payload = match message {
        Message::Event(event) => Either::A(AuthChangedEvent::from(event)),
        Message::Warning(message) => Either::B(message),
      };
      Ok(FnArgs::from((id as f64, payload)))
    })
    .js()
}

/// `signal.addEventListener('abort', close, { once: true })`.
fn on_abort(env: &Env, signal: Object, handle: Rc<Handle>) -> JsResult<()> {
  let on_abort = env
    .create_function_from_closure::<(), (), _>("onAbort", move |_| {
      handle.close();
      Ok(())
    })
    .js()?;
  let add: AddEventListener = signal.get_named_property("addEventListener").js()?;
  let mut once = Object::new(env).js()?;
  once.set_named_property("once", true).js()?;
  add.apply(signal, FnArgs::from(("abort", on_abort, once))).js()?;
  Ok(())
}

/// Calls `callback(arg)`; if it throws, clears the exception and returns `String(thrown)`.
/// (napi-rs's own capture cannot hold a thrown primitive below Node-API 10.)
fn call_catching(env: &Env, callback: napi::sys::napi_value, arg: Unknown<'static>) -> Option<String> {
  let mut undefined = std::ptr::null_mut();
  let mut result = std::ptr::null_mut();
  let argv = [arg.raw()];
  // SAFETY: all handles belong to this env and this call's scope.
  let status = unsafe {
    napi::sys::napi_get_undefined(env.raw(), &mut undefined);
    napi::sys::napi_call_function(env.raw(), undefined, callback, 1, argv.as_ptr(), &mut result)
  };
  if status != napi::sys::Status::napi_pending_exception {
    return None;
  }
  let mut thrown = std::ptr::null_mut();
  // SAFETY: an exception is pending on this env; this takes and clears it.
  unsafe { napi::sys::napi_get_and_clear_last_exception(env.raw(), &mut thrown) };
  let describe = || -> napi::Result<String> {
    let string: Function<Unknown, String> = env.get_global()?.get_named_property_unchecked("String")?;
    // SAFETY: `thrown` is a live value of this scope.
    string.call(unsafe { Unknown::from_raw_unchecked(env.raw(), thrown) })
  };
  // `String(x)` itself throws for some values (a throwing toString); say so rather than fail.
  Some(describe().unwrap_or_else(|_| "a value that cannot be converted to a string".to_owned()))
}

/// `options.signal`, checked to be an AbortSignal (an object with a boolean `aborted` and an
/// `addEventListener` method), with whether it has already aborted.
fn signal_of<'a>(env: &Env, options: Option<Unknown<'a>>) -> JsResult<Option<(Object<'a>, bool)>> {
  let Some(options) = options else { return Ok(None) };
  if options.get_type().js()? != ValueType::Object {
    return Ok(None);
  }
  // SAFETY: checked to be an object just above.
  let options: Object = unsafe { options.cast() }.js()?;
  let signal: Option<Unknown> = options.get("signal").read(env, "options.signal")?;
  let not_a_signal = |what: String| invalid_argument(format!("options.signal must be an AbortSignal, not {what}"));
  let signal: Object = match signal {
    None => return Ok(None),
    Some(s) => match s.get_type().js()? {
      ValueType::Undefined | ValueType::Null => return Ok(None),
      // SAFETY: checked to be an object.
      ValueType::Object => unsafe { s.cast() }.js()?,
      other => return Err(not_a_signal(format!("{other:?}"))),
    },
  };
  let aborted: Unknown = signal.get_named_property("aborted").read(env, "options.signal.aborted")?;
  let add: Unknown = signal.get_named_property("addEventListener").read(env, "options.signal.addEventListener")?;
  if aborted.get_type().js()? != ValueType::Boolean || add.get_type().js()? != ValueType::Function {
    return Err(not_a_signal("an object without a boolean `aborted` and an `addEventListener` method".to_owned()));
  }
  Ok(Some((signal, signal.get_named_property::<bool>("aborted").read(env, "options.signal.aborted")?)))
}

/// Adds `Subscription.prototype[Symbol.dispose]` (an alias of `close`), so `using sub =
/// onAuthChanged(...)` works where the runtime knows `Symbol.dispose`.
pub(super) fn add_dispose(exports: &Object, env: &Env) -> napi::Result<()> {
  // `Symbol` and the class are functions; read them as plain objects.
  let symbol: Object = env.get_global()?.get_named_property_unchecked("Symbol")?;
  let dispose: Unknown = symbol.get_named_property("dispose")?;
  if dispose.get_type()? != ValueType::Symbol {
    return Ok(());
  }
  let class: Object = exports.get_named_property_unchecked("Subscription")?;
  let mut prototype: Object = class.get_named_property("prototype")?;
  let close: Unknown = prototype.get_named_property("close")?;
  prototype.set_property(dispose, close)?;
  Ok(())
}
