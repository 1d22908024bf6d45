//! The one error type of qemu-machine.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::exit::ExitInfo;

/// Everything that can go wrong while launching, driving or stopping QEMU.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `launch` was called a second time on the same builder.
    #[error("this MachineBuilder already launched a machine: make a new builder for each machine")]
    AlreadyLaunched,
    /// The command line holds a value QEMU cannot represent (from
    /// [`MachineBuilder::cmdline`](crate::MachineBuilder::cmdline), or a
    /// path or name the builder was given).
    #[error("the QEMU command line cannot be rendered: fix the option named in the cause")]
    Cmdline(#[source] qemu_cmdline::Error),
    /// The private temporary directory could not be created.
    #[error("could not create the machine's temporary directory under {}: check that it exists and is writable, or set `base_temp_dir`", base.display())]
    TempDir {
        /// The base directory it was to be created in.
        base: PathBuf,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
    /// QEMU's log file could not be created or read.
    #[error("could not open QEMU's log file {}: check `log_dir`", path.display())]
    LogFile {
        /// The log file.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
    /// An operating-system resource the launch needs (a socketpair, a
    /// listening socket, a pidfd) could not be made.
    #[error("could not {what} for QEMU")]
    Setup {
        /// What was being made, e.g. "create the QMP socketpair".
        what: &'static str,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
    /// The QEMU binary (or the wrapper) could not be started at all.
    #[error(
        "could not start `{command}`: check the binary path \
         (on Debian/Ubuntu: `sudo apt-get install -y qemu-system-x86`)"
    )]
    Spawn {
        /// The shell-quoted command line.
        command: String,
        /// The underlying failure (e.g. not found, permission denied).
        #[source]
        source: io::Error,
    },
    /// QEMU started but did not become ready; it has been killed and
    /// everything it made removed (unless kept on request).
    #[error("{0}")]
    Launch(Box<LaunchError>),
    /// QEMU did not shut down gracefully and was killed; the machine is
    /// nevertheless cleaned up.
    #[error(
        "QEMU did not shut down gracefully ({cause}), so it was killed: {exit}{}",
        kept_note(kept_temp_dir)
    )]
    AbnormalShutdown {
        /// Why the graceful path failed.
        cause: ShutdownCause,
        /// How QEMU finally ended.
        exit: ExitInfo,
        /// The temporary directory, if it was kept for debugging.
        kept_temp_dir: Option<PathBuf>,
    },
    /// QEMU was still running when `wait` gave up; it is left running.
    #[error("QEMU was still running after {timeout:?}: shut it down or wait longer")]
    WaitTimeout {
        /// How long `wait` waited.
        timeout: Duration,
    },
    /// Waiting for or signalling the QEMU process failed.
    #[error("could not {what} the QEMU process")]
    Process {
        /// What was being done, e.g. "wait for".
        what: &'static str,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
    /// A QMP command or event wait failed.
    #[error(transparent)]
    Qmp(#[from] qmp_client::Error),
    /// The machine was built with `.qmp(false)`, so it has no QMP monitor.
    #[error("this machine has no QMP monitor: it was built with `.qmp(false)`")]
    QmpDisabled,
}

fn kept_note(kept: &Option<PathBuf>) -> String {
    match kept {
        Some(path) => format!(" (temporary directory kept at {})", path.display()),
        None => String::new(),
    }
}

/// Why a graceful shutdown failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ShutdownCause {
    /// QEMU did not exit within the shutdown timeout.
    Timeout(Duration),
    /// The `quit` command failed (other than by the expected EOF).
    Qmp(qmp_client::Error),
    /// Signalling or waiting for QEMU failed.
    Io(io::Error),
}

impl fmt::Display for ShutdownCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout(timeout) => {
                write!(f, "QEMU still ran {timeout:?} after it was asked to quit")
            }
            Self::Qmp(error) => write!(f, "`quit` failed: {error}"),
            Self::Io(error) => write!(f, "could not signal or wait for QEMU: {error}"),
        }
    }
}

/// Why a launch failed, with everything needed to reproduce it.
#[derive(Debug)]
pub struct LaunchError {
    pub(crate) command: String,
    pub(crate) reason: LaunchFailure,
    pub(crate) exit: Option<ExitInfo>,
    pub(crate) output_tail: String,
    pub(crate) kept_temp_dir: Option<PathBuf>,
}

/// What went wrong during a launch.
#[derive(Debug)]
#[non_exhaustive]
pub enum LaunchFailure {
    /// QEMU exited before it was ready.
    Exited,
    /// QEMU was not ready (connected, greeted, negotiated) in time.
    Timeout(Duration),
    /// The QMP connection failed during the greeting or negotiation.
    Qmp(qmp_client::Error),
    /// The console could not be attached.
    Console(qemu_console::Error),
    /// Waiting for QEMU or accepting its connection failed.
    Io(io::Error),
}

impl LaunchError {
    /// The shell-quoted command line that was run.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// What went wrong.
    pub fn reason(&self) -> &LaunchFailure {
        &self.reason
    }

    /// How QEMU ended, if it exited on its own before being killed.
    pub fn exit(&self) -> Option<ExitInfo> {
        self.exit
    }

    /// The last lines of QEMU's stdout and stderr.
    pub fn output_tail(&self) -> &str {
        &self.output_tail
    }

    /// The temporary directory, if `keep_temp_dir_on_failure` kept it.
    pub fn kept_temp_dir(&self) -> Option<&std::path::Path> {
        self.kept_temp_dir.as_deref()
    }
}

impl fmt::Display for LaunchFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exited => f.write_str("QEMU exited before it was ready"),
            Self::Timeout(timeout) => write!(
                f,
                "QEMU's QMP monitor was not ready within {timeout:?} (QEMU hung or stopped? \
                 raise `qmp_timeout` for slow hosts)"
            ),
            Self::Qmp(error) => write!(f, "the QMP handshake failed: {error}"),
            Self::Console(error) => write!(f, "the console could not be attached: {error}"),
            Self::Io(error) => write!(f, "waiting for QEMU failed: {error}"),
        }
    }
}

impl fmt::Display for LaunchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QEMU failed to launch: {}", self.reason)?;
        if let Some(exit) = self.exit {
            write!(f, "; it {exit}")?;
        }
        write!(f, "\n  command: {}", self.command)?;
        if self.output_tail.trim().is_empty() {
            f.write_str("\n  output: (none)")?;
        } else {
            f.write_str("\n  output:")?;
            for line in self.output_tail.lines() {
                write!(f, "\n    {line}")?;
            }
        }
        if let Some(path) = &self.kept_temp_dir {
            write!(f, "\n  temporary directory kept at {}", path.display())?;
        }
        Ok(())
    }
}

/// The reason is part of the message (a launch error is usually printed
/// whole), so it is not repeated as a `source`.
impl std::error::Error for LaunchError {}
