//! Durations as people read them ("45s", "4m05s", "2h03m", "3d04h"): the one spelling used by
//! the core's messages and, through the binding `formatDuration`, by the CLI.

/// Rounds to the nearest second, then shows the two largest units. Negative durations read as 0s.
pub fn format(ms: f64) -> String {
  let s = if ms.is_finite() { (ms.max(0.0) / 1000.0).round() as u64 } else { 0 };
  match s {
    0..=59 => format!("{s}s"),
    60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
    3600..=86_399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
  }
}

#[cfg(test)]
mod tests {
  use super::format;

  #[test]
  fn two_largest_units_rounded_to_the_second() {
    assert_eq!(format(0.0), "0s");
    assert_eq!(format(59_400.0), "59s");
    assert_eq!(format(59_600.0), "1m00s");
    assert_eq!(format(245_000.0), "4m05s");
    assert_eq!(format(7_380_000.0), "2h03m");
    assert_eq!(format(273_600_000.0), "3d04h");
    assert_eq!(format(-5.0), "0s");
    assert_eq!(format(f64::NAN), "0s");
  }
}
