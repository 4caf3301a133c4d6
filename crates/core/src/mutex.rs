//! Locking the mutexes that hold this library's state.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`. A panic while it was held cannot leave what it guards half updated (each change
/// is a single insert, remove or assignment), so a poisoned lock is still good to use rather
/// than a reason to fail every later call.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
  m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
