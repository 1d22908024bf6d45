//! Running the QEMU binary for a probe, under a timeout.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::{Error, shell_quote};

/// How often the exit status is polled once the output has ended.
const EXIT_POLL: Duration = Duration::from_millis(2);

/// The size of the stderr tail kept for error messages.
const STDERR_TAIL: usize = 2000;

/// Runs `binary args…` with stdin closed and returns its stdout; kills it
/// when it has not finished within `timeout`.
pub(crate) fn run(binary: &Path, args: &[&str], timeout: Duration) -> Result<String, Error> {
    let mut argv = vec![binary.as_os_str()];
    argv.extend(args.iter().map(std::ffi::OsStr::new));
    let command = shell_quote(&argv);
    tracing::debug!(%command, "probing QEMU");
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
    if !status.success() {
        let stderr = String::from_utf8_lossy(&stderr);
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
    Ok(String::from_utf8_lossy(&stdout).into_owned())
}
