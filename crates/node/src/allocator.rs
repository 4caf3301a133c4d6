//! The addon's allocator on Linux with glibc: mimalloc, as napi-rs addons of the field ship it
//! (rolldown, swc, rspack).
//!
//! A cache of 27,000 entries is some 100,000 small allocations per call. glibc's malloc keeps
//! them, freed, in fast bins that it consolidates, walking every chunk, on the next larger
//! request: that walk, not the work, was most of `purgeStale`'s time (70 ms of it, 18 ms with
//! glibc's tcache made large; 40 ms in all with mimalloc). Only this cdylib sets an allocator
//! (its own allocations; Node's are glibc's still): the core crate and its tests use their
//! host's. Elsewhere the platform's own is kept, as measured nowhere but here: the musl builds
//! cannot be loaded on the machines this is tested on (swc leaves mimalloc out of aarch64-musl),
//! and macOS's and Windows' allocators are not glibc's.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, Ordering};

use mimalloc::MiMalloc;

#[global_allocator]
static ALLOCATOR: Configured = Configured;

/// mimalloc, its options set before its first allocation (`configure`): an option read when
/// mimalloc starts is set in time only there, as napi-rs allocates before any code of ours runs.
struct Configured;

static CONFIGURED: AtomicBool = AtomicBool::new(false);

/// `mi_option_arena_eager_commit` in mimalloc 3's `mi_option_e` (`mimalloc.h`), which the
/// bindings do not name; the assertion stops a mimalloc whose options moved.
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const _: () = assert!(libmimalloc_sys::_mi_option_last == 47, "mimalloc's options moved: check ARENA_EAGER_COMMIT");

/// Commits arena memory as it is used, not whole arenas up front (mimalloc's default where the
/// OS overcommits, as Linux does): committed at once, an arena's pages become transparent huge
/// pages on first touch, and a process with one subscription held 2.4 MiB more RSS instead of
/// 0.5 MiB (bench section 7; the bulk calls unchanged). Setting it twice, from two threads'
/// first allocations at once, sets the same value.
fn configure() {
  if !CONFIGURED.load(Ordering::Relaxed) {
    // SAFETY: sets one option's value, which allocates nothing; mimalloc keeps a value set
    // before it starts.
    unsafe { libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0) };
    CONFIGURED.store(true, Ordering::Relaxed);
  }
}

// SAFETY: every call is MiMalloc's, which upholds `GlobalAlloc`'s contract; `configure` before
// it changes no allocation.
unsafe impl GlobalAlloc for Configured {
  unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
    configure();
    // SAFETY: the caller's contract, passed on.
    unsafe { MiMalloc.alloc(layout) }
  }

  unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
    configure();
    // SAFETY: as above.
    unsafe { MiMalloc.alloc_zeroed(layout) }
  }

  unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
    // SAFETY: as above (`ptr` came from `alloc`, so mimalloc is configured).
    unsafe { MiMalloc.dealloc(ptr, layout) }
  }

  unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
    // SAFETY: as above.
    unsafe { MiMalloc.realloc(ptr, layout, new_size) }
  }
}
