//! Spawning QEMU in its own process group, and the guard that kills and
//! reaps it.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use rustix::io::{FdFlags, fcntl_getfd, fcntl_setfd};
use rustix::process::{Pid, PidfdFlags, Signal};
use tokio::io::unix::AsyncFd;

use crate::exit::ExitInfo;
use crate::spawner;

/// What to run and which descriptors it inherits.
#[derive(Debug)]
pub(crate) struct SpawnSpec {
    /// The program (`argv[0]`, looked up in `PATH`) and its arguments.
    pub(crate) argv: Vec<OsString>,
    /// Descriptors the child inherits under the same numbers (the argv
    /// names them, e.g. `fd=7`). Every other descriptor is closed on exec.
    pub(crate) pass_fds: Vec<RawFd>,
    /// Receives the child's stdout and stderr.
    pub(crate) log: File,
}

/// A child just spawned, not yet bound to an async runtime. Dropping it
/// kills its process group.
#[derive(Debug)]
pub(crate) struct Spawned {
    child: Option<Child>,
    pidfd: Option<OwnedFd>,
}

/// Spawns `spec` from the long-lived spawner thread (see `spawner`).
pub(crate) async fn spawn(spec: SpawnSpec) -> io::Result<Spawned> {
    spawner::on_spawner_thread(move || spawn_here(spec)).await?
}

fn spawn_here(spec: SpawnSpec) -> io::Result<Spawned> {
    let Some((program, args)) = spec.argv.split_first() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "empty command line",
        ));
    };
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(spec.log.try_clone()?)
        .stderr(spec.log)
        .process_group(0);
    let parent = rustix::process::getpid();
    let pass_fds = spec.pass_fds;
    let close_fds = open_fds_except(&pass_fds)?;
    // SAFETY: the closure runs in the forked child before exec, where only
    // async-signal-safe work is allowed. It makes raw syscalls (prctl,
    // getppid, fcntl) through rustix, iterates vectors allocated before the
    // fork, and neither allocates, locks nor touches shared state. The raw
    // descriptors it borrows are valid or simply make fcntl fail with EBADF,
    // which is ignored for the close-on-exec sweep.
    unsafe {
        command.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
            // The parent may have died between fork and prctl: then the
            // death signal never comes, so give up now.
            if rustix::process::getppid() != Some(parent) {
                return Err(io::Error::from_raw_os_error(
                    rustix::io::Errno::SRCH.raw_os_error(),
                ));
            }
            for &fd in &close_fds {
                let fd = BorrowedFd::borrow_raw(fd);
                let _closed_on_exec = fcntl_setfd(fd, FdFlags::CLOEXEC);
            }
            for &fd in &pass_fds {
                let fd = BorrowedFd::borrow_raw(fd);
                let flags = fcntl_getfd(fd)?;
                fcntl_setfd(fd, flags - FdFlags::CLOEXEC)?;
            }
            Ok(())
        })
    };
    let child = command.spawn()?;
    let mut spawned = Spawned {
        child: Some(child),
        pidfd: None,
    };
    let pid = spawned.pid();
    spawned.pidfd = Some(rustix::process::pidfd_open(pid, PidfdFlags::empty())?);
    Ok(spawned)
}

/// The descriptors open in this process (from `/proc/self/fd`), above
/// stderr, minus those the child must inherit.
///
/// Rust opens everything close-on-exec, but a C library in the same
/// process may not: the child marks all of these close-on-exec.
fn open_fds_except(keep: &[RawFd]) -> io::Result<Vec<RawFd>> {
    let keep: HashSet<RawFd> = keep.iter().copied().collect();
    let mut fds = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let name = entry?.file_name();
        if let Some(fd) = name.to_str().and_then(|name| name.parse::<RawFd>().ok()) {
            if fd > 2 && !keep.contains(&fd) {
                fds.push(fd);
            }
        }
    }
    Ok(fds)
}

impl Spawned {
    fn pid(&self) -> Pid {
        self.child
            .as_ref()
            .map(Pid::from_child)
            .unwrap_or(Pid::INIT)
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            kill_and_reap(child);
        }
    }
}

/// SIGKILLs the group of `child` and reaps it, in the background if it has
/// not died yet.
fn kill_and_reap(mut child: Child) {
    let pid = Pid::from_child(&child);
    if let Err(error) = rustix::process::kill_process_group(pid, Signal::KILL) {
        tracing::debug!(pid = pid.as_raw_nonzero().get(), %error, "kill of the QEMU process group failed");
    }
    match child.try_wait() {
        Ok(Some(_status)) => {}
        _ => spawner::reap_in_background(child),
    }
}

/// Registers a pidfd with the tokio reactor: it turns readable when the
/// process ends.
fn watch_pidfd(pidfd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // tokio deprecated the safe constructor because a generic `AsRawFd` may
    // close or swap its descriptor; an `OwnedFd` cannot, so it is sound here
    // and keeps this crate free of `unsafe` outside `pre_exec`.
    #[allow(deprecated)]
    AsyncFd::with_interest(pidfd, tokio::io::Interest::READABLE)
}

/// Owns a running (or exited, not yet forgotten) child: knows its exit,
/// signals its group, and kills and reaps it on drop.
#[derive(Debug)]
pub(crate) struct ChildGuard {
    pid: Pid,
    state: Mutex<State>,
    signalled: AtomicBool,
    pidfd: AsyncFd<OwnedFd>,
}

#[derive(Debug)]
struct State {
    /// `None` once reaped (or handed to the reaper by drop).
    child: Option<Child>,
    exit: Option<ExitInfo>,
}

impl ChildGuard {
    /// Binds a spawned child to the current tokio runtime.
    pub(crate) fn new(mut spawned: Spawned) -> io::Result<Self> {
        let pid = spawned.pid();
        let pidfd = spawned
            .pidfd
            .take()
            .ok_or_else(|| io::Error::other("spawned child has no pidfd"))?;
        // On error `spawned` (still holding the child) kills it.
        let pidfd = watch_pidfd(pidfd)?;
        let child = spawned.child.take();
        Ok(Self {
            pid,
            state: Mutex::new(State { child, exit: None }),
            signalled: AtomicBool::new(false),
            pidfd,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid.as_raw_nonzero().get().unsigned_abs()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a panic elsewhere; the state is still
        // consistent (every update is a single assignment).
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The exit, if the child has ended; reaps it without blocking.
    pub(crate) fn try_exit(&self) -> io::Result<Option<ExitInfo>> {
        let mut state = self.state();
        if let Some(exit) = state.exit {
            return Ok(Some(exit));
        }
        let Some(child) = state.child.as_mut() else {
            return Ok(None);
        };
        let Some(status) = child.try_wait()? else {
            return Ok(None);
        };
        let exit = ExitInfo::from_std(status, self.signalled.load(Ordering::SeqCst));
        state.exit = Some(exit);
        state.child = None;
        drop(state);
        if exit.killed_unexpectedly() {
            tracing::warn!(pid = self.pid(), %exit, "QEMU was killed by a signal qemu-machine did not send");
        } else {
            tracing::debug!(pid = self.pid(), %exit, "QEMU exited");
        }
        Ok(Some(exit))
    }

    /// The exit already observed, without polling the process.
    pub(crate) fn exit_info(&self) -> Option<ExitInfo> {
        self.state().exit
    }

    /// Waits until the child ends and reaps it. Cancel-safe; add a timeout
    /// around it.
    pub(crate) async fn wait_exit(&self) -> io::Result<ExitInfo> {
        loop {
            if let Some(exit) = self.try_exit()? {
                return Ok(exit);
            }
            let mut ready = self.pidfd.readable().await?;
            if let Some(exit) = self.try_exit()? {
                return Ok(exit);
            }
            ready.clear_ready();
        }
    }

    /// Sends `signal` to the child's whole process group, unless the child
    /// is already reaped (its group id could then belong to someone else).
    pub(crate) fn signal_group(&self, signal: Signal) -> io::Result<()> {
        let state = self.state();
        if state.child.is_none() {
            return Ok(());
        }
        self.signalled.store(true, Ordering::SeqCst);
        match rustix::process::kill_process_group(self.pid, signal) {
            // ESRCH: every member already ended (the leader is a zombie).
            Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// The pidfd, for callers that want to poll it themselves.
    #[cfg(test)]
    pub(crate) fn pidfd(&self) -> &OwnedFd {
        self.pidfd.get_ref()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let child = self.state().child.take();
        if let Some(child) = child {
            self.signalled.store(true, Ordering::SeqCst);
            kill_and_reap(child);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn spec(argv: &[&str], log: File) -> SpawnSpec {
        SpawnSpec {
            argv: argv.iter().map(OsString::from).collect(),
            pass_fds: Vec::new(),
            log,
        }
    }

    #[tokio::test]
    async fn exit_code_and_output_reach_the_log() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let log_path = dir.path().join("log");
        let log = File::create(&log_path)?;
        let spawned = spawn(spec(&["sh", "-c", "echo out; echo err >&2; exit 3"], log)).await?;
        let child = ChildGuard::new(spawned)?;
        let exit = tokio::time::timeout(Duration::from_secs(10), child.wait_exit()).await??;
        assert_eq!(exit.code(), Some(3));
        assert!(!exit.signal_sent_by_us());
        assert_eq!(std::fs::read_to_string(&log_path)?, "out\nerr\n");
        Ok(())
    }

    #[tokio::test]
    async fn own_group_and_signal_by_us() -> io::Result<()> {
        let log = tempfile::tempfile()?;
        let spawned = spawn(spec(&["sleep", "30"], log)).await?;
        let child = ChildGuard::new(spawned)?;
        let pid = Pid::from_raw(i32::try_from(child.pid()).map_err(io::Error::other)?)
            .ok_or_else(|| io::Error::other("pid 0"))?;
        assert_eq!(rustix::process::getpgid(Some(pid))?, pid);
        assert!(child.try_exit()?.is_none());
        child.signal_group(Signal::KILL)?;
        let exit = tokio::time::timeout(Duration::from_secs(10), child.wait_exit()).await??;
        assert_eq!(exit.signal(), Some(9));
        assert!(exit.signal_sent_by_us());
        // Idempotent after the reap.
        child.signal_group(Signal::KILL)?;
        assert_eq!(child.exit_info(), Some(exit));
        assert!(fcntl_getfd(child.pidfd()).is_ok());
        Ok(())
    }

    #[tokio::test]
    async fn foreign_signal_is_reported() -> io::Result<()> {
        let log = tempfile::tempfile()?;
        let child = ChildGuard::new(spawn(spec(&["sleep", "30"], log)).await?)?;
        let pid = Pid::from_raw(i32::try_from(child.pid()).map_err(io::Error::other)?)
            .ok_or_else(|| io::Error::other("pid 0"))?;
        rustix::process::kill_process(pid, Signal::TERM)?;
        let exit = tokio::time::timeout(Duration::from_secs(10), child.wait_exit()).await??;
        assert_eq!(exit.signal(), Some(15));
        assert!(exit.killed_unexpectedly());
        Ok(())
    }

    #[tokio::test]
    async fn only_passed_fds_are_inherited() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let log_path = dir.path().join("log");
        let log = File::create(&log_path)?;
        let (passed, _peer) = std::os::unix::net::UnixStream::pair()?;
        let (not_passed, _peer2) = std::os::unix::net::UnixStream::pair()?;
        let passed_fd = std::os::fd::AsRawFd::as_raw_fd(&passed);
        let other_fd = std::os::fd::AsRawFd::as_raw_fd(&not_passed);
        let script = format!(
            "test -e /proc/self/fd/{passed_fd} && echo passed; test -e /proc/self/fd/{other_fd} || echo closed"
        );
        let mut spec = spec(&["sh", "-c", &script], log);
        spec.pass_fds.push(passed_fd);
        let child = ChildGuard::new(spawn(spec).await?)?;
        let exit = tokio::time::timeout(Duration::from_secs(10), child.wait_exit()).await??;
        assert!(exit.success());
        assert_eq!(std::fs::read_to_string(&log_path)?, "passed\nclosed\n");
        // The parent's copy keeps its close-on-exec flag.
        assert!(fcntl_getfd(&passed)?.contains(FdFlags::CLOEXEC));
        Ok(())
    }

    #[tokio::test]
    async fn missing_program_is_a_spawn_error() -> io::Result<()> {
        let log = tempfile::tempfile()?;
        let result = spawn(spec(&["/nonexistent/qemu-system-x86_64"], log)).await;
        assert_eq!(
            result.map(|_| ()).map_err(|e| e.kind()),
            Err(io::ErrorKind::NotFound)
        );
        Ok(())
    }

    #[tokio::test]
    async fn dropping_the_guard_kills_the_group() -> io::Result<()> {
        let log = tempfile::tempfile()?;
        let child = ChildGuard::new(spawn(spec(&["sleep", "30"], log)).await?)?;
        let pid = Pid::from_raw(i32::try_from(child.pid()).map_err(io::Error::other)?)
            .ok_or_else(|| io::Error::other("pid 0"))?;
        let watch = watch_pidfd(rustix::process::pidfd_open(pid, PidfdFlags::empty())?)?;
        drop(child);
        // The pidfd turns readable when the process has ended.
        let ready = tokio::time::timeout(Duration::from_secs(10), watch.readable()).await;
        assert!(ready.is_ok(), "child survived its guard");
        Ok(())
    }
}
