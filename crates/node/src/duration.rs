//! `formatDuration`.

use napi_derive::napi;

/// A duration in ms as the package's messages spell it: `'45s'`, `'4m05s'`, `'2h03m'`, `'3d04h'`
/// (rounded to the second; negative reads as `'0s'`). The CLI prints ages with it.
#[napi]
pub fn format_duration(ms: f64) -> String {
  mcp_needs_auth_core::duration::format(ms)
}
