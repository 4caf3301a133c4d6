//! What a path is stored on, and so whether this machine's kernel hears of every change to it.
//!
//! inotify, FSEvents and ReadDirectoryChangesW report the changes made through this kernel only.
//! On a network share (NFS, SMB, sshfs), a FUSE filesystem (bindfs, virtiofs, Docker Desktop's
//! gRPC FUSE) or a VM share (9p, drvfs, vboxsf), another machine, or the host side of a container,
//! changes files without a notification here, and the kernel may even answer `stat` from a cache
//! for a while. So notifications are trusted on an allowlist of local filesystems only; anything
//! else, an unknown type included, counts as remote.
//!
//! [`MountId`] tells which mount a path is reached through: a bind mount placed over a config
//! dir, or over the cache file, changes it without any change to the files underneath.

use std::borrow::Cow;
use std::io;
use std::path::Path;

/// What a path is stored on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filesystem {
  /// The type as the OS names it (`ext4`, `nfs`, `fuse`, …; `0x…` for a Linux type unknown here).
  pub name: Cow<'static, str>,
  /// Every change to it is made through this kernel, so its change notifications are complete.
  pub local: bool,
}

impl Filesystem {
  /// What `path` (a file or a directory that exists) is stored on.
  pub fn of(path: &Path) -> io::Result<Filesystem> {
    imp::filesystem_of(path)
  }

  /// What `path` is on, or else its nearest existing ancestor (where it would be made, unless a
  /// mount comes first). Unknown counts as remote.
  pub fn near(path: &Path) -> Filesystem {
    path
      .ancestors()
      .find_map(|a| Filesystem::of(if a.as_os_str().is_empty() { Path::new(".") } else { a }).ok())
      .unwrap_or(Filesystem { name: Cow::Borrowed("unknown"), local: false })
  }
}

/// Asks the filesystem itself for `path`'s current size and times, past the kernel's attribute
/// cache (Linux: `statx` with `AT_STATX_FORCE_SYNC`, which FUSE and NFS honour with a round trip
/// to the server; elsewhere nothing). On FUSE a file another machine grew is otherwise read cut
/// at its cached size for up to a second, by every reader: after this, by none. Errors are
/// ignored: the read that follows reports them.
pub fn refresh_metadata(path: &Path) {
  imp::refresh_metadata(path);
}

/// Which mount a path is reached through. Equal ids: the same mount (the files underneath may
/// still have changed); different ids: something was mounted over the path, or taken away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MountId {
  /// The device the path's file lives on (`st_dev`).
  device: u64,
  /// The kernel's id of the mount (Linux 5.8+, `statx`'s `STATX_MNT_ID`): a bind mount of a dir
  /// of the same filesystem keeps the device and changes this.
  mount: Option<u64>,
}

impl MountId {
  /// The mount `path` (followed through symlinks, as an open of it would be) is reached through.
  pub fn of(path: &Path) -> io::Result<MountId> {
    imp::mount_of(path)
  }
}

/// Linux `statfs` `f_type` values (linux/magic.h) of filesystems every change to which goes
/// through the local kernel.
#[cfg(any(target_os = "linux", test))]
const LINUX_LOCAL: &[(u64, &str)] = &[
  (0xEF53, "ext4"), // ext2, ext3 and ext4 share it
  (0x5846_5342, "xfs"),
  (0x9123_683E, "btrfs"),
  (0x0102_1994, "tmpfs"),
  (0x8584_58F6, "ramfs"),
  (0x794C_7630, "overlay"),
  (0x2FC1_2FC1, "zfs"),
  (0xF2F5_2010, "f2fs"),
  (0xCA45_1A4E, "bcachefs"),
  (0x5265_4973, "reiserfs"),
  (0x3153_464A, "jfs"),
  (0x3434, "nilfs"),
  (0x482B, "hfsplus"),
  (0x7371_7368, "squashfs"),
  (0x2011_BAB0, "exfat"),
  (0x4D44, "vfat"),
  (0x7366_746E, "ntfs3"),
  (0x5346_544E, "ntfs"),
];

/// Linux types named in messages (`watch: poll (nfs)`) though not trusted.
#[cfg(any(target_os = "linux", test))]
const LINUX_REMOTE: &[(u64, &str)] = &[
  (0x6969, "nfs"),
  (0x517B, "smb"),
  (0xFF53_4D42, "cifs"),
  (0xFE53_4D42, "smb2"),
  (0x6573_5546, "fuse"), // bindfs, sshfs, virtiofs, gRPC FUSE, …
  (0x00C3_6400, "ceph"),
  (0x0102_1997, "9p"),
  (0x5346_414F, "afs"),
  (0x0BD0_0BD0, "lustre"),
  (0x4750_4653, "gpfs"),
  (0x0116_1970, "gfs2"),
  (0x7461_636F, "ocfs2"),
  (0x786F_4256, "vboxsf"),
  (0xF15F, "ecryptfs"),
];

/// A Linux `f_type` as a [`Filesystem`]: local only when it is on the allowlist.
#[cfg(any(target_os = "linux", test))]
fn linux_type(f_type: u64) -> Filesystem {
  // `f_type` is a signed word on some ABIs: compare its low 32 bits, as the magics are.
  let magic = f_type & 0xFFFF_FFFF;
  if let Some((_, name)) = LINUX_LOCAL.iter().find(|(m, _)| *m == magic) {
    return Filesystem { name: Cow::Borrowed(name), local: true };
  }
  let name = match LINUX_REMOTE.iter().find(|(m, _)| *m == magic) {
    Some((_, name)) => Cow::Borrowed(*name),
    None => Cow::Owned(format!("{magic:#x}")),
  };
  Filesystem { name, local: false }
}

/// macOS: local only when the kernel says so and its type is one this allowlist knows.
#[cfg(any(target_os = "macos", test))]
fn macos_type(fstypename: &str, mnt_local: bool) -> Filesystem {
  const LOCAL: &[&str] = &["apfs", "hfs"];
  let local = mnt_local && LOCAL.contains(&fstypename);
  Filesystem { name: Cow::Owned(fstypename.to_owned()), local }
}

#[cfg(unix)]
fn c_path(path: &Path) -> io::Result<std::ffi::CString> {
  use std::os::unix::ffi::OsStrExt;
  std::ffi::CString::new(path.as_os_str().as_bytes())
    .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "the path holds a NUL byte"))
}

/// `statfs(2)` of `path` (Linux and macOS name their fields differently; the call is the same).
#[cfg(any(target_os = "linux", target_os = "macos"))]
fn statfs(path: &Path) -> io::Result<libc::statfs> {
  let c = c_path(path)?;
  let mut buf = std::mem::MaybeUninit::<libc::statfs>::uninit();
  // SAFETY: `c` is a NUL-terminated path; `buf` is writable and as large as statfs writes.
  if unsafe { libc::statfs(c.as_ptr(), buf.as_mut_ptr()) } != 0 {
    return Err(io::Error::last_os_error());
  }
  // SAFETY: statfs returned 0, so it filled `buf`.
  Ok(unsafe { buf.assume_init() })
}

#[cfg(target_os = "linux")]
mod imp {
  use super::{c_path, linux_type, statfs, Filesystem, MountId};
  use std::io;
  use std::mem::MaybeUninit;
  use std::os::unix::fs::MetadataExt;
  use std::path::Path;

  pub(super) fn filesystem_of(path: &Path) -> io::Result<Filesystem> {
    let st = statfs(path)?;
    // The field's type differs between ABIs (i64, u32, …): its bits are what is compared.
    #[allow(clippy::unnecessary_cast)]
    Ok(linux_type(st.f_type as u64))
  }

  pub(super) fn refresh_metadata(path: &Path) {
    let Ok(c) = c_path(path) else { return };
    let mut buf = MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: as in `statx_mount_id`: a NUL-terminated path and a writable statx buffer.
    unsafe {
      libc::syscall(
        libc::SYS_statx,
        libc::AT_FDCWD,
        c.as_ptr(),
        libc::AT_STATX_FORCE_SYNC,
        libc::STATX_SIZE | libc::STATX_MTIME,
        buf.as_mut_ptr(),
      )
    };
  }

  pub(super) fn mount_of(path: &Path) -> io::Result<MountId> {
    let device = std::fs::metadata(path)?.dev();
    Ok(MountId { device, mount: statx_mount_id(path) })
  }

  /// The mount id through the raw syscall, not glibc's `statx` wrapper: the gnu packages link
  /// against glibc 2.17, which has none. `None` where the kernel is older than 5.8.
  fn statx_mount_id(path: &Path) -> Option<u64> {
    let c = c_path(path).ok()?;
    let mut buf = MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: `c` is a NUL-terminated path, `buf` a writable statx buffer; the syscall takes
    // (dirfd, path, flags, mask, buf) and writes at most `sizeof(struct statx)` bytes.
    let rc =
      unsafe { libc::syscall(libc::SYS_statx, libc::AT_FDCWD, c.as_ptr(), 0, libc::STATX_MNT_ID, buf.as_mut_ptr()) };
    if rc != 0 {
      return None;
    }
    // SAFETY: the syscall succeeded, so it filled `buf` (zeroed where it wrote nothing).
    let st = unsafe { buf.assume_init() };
    (st.stx_mask & libc::STATX_MNT_ID != 0).then_some(st.stx_mnt_id)
  }
}

#[cfg(target_os = "macos")]
mod imp {
  use super::{macos_type, statfs, Filesystem, MountId};
  use std::ffi::CStr;
  use std::io;
  use std::os::unix::fs::MetadataExt;
  use std::path::Path;

  pub(super) fn filesystem_of(path: &Path) -> io::Result<Filesystem> {
    let st = statfs(path)?;
    // SAFETY: the kernel NUL-terminates `f_fstypename` within its 16 bytes.
    let name = unsafe { CStr::from_ptr(st.f_fstypename.as_ptr()) }.to_string_lossy();
    let flags = u64::from(st.f_flags);
    Ok(macos_type(&name, flags & (libc::MNT_LOCAL as u64) != 0))
  }

  pub(super) fn mount_of(path: &Path) -> io::Result<MountId> {
    Ok(MountId { device: std::fs::metadata(path)?.dev(), mount: None })
  }

  pub(super) fn refresh_metadata(_: &Path) {}
}

#[cfg(windows)]
mod imp {
  use super::{Filesystem, MountId};
  use std::borrow::Cow;
  use std::io;
  use std::os::windows::ffi::OsStrExt;
  use std::path::Path;
  use windows_sys::Win32::Storage::FileSystem::{GetDriveTypeW, GetVolumeInformationW, GetVolumePathNameW};
  use windows_sys::Win32::System::WindowsProgramming::{DRIVE_FIXED, DRIVE_RAMDISK, DRIVE_REMOVABLE};

  /// The root of the volume `path` is on (`C:\`, `\\server\share\`), NUL-terminated.
  fn volume_root(path: &Path) -> io::Result<Vec<u16>> {
    let wide: Vec<u16> = path.as_os_str().encode_wide().chain(Some(0)).collect();
    let mut root = vec![0u16; wide.len().max(8) + 1];
    let len = u32::try_from(root.len()).map_err(|_| io::Error::other("path too long"))?;
    // SAFETY: `wide` is NUL-terminated; `root` is writable for `len` UTF-16 units.
    if unsafe { GetVolumePathNameW(wide.as_ptr(), root.as_mut_ptr(), len) } == 0 {
      return Err(io::Error::last_os_error());
    }
    Ok(root)
  }

  pub(super) fn filesystem_of(path: &Path) -> io::Result<Filesystem> {
    let root = volume_root(path)?;
    // SAFETY: `root` is a NUL-terminated volume root.
    let drive = unsafe { GetDriveTypeW(root.as_ptr()) };
    let mut name = [0u16; 64];
    // SAFETY: `root` is NUL-terminated; `name` is writable for its length; the other out
    // parameters are optional and passed as null.
    let ok = unsafe {
      GetVolumeInformationW(
        root.as_ptr(),
        std::ptr::null_mut(),
        0,
        std::ptr::null_mut(),
        std::ptr::null_mut(),
        std::ptr::null_mut(),
        name.as_mut_ptr(),
        name.len() as u32,
      )
    };
    let fs_name = if ok != 0 {
      let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
      String::from_utf16_lossy(&name[..end])
    } else {
      "unknown".to_owned()
    };
    let on_this_machine = matches!(drive, DRIVE_FIXED | DRIVE_REMOVABLE | DRIVE_RAMDISK);
    let local = on_this_machine && matches!(fs_name.as_str(), "NTFS" | "ReFS");
    Ok(Filesystem { name: Cow::Owned(fs_name.to_lowercase()), local })
  }

  pub(super) fn refresh_metadata(_: &Path) {}

  pub(super) fn mount_of(path: &Path) -> io::Result<MountId> {
    // A volume mounted over a folder changes the folder's volume root: hash it as the device.
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    volume_root(path)?.hash(&mut h);
    Ok(MountId { device: h.finish(), mount: None })
  }
}

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
mod imp {
  use super::{Filesystem, MountId};
  use std::borrow::Cow;
  use std::io;
  use std::path::Path;

  /// No way to tell here: count it as remote, so the library polls rather than trusts.
  pub(super) fn filesystem_of(path: &Path) -> io::Result<Filesystem> {
    std::fs::metadata(path)?;
    Ok(Filesystem { name: Cow::Borrowed("unknown"), local: false })
  }

  pub(super) fn refresh_metadata(_: &Path) {}

  pub(super) fn mount_of(path: &Path) -> io::Result<MountId> {
    #[cfg(unix)]
    let device = std::os::unix::fs::MetadataExt::dev(&std::fs::metadata(path)?);
    #[cfg(not(unix))]
    let device = {
      std::fs::metadata(path)?;
      0
    };
    Ok(MountId { device, mount: None })
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn linux_types_are_local_only_on_the_allowlist() {
    assert_eq!(linux_type(0xEF53), Filesystem { name: Cow::Borrowed("ext4"), local: true });
    assert!(linux_type(0x0102_1994).local, "tmpfs");
    assert!(linux_type(0x794C_7630).local, "overlay");
    let nfs = linux_type(0x6969);
    assert_eq!((nfs.name.as_ref(), nfs.local), ("nfs", false));
    let fuse = linux_type(0x6573_5546);
    assert_eq!((fuse.name.as_ref(), fuse.local), ("fuse", false));
    // Unknown counts as remote, named by its magic.
    let unknown = linux_type(0x1234_5678);
    assert_eq!((unknown.name.as_ref(), unknown.local), ("0x12345678", false));
    // A sign-extended f_type (a signed word on some ABIs) is still recognised.
    assert!(linux_type(0xFFFF_FFFF_9123_683E).local, "btrfs");
  }

  #[test]
  fn macos_types_need_both_the_local_flag_and_the_allowlist() {
    assert!(macos_type("apfs", true).local);
    assert!(!macos_type("apfs", false).local, "not MNT_LOCAL");
    assert!(!macos_type("smbfs", false).local);
    assert!(!macos_type("macfuse", true).local, "unknown counts as remote");
  }

  #[test]
  fn this_machines_temp_dir_is_read_and_a_missing_path_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let fs = Filesystem::of(dir.path()).unwrap();
    assert!(!fs.name.is_empty());
    assert!(Filesystem::of(&dir.path().join("missing")).is_err());
  }

  #[cfg(target_os = "linux")]
  #[test]
  fn procfs_is_not_on_the_allowlist() {
    assert!(!Filesystem::of(Path::new("/proc/self")).unwrap().local);
  }

  #[test]
  fn a_mount_id_is_stable_for_one_path_and_differs_across_filesystems() {
    let dir = tempfile::tempdir().unwrap();
    let a = MountId::of(dir.path()).unwrap();
    assert_eq!(a, MountId::of(dir.path()).unwrap());
    #[cfg(target_os = "linux")]
    assert_ne!(a, MountId::of(Path::new("/proc/self")).unwrap(), "procfs is another mount");
  }
}
