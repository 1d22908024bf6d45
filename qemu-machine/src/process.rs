//! Spawning QEMU in its own process group, and the guard that kills and
//! reaps it.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use qemu_cmdline::InheritFd;
use rustix::process::{Pid, PidfdFlags, Signal};
use tokio::io::unix::AsyncFd;

use crate::child_fds::{self, Sweep};
use crate::exit::ExitInfo;
use crate::guardian::{self, Guardian};
use crate::reap;
use crate::spawner;

/// What to run and which descriptors it inherits.
#[derive(Debug)]
pub(crate) struct SpawnSpec {
    /// The program (`argv[0]`, looked up in `PATH`) and its arguments.
    pub(crate) argv: Vec<OsString>,
    /// Descriptors the child inherits under their numbers (the argv names
    /// them, e.g. `fd=7`). Every other descriptor is closed on exec.
    pub(crate) inherit: Vec<InheritFd>,
    /// Receives the child's stdout and stderr.
    pub(crate) log: File,
    /// Whether `argv[0]` is a wrapper that runs QEMU as its child: then a
    /// [guardian](crate::guardian) kills the group if this process dies.
    pub(crate) wrapped: bool,
}

/// A child just spawned, not yet bound to an async runtime. Dropping it
/// kills its process group.
#[derive(Debug)]
pub(crate) struct Spawned {
    child: Option<Child>,
    pidfd: Option<OwnedFd>,
    guardian: Option<Guardian>,
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
    // SAFETY: the closure runs in the forked child before exec, where only
    // async-signal-safe work is allowed. It makes raw system calls (prctl,
    // getppid, close_range or a getdents walk into a stack buffer, fcntl)
    // and neither allocates, locks nor touches shared state.
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
            // Whatever this process holds (a C library may not open with
            // O_CLOEXEC) stays out of QEMU; the inherited fds' own hooks,
            // added below, run after this one.
            child_fds::sweep(3, &[], Sweep::CloseOnExec)
        })
    };
    for fd in spec.inherit {
        fd.pass_to(&mut command);
    }
    let child = command.spawn()?;
    // Our copies of the inherited fds go with the command: QEMU's exit is
    // then EOF on our ends.
    drop(command);
    let pid = Pid::from_child(&child);
    let mut spawned = Spawned {
        child: Some(child),
        pidfd: None,
        guardian: None,
    };
    spawned.pidfd = Some(rustix::process::pidfd_open(pid, PidfdFlags::empty())?);
    if spec.wrapped {
        spawned.guardian = Some(guardian::start(pid)?);
    }
    Ok(spawned)
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
            kill_group(&child);
            match self.pidfd.take() {
                Some(pidfd) => reap::child_later(child, pidfd),
                None => {
                    let mut child = child;
                    let _status = child.wait();
                }
            }
        }
    }
}

/// SIGKILLs the process group of `child`, which is not reaped yet.
fn kill_group(child: &Child) {
    let pid = Pid::from_child(child);
    if let Err(error) = rustix::process::kill_process_group(pid, Signal::KILL) {
        tracing::debug!(pid = pid.as_raw_nonzero().get(), %error, "kill of the QEMU process group failed");
    }
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
    /// Dropped (killed and reaped) once the child is reaped.
    guardian: Option<Guardian>,
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
        let pidfd = reap::watch_pidfd(pidfd)?;
        let child = spawned.child.take();
        let guardian = spawned.guardian.take();
        Ok(Self {
            pid,
            state: Mutex::new(State {
                child,
                exit: None,
                guardian,
            }),
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
        let guardian = state.guardian.take();
        drop(state);
        drop(guardian);
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
        let (child, guardian) = {
            let mut state = self.state();
            (state.child.take(), state.guardian.take())
        };
        if let Some(child) = child {
            self.signalled.store(true, Ordering::SeqCst);
            kill_group(&child);
            match self.pidfd.get_ref().try_clone() {
                Ok(pidfd) => reap::child_later(child, pidfd),
                Err(error) => {
                    tracing::warn!(%error, "could not duplicate QEMU's pidfd; reaping it here");
                    let mut child = child;
                    let _status = child.wait();
                }
            }
        }
        drop(guardian);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rustix::io::fcntl_getfd;

    use super::*;

    fn spec(argv: &[&str], log: File) -> SpawnSpec {
        SpawnSpec {
            argv: argv.iter().map(OsString::from).collect(),
            inherit: Vec::new(),
            log,
            wrapped: false,
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
        // The pidfd stays open (close-on-exec) until the guard is dropped.
        let pidfd = fcntl_getfd(child.pidfd());
        assert!(
            matches!(pidfd, Ok(flags) if flags.contains(rustix::io::FdFlags::CLOEXEC)),
            "{pidfd:?}"
        );
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
        let (passed, mut passed_peer) = std::os::unix::net::UnixStream::pair()?;
        let (not_passed, _peer2) = std::os::unix::net::UnixStream::pair()?;
        passed_peer.set_read_timeout(Some(Duration::from_secs(10)))?;
        let passed = InheritFd::from(passed);
        let passed_fd = passed.number();
        let other_fd = std::os::fd::AsRawFd::as_raw_fd(&not_passed);
        let script = format!(
            "test -e /proc/self/fd/{passed_fd} && echo passed; test -e /proc/self/fd/{other_fd} || echo closed"
        );
        let mut spec = spec(&["sh", "-c", &script], log);
        spec.inherit.push(passed);
        let child = ChildGuard::new(spawn(spec).await?)?;
        let exit = tokio::time::timeout(Duration::from_secs(10), child.wait_exit()).await??;
        assert!(exit.success());
        assert_eq!(std::fs::read_to_string(&log_path)?, "passed\nclosed\n");
        // The parent's copy went with the command: the child's exit is EOF.
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut passed_peer, &mut rest)?;
        assert!(rest.is_empty());
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
        let watch = reap::watch_pidfd(rustix::process::pidfd_open(pid, PidfdFlags::empty())?)?;
        drop(child);
        // The pidfd turns readable when the process has ended.
        let ready = tokio::time::timeout(Duration::from_secs(10), watch.readable()).await;
        assert!(
            matches!(&ready, Ok(Ok(_))),
            "child survived its guard: {ready:?}"
        );
        Ok(())
    }
}
