//! The bulk values of `invalidateNeedsAuth` and `purgeStale`: an array of server names read from
//! JavaScript, and the arrays of names and of `{server, reason}` entries given back.
//!
//! Why: napi-rs's generic conversions cost several Node-API calls per item, and for a
//! 27,000-entry cache they cost about as much as the file work. Reading, each name takes one
//! call to fetch it and one to copy it into a reused buffer (no type check, no buffer per name).
//! Building, each napi call to put an element in an array (~1,100 instructions) or a property on
//! an object (~1,400 each) costs far more than JavaScript doing it, so the arrays are assembled
//! by two small functions compiled once per environment, called once per 16,384 values; should
//! one not be there or its call fail, the same values are put in place by napi calls. A removed
//! name is given back as the very string the caller passed; a reason's string is made once.
//! The values JavaScript gets are those napi-rs's conversions made.
//!
//! # Safety contract
//! Every `unsafe fn` here takes the `napi_env` of the Node-API callback running now, on its
//! thread, and only values of that callback's scope. The `napi_value`s they return, or that a
//! `StringArray` holds, are valid only until that callback returns: nothing here keeps one past
//! it (the assemblers are kept by references, in the environment's state).

use napi::bindgen_prelude::*;
use napi::sys;
use std::mem::MaybeUninit;

use crate::env_state::{Assemblers, EnvState};
use crate::js_functions;
use crate::read_threw::read_failed;
use crate::{invalid_argument, refuse_lone_surrogates, server_name, small_str, JsResult, NapiResultExt};

/// The JS array `array` as server names, with the values they were read from (`names[i]` from
/// `values[i]`): each element fetched once, in order, and judged as `server_name` judges one
/// before the next is fetched, so the first element that fails (its getter throws, or it is no
/// name) ends the read, and a sparse array's first hole ends it at once, however long the
/// array says it is. A string that fits a reused buffer takes one Node-API call to read;
/// anything else (not a string, a long name) takes `server_name`'s way.
///
/// # Safety
/// Per the module's contract; `array` is an array (`napi_is_array`).
pub(crate) unsafe fn server_list(
  env: sys::napi_env,
  array: sys::napi_value,
) -> JsResult<(Vec<String>, Vec<sys::napi_value>)> {
  let mut len = 0u32;
  // SAFETY: per this function's contract.
  let status = unsafe { sys::napi_get_array_length(env, array, &mut len) };
  if status != sys::Status::napi_ok {
    return Err(napi::Error::new(Status::from(status), "Failed to get Array length")).js();
  }
  if len as usize > MAX_NAMES {
    return Err(invalid_argument(format!(
      "server is an array of {len} names, more than the {MAX_NAMES} a call takes (a needs-auth cache of 1 MiB holds \
       fewer entries than that): pass fewer names, or omit server to remove every entry"
    )));
  }
  let e = Env::from_raw(env);
  let mut buf = [MaybeUninit::<u8>::uninit(); NAME_BUF];
  // A length is only a claim (`[].length = 2 ** 32 - 1`): room grows with the names read.
  let room = (len as usize).min(PREALLOCATED);
  let (mut names, mut values) = (Vec::with_capacity(room), Vec::with_capacity(room));
  for i in 0..len {
    let mut value = std::ptr::null_mut();
    // SAFETY: as above.
    let status = unsafe { sys::napi_get_element(env, array, i, &mut value) };
    if status != sys::Status::napi_ok {
      // A getter or a proxy trap that threw: `read_threw`'s rule (its value as the `cause`).
      let e = napi::Error::new(Status::from(status), format!("Failed to get element with index `{i}`"));
      return Err(read_failed(env, e, format_args!("server[{i}]")));
    }
    // SAFETY: napi just gave `value`, of this callback's scope.
    let v = unsafe { Unknown::from_raw_unchecked(env, value) };
    let name = match small_str(&e, v, &mut buf) {
      Ok(Some(short)) => {
        refuse_lone_surrogates(&e, v, short)?;
        short.to_owned()
      }
      Ok(None) => {
        // SAFETY: `value` is a string (napi just read it) of this callback's scope.
        let long = unsafe { String::from_napi_value(env, value) }.js()?;
        refuse_lone_surrogates(&e, v, &long)?;
        long
      }
      // Not a string (napi says `napi_string_expected`): `server_name` says what it is.
      Err(_) => server_name(&e, v)?,
    };
    names.push(name);
    values.push(value);
  }
  Ok((names, values))
}

/// The longest list of names a call takes: a cache file (at most 1 MiB, each entry at least
/// `"x":0` and a comma) holds fewer entries, and a longer claim, read element by element (a
/// prototype's getter answering every hole), would hold the call for as long as it likes.
const MAX_NAMES: usize = 1 << 20;

/// The most names room is made for before any is read.
const PREALLOCATED: usize = 1 << 16;

/// Room for most server names (a longer one is read whole another way).
const NAME_BUF: usize = 256;

/// A JS string: one the caller passed, or one to make.
pub(crate) enum JsString {
  Given(sys::napi_value),
  New(String),
}

/// An array of strings, returned to JavaScript as `string[]`.
pub struct StringArray(pub(crate) Vec<JsString>);

impl StringArray {
  /// The names `removed`, each given back as the string of `values` it was read from
  /// (`names[i]` was read from `values[i]`), found by one walk along `names`: `removed` lists
  /// names of `names` in its order, as `invalidateNeedsAuth` does. Should a name not be found
  /// further on, it and those after it are made anew (the walk stays one pass).
  pub(crate) fn reusing(removed: Vec<String>, names: &[String], values: &[sys::napi_value]) -> Self {
    let mut next = Some(0);
    StringArray(
      removed
        .into_iter()
        .map(|name| {
          let found = next.and_then(|from| Some(from + names.get(from..)?.iter().position(|n| *n == name)?));
          next = found.map(|at| at + 1);
          // A name with no lone surrogate is one JS string: the one read is the one removed.
          match found.and_then(|at| values.get(at)) {
            Some(v) => JsString::Given(*v),
            None => JsString::New(name),
          }
        })
        .collect(),
    )
  }
}

impl From<Vec<String>> for StringArray {
  fn from(names: Vec<String>) -> Self {
    StringArray(names.into_iter().map(JsString::New).collect())
  }
}

impl TypeName for StringArray {
  fn type_name() -> &'static str {
    "Array<string>"
  }

  fn value_type() -> ValueType {
    ValueType::Object
  }
}

impl ToNapiValue for StringArray {
  unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
    // SAFETY: napi-rs converts a return value inside the callback that made it.
    unsafe {
      let values = val
        .0
        .into_iter()
        .map(|s| match s {
          JsString::Given(v) => Ok(v),
          JsString::New(s) => string(env, &s),
        })
        .collect::<napi::Result<Vec<_>>>()?;
      if let Some(array) = assemble(env, Assembler::Strings, &values) {
        return Ok(array);
      }
      array(env, values.len(), values.iter().map(|v| Ok(*v)))
    }
  }
}

/// The keys of a `purgeStale` entry, in order: `PurgedEntry`'s fields as `#[napi(object)]`
/// names them.
const ENTRY_KEYS: [&str; 2] = ["server", "reason"];

/// An array of `{server, reason}` objects from `flat`, `[server0, reason0, server1, …]`: plain
/// objects whose keys are own data properties (writable, enumerable, configurable) in that
/// order, as napi-rs's `#[napi(object)]` builds them.
///
/// # Safety
/// Per the module's contract.
pub(crate) unsafe fn entries(env: sys::napi_env, flat: &[sys::napi_value]) -> napi::Result<sys::napi_value> {
  // SAFETY: per this function's contract.
  unsafe {
    if let Some(array) = assemble(env, Assembler::Entries, flat) {
      return Ok(array);
    }
    let mut keys = [std::ptr::null_mut(); 2];
    for (slot, key) in keys.iter_mut().zip(ENTRY_KEYS) {
      check(sys::napi_create_string_utf8(env, key.as_ptr().cast(), key.len() as isize, slot), || {
        "Failed to create a property key".to_owned()
      })?;
    }
    array(
      env,
      flat.len() / 2,
      flat.chunks_exact(2).map(|pair| {
        let mut obj = std::ptr::null_mut();
        check(sys::napi_create_object(env, &mut obj), || "Failed to create object".to_owned())?;
        let props: [sys::napi_property_descriptor; 2] = std::array::from_fn(|i| sys::napi_property_descriptor {
          utf8name: std::ptr::null(),
          name: keys[i],
          method: None,
          getter: None,
          setter: None,
          value: pair[i],
          attributes: sys::PropertyAttributes::writable
            | sys::PropertyAttributes::enumerable
            | sys::PropertyAttributes::configurable,
          data: std::ptr::null_mut(),
        });
        check(sys::napi_define_properties(env, obj, 2, props.as_ptr()), || "Failed to define properties".to_owned())?;
        Ok(obj)
      }),
    )
  }
}

/// A JS string of `s`. An ASCII one (every server name of a usual config) is made as Latin-1,
/// which V8 copies as it is instead of decoding it: the same string.
///
/// # Safety
/// Per the module's contract.
pub(crate) unsafe fn string(env: sys::napi_env, s: &str) -> napi::Result<sys::napi_value> {
  let mut out = std::ptr::null_mut();
  let len = s.len() as isize;
  // SAFETY: per this function's contract; napi reads `len` bytes of `s`.
  let status = unsafe {
    if s.is_ascii() {
      sys::napi_create_string_latin1(env, s.as_ptr().cast(), len, &mut out)
    } else {
      sys::napi_create_string_utf8(env, s.as_ptr().cast(), len, &mut out)
    }
  };
  check(status, || "Failed to convert rust `String` into napi `string`".to_owned())?;
  Ok(out)
}

/// A JS array of `items`, one napi call per element: what an assembler does when there is none.
///
/// # Safety
/// Per the module's contract; `items` are values of this callback's scope.
unsafe fn array(
  env: sys::napi_env,
  len: usize,
  items: impl Iterator<Item = napi::Result<sys::napi_value>>,
) -> napi::Result<sys::napi_value> {
  let mut arr = std::ptr::null_mut();
  // SAFETY: per this function's contract.
  check(unsafe { sys::napi_create_array_with_length(env, len, &mut arr) }, || {
    "Failed to create napi Array".to_owned()
  })?;
  for (i, item) in (0u32..).zip(items) {
    // SAFETY: as above.
    check(unsafe { sys::napi_set_element(env, arr, i, item?) }, || format!("Failed to set element with index `{i}`"))?;
  }
  Ok(arr)
}

/// Which assembler.
#[derive(Clone, Copy)]
enum Assembler {
  /// `strings(out, ...values)`: `values` appended to `out` (a new array when `out` is
  /// `undefined`), as napi's `napi_set_element` would put them.
  Strings,
  /// `entries(out, ...flat)`: an entry for each pair of `flat` appended likewise.
  Entries,
}

/// The values an assembler is given per call (with `out`): 128 KiB of stack for its arguments,
/// well below V8's limit (about 1 MiB), and 27,000 names in two calls; a call that still
/// overflows the stack fails and the napi way does the work.
const CHUNK: usize = 16384;

/// The array `which` makes of `values`, or `None` when the assemblers cannot be had or a call
/// fails (its exception is cleared: the napi way then does it, and meets any real fault again).
///
/// # Safety
/// Per the module's contract.
unsafe fn assemble(env: sys::napi_env, which: Assembler, values: &[sys::napi_value]) -> Option<sys::napi_value> {
  let ok = |s: sys::napi_status| s == sys::Status::napi_ok;
  // SAFETY: per this function's contract.
  unsafe {
    let function = assembler(env, which)?;
    let mut out = std::ptr::null_mut();
    if !ok(sys::napi_get_undefined(env, &mut out)) {
      return None;
    }
    let recv = out;
    let mut args = Vec::with_capacity(CHUNK.min(values.len()) + 1);
    // An empty list takes one call too: the new array is made there.
    for chunk in values.chunks(CHUNK).chain(values.is_empty().then_some(values)) {
      args.clear();
      args.push(out);
      args.extend_from_slice(chunk);
      let mut made = std::ptr::null_mut();
      if !ok(sys::napi_call_function(env, recv, function, args.len(), args.as_ptr(), &mut made)) {
        let mut thrown = std::ptr::null_mut();
        sys::napi_get_and_clear_last_exception(env, &mut thrown);
        return None;
      }
      out = made;
    }
    Some(out)
  }
}

/// The source of the assemblers: `[strings, entries]` (see `Assembler`). Arrays made from rest
/// parameters and object literals take V8's fast paths; a value appended past an array's end is
/// assigned (`push` assigns too), as `napi_set_element` assigns it. The builtins used are
/// captured when it is compiled, so later monkey-patching changes nothing.
fn source() -> String {
  let [server, reason] = ENTRY_KEYS;
  format!(
    "(function (apply, push) {{ 'use strict'; return [ \
       function (out, ...a) {{ \
         if (out === undefined) return a; \
         apply(push, out, a); \
         return out; }}, \
       function (out, ...a) {{ \
         var n = 0, j = 0; if (out === undefined) out = a; else n = out.length; \
         for (var i = 0; i + 1 < a.length; i += 2) out[n + j++] = {{ {server}: a[i], {reason}: a[i + 1] }}; \
         if (out === a) a.length = j; \
         return out; }} ]; \
     }})(Reflect.apply, Array.prototype.push)"
  )
}

/// The assembler `which` of `env`, compiled on first use and kept in the environment's state.
///
/// # Safety
/// Per the module's contract.
unsafe fn assembler(env: sys::napi_env, which: Assembler) -> Option<sys::napi_value> {
  let ok = |s: sys::napi_status| s == sys::Status::napi_ok;
  let state = EnvState::of(&Env::from_raw(env)).ok()?;
  let kept = *state.assemblers.borrow();
  // SAFETY: per this function's contract; every status is checked.
  unsafe {
    let made = match kept {
      Some(made) => made,
      None => {
        let [strings, entries] = js_functions::compile(env, &source())?;
        let made = Assemblers { strings, entries };
        *state.assemblers.borrow_mut() = Some(made);
        made
      }
    };
    let reference = match which {
      Assembler::Strings => made.strings,
      Assembler::Entries => made.entries,
    };
    let mut function = std::ptr::null_mut();
    (ok(sys::napi_get_reference_value(env, reference, &mut function)) && !function.is_null()).then_some(function)
  }
}

/// A failed napi call as napi-rs reports the same failure (the same status and message).
fn check(status: sys::napi_status, message: impl FnOnce() -> String) -> napi::Result<()> {
  if status == sys::Status::napi_ok {
    Ok(())
  } else {
    Err(napi::Error::new(Status::from(status), message()))
  }
}
