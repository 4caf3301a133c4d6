//! The filesystem primitives every file this library touches goes through. They know nothing of
//! what the files hold: a caller names its file with a [`FileKind`] and parses the bytes itself.
//!
//! Every change is a read-modify-write under an exclusive advisory lock on a sidecar
//! `<file>.lock` ([`lock`]), written to a temp file in the same directory, fsynced, renamed over
//! the target and made durable with an fsync of the directory ([`write`]; a watcher's write that
//! must be announced first is renamed first and fsynced after, see `write::write_visible`).
//! Claude Code writes the same files with a plain `writeFile` and no lock, so a reader may catch
//! its half-written bytes: reads retry briefly before calling a file corrupt ([`read`]).
//! [`stamp`] tells "unchanged" without reading.

mod file_kind;
pub mod filesystem;
pub mod lock;
mod parent_dir;
pub mod read;
pub mod stamp;
pub mod write;

pub use file_kind::FileKind;
pub use lock::{lock_path, FileLock, DEFAULT_LOCK_WAIT};
pub use read::{holds_exactly, open_plain, read_bounded, read_opened, read_waiting, read_with, Opened, Patience};
pub use stamp::Stamp;
pub use write::{move_aside, write_atomic, write_visible};
