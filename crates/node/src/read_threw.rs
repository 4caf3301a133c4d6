//! One rule for a user value that throws while it is read (a getter, a proxy trap): the call
//! throws `ERR_INVALID_ARGUMENT` naming what was being read ("options.configDir: reading it
//! threw"), with the thrown value, untouched, as its `cause`.
//!
//! The error is built and thrown at once, while the thrown value is at hand; what travels back
//! through Rust is a marker (`Code::Napi(Status::PendingException)`). napi-rs leaves a pending
//! exception as it is when it would throw an error of that status (`decode_arg` passes the
//! status on for arguments), and throws the pending one instead of any other error, so ours is
//! what JavaScript sees, whichever way the call returns.

use napi::bindgen_prelude::*;
use napi::sys;
use std::fmt::Display;

use crate::{invalid_argument, Code, JsResult};

/// The marker error of an exception already thrown (ours).
fn pending(what: impl Display) -> napi::Error<Code> {
  napi::Error::new(Code::Napi(Status::PendingException), format!("{what}: reading it threw"))
}

/// Whether `e` is the marker of an exception already thrown.
pub(crate) fn is_pending(e: &napi::Error<Code>) -> bool {
  matches!(e.status, Code::Napi(Status::PendingException))
}

/// Throws our error for `thrown`, the value reading `what` threw (already cleared from the env).
pub(crate) fn threw(env: sys::napi_env, thrown: sys::napi_value, what: impl Display) -> napi::Error<Code> {
  let marker = pending(what);
  // SAFETY: `env` is live on this thread; `into_value` builds a plain `Error` with `code` and
  // `message` (null when the env is tearing down, when nobody is left to throw to).
  let error = unsafe { JsError::from(invalid_argument(marker.reason.clone())).into_value(env) };
  if error.is_null() {
    return marker;
  }
  let cause = sys::napi_property_descriptor {
    utf8name: c"cause".as_ptr(),
    name: std::ptr::null_mut(),
    method: None,
    getter: None,
    setter: None,
    value: thrown,
    // As `new Error(message, { cause })` defines it: writable, configurable, not enumerable.
    attributes: sys::PropertyAttributes::writable | sys::PropertyAttributes::configurable,
    data: std::ptr::null_mut(),
  };
  // SAFETY: `error` and `thrown` are live values of this call's scope; one descriptor is passed.
  unsafe {
    sys::napi_define_properties(env, error, 1, &cause);
    sys::napi_throw(env, error);
  }
  marker
}

/// After a napi call reading a user value failed: when that read threw (an exception is
/// pending), our error for it; otherwise `e` with our code, as `.js()` gives it.
pub(crate) fn read_failed(env: sys::napi_env, e: napi::Error, what: impl Display) -> napi::Error<Code> {
  let mut thrown = std::ptr::null_mut();
  let mut is_pending = false;
  // SAFETY: plain napi calls on the live env of this call; the second one takes and clears the
  // pending exception, which is then ours to throw.
  let taken = unsafe {
    sys::napi_is_exception_pending(env, &mut is_pending) == sys::Status::napi_ok
      && is_pending
      && sys::napi_get_and_clear_last_exception(env, &mut thrown) == sys::Status::napi_ok
  };
  if taken {
    threw(env, thrown, what)
  } else {
    napi::Error::new(Code::Napi(e.status), e.reason)
  }
}

/// `.js()` for a napi call that reads the user value `what`: a throw becomes our error for it.
pub(crate) trait ReadResultExt<T> {
  fn read(self, env: &Env, what: impl Display) -> JsResult<T>;
}

impl<T> ReadResultExt<T> for napi::Result<T> {
  fn read(self, env: &Env, what: impl Display) -> JsResult<T> {
    self.map_err(|e| read_failed(env.raw(), e, what))
  }
}
