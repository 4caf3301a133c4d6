//! `isNeedsAuthCached` as JavaScript calls it: a plain Node-API callback around the same
//! argument decoding and the same body as the `#[napi]` declaration in `cache.rs` (which gives
//! the TypeScript), installed over that export when the module loads.
//!
//! Why: napi-rs wraps every generated function in per-call bookkeeping (borrow scopes for
//! arguments that async work might keep, a deferred release, a barrier) that this function,
//! synchronous and holding nothing past its return, never needs. On an unchanged file that
//! bookkeeping cost about 150 ns of a 0.8 us check, as much as the syscall that proves the file
//! unchanged. Errors are thrown exactly as napi-rs throws them.

use napi::bindgen_prelude::*;
use napi::sys;

use crate::cache::is_cached;
use crate::{refuse_lone_surrogates, small_str, Code, NeedsAuthOptions, ServerName};
use std::mem::MaybeUninit;

/// Replaces `exports.isNeedsAuthCached` with the plain callback.
pub(super) fn install(exports: &mut Object, env: &Env) -> napi::Result<()> {
  const NAME: &str = "isNeedsAuthCached";
  let mut function = std::ptr::null_mut();
  // SAFETY: a plain napi call on the live env; `callback` has the signature napi expects.
  let status = unsafe {
    sys::napi_create_function(
      env.raw(),
      NAME.as_ptr().cast(),
      NAME.len() as isize,
      Some(callback),
      std::ptr::null_mut(),
      &mut function,
    )
  };
  if status != sys::Status::napi_ok {
    // The generated export stays: slower, the same answers.
    return Ok(());
  }
  // SAFETY: `function` was just made in this scope.
  exports.set_named_property(NAME, unsafe { Unknown::from_raw_unchecked(env.raw(), function) })
}

unsafe extern "C" fn callback(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
  // SAFETY: napi calls this with a live env and callback info; every value read below belongs
  // to this call's scope.
  let result = std::panic::catch_unwind(|| unsafe { call(env, info) })
    .unwrap_or_else(|panic| Err(internal(panic_to_error(panic))));
  let mut out = std::ptr::null_mut();
  match result {
    // SAFETY: as above.
    Ok(answer) => unsafe {
      sys::napi_get_boolean(env, answer, &mut out);
    },
    // SAFETY: as above; napi returns `undefined` to a caller that then sees the exception.
    Err(e) => unsafe { e.throw_into(env) },
  }
  out
}

/// The arguments as napi-rs would decode `(server: ServerName, options?: NeedsAuthOptions)`,
/// then the body.
unsafe fn call(env: sys::napi_env, info: sys::napi_callback_info) -> std::result::Result<bool, AnyError> {
  let mut argc = 2usize;
  let mut argv = [std::ptr::null_mut(); 2];
  // SAFETY: room for the two arguments asked for.
  let status = unsafe {
    sys::napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), std::ptr::null_mut(), std::ptr::null_mut())
  };
  if status != sys::Status::napi_ok {
    return Err(internal(napi::Error::new(Status::from(status), "cannot read the arguments")));
  }
  // A short name is read onto the stack (no allocation); anything else (a long name, or not a
  // string, which must fail as ServerName fails) goes through ServerName. Missing arguments are
  // `undefined`, as napi-rs passes them.
  let mut buf = [MaybeUninit::<u8>::uninit(); 256];
  let e = Env::from_raw(env);
  let short = type_of(env, argv[0]) == Some(sys::ValueType::napi_string);
  let on_stack = if short {
    // SAFETY: `argv[0]` is a live value of this call's scope.
    small_str(&e, unsafe { Unknown::from_raw_unchecked(env, argv[0]) }, &mut buf).ok().flatten()
  } else {
    None
  };
  let owned;
  let server: &str = match on_stack {
    Some(s) => {
      // SAFETY: as above.
      refuse_lone_surrogates(&e, unsafe { Unknown::from_raw_unchecked(env, argv[0]) }, s).map_err(AnyError::Ours)?;
      s
    }
    None => {
      // SAFETY: as above.
      let ServerName(s) = unsafe { ServerName::from_napi_value(env, argv[0]) }.map_err(AnyError::Napi)?;
      owned = s;
      &owned
    }
  };
  // `undefined` or `null` (or missing): what napi-rs reads as a missing `Option`.
  let nullish = argv[1].is_null()
    || matches!(type_of(env, argv[1]), Some(sys::ValueType::napi_undefined | sys::ValueType::napi_null));
  let options = if argc < 2 || nullish {
    NeedsAuthOptions::default()
  } else {
    // SAFETY: as above.
    unsafe { NeedsAuthOptions::from_napi_value(env, argv[1]) }.map_err(AnyError::Napi)?
  };
  is_cached(server, options).map_err(AnyError::Ours)
}

/// The value's type, or `None` when napi cannot tell (a null handle, say).
fn type_of(env: sys::napi_env, value: sys::napi_value) -> Option<sys::napi_valuetype> {
  let mut t = 0;
  // SAFETY: a live value of this call's scope (or null, which napi rejects).
  (unsafe { sys::napi_typeof(env, value, &mut t) } == sys::Status::napi_ok).then_some(t)
}

/// A failure of the engine binding itself: thrown with our code for it (`ERR_INTERNAL`), never
/// with a napi status name.
fn internal(e: napi::Error) -> AnyError {
  AnyError::Ours(napi::Error::new(Code::Napi(Status::GenericFailure), e.reason))
}

/// A failure in decoding (napi's error, already carrying our code; or, for an option getter
/// that threw, the marker of our error already thrown by `read_threw`, which `throw_into` leaves
/// pending) or in the body (our code).
enum AnyError {
  Napi(napi::Error),
  Ours(napi::Error<Code>),
}

impl AnyError {
  /// Throws as napi-rs throws a function's error.
  unsafe fn throw_into(self, env: sys::napi_env) {
    // SAFETY: per the caller: a live env, on its thread.
    unsafe {
      match self {
        AnyError::Napi(e) => JsError::from(e).throw_into(env),
        AnyError::Ours(e) => JsError::from(e).throw_into(env),
      }
    }
  }
}
