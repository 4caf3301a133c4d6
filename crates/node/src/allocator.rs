//! The addon's allocator on Linux with glibc: mimalloc, as napi-rs addons of the field ship it
//! (rolldown, swc, rspack).
//!
//! A cache of 27,000 entries is some 100,000 small allocations per call. glibc's malloc keeps
//! them, freed, in fast bins that it consolidates, walking every chunk, on the next larger
//! request: that walk, not the work, was most of `purgeStale`'s time (70 ms of it, 18 ms with
//! glibc's tcache made large; 40 ms in all with mimalloc). Only this cdylib sets an allocator:
//! the core crate and its tests use their host's. Elsewhere the platform's own is kept, as
//! measured nowhere but here: the musl builds cannot be loaded on the machines this is tested
//! on (swc leaves mimalloc out of aarch64-musl), and macOS's and Windows' allocators are not
//! glibc's.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
