//! Launching a real QEMU for the tests and benchmarks.
#![allow(dead_code, unreachable_pub)]

use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use rustix::io::{FdFlags, fcntl_setfd};
use rustix::process::{Pid, Signal, kill_process};

/// The QEMU binary: `$QEMUKIT_QEMU`, else `qemu-system-x86_64` on `PATH`.
///
/// # Panics
///
/// When it is missing, with the command that installs it: these tests
/// never pass silently without QEMU.
pub fn qemu_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("QEMUKIT_QEMU") {
        return PathBuf::from(path);
    }
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("qemu-system-x86_64"))
            .find(|candidate| candidate.is_file())
    });
    match found {
        Some(path) => path,
        None => panic!(
            "qemu-system-x86_64 is not installed: these tests need a real QEMU. \
             Install it with `cargo xtask deps` (QEMU 10.0 from bookworm-backports; as \
             root, else it prints the commands to run), or point QEMUKIT_QEMU at a binary \
             (`cargo xtask qemu path 7.2` unpacks QEMU 7.2 beside it)."
        ),
    }
}

/// The version the binary under test reports (`--version`), as the
/// greeting spells it: what the tests expect instead of a fixed release.
pub fn qemu_version() -> qmp_proto::Version {
    let binary = qemu_binary();
    match qemu_cmdline::Probe::version(&binary, std::time::Duration::from_secs(30)) {
        Ok(v) => qmp_proto::Version::new(v.major, v.minor, v.micro),
        Err(error) => panic!("cannot read the version of {}: {error}", binary.display()),
    }
}

/// A QEMU `-machine none` process, killed and reaped on drop (also when a
/// test fails).
#[derive(Debug)]
pub struct Qemu {
    child: Child,
}

/// The arguments every test QEMU gets.
const BASE: [&str; 6] = [
    "-machine",
    "none",
    "-nodefaults",
    "-display",
    "none",
    "-no-user-config",
];

impl Qemu {
    /// Starts QEMU with its QMP monitor on one end of a socket pair and
    /// returns the guard and our end. Needs a tokio runtime.
    pub fn with_socketpair() -> (Qemu, tokio::net::UnixStream) {
        let (qemu, mut ends) = Self::with_socketpairs(1);
        let Some(ours) = ends.pop() else {
            panic!("no socket");
        };
        if let Err(error) = ours.set_nonblocking(true) {
            panic!("cannot make the socket non-blocking: {error}");
        }
        match tokio::net::UnixStream::from_std(ours) {
            Ok(stream) => (qemu, stream),
            Err(error) => panic!("cannot register the socket with tokio: {error}"),
        }
    }

    /// Starts QEMU with `count` QMP monitors, each on one end of a socket
    /// pair, and returns our (blocking) ends in order.
    pub fn with_socketpairs(count: usize) -> (Qemu, Vec<std::os::unix::net::UnixStream>) {
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        let mut command = Command::new(qemu_binary());
        command.args(BASE);
        for n in 0..count {
            let (mine, qemus) = match std::os::unix::net::UnixStream::pair() {
                Ok(pair) => pair,
                Err(error) => panic!("cannot create a socket pair: {error}"),
            };
            command
                .arg("-chardev")
                .arg(format!("socket,id=mon{n},fd={}", qemus.as_raw_fd()))
                .arg("-mon")
                .arg(format!("chardev=mon{n},mode=control"));
            ours.push(mine);
            theirs.push(qemus);
        }
        let fds: Vec<i32> = theirs.iter().map(AsRawFd::as_raw_fd).collect();
        // SAFETY: the closure runs in the child between fork and exec and
        // only calls fcntl, which is async-signal-safe; the fds stay open in
        // the parent until after the spawn.
        unsafe {
            command.pre_exec(move || {
                for &fd in &fds {
                    let fd = BorrowedFd::borrow_raw(fd);
                    fcntl_setfd(fd, FdFlags::empty()).map_err(std::io::Error::from)?;
                }
                Ok(())
            });
        }
        let qemu = Self::spawn(command);
        drop(theirs);
        (qemu, ours)
    }

    /// Starts QEMU with its monitor configured by `chardev` (a `-chardev`
    /// value with `id=mon`).
    pub fn with_chardev(chardev: &str) -> Qemu {
        let mut command = Command::new(qemu_binary());
        command
            .args(BASE)
            .args(["-chardev", chardev])
            .args(["-mon", "chardev=mon,mode=control"]);
        Self::spawn(command)
    }

    fn spawn(mut command: Command) -> Qemu {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        match command.spawn() {
            Ok(child) => Qemu { child },
            Err(error) => panic!("cannot start {:?}: {error}", command.get_program()),
        }
    }

    fn signal(&self, signal: Signal) {
        let pid = i32::try_from(self.child.id()).ok().and_then(Pid::from_raw);
        let Some(pid) = pid else {
            panic!("QEMU's pid does not fit");
        };
        if let Err(error) = kill_process(pid, signal) {
            panic!("cannot signal QEMU: {error}");
        }
    }

    /// SIGSTOP: QEMU stops reading and answering.
    pub fn pause(&self) {
        self.signal(Signal::STOP);
    }

    /// SIGKILL, now.
    pub fn kill(&self) {
        self.signal(Signal::KILL);
    }

    /// Waits for QEMU to exit by itself.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        match self.child.wait() {
            Ok(status) => status,
            Err(error) => panic!("cannot wait for QEMU: {error}"),
        }
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        // Already exited is fine; never panic in Drop.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
