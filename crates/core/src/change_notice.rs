//! "Has this file possibly changed since I read it?", answered exactly and cheaper than a `stat`.
//!
//! One inotify instance per process (instances are a scarce per-user resource: 128 by default)
//! watches the directory of each file a caller memoises, for every event that can change what
//! that name holds (the directory, not the file: a rename replaces the file), and every ancestor
//! directory for being moved or deleted. The instance is polled without blocking, in the calling
//! thread (a zero-timeout `epoll_wait`, then a read only if something is queued): the kernel queues an event synchronously with the write, rename or unlink that
//! causes it, so a change that any process completed before `poll` started is in the queue when
//! `poll` reads it. An empty queue therefore means "unchanged" as surely as an equal `stat`.
//!
//! Callers keep `stat` wherever this cannot be exact, and `watch` says so by returning `None`:
//! no inotify (not Linux, or the instance or watch limit reached), a directory that does not
//! exist, or a path with a symlink in it (re-pointing a link is a change in another directory).
//! Callers must also not rely on it for a file that is itself a symlink or has other hard
//! links (writes through another name are reported to that name's directory). A queue overflow,
//! or a watched directory deleted, moved or unmounted, is reported so callers fall back and
//! re-arm. Not seen by inotify (nor promptly by `stat`): writes through a shared mmap.
//!
//! Nor does inotify see a filesystem (a bind mount, say) placed over the directory or the file:
//! the names it watches are unchanged, yet the path now leads elsewhere. So the same epoll
//! instance also holds an open `/proc/self/mountinfo`, which the kernel marks ready
//! (`POLLPRI | POLLERR`) whenever this process's mount namespace gains or loses a mount; that is
//! reported as [`Event::Mounts`], which every watch takes as a change that breaks it. It costs
//! nothing while nothing is mounted: the zero-timeout `epoll_wait` that finds the ready list
//! empty looks at neither fd. Without that file (no `/proc`), there is no instance at all, and
//! callers `stat`.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::Path;

/// What `poll` found in the queue. Only inotify makes them: elsewhere `watch` always answers
/// `None`, and callers `stat`.
#[derive(Debug, PartialEq, Eq)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub enum Event<'a> {
  /// Events were lost: anything may have changed, and every watch should be re-armed.
  Overflow,
  /// A watched directory was deleted, moved or unmounted: whatever watched through it must
  /// stat and re-arm.
  Gone(i32),
  /// The kernel dropped this watch descriptor (after `Gone`, or when it was removed).
  Dropped(i32),
  /// Something happened to this name in the watched directory `.0`.
  Named(i32, &'a OsStr),
  /// The process's mount table changed: any path may now lead elsewhere (and onto another
  /// filesystem), so every watch is broken.
  Mounts,
}

/// The watches that guard one file.
#[derive(Debug)]
pub struct Watch {
  dir: i32,
  ancestors: Vec<i32>,
  name: OsString,
}

impl Watch {
  /// Whether `event` may mean the watched file changed.
  pub fn hit(&self, event: &Event) -> bool {
    match *event {
      Event::Overflow | Event::Mounts => true,
      Event::Gone(wd) | Event::Dropped(wd) => wd == self.dir || self.ancestors.contains(&wd),
      Event::Named(wd, name) => wd == self.dir && name == self.name,
    }
  }

  /// Whether `event` means this watch no longer guards the path (it must be re-armed).
  pub fn broken(&self, event: &Event) -> bool {
    !matches!(event, Event::Named(..)) && self.hit(event)
  }
}

/// The process's inotify instance, and how many `Watch`es use each watch descriptor (the kernel
/// gives one descriptor per directory, shared by every file watched in it).
pub struct Notices {
  sys: Option<sys::Inotify>,
  /// The instance is made on the first `watch`, not before: a process that never needs one
  /// (a one-shot CLI, a writer) does not take one of the user's few.
  pending: bool,
  refs: HashMap<i32, usize>,
}

impl Notices {
  /// Uses inotify where the platform has it and an instance can be had (from the first
  /// `watch` on); otherwise inactive.
  pub fn new() -> Notices {
    Notices { sys: None, pending: sys::AVAILABLE, refs: HashMap::new() }
  }

  /// Never watches: every caller falls back to `stat`.
  #[cfg(test)]
  pub fn inactive() -> Notices {
    Notices { sys: None, pending: false, refs: HashMap::new() }
  }

  /// Whether `watch` may succeed.
  pub fn is_active(&self) -> bool {
    self.sys.is_some() || self.pending
  }

  /// Arms the watches for `file` (absolute, with no symlink in its directory's path). `None`
  /// when that cannot be done exactly; then nothing is left armed.
  pub fn watch(&mut self, file: &Path) -> Option<Watch> {
    if std::mem::take(&mut self.pending) {
      self.sys = sys::Inotify::new();
    }
    let sys = self.sys.as_ref()?;
    let dir = file.parent().filter(|d| d.is_absolute())?;
    let name = file.file_name()?.to_owned();
    // A symlink anywhere in the directory's path would let the path name another directory
    // without any event in the ones watched here.
    if std::fs::canonicalize(dir).ok()? != dir {
      return None;
    }
    let mut armed = Vec::new();
    let mut arm = |path: &Path, mask: u32| match sys.add_watch(path, mask) {
      Some(wd) => {
        armed.push(wd);
        Some(wd)
      }
      None => None,
    };
    let dir_wd = arm(dir, sys::DIR_MASK);
    let mut ancestors = Vec::new();
    let mut ok = dir_wd.is_some();
    for a in dir.ancestors().skip(1).filter(|a| a.parent().is_some()) {
      if !ok {
        break;
      }
      match arm(a, sys::ANCESTOR_MASK) {
        Some(wd) => ancestors.push(wd),
        None => ok = false,
      }
    }
    for wd in &armed {
      *self.refs.entry(*wd).or_default() += 1;
    }
    let watch = Watch { dir: dir_wd.unwrap_or(-1), ancestors, name };
    if ok {
      Some(watch)
    } else {
      self.unwatch(watch);
      None
    }
  }

  /// Releases a watch's descriptors (a descriptor is removed when nothing else uses it).
  pub fn unwatch(&mut self, watch: Watch) {
    for wd in std::iter::once(watch.dir).chain(watch.ancestors) {
      if let Some(n) = self.refs.get_mut(&wd) {
        *n -= 1;
        if *n == 0 {
          self.refs.remove(&wd);
          if let Some(sys) = &self.sys {
            sys.rm_watch(wd);
          }
        }
      }
    }
  }

  /// Reads every queued event without blocking and hands each to `on`. An empty queue (the
  /// common case) costs one zero-timeout `epoll_wait`.
  pub fn poll(&mut self, mut on: impl FnMut(&Event)) {
    let Some(sys) = &self.sys else { return };
    let refs = &mut self.refs;
    sys.drain(|event| {
      if let Event::Dropped(wd) = event {
        // Forget the descriptor, so that unwatching never removes a number the kernel may
        // hand out again.
        refs.remove(wd);
      }
      on(event);
    });
  }
}

impl Default for Notices {
  fn default() -> Self {
    Notices::new()
  }
}

#[cfg(target_os = "linux")]
mod sys {
  use super::Event;
  use std::ffi::{CString, OsStr};
  use std::os::unix::ffi::OsStrExt;
  use std::path::Path;

  pub const AVAILABLE: bool = true;

  /// Everything that can change what a name in the directory holds, or the directory itself.
  pub const DIR_MASK: u32 = libc::IN_CLOSE_WRITE
    | libc::IN_MODIFY
    | libc::IN_MOVED_TO
    | libc::IN_MOVED_FROM
    | libc::IN_CREATE
    | libc::IN_DELETE
    | libc::IN_ATTRIB
    | libc::IN_DELETE_SELF
    | libc::IN_MOVE_SELF
    | libc::IN_ONLYDIR
    | libc::IN_MASK_ADD;
  /// An ancestor matters only if it is itself moved or deleted.
  pub const ANCESTOR_MASK: u32 = libc::IN_DELETE_SELF | libc::IN_MOVE_SELF | libc::IN_ONLYDIR | libc::IN_MASK_ADD;
  const SELF_EVENTS: u32 = libc::IN_DELETE_SELF | libc::IN_MOVE_SELF | libc::IN_UNMOUNT;

  /// The epoll data of the mount table's fd (the inotify fd's is 0).
  const MOUNTS: u64 = 1;

  pub struct Inotify {
    fd: libc::c_int,
    /// `/proc/self/mountinfo`, open: ready (`EPOLLPRI`) once the mount table changed, and
    /// made unready by the very `epoll_wait` that reports it (the kernel's `mounts_poll` notes
    /// the table's event count as seen), so it is never read.
    mounts: libc::c_int,
    /// An epoll instance holding `fd` (level-triggered) and `mounts`. Asking it with a zero timeout
    /// is the cheapest exact "is anything queued?": inotify's wake-up puts `fd` on epoll's ready
    /// list within the write, rename or unlink that queues the event, and an empty ready list
    /// is checked without taking a lock or polling the inotify instance (about 60% of the cost
    /// of `ioctl(FIONREAD)` here, itself a quarter cheaper than a `read` that fails).
    ready: libc::c_int,
  }

  impl Inotify {
    pub fn new() -> Option<Inotify> {
      const MOUNTINFO: &std::ffi::CStr = c"/proc/self/mountinfo";
      // SAFETY: plain syscalls on a NUL-terminated path; the fds are owned by the returned value
      // and closed on drop, or closed here on failure.
      unsafe {
        let fd = libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC);
        if fd < 0 {
          return None;
        }
        let ready = libc::epoll_create1(libc::EPOLL_CLOEXEC);
        let mounts = libc::open(MOUNTINFO.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        let mut interest = libc::epoll_event { events: libc::EPOLLIN as u32, u64: 0 };
        let mut mount_interest = libc::epoll_event { events: (libc::EPOLLPRI | libc::EPOLLERR) as u32, u64: MOUNTS };
        // Without the mount signal a watch could vouch for a path a mount has redirected: then
        // no instance at all, and callers `stat`.
        if ready < 0
          || mounts < 0
          || libc::epoll_ctl(ready, libc::EPOLL_CTL_ADD, fd, &mut interest) != 0
          || libc::epoll_ctl(ready, libc::EPOLL_CTL_ADD, mounts, &mut mount_interest) != 0
        {
          for f in [ready, mounts, fd] {
            if f >= 0 {
              libc::close(f);
            }
          }
          return None;
        }
        Some(Inotify { fd, mounts, ready })
      }
    }

    /// Whether the inotify queue may hold events, and whether the mount table changed.
    fn ready(&self) -> (bool, bool) {
      let mut events = std::mem::MaybeUninit::<[libc::epoll_event; 2]>::uninit();
      // SAFETY: room for the two events asked for; a zero timeout never blocks.
      let n = unsafe { libc::epoll_wait(self.ready, events.as_mut_ptr().cast(), 2, 0) };
      if n <= 0 {
        return (n < 0, n < 0);
      }
      // SAFETY: epoll_wait wrote `n` (at most 2) events at the start of the buffer.
      let ready = unsafe { std::slice::from_raw_parts(events.as_ptr().cast::<libc::epoll_event>(), n as usize) };
      let mounts = ready.iter().any(|e| e.u64 == MOUNTS);
      (ready.iter().any(|e| e.u64 != MOUNTS), mounts)
    }

    pub fn add_watch(&self, path: &Path, mask: u32) -> Option<i32> {
      let c = CString::new(path.as_os_str().as_bytes()).ok()?;
      // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
      let wd = unsafe { libc::inotify_add_watch(self.fd, c.as_ptr(), mask) };
      (wd >= 0).then_some(wd)
    }

    pub fn rm_watch(&self, wd: i32) {
      // SAFETY: plain syscall; an already-removed descriptor only yields EINVAL.
      unsafe { libc::inotify_rm_watch(self.fd, wd) };
    }

    pub fn drain(&self, mut on: impl FnMut(&Event)) {
      const HEADER: usize = std::mem::size_of::<libc::inotify_event>();
      // A header and the longest name the kernel pads to (NAME_MAX + its NUL).
      const LARGEST_EVENT: usize = HEADER + 256;
      // Aligned for `inotify_event`; room for many events with names up to NAME_MAX. Left
      // uninitialised: zeroing 8 KiB would cost more than the read that usually finds nothing.
      let mut buf = std::mem::MaybeUninit::<[u64; 1024]>::uninit();
      // An empty queue is the common case: told without reading.
      let (queued, mounts) = self.ready();
      if mounts {
        on(&Event::Mounts);
      }
      if !queued {
        return;
      }
      loop {
        // SAFETY: reads into `buf`, of the length given.
        let n = unsafe { libc::read(self.fd, buf.as_mut_ptr().cast(), std::mem::size_of_val(&buf)) };
        if n <= 0 {
          // EAGAIN: the queue is empty (EINTR cannot happen on a non-blocking read).
          return;
        }
        // The kernel hands out as many whole events as fit: if one more of the largest kind
        // would have fit, the queue was empty when it was read, and reading again to get
        // EAGAIN would only cost another syscall.
        let drained = n as usize + LARGEST_EVENT <= std::mem::size_of_val(&buf);
        // SAFETY: the kernel wrote `n` initialised bytes of whole events at the start of `buf`.
        let bytes = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n as usize) };
        let mut at = 0;
        while at + HEADER <= bytes.len() {
          // SAFETY: a whole header lies at `at`; read_unaligned needs no alignment.
          let ev: libc::inotify_event = unsafe { std::ptr::read_unaligned(bytes[at..].as_ptr().cast()) };
          let name_end = (at + HEADER + ev.len as usize).min(bytes.len());
          let raw = &bytes[at + HEADER..name_end];
          let name = OsStr::from_bytes(&raw[..raw.iter().position(|b| *b == 0).unwrap_or(raw.len())]);
          at = name_end;
          if ev.mask & libc::IN_Q_OVERFLOW != 0 {
            on(&Event::Overflow);
          } else if ev.mask & libc::IN_IGNORED != 0 {
            on(&Event::Dropped(ev.wd));
          } else if ev.mask & SELF_EVENTS != 0 && ev.len == 0 {
            on(&Event::Gone(ev.wd));
          } else {
            on(&Event::Named(ev.wd, name));
          }
        }
        if drained {
          return;
        }
      }
    }
  }

  impl Drop for Inotify {
    fn drop(&mut self) {
      // SAFETY: the fds are ours and closed once.
      unsafe {
        libc::close(self.ready);
        libc::close(self.mounts);
        libc::close(self.fd);
      }
    }
  }
}

#[cfg(not(target_os = "linux"))]
mod sys {
  use super::Event;
  use std::path::Path;

  pub const AVAILABLE: bool = false;
  pub const DIR_MASK: u32 = 0;
  pub const ANCESTOR_MASK: u32 = 0;

  /// No kernel notification that can be polled exactly here: callers `stat`.
  pub enum Inotify {}

  impl Inotify {
    pub fn new() -> Option<Inotify> {
      None
    }
    pub fn add_watch(&self, _: &Path, _: u32) -> Option<i32> {
      match *self {}
    }
    pub fn rm_watch(&self, _: i32) {
      match *self {}
    }
    pub fn drain(&self, _: impl FnMut(&Event)) {
      match *self {}
    }
  }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
  use super::*;
  use std::fs;

  fn hits(n: &mut Notices, w: &Watch) -> (bool, bool) {
    let (mut hit, mut broken) = (false, false);
    n.poll(|e| {
      hit |= w.hit(e);
      broken |= w.broken(e);
    });
    (hit, broken)
  }

  #[test]
  fn sees_every_way_the_name_changes_and_ignores_neighbours() {
    let d = tempfile::tempdir().expect("tempdir");
    let dir = fs::canonicalize(d.path()).expect("canon");
    let file = dir.join("c.json");
    let mut n = Notices::new();
    let w = n.watch(&file).expect("inotify is available here");
    assert_eq!(hits(&mut n, &w), (false, false), "nothing happened yet");
    fs::write(dir.join("other.json"), b"{}").expect("write");
    fs::write(dir.join("c.json.lock"), b"").expect("write");
    assert_eq!(hits(&mut n, &w), (false, false), "neighbours are not the file");
    fs::write(&file, b"{}").expect("create");
    assert_eq!(hits(&mut n, &w), (true, false), "created");
    assert_eq!(hits(&mut n, &w), (false, false), "drained");
    let mut f = fs::OpenOptions::new().append(true).open(&file).expect("open");
    std::io::Write::write_all(&mut f, b" ").expect("append");
    drop(f);
    assert_eq!(hits(&mut n, &w), (true, false), "written in place");
    fs::write(dir.join("tmp"), b"{\"a\":1}").expect("tmp");
    fs::rename(dir.join("tmp"), &file).expect("rename");
    assert_eq!(hits(&mut n, &w), (true, false), "replaced by rename");
    fs::remove_file(&file).expect("rm");
    assert_eq!(hits(&mut n, &w), (true, false), "removed");
    n.unwatch(w);
    assert!(n.refs.is_empty(), "every descriptor released");
  }

  #[test]
  fn a_mount_table_change_breaks_every_watch() {
    let w = Watch { dir: 1, ancestors: vec![2], name: "c.json".into() };
    assert!(w.hit(&Event::Mounts) && w.broken(&Event::Mounts));
    assert!(w.hit(&Event::Named(1, OsStr::new("c.json"))) && !w.broken(&Event::Named(1, OsStr::new("c.json"))));
  }

  #[test]
  fn an_instance_holds_the_mount_table_and_reports_nothing_while_it_is_unchanged() {
    let mut n = Notices::new();
    let d = tempfile::tempdir().expect("tempdir");
    let dir = fs::canonicalize(d.path()).expect("canon");
    let w = n.watch(&dir.join("c.json")).expect("inotify and /proc/self/mountinfo are here");
    assert_eq!(hits(&mut n, &w), (false, false), "no mount, no event");
    n.unwatch(w);
  }

  #[test]
  fn a_deleted_or_moved_directory_breaks_the_watch() {
    let d = tempfile::tempdir().expect("tempdir");
    let root = fs::canonicalize(d.path()).expect("canon");
    let dir = root.join("a/b");
    fs::create_dir_all(&dir).expect("mkdir");
    let mut n = Notices::new();
    let w = n.watch(&dir.join("c.json")).expect("watch");
    fs::remove_dir(&dir).expect("rmdir");
    assert_eq!(hits(&mut n, &w), (true, true), "directory deleted");
    n.unwatch(w);

    fs::create_dir_all(&dir).expect("mkdir");
    let w = n.watch(&dir.join("c.json")).expect("watch");
    fs::rename(root.join("a"), root.join("a2")).expect("mv ancestor");
    assert_eq!(hits(&mut n, &w), (true, true), "an ancestor moved away");
    n.unwatch(w);
  }

  #[test]
  fn no_watch_where_it_could_not_be_exact() {
    let d = tempfile::tempdir().expect("tempdir");
    let root = fs::canonicalize(d.path()).expect("canon");
    fs::create_dir(root.join("real")).expect("mkdir");
    std::os::unix::fs::symlink(root.join("real"), root.join("link")).expect("symlink");
    let mut n = Notices::new();
    assert!(n.watch(&root.join("link/c.json")).is_none(), "symlink in the path");
    assert!(n.watch(&root.join("missing/c.json")).is_none(), "no such directory");
    assert!(n.watch(Path::new("relative/c.json")).is_none(), "relative path");
    assert!(Notices::inactive().watch(&root.join("real/c.json")).is_none(), "inactive");
    assert!(n.refs.is_empty(), "nothing left armed");
  }
}
