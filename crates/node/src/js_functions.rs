//! The addon's own small JavaScript functions, compiled once per environment and kept (by
//! `EnvState`) for work V8 does far faster than a napi call per item: sorting an options
//! object's keys (`options_shape`), assembling result arrays (`bulk_values`).

use napi::sys;

/// Runs `source`, a script whose value is an array of `N` functions, and returns a strong
/// reference to each, in order; `None` when a step fails (nothing is then kept: the caller does
/// without, the napi way).
///
/// # Safety
/// `env` is the environment of the Node-API callback running now, on its thread.
pub(crate) unsafe fn compile<const N: usize>(env: sys::napi_env, source: &str) -> Option<[sys::napi_ref; N]> {
  let ok = |s: sys::napi_status| s == sys::Status::napi_ok;
  let (mut script, mut functions) = (std::ptr::null_mut(), std::ptr::null_mut());
  let mut refs = [std::ptr::null_mut(); N];
  // SAFETY: plain napi calls on the live environment of this callback; every status is checked,
  // and only values made here are passed.
  unsafe {
    let ran = ok(sys::napi_create_string_utf8(env, source.as_ptr().cast(), source.len() as isize, &mut script))
      && ok(sys::napi_run_script(env, script, &mut functions));
    let mut made = 0;
    while ran && made < N {
      let mut function = std::ptr::null_mut();
      if !(ok(sys::napi_get_element(env, functions, made as u32, &mut function))
        && ok(sys::napi_create_reference(env, function, 1, &mut refs[made])))
      {
        break;
      }
      made += 1;
    }
    if made < N {
      for r in &refs[..made] {
        sys::napi_delete_reference(env, *r);
      }
      return None;
    }
  }
  Some(refs)
}
