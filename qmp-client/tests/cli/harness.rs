//! A QEMU with two QMP sockets, and running `qmp` with bounded waits.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::support::qemu_binary;

/// How long anything in these tests may take before it counts as hung.
pub(crate) const LIMIT: Duration = Duration::from_secs(30);

/// The binary under test.
pub(crate) const QMP: &str = env!("CARGO_BIN_EXE_qmp");

/// QEMU `-machine none` with two QMP monitors on sockets in its own temp
/// dir: `socket()` for the tool under test, `other()` for a second client.
/// Killed and reaped on drop.
#[derive(Debug)]
pub(crate) struct Vm {
    child: Child,
    dir: tempfile::TempDir,
}

impl Vm {
    pub(crate) fn start() -> Vm {
        Self::start_with(&[])
    }

    /// Also passes `extra` to QEMU.
    pub(crate) fn start_with(extra: &[&str]) -> Vm {
        let dir = match tempfile::Builder::new().prefix("qmp-cli-").tempdir() {
            Ok(dir) => dir,
            Err(error) => panic!("cannot create a temp dir: {error}"),
        };
        let mut command = Command::new(qemu_binary());
        command.args([
            "-machine",
            "none",
            "-nodefaults",
            "-display",
            "none",
            "-no-user-config",
        ]);
        for (n, name) in ["qmp.sock", "other.sock"].iter().enumerate() {
            let path = dir.path().join(name);
            command
                .arg("-chardev")
                .arg(format!(
                    "socket,id=mon{n},path={},server=on,wait=off",
                    path.display()
                ))
                .arg("-mon")
                .arg(format!("chardev=mon{n},mode=control"));
        }
        command.args(extra);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let child = match command.spawn() {
            Ok(child) => child,
            Err(error) => panic!("cannot start {:?}: {error}", command.get_program()),
        };
        let mut vm = Vm { child, dir };
        let deadline = Instant::now() + LIMIT;
        while !(vm.socket().exists() && vm.other().exists()) {
            if let Ok(Some(status)) = vm.child.try_wait() {
                panic!("QEMU exited before its QMP sockets appeared: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "QEMU's QMP sockets did not appear within {LIMIT:?}"
            );
            thread::sleep(Duration::from_millis(10));
        }
        vm
    }

    /// The monitor the tool under test talks to.
    pub(crate) fn socket(&self) -> PathBuf {
        self.dir.path().join("qmp.sock")
    }

    /// A second monitor, for another client.
    pub(crate) fn other(&self) -> PathBuf {
        self.dir.path().join("other.sock")
    }

    /// The temp dir (removed on drop).
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `qmp -s <socket> args...` and expects success.
    pub(crate) fn qmp_ok(&self, args: &[&str]) -> Ran {
        let ran = qmp_on(&self.socket(), args, None);
        assert_eq!(ran.code, Some(0), "{args:?}: {ran:?}");
        ran
    }

    /// Runs a command on the second monitor and expects success.
    pub(crate) fn other_ok(&self, args: &[&str]) -> Ran {
        let ran = qmp_on(&self.other(), args, None);
        assert_eq!(ran.code, Some(0), "{args:?} on the other monitor: {ran:?}");
        ran
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        // Already exited is fine; never panic in Drop.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a `qmp` run did.
#[derive(Debug)]
pub(crate) struct Ran {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Ran {
    /// Each stdout line parsed as JSON.
    pub(crate) fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|line| match serde_json::from_str(line) {
                Ok(value) => value,
                Err(error) => panic!("not a JSON line ({error}): {line:?} in {self:?}"),
            })
            .collect()
    }

    /// Stdout as one JSON value.
    pub(crate) fn json(&self) -> serde_json::Value {
        match serde_json::from_str(&self.stdout) {
            Ok(value) => value,
            Err(error) => panic!("stdout is not JSON ({error}): {self:?}"),
        }
    }
}

/// Runs `qmp -s socket args...` with `stdin` (or none), within [`LIMIT`].
pub(crate) fn qmp_on(socket: &Path, args: &[&str], stdin: Option<&str>) -> Ran {
    let mut command = Command::new(QMP);
    command.arg("-s").arg(socket).args(args);
    run(command, stdin)
}

/// Starts `qmp -s socket args...` in the background.
pub(crate) fn spawn_qmp(socket: &Path, args: &[&str]) -> Running {
    let mut command = Command::new(QMP);
    command.arg("-s").arg(socket).args(args);
    Running::spawn(command, None)
}

/// Runs `command` to the end within [`LIMIT`].
pub(crate) fn run(command: Command, stdin: Option<&str>) -> Ran {
    Running::spawn(command, stdin).finish()
}

/// A `qmp` process with its output being collected; killed if dropped
/// unfinished.
#[derive(Debug)]
pub(crate) struct Running {
    child: Child,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
}

impl Running {
    fn spawn(mut command: Command, stdin: Option<&str>) -> Running {
        // The caller's QMP_SOCKET must not leak in, unless the test set one.
        if command.get_envs().all(|(key, _)| key != "QMP_SOCKET") {
            command.env_remove("QMP_SOCKET");
        }
        command
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(error) => panic!("cannot start {QMP}: {error}"),
        };
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            let text = text.to_owned();
            // Dropping the pipe at the end is the script's end of input.
            thread::spawn(move || pipe.write_all(text.as_bytes()));
        }
        let stdout = child.stdout.take().map(collect);
        let stderr = child.stderr.take().map(collect);
        Running {
            child,
            stdout,
            stderr,
        }
    }

    /// Whether it has exited.
    pub(crate) fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits (within [`LIMIT`]) for the exit and returns the output.
    pub(crate) fn finish(mut self) -> Ran {
        let status = self.wait();
        let joined = |handle: Option<JoinHandle<String>>| {
            handle
                .map(|h| h.join().unwrap_or_default())
                .unwrap_or_default()
        };
        Ran {
            code: status.code(),
            stdout: joined(self.stdout.take()),
            stderr: joined(self.stderr.take()),
        }
    }

    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + LIMIT;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                Ok(None) => panic!("qmp did not exit within {LIMIT:?}"),
                Err(error) => panic!("cannot wait for qmp: {error}"),
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Toggles the VM with `stop`/`cont` on the second monitor until
/// `done()` holds (the tool under test subscribes at an unknown moment,
/// so one `stop` might come too early), within [`LIMIT`].
pub(crate) fn toggle_until(vm: &Vm, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "the awaited event never came within {LIMIT:?}"
        );
        vm.other_ok(&["stop"]);
        vm.other_ok(&["cont"]);
        thread::sleep(Duration::from_millis(50));
    }
}
