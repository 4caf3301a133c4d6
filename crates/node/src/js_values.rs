//! Reading JavaScript arguments (every argument type decodes through `decode_arg`, so no napi
//! status name reaches a user as a `code`), and a path as JavaScript gets it.

use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;
use std::mem::MaybeUninit;

use crate::js_error::{core_error, Code, JsResult, NapiResultExt};
use crate::read_threw;
use mcp_needs_auth_core::error::{Error as CoreError, ErrorCode};

/// Decodes a JS value as an argument of type `T`: a failure becomes a JS `Error` that carries
/// our `code` (`Code` maps napi's statuses), held by napi's `Error`, which napi then throws as
/// it is. The one place where our error codes meet napi's argument conversion: every argument
/// type of this addon decodes through here, so no napi status name reaches a user as a `code`.
///
/// # Safety
/// `value` is a live value of `env`'s current scope.
pub(crate) unsafe fn decode_arg<T>(
  env: sys::napi_env,
  value: sys::napi_value,
  decode: impl FnOnce(&Env, Unknown) -> JsResult<T>,
) -> napi::Result<T> {
  // SAFETY: per this function's contract.
  let v = unsafe { Unknown::from_raw_unchecked(env, value) };
  decode(&Env::from_raw(env), v).map_err(|e| {
    let reason = e.reason.clone();
    if read_threw::is_pending(&e) {
      // Our error is already thrown (`read_threw`): napi-rs leaves it as it is.
      return napi::Error::new(Status::PendingException, reason);
    }
    // SAFETY: `env` is live; `into_value` builds a plain `Error` with `code` and `message`.
    let error = unsafe { JsError::from(e).into_value(env) };
    if error.is_null() {
      // The env is tearing down and can build no error: there is nobody to throw to either.
      return napi::Error::new(Status::GenericFailure, reason);
    }
    // SAFETY: `error` was just made in this scope.
    napi::Error::from_unknown_without_coercion(unsafe { Unknown::from_raw_unchecked(env, error) })
  })
}

/// A server name argument: a string (its content is checked by the core).
#[napi(transparent, object_from_js = false, object_to_js = false)]
pub struct ServerName(pub String);

impl FromNapiValue for ServerName {
  unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
    // SAFETY: napi passes a live value of this call's scope.
    unsafe { decode_arg(env, value, |env, v| server_name(env, v).map(ServerName)) }
  }
}

/// A JS string (checked by the caller) read into `buf` with one call, or `None` when it may not
/// have fit (V8 writes whole characters only, so up to 3 bytes short of full is not proof).
/// `buf` need not be initialised: zeroing it would cost more than the read.
pub(crate) fn small_str<'b>(env: &Env, v: Unknown, buf: &'b mut [MaybeUninit<u8>]) -> JsResult<Option<&'b str>> {
  let mut len = 0usize;
  // SAFETY: `v` is a live string of this call's scope; napi writes at most `buf.len()` bytes
  // (the last one a NUL) and sets `len` to the bytes written before it.
  let status =
    unsafe { napi::sys::napi_get_value_string_utf8(env.raw(), v.raw(), buf.as_mut_ptr().cast(), buf.len(), &mut len) };
  if status != napi::sys::Status::napi_ok {
    return Err(napi::Error::new(Code::Napi(Status::from(status)), "cannot read a string argument"));
  }
  if len + 4 >= buf.len() {
    return Ok(None);
  }
  // SAFETY: napi initialised the first `len` bytes.
  let written = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), len) };
  // napi writes valid UTF-8 (lone surrogates become U+FFFD, as with `String`).
  Ok(std::str::from_utf8(written).ok())
}

/// A string argument or option (checked to be a string by the caller), read straight into its
/// allocation without a length probe when it is short, as server names and config dirs are.
pub(crate) fn js_string(env: &Env, v: Unknown) -> JsResult<String> {
  let mut bytes = Vec::<u8>::with_capacity(STRING_GUESS);
  if let Some(len) = small_str(env, v, bytes.spare_capacity_mut())?.map(str::len) {
    // SAFETY: `small_str` initialised these `len` bytes, and checked them to be UTF-8.
    unsafe {
      bytes.set_len(len);
      return Ok(String::from_utf8_unchecked(bytes));
    }
  }
  // SAFETY: `v` is a live string value of this call's scope.
  unsafe { String::from_napi_value(env.raw(), v.raw()) }.js()
}

/// Room for most server names and config dirs; longer strings take napi's length probe.
const STRING_GUESS: usize = 256;

/// A server-name argument: must be a string (its content is checked by the core).
pub fn server_name(env: &Env, arg: Unknown) -> JsResult<String> {
  match arg.get_type().js()? {
    ValueType::String => {
      let name = js_string(env, arg)?;
      refuse_lone_surrogates(env, arg, &name)?;
      Ok(name)
    }
    other => {
      Err(core_error(CoreError::new(ErrorCode::InvalidServerName, format!("server must be a string, not {other:?}"))))
    }
  }
}

/// Refuses a server name that holds a lone surrogate (half of a UTF-16 pair): napi's UTF-8
/// makes every one U+FFFD, so `'a\uD800'` and `'a\uDBFF'` (and `'a\uFFFD'`) would be one key.
/// `name` is `v` as napi converted it: only a name with U+FFFD in it is read again as UTF-16 to
/// tell a real U+FFFD from a lone surrogate, so ordinary names cost one scan of a few bytes.
pub(crate) fn refuse_lone_surrogates(env: &Env, v: Unknown, name: &str) -> JsResult<()> {
  if !name.contains('\u{fffd}') || !has_lone_surrogate(env, v)? {
    return Ok(());
  }
  let shown: String = name.chars().take(64).filter(|c| *c != '\0').collect();
  Err(core_error(CoreError::new(
    ErrorCode::InvalidServerName,
    format!(
      "invalid MCP server name {shown:?} (lone surrogates shown as U+FFFD): it contains a lone surrogate, half of a \
       UTF-16 pair, which no UTF-8 key can hold apart from another name. Use the name the server has in Claude \
       Code's MCP config"
    ),
  )))
}

/// Whether the JS string `v` holds a UTF-16 code unit of a surrogate pair without its partner.
fn has_lone_surrogate(env: &Env, v: Unknown) -> JsResult<bool> {
  let mut len = 0usize;
  // SAFETY: `v` is a live string of this call's scope; a null buffer asks for the length only.
  let status = unsafe { sys::napi_get_value_string_utf16(env.raw(), v.raw(), std::ptr::null_mut(), 0, &mut len) };
  if status != sys::Status::napi_ok {
    return Err(napi::Error::new(Code::Napi(Status::from(status)), "cannot read a string argument"));
  }
  let mut units = vec![0u16; len + 1];
  // SAFETY: as above; napi writes at most `units.len()` units (the last one a NUL).
  let status =
    unsafe { sys::napi_get_value_string_utf16(env.raw(), v.raw(), units.as_mut_ptr(), units.len(), &mut len) };
  if status != sys::Status::napi_ok {
    return Err(napi::Error::new(Code::Napi(Status::from(status)), "cannot read a string argument"));
  }
  Ok(char::decode_utf16(units[..len.min(units.len())].iter().copied()).any(|c| c.is_err()))
}

pub fn path_string(p: &std::path::Path) -> String {
  p.to_string_lossy().into_owned()
}
