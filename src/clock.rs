//! Wall-clock helpers, in the units Claude Code uses.

/// Milliseconds since the Unix epoch, as `Date.now()`.
pub fn now_ms() -> f64 {
  std::time::SystemTime::now()
    .duration_since(std::time::UNIX_EPOCH)
    .map_or(0.0, |d| d.as_millis() as f64)
}
