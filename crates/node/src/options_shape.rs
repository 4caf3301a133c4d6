//! Sorting an options object with one call into JavaScript, so that the common options cost
//! no napi property lookups (see `shape_of`).

use napi::bindgen_prelude::*;
use napi::sys;
use std::sync::Arc;

use crate::env_state::{EnvState, Sorter};
use crate::js_functions;
use crate::option_fields::Opt;
use crate::read_threw::{read_failed, threw};
use crate::{js_string, Code, JsResult};

/// What an options object holds, as far as decoding cares.
pub(super) enum Shape {
  /// A plain object whose one own enumerable key is `configDir`, holding this string: by far
  /// the most common options, decoded without listing or looking up anything from Rust, and
  /// without even reading the string when it is the one of the previous call.
  ConfigDir(Arc<str>),
  /// A plain object (a literal, or one with a null prototype): its options are its own
  /// enumerable keys, listed here (a property added to Object.prototype is not an option).
  Keys(sys::napi_value),
  /// Anything else (a class instance, `Object.create` of a defaults object): walked like
  /// `for...in`, inherited options included.
  Walk,
}

/// Sorts an options object with one call into a small function compiled once per environment:
/// in JavaScript, `Object.keys` takes V8's enum cache, a property read takes an inline cache
/// and comparing two strings is cheap, while from Rust each key listed, each property read and
/// each string copied out is a separate, slower napi call (napi's own key listing always takes
/// V8's slow, allocating path). The function decides nothing about validity: every value is
/// still checked here.
pub(super) fn shape_of(env: &Env, obj: &Object) -> JsResult<Shape> {
  let raw_env = env.raw();
  let ok = |s: sys::napi_status| s == sys::Status::napi_ok;
  let Some(state) = EnvState::of(env).ok() else { return Ok(Shape::Walk) };
  let Some(sorter) = Functions::of(raw_env, &state) else { return Ok(Shape::Walk) };
  let mut out = std::ptr::null_mut();
  let args = [obj.raw()];
  // SAFETY: `sorter.sort` and `obj` are live values of this call's scope; the result is checked.
  let status = unsafe { sys::napi_call_function(raw_env, sorter.sort, sorter.sort, 1, args.as_ptr(), &mut out) };
  if !ok(status) {
    // A throwing proxy trap (the sorter catches the one getter it runs itself).
    let e = napi::Error::new(Status::from(status), "cannot read the options object".to_owned());
    return Err(read_failed(raw_env, e, "options"));
  }
  let mut t = 0;
  // SAFETY: `out` is the live result of the call above.
  if !ok(unsafe { sys::napi_typeof(raw_env, out, &mut t) }) {
    return Ok(Shape::Walk);
  }
  Ok(match t {
    // `configDir` is the string of the previous call.
    sys::ValueType::napi_boolean => sorter.last.map_or(Shape::Walk, Shape::ConfigDir),
    sys::ValueType::napi_string => {
      // SAFETY: a live string value of this call's scope.
      let dir: Arc<str> = js_string(env, unsafe { Unknown::from_raw_unchecked(raw_env, out) })?.into();
      sorter.remember(raw_env, &state, out, &dir);
      Shape::ConfigDir(dir)
    }
    sys::ValueType::napi_object => Shape::Keys(out),
    // `configDir`'s getter threw: the sorter kept what it threw.
    sys::ValueType::napi_null => return Err(sorter.thrown(raw_env)),
    _ => Shape::Walk,
  })
}

/// The source of the sorter: `[sort, remember, takeThrown]`. `sort(o)` returns `true` when `o`
/// is `{configDir: last}`, the string when it is `{configDir: <another string>}`, the keys of
/// any other plain object, `null` when reading `configDir` threw (what it threw is kept for
/// `takeThrown()`), and `undefined` for anything else. `remember(s)` sets `last`. The one key
/// name it knows comes from `Opt`.
fn source() -> String {
  let key = Opt::config_dir.key();
  format!(
    "(function (keys, getPrototypeOf, objectPrototype) {{ 'use strict'; var last, thrown; return [ \
       function (o) {{ \
         var p = getPrototypeOf(o); if (p !== null && p !== objectPrototype) return undefined; \
         var k = keys(o); \
         if (k.length === 1 && k[0] === '{key}') {{ \
           var v; try {{ v = o.{key}; }} catch (e) {{ thrown = e; return null; }} \
           if (typeof v === 'string') return v === last ? true : v; }} \
         return k; }}, \
       function (s) {{ last = s; }}, \
       function () {{ var e = thrown; thrown = undefined; return e; }} ]; \
     }})(Object.keys, Object.getPrototypeOf, Object.prototype)"
  )
}

/// The sorter's functions as values of this call's scope, with the dir it last handed back.
struct Functions {
  sort: sys::napi_value,
  remember: sys::napi_value,
  /// Resolved only when needed (a getter threw): the common call takes no third lookup.
  take_thrown: sys::napi_ref,
  last: Option<Arc<str>>,
}

impl Functions {
  /// The sorter of `env`, compiled on first use (with the builtins it uses captured then, so
  /// later monkey-patching changes nothing) and kept in the environment's state. `None` if it
  /// cannot be made: then every object is walked.
  fn of(env: sys::napi_env, state: &EnvState) -> Option<Functions> {
    let ok = |s: sys::napi_status| s == sys::Status::napi_ok;
    let kept = state.sorter.borrow().as_ref().map(|s| (s.sort, s.remember, s.take_thrown, s.last.clone()));
    // SAFETY: plain napi calls on this thread's live environment; every status is checked.
    unsafe {
      let (sort_ref, remember_ref, take_ref, last) = match kept {
        Some(k) => k,
        None => {
          let [s, r, t] = js_functions::compile(env, &source())?;
          *state.sorter.borrow_mut() = Some(Sorter { sort: s, remember: r, take_thrown: t, last: None });
          (s, r, t, None)
        }
      };
      let [mut sort, mut remember] = [std::ptr::null_mut(); 2];
      let live = ok(sys::napi_get_reference_value(env, sort_ref, &mut sort))
        && ok(sys::napi_get_reference_value(env, remember_ref, &mut remember))
        && !sort.is_null()
        && !remember.is_null();
      live.then_some(Functions { sort, remember, take_thrown: take_ref, last })
    }
  }

  /// Makes `dir` (decoded from the JS string `value`) the sorter's `last`.
  fn remember(&self, env: sys::napi_env, state: &EnvState, value: sys::napi_value, dir: &Arc<str>) {
    let set_last = |last: Option<Arc<str>>| {
      if let Some(sorter) = state.sorter.borrow_mut().as_mut() {
        sorter.last = last;
      }
    };
    set_last(None);
    let mut out = std::ptr::null_mut();
    let args = [value];
    // SAFETY: live values of this call's scope; `remember` only assigns a variable.
    let status = unsafe { sys::napi_call_function(env, self.remember, self.remember, 1, args.as_ptr(), &mut out) };
    if status == sys::Status::napi_ok {
      set_last(Some(Arc::clone(dir)));
    }
  }

  /// Our error for what `configDir`'s getter threw inside the sorter.
  fn thrown(&self, env: sys::napi_env) -> napi::Error<Code> {
    let what = format!("options.{}", Opt::config_dir.key());
    let [mut take, mut thrown] = [std::ptr::null_mut(); 2];
    // SAFETY: a reference of this env and live values of this call's scope; `takeThrown` only
    // reads and clears a variable.
    let status = unsafe {
      match sys::napi_get_reference_value(env, self.take_thrown, &mut take) {
        sys::Status::napi_ok => sys::napi_call_function(env, take, take, 0, std::ptr::null(), &mut thrown),
        failed => failed,
      }
    };
    if status != sys::Status::napi_ok {
      return read_failed(env, napi::Error::new(Status::from(status), String::new()), what);
    }
    threw(env, thrown, what)
  }
}
