//! Wall-clock helpers, in the units Claude Code uses. Every reading of the wall clock in this
//! crate goes through here.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, as `Date.now()`.
pub fn now_ms() -> f64 {
  // Whole ms, in f64 arithmetic: `as_millis` goes through u128, whose conversion to f64 is a
  // software routine that showed on the hot path.
  SystemTime::now()
    .duration_since(UNIX_EPOCH)
    .map_or(0.0, |d| d.as_secs() as f64 * 1000.0 + f64::from(d.subsec_millis()))
}

/// Nanoseconds since the Unix epoch, now.
pub(crate) fn now_ns() -> i128 {
  ns_since_epoch(SystemTime::now())
}

/// `t` in nanoseconds since the Unix epoch; 0 for a time before it.
pub(crate) fn ns_since_epoch(t: SystemTime) -> i128 {
  t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i128)
}
