//! Starting QEMU for a test, before (and beside) qemu-machine: chosen fds
//! inherited, killed when dropped.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;
use tokio::process::{Child, Command};

/// The QEMU binary the tests run: `$QEMUKIT_QEMU`, else
/// `qemu-system-x86_64` from the `PATH`.
///
/// # Panics
///
/// When the binary cannot be found, with the command that installs it.
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

/// A connected Unix socket pair: our end for tokio, and QEMU's end as a
/// plain fd to pass with [`QemuChild::spawn`] (e.g. `-chardev
/// socket,id=x,fd=N`). Both ends are close-on-exec; `spawn` clears the flag
/// in the child only. Must be called inside a tokio runtime.
pub fn socket_pair() -> io::Result<(UnixStream, OwnedFd)> {
    let (ours, theirs) = StdUnixStream::pair()?;
    ours.set_nonblocking(true)?;
    Ok((UnixStream::from_std(ours)?, OwnedFd::from(theirs)))
}

/// A QEMU process for a test: stdin null, stdout and stderr collected (see
/// [`log`](Self::log)), killed when dropped (tokio reaps it).
#[derive(Debug)]
pub struct QemuChild {
    child: Child,
    pid: u32,
    log: Arc<Mutex<Vec<u8>>>,
}

impl QemuChild {
    /// Starts [`qemu_binary`] with `args`; the fds in `inherit` stay open
    /// in QEMU under the same numbers. Must be called inside a tokio runtime.
    pub fn spawn<I, S>(args: I, inherit: &[BorrowedFd<'_>]) -> io::Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let fds: Vec<RawFd> = inherit.iter().map(AsRawFd::as_raw_fd).collect();
        let mut command = Command::new(qemu_binary());
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // SAFETY: the closure runs in the child between fork and exec and
        // only calls fcntl, which is async-signal-safe; the fds are open in
        // the parent (borrowed for this call), so they are open in the child.
        unsafe {
            command.pre_exec(move || {
                for &fd in &fds {
                    let fd = BorrowedFd::borrow_raw(fd);
                    rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
                }
                Ok(())
            });
        }
        let mut child = command.spawn()?;
        let pid = child
            .id()
            .ok_or_else(|| io::Error::other("QEMU exited at once"))?;
        let log = Arc::new(Mutex::new(Vec::new()));
        for output in [
            child
                .stdout
                .take()
                .map(|out| Box::new(out) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            child
                .stderr
                .take()
                .map(|err| Box::new(err) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        ]
        .into_iter()
        .flatten()
        {
            tokio::spawn(collect(output, Arc::clone(&log)));
        }
        Ok(Self { child, pid, log })
    }

    /// QEMU's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits up to `timeout` for QEMU to exit.
    pub async fn wait(&mut self, timeout: Duration) -> io::Result<ExitStatus> {
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("QEMU (pid {}) did not exit within {timeout:?}", self.pid),
                )
            })?
    }

    /// Kills QEMU and reaps it.
    pub async fn kill(&mut self) -> io::Result<()> {
        self.child.kill().await
    }

    /// What QEMU wrote on stdout and stderr so far.
    pub fn log(&self) -> String {
        let log = self
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        String::from_utf8_lossy(&log).into_owned()
    }
}

async fn collect(
    mut output: Box<dyn tokio::io::AsyncRead + Send + Unpin>,
    log: Arc<Mutex<Vec<u8>>>,
) {
    let mut buffer = [0; 4096];
    while let Ok(n @ 1..) = output.read(&mut buffer).await {
        log.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(&buffer[..n]);
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use tokio::io::AsyncWriteExt;

    use super::*;
    use crate::{READY_MARKER, guest};

    async fn read_until(stream: &mut UnixStream, needle: &str, timeout: Duration) -> String {
        let mut seen = Vec::new();
        let read = async {
            let mut buffer = [0; 4096];
            while !String::from_utf8_lossy(&seen).contains(needle) {
                let n = stream.read(&mut buffer).await.expect("reading from QEMU");
                assert!(n > 0, "QEMU closed the socket before `{needle}`");
                seen.extend_from_slice(&buffer[..n]);
            }
        };
        tokio::time::timeout(timeout, read)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no `{needle}` within {timeout:?}; got {}",
                    String::from_utf8_lossy(&seen)
                )
            });
        String::from_utf8_lossy(&seen).into_owned()
    }

    #[tokio::test]
    async fn qmp_over_an_inherited_socketpair() {
        let (mut qmp, theirs) = socket_pair().unwrap();
        let chardev = format!("socket,id=mon,fd={}", theirs.as_raw_fd());
        let args = [
            "-machine",
            "none",
            "-nodefaults",
            "-display",
            "none",
            "-chardev",
            &chardev,
            "-mon",
            "chardev=mon,mode=control",
        ];
        let mut qemu = QemuChild::spawn(args, &[theirs.as_fd()]).unwrap();
        drop(theirs);
        read_until(&mut qmp, "\"QMP\"", Duration::from_secs(10)).await;
        qmp.write_all(b"{\"execute\":\"qmp_capabilities\"}\r\n{\"execute\":\"quit\"}\r\n")
            .await
            .unwrap();
        read_until(&mut qmp, "SHUTDOWN", Duration::from_secs(10)).await;
        let status = qemu.wait(Duration::from_secs(10)).await.unwrap();
        assert!(
            status.success(),
            "QEMU exited with {status}: {}",
            qemu.log()
        );
    }

    #[tokio::test]
    async fn dropping_the_child_kills_qemu() {
        // QEMU inherits one end of a socket pair it never uses: the kernel
        // closes it when QEMU dies, and our end reads EOF.
        let (mut ours, theirs) = socket_pair().unwrap();
        let args = ["-machine", "none", "-nodefaults", "-display", "none"];
        let qemu = QemuChild::spawn(args, &[theirs.as_fd()]).unwrap();
        drop(theirs);
        drop(qemu);
        let mut buffer = [0; 16];
        let read = tokio::time::timeout(Duration::from_secs(10), ours.read(&mut buffer))
            .await
            .expect("QEMU still holds its fd 10 s after its guard was dropped");
        assert_eq!(read.unwrap(), 0);
    }

    #[tokio::test]
    async fn the_guest_boots_to_its_shell() {
        let guest = guest();
        let (mut console, theirs) = socket_pair().unwrap();
        let mut args = guest.args(false);
        args.push("-chardev".into());
        args.push(format!("socket,id=con,fd={}", theirs.as_raw_fd()).into());
        args.push("-serial".into());
        args.push("chardev:con".into());
        let mut qemu = QemuChild::spawn(&args, &[theirs.as_fd()]).unwrap();
        drop(theirs);
        read_until(&mut console, READY_MARKER, Duration::from_secs(60)).await;
        console
            .write_all(b"echo @@$((1000+2))@@; poweroff -f\n")
            .await
            .unwrap();
        read_until(&mut console, "@@1002@@", Duration::from_secs(30)).await;
        let status = qemu.wait(Duration::from_secs(30)).await.unwrap();
        assert!(
            status.success(),
            "QEMU exited with {status}: {}",
            qemu.log()
        );
    }
}
