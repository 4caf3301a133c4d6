//! Warnings: how problems that have no caller to throw to reach the host.

use napi::bindgen_prelude::*;

/// `process.emitWarning(message, 'McpNeedsAuthWarning', code)`: how problems that have no
/// caller to throw to (a listener that threw, a watcher that failed) reach the host.
pub fn emit_warning(env: &Env, message: &str, code: &str) {
  let emit = || -> napi::Result<()> {
    let process: Object = env.get_global()?.get_named_property("process")?;
    let emit_warning: Function<FnArgs<(&str, &str, &str)>, Unknown> = process.get_named_property("emitWarning")?;
    emit_warning.apply(process, FnArgs::from((message, "McpNeedsAuthWarning", code)))?;
    Ok(())
  };
  // Nothing sensible is left to do if even emitting the warning fails.
  let _ = emit();
}
