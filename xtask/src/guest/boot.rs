//! Proof that the guest boots: QEMU with GUEST.md's command line, the
//! serial console on stdio, read until the ready marker.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use super::Guest;
use crate::Result;

/// The line the guest prints on ttyS0 right before its shell starts.
pub(crate) const READY_MARKER: &str = "qemukit-guest-ready";
/// The kernel command line of GUEST.md, plus `no_timer_check`: on a loaded
/// host the IO-APIC timer probe can fail under TCG and panic the kernel.
pub(crate) const KERNEL_APPEND: &str = "console=ttyS0 no_timer_check panic=-1 quiet";

/// What to boot.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BootOptions {
    /// Boot the qemu-ga initramfs and check the agent answers.
    pub(crate) agent: bool,
    /// For each wait: the boot, a command, the power-off.
    pub(crate) timeout: Duration,
}

/// Measured during a boot check.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BootReport {
    pub(crate) to_ready: Duration,
    pub(crate) agent_answered: Option<Duration>,
    pub(crate) to_exit: Duration,
}

/// The GUEST.md command line, minus the console and any devices.
pub(crate) fn base_args(guest: &Guest, agent: bool) -> Vec<String> {
    let initrd = if agent {
        &guest.agent_initrd
    } else {
        &guest.initrd
    };
    [
        "-M",
        "pc,accel=tcg",
        "-m",
        "256",
        "-nodefaults",
        "-display",
        "none",
        "-no-reboot",
    ]
    .iter()
    .map(|arg| (*arg).to_owned())
    .chain([
        "-kernel".to_owned(),
        guest.kernel.display().to_string(),
        "-initrd".to_owned(),
        initrd.display().to_string(),
        "-append".to_owned(),
        KERNEL_APPEND.to_owned(),
    ])
    .collect()
}

/// Boots the guest, runs a command on its console, (optionally) pings
/// qemu-ga, powers it off from its shell and waits for QEMU to exit 0.
pub(crate) fn boot_check(qemu: &Path, guest: &Guest, options: BootOptions) -> Result<BootReport> {
    let socket_dir = guest.dir.join(format!("boot-check-{}", std::process::id()));
    std::fs::create_dir_all(&socket_dir)
        .map_err(|err| format!("creating {}: {err}", socket_dir.display()))?;
    let result = boot_in(qemu, guest, options, &socket_dir);
    // Best effort: the socket directory holds only QEMU's socket.
    let _ = std::fs::remove_dir_all(&socket_dir);
    result
}

fn boot_in(
    qemu: &Path,
    guest: &Guest,
    options: BootOptions,
    socket_dir: &Path,
) -> Result<BootReport> {
    let socket = socket_dir.join("qga.sock");
    let mut command = Command::new(qemu);
    command
        .args(base_args(guest, options.agent))
        .args(["-serial", "stdio"]);
    if options.agent {
        command.args([
            "-device".to_owned(),
            "virtio-serial-pci".to_owned(),
            "-chardev".to_owned(),
            format!("socket,id=qga,path={},server=on,wait=off", socket.display()),
            "-device".to_owned(),
            "virtserialport,chardev=qga,name=org.qemu.guest_agent.0".to_owned(),
        ]);
    }
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut qemu = Qemu::spawn(&mut command)?;
    qemu.expect(READY_MARKER, options.timeout)?;
    let to_ready = started.elapsed();
    eprintln!("xtask: guest ready after {to_ready:.2?}");
    // The marker is computed by the guest, so the echo of the typed line
    // cannot match it.
    qemu.send("echo @@$((40+2))@@")?;
    qemu.expect("@@42@@", options.timeout)?;
    let agent_answered = if options.agent {
        ping_agent(&socket, options.timeout)?;
        Some(started.elapsed() - to_ready)
    } else {
        None
    };
    let powering_off = Instant::now();
    qemu.send("poweroff -f")?;
    qemu.wait_exit(options.timeout)?;
    Ok(BootReport {
        to_ready,
        agent_answered,
        to_exit: powering_off.elapsed(),
    })
}

/// Sends `guest-ping` until qemu-ga answers (it starts about when the shell does).
fn ping_agent(socket: &PathBuf, timeout: Duration) -> Result {
    let deadline = Instant::now() + timeout;
    let mut stream = UnixStream::connect(socket)
        .map_err(|err| format!("connecting to the agent socket {}: {err}", socket.display()))?;
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .map_err(|err| format!("agent socket: {err}"))?;
    let mut answer = Vec::new();
    while Instant::now() < deadline {
        stream
            .write_all(b"{\"execute\":\"guest-ping\"}\n")
            .map_err(|err| format!("writing to the agent: {err}"))?;
        let mut chunk = [0; 4096];
        match stream.read(&mut chunk) {
            Ok(0) => return Err("the agent socket closed".into()),
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(err) => return Err(format!("reading from the agent: {err}")),
        }
        if String::from_utf8_lossy(&answer).contains("\"return\"") {
            return Ok(());
        }
    }
    Err(format!(
        "qemu-ga did not answer guest-ping within {timeout:?}; it sent: {}",
        String::from_utf8_lossy(&answer)
    ))
}

/// A QEMU child that is killed and reaped when dropped, with its stdout
/// drained by a thread into a channel.
struct Qemu {
    child: Child,
    stdin: Option<ChildStdin>,
    output: Receiver<Vec<u8>>,
    console: Vec<u8>,
    stderr: Receiver<Vec<u8>>,
    searched: usize,
}

impl Qemu {
    fn spawn(command: &mut Command) -> Result<Self> {
        let mut child = command
            .spawn()
            .map_err(|err| format!("could not start {:?}: {err}", command.get_program()))?;
        let stdin = child.stdin.take();
        let output = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        Ok(Self {
            child,
            stdin,
            output,
            console: Vec::new(),
            stderr,
            searched: 0,
        })
    }

    /// Reads the console until `needle` appears after what earlier
    /// expects consumed.
    fn expect(&mut self, needle: &str, timeout: Duration) -> Result {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(at) = find(&self.console[self.searched..], needle.as_bytes()) {
                self.searched += at + needle.len();
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(chunk) => self.console.extend_from_slice(&chunk),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(self.failure(&format!("no `{needle}` within {timeout:?}")));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().map(|s| s.to_string()).unwrap_or_default();
                    return Err(self.failure(&format!("QEMU exited ({status}) before `{needle}`")));
                }
            }
        }
    }

    fn send(&mut self, line: &str) -> Result {
        let stdin = self.stdin.as_mut().ok_or("QEMU's stdin is closed")?;
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .map_err(|err| format!("writing to the guest console: {err}"))
    }

    /// Waits for QEMU to close its stdout (it exits), then for a 0 exit.
    fn wait_exit(&mut self, timeout: Duration) -> Result {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(chunk) => self.console.extend_from_slice(&chunk),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(self.failure(&format!("QEMU did not exit within {timeout:?}")));
                }
            }
        }
        let status = self
            .child
            .wait()
            .map_err(|err| format!("waiting for QEMU: {err}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(self.failure(&format!("QEMU exited with {status}")))
        }
    }

    fn failure(&self, what: &str) -> String {
        let console = String::from_utf8_lossy(&self.console);
        let tail: String = console
            .chars()
            .rev()
            .take(3000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let stderr: Vec<u8> = self.stderr.try_iter().flatten().collect();
        format!(
            "{what}\n--- console (tail) ---\n{tail}\n--- QEMU stderr ---\n{}",
            String::from_utf8_lossy(&stderr)
        )
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        // Already exited or not: kill, then reap (quick after SIGKILL).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn drain(source: Option<impl Read + Send + 'static>) -> Receiver<Vec<u8>> {
    let (sender, receiver) = mpsc::channel();
    if let Some(mut source) = source {
        std::thread::spawn(move || {
            let mut buffer = [0; 8192];
            while let Ok(n) = source.read(&mut buffer) {
                if n == 0 || sender.send(buffer[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
    }
    receiver
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}
