//! How a watcher follows one config dir's files: by notification where the filesystem tells this
//! kernel of every change, by polling elsewhere. A leaf the watcher and `diagnose` share, so that
//! what `diagnose` says is what a watcher would do.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use crate::credentials::Store;
use crate::fs::filesystem::{Filesystem, MountId};

/// How the files are followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
  /// OS notifications (inotify, FSEvents, ReadDirectoryChangesW) are complete here.
  Notify,
  /// Read every poll interval: changes may be made where this kernel does not hear of them.
  Poll,
}

impl Mode {
  pub fn as_str(self) -> &'static str {
    match self {
      Mode::Notify => "notify",
      Mode::Poll => "poll",
    }
  }
}

/// A watcher's mode, and the filesystem that decided it (the first remote one of the followed
/// directories, else the config dir's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchMode {
  pub mode: Mode,
  pub filesystem: Cow<'static, str>,
}

/// The directories a watcher of `config_dir` and `store` follows: the config dir, and the
/// credentials file's if it is read and elsewhere.
pub(crate) fn followed_dirs(config_dir: &Path, store: &Store) -> Vec<PathBuf> {
  let mut dirs = vec![config_dir.to_path_buf()];
  if let Some(d) = store.watched_file().and_then(Path::parent) {
    if !dirs.iter().any(|x| x == d) {
      dirs.push(d.to_path_buf());
    }
  }
  dirs
}

/// The mount each of `dirs` is reached through (`None`: not there): a change means the mode
/// must be looked at again.
pub(crate) fn mounts_of(dirs: &[PathBuf]) -> Vec<Option<MountId>> {
  dirs.iter().map(|d| MountId::of(d).ok()).collect()
}

/// The mode for `dirs`: poll when any is on a filesystem not on the local allowlist.
pub(crate) fn mode_for(dirs: &[PathBuf]) -> WatchMode {
  let found: Vec<Filesystem> = dirs.iter().map(|d| Filesystem::near(d)).collect();
  match found.iter().find(|f| !f.local) {
    Some(remote) => WatchMode { mode: Mode::Poll, filesystem: remote.name.clone() },
    None => WatchMode {
      mode: Mode::Notify,
      filesystem: found.into_iter().next().map_or(Cow::Borrowed("unknown"), |f| f.name),
    },
  }
}

/// How a watcher of `config_dir`'s cache and `store` would follow them now.
pub(crate) fn mode_of(config_dir: &Path, store: &Store) -> WatchMode {
  mode_for(&followed_dirs(config_dir, store))
}

#[cfg(test)]
mod tests {
  use super::*;
  #[cfg(target_os = "linux")]
  use crate::credentials::CredentialSource;

  #[cfg(target_os = "linux")]
  #[test]
  fn a_local_dir_is_notified_and_procfs_is_polled() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::locate(dir.path(), true, CredentialSource::File);
    let local = Filesystem::of(dir.path()).unwrap().local;
    assert_eq!(mode_of(dir.path(), &store).mode, if local { Mode::Notify } else { Mode::Poll });
    let polled = mode_for(&[dir.path().to_path_buf(), PathBuf::from("/proc/self")]);
    assert_eq!(polled.mode, Mode::Poll, "procfs is not on the allowlist");
  }

  #[test]
  fn a_missing_dir_is_judged_by_its_nearest_ancestor() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("not/yet");
    assert_eq!(Filesystem::near(&missing), Filesystem::of(dir.path()).unwrap());
    assert_eq!(mounts_of(&[missing]), vec![None]);
  }
}
