//! Running the QEMU binary for a probe, under a timeout.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[cfg(feature = "tokio")]
use crate::Probe;
use crate::{Error, shell_quote};

/// How often the exit status is polled once the output has ended.
const EXIT_POLL: Duration = Duration::from_millis(2);

/// The size of the stderr tail kept for error messages.
const STDERR_TAIL: usize = 2000;

/// Runs `binary args…` with stdin closed and returns its stdout; kills it
/// when it has not finished within `timeout`.
///
/// Blocks the calling thread: see [`run_async`] for async code.
pub(crate) fn run(binary: &Path, args: &[&str], timeout: Duration) -> Result<String, Error> {
    let command = command_line(binary, args);
    let io_error = |source| Error::Io {
        command: command.clone(),
        source,
    };
    let mut child = Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| Error::Spawn {
            binary: binary.to_owned(),
            source,
        })?;
    let deadline = Instant::now() + timeout;
    let (sender, receiver) = mpsc::channel();
    let pipes: [Option<Box<dyn Read + Send>>; 2] = [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    ];
    for (index, pipe) in pipes.into_iter().enumerate() {
        let sender = sender.clone();
        if let Some(mut pipe) = pipe {
            // The readers end when the pipes close, at the latest when the child is killed.
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let result = pipe.read_to_end(&mut buf).map(|_| buf);
                let _ = sender.send((index, result));
            });
        }
    }
    drop(sender);
    let timed_out = |child: &mut std::process::Child| {
        let _ = child.kill();
        let _ = child.wait();
        Error::Timeout {
            command: command.clone(),
            timeout,
        }
    };
    let mut outputs: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..2 {
        let left = deadline.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(left) {
            Ok((index, result)) => outputs[index] = result.map_err(io_error)?,
            Err(mpsc::RecvTimeoutError::Timeout) => return Err(timed_out(&mut child)),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let status = loop {
        if let Some(status) = child.try_wait().map_err(io_error)? {
            break status;
        }
        if Instant::now() >= deadline {
            return Err(timed_out(&mut child));
        }
        std::thread::sleep(EXIT_POLL);
    };
    let [stdout, stderr] = outputs;
    judge(command, status, &stdout, &stderr)
}

/// [`run`] without blocking: the child is killed (and reaped by tokio) when
/// it has not finished within `timeout` or the future is dropped.
#[cfg(feature = "tokio")]
pub(crate) async fn run_async(
    binary: &Path,
    args: &[&str],
    timeout: Duration,
) -> Result<String, Error> {
    let command = command_line(binary, args);
    let child = tokio::process::Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| Error::Spawn {
            binary: binary.to_owned(),
            source,
        })?;
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(output)) => judge(command, output.status, &output.stdout, &output.stderr),
        Ok(Err(source)) => Err(Error::Io { command, source }),
        Err(_elapsed) => Err(Error::Timeout { command, timeout }),
    }
}

#[cfg(feature = "tokio")]
impl Probe {
    /// [`Probe::run`] for async code: the six invocations run at once as
    /// tokio child processes, each under `timeout`, and no thread blocks.
    /// A QEMU still running when the future is dropped is killed.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), qemu_cmdline::Error> {
    /// use qemu_cmdline::{DEFAULT_PROBE_TIMEOUT, Probe};
    /// let probe = Probe::run_async("qemu-system-x86_64", DEFAULT_PROBE_TIMEOUT).await?;
    /// probe.require_device("virtio-blk-pci")?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Probe::run`].
    pub async fn run_async(binary: impl AsRef<Path>, timeout: Duration) -> Result<Probe, Error> {
        let binary = binary.as_ref();
        let (version, machines, accels, cpus, devices, netdevs) = tokio::try_join!(
            run_async(binary, &["--version"], timeout),
            run_async(binary, &["-machine", "help"], timeout),
            run_async(binary, &["-accel", "help"], timeout),
            run_async(binary, &["-cpu", "help"], timeout),
            run_async(binary, &["-device", "help"], timeout),
            run_async(binary, &["-netdev", "help"], timeout),
        )?;
        Probe::from_outputs(
            binary, &version, &machines, &accels, &cpus, &devices, &netdevs,
        )
    }
}

/// The shell-quoted command, logged once.
fn command_line(binary: &Path, args: &[&str]) -> String {
    let mut argv = vec![binary.as_os_str()];
    argv.extend(args.iter().map(std::ffi::OsStr::new));
    let command = shell_quote(&argv);
    tracing::debug!(%command, "probing QEMU");
    command
}

/// The output of a finished probe run, or why it failed (with the tail of
/// its stderr).
fn judge(
    command: String,
    status: std::process::ExitStatus,
    stdout: &[u8],
    stderr: &[u8],
) -> Result<String, Error> {
    if !status.success() {
        let stderr = String::from_utf8_lossy(stderr);
        let start = stderr.len().saturating_sub(STDERR_TAIL);
        let start = (start..stderr.len())
            .find(|&i| stderr.is_char_boundary(i))
            .unwrap_or(stderr.len());
        return Err(Error::ProbeFailed {
            command,
            status: status.to_string(),
            stderr: stderr[start..].trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(stdout).into_owned())
}

#[cfg(all(test, feature = "tokio"))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hung_binary_is_killed_at_the_timeout() {
        let result = run_async(Path::new("sleep"), &["30"], Duration::from_millis(200)).await;
        assert!(
            matches!(result, Err(Error::Timeout { ref command, .. }) if command == "sleep 30"),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn a_failing_binary_reports_its_stderr() {
        let result = run_async(
            Path::new("sh"),
            &["-c", "echo nope >&2; exit 3"],
            Duration::from_secs(30),
        )
        .await;
        assert!(
            matches!(result, Err(Error::ProbeFailed { ref stderr, .. }) if stderr == "nope"),
            "{result:?}"
        );
        let missing = run_async(Path::new("/nonexistent/qemu"), &[], Duration::from_secs(30)).await;
        assert!(matches!(missing, Err(Error::Spawn { .. })), "{missing:?}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn probing_does_not_block_the_runtime() {
        // On a single-threaded runtime a blocking probe would starve this
        // ticker until the child ends.
        let ticks = async {
            let mut count = 0u32;
            let mut interval = tokio::time::interval(Duration::from_millis(10));
            while count < 5 {
                interval.tick().await;
                count += 1;
            }
            count
        };
        let probe = run_async(Path::new("sleep"), &["30"], Duration::from_secs(60));
        tokio::select! {
            count = ticks => assert_eq!(count, 5),
            result = probe => panic!("the probe ended first: {result:?}"),
        }
    }
}
