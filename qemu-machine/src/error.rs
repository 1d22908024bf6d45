//! The error types of qemu-machine: one enum, [`Error`], and the details
//! of its launch and shutdown failures. Each `Display` says what failed at
//! its own level; `source()` leads on to the cause, down to the root (the
//! QMP `Disconnect`, the `io::Error`, QEMU's exit status). `Debug` is the
//! message and its causes, as `std::io::Error`'s is readable, so that
//! `unwrap()` and `{:?}` in a test print what went wrong, not the fields.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::exit::ExitInfo;

/// Everything that can go wrong while launching, driving or stopping QEMU.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
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
    /// pidfd, a duplicate of a passed descriptor) could not be made.
    #[error("could not {what} for QEMU")]
    Setup {
        /// What was being made, e.g. "create the QMP socketpair".
        what: &'static str,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
    /// The socket QEMU's monitor was to connect to could not be bound.
    #[error(
        "could not listen on the QMP monitor address: check the socket directory \
         (`sock_dir`) or the TCP address"
    )]
    MonitorSocket(#[source] qmp_client::Error),
    /// The console could not be set up.
    #[error("could not set up the console")]
    Console(#[source] qemu_console::Error),
    /// The QEMU binary (or the wrapper) could not be started at all. The
    /// message keeps the operating system's reason (e.g. "No such file or
    /// directory").
    #[error(
        "could not start `{}`: {source}; check the binary path, or set it with \
         `MachineBuilder::binary` or `$QEMUKIT_QEMU` (on Debian/Ubuntu: \
         `sudo apt-get install -y qemu-system-x86`). Command: {command}",
        program.display()
    )]
    Spawn {
        /// The program that could not be run: the binary, or the wrapper's
        /// first word.
        program: PathBuf,
        /// The shell-quoted command line.
        command: String,
        /// The underlying failure (e.g. not found, permission denied).
        #[source]
        source: io::Error,
    },
    /// QEMU started but did not become ready; it has been killed and
    /// everything it made removed (unless kept on request).
    #[error(transparent)]
    Launch(Box<LaunchError>),
    /// QEMU did not shut down gracefully and was killed; the machine is
    /// nevertheless cleaned up. The cause says why.
    #[error(
        "QEMU did not shut down gracefully, so it was killed: it {exit}{}",
        kept_note(kept_temp_dir)
    )]
    AbnormalShutdown {
        /// Why the graceful path failed.
        #[source]
        cause: ShutdownCause,
        /// How QEMU finally ended.
        exit: ExitInfo,
        /// The temporary directory, if it was kept for debugging.
        kept_temp_dir: Option<PathBuf>,
    },
    /// QEMU was still running when [`Machine::wait`](crate::Machine::wait)
    /// gave up; it is left running. ([`Machine::wait_or_kill`](crate::Machine::wait_or_kill)
    /// kills it instead and returns [`Error::AbnormalShutdown`].)
    #[error(
        "QEMU was still running after {timeout:?}: it is left running; shut it down, \
         kill it or wait longer"
    )]
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
    /// A snapshot could not be saved or restored (a mismatch is refused
    /// before QEMU starts).
    #[error(transparent)]
    Snapshot(Box<crate::snapshot::SnapshotError>),
    /// QEMU answered a qtest request with `FAIL …` or `ERR …`.
    #[error("qtest `{command}` failed: QEMU answered {reply:?}")]
    QtestFailed {
        /// The request's command word.
        command: String,
        /// QEMU's whole answer.
        reply: String,
    },
    /// A qtest clock command (`clock_step`, `clock_set`) reached a QEMU that
    /// does not run the qtest accelerator, so it does not know the command.
    #[error(
        "qtest `{command}` needs the qtest accelerator (`-accel qtest`), which this QEMU is \
         not running: QEMU answered {reply:?}. Debian's and Ubuntu's QEMU builds have no \
         qtest accelerator (`-accel help` lists it when there is one); build QEMU with \
         qtest, or test the device under TCG without clock commands"
    )]
    NoQtestAccelerator {
        /// The command word.
        command: String,
        /// QEMU's answer.
        reply: String,
    },
    /// A qtest request was refused before it was sent (QEMU would abort or
    /// misread it).
    #[error("qtest `{command}` was not sent: {reason}")]
    QtestInvalidArgument {
        /// The command word.
        command: String,
        /// What is wrong.
        reason: String,
    },
    /// A qtest reply would be longer than the configured line limit.
    #[error(
        "qtest `{command}` was not sent: its reply would be {reply_len} bytes, over the \
         {limit}-byte line limit; read in smaller pieces or raise `max_line`"
    )]
    QtestTooLarge {
        /// The command word.
        command: String,
        /// The reply's length in bytes.
        reply_len: u64,
        /// The limit.
        limit: usize,
    },
    /// QEMU answered a qtest request `OK` with a value that does not parse.
    #[error("qtest `{command}`: QEMU's answer {reply:?} does not parse ({reason})")]
    QtestBadReply {
        /// The command word.
        command: String,
        /// QEMU's answer.
        reply: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No qtest answer within the timeout; the request may still run in QEMU.
    #[error("qtest `{command}` got no answer within {waited:?}: QEMU is stuck or very slow")]
    QtestTimeout {
        /// The command word.
        command: String,
        /// How long the request waited.
        waited: Duration,
    },
    /// An IRQ line did not reach the level within the timeout.
    #[error(
        "IRQ {line} was not {} within {waited:?}; check that the device is set up to \
         interrupt and that `irq_intercept_in`/`_out` named its interrupt controller",
        if *raised { "raised" } else { "lowered" }
    )]
    IrqTimeout {
        /// The line.
        line: u32,
        /// The level waited for.
        raised: bool,
        /// How long the wait lasted.
        waited: Duration,
    },
    /// The qtest connection ended; this and every later request fail at
    /// once. The source says why (QEMU exited, I/O error, a protocol
    /// violation).
    #[error("the qtest connection is closed")]
    QtestDisconnected(#[source] crate::qtest::QtestDisconnect),
    /// The machine was launched without qtest mode.
    #[error(
        "this machine has no qtest socket: build it with `MachineBuilder::qtest(true)` \
         (`QEMUQtestMachine`)"
    )]
    QtestDisabled,
    /// QEMU refused the accelerator it was given because this build lacks
    /// it (`invalid accelerator NAME`), e.g. `-accel qtest` on Debian's
    /// builds. The source is the launch error, with the command line and
    /// QEMU's output.
    #[error(
        "this QEMU has no `{accel}` accelerator compiled in (`-accel help` lists the ones it \
         has){}",
        accel_hint(accel)
    )]
    AccelUnavailable {
        /// The accelerator QEMU does not know.
        accel: String,
        /// The failed launch.
        #[source]
        launch: Box<LaunchError>,
    },
    /// A qtest client was created outside a Tokio runtime.
    #[error("a qtest client needs a Tokio runtime for its connection task: create it within one")]
    QtestNoRuntime,
}

impl From<crate::snapshot::SnapshotError> for Error {
    fn from(error: crate::snapshot::SnapshotError) -> Self {
        Self::Snapshot(Box::new(error))
    }
}

fn accel_hint(accel: &str) -> &'static str {
    match accel {
        "qtest" => {
            ": Debian's and Ubuntu's builds have no qtest accelerator. Qtest mode \
             (`MachineBuilder::qtest`) works under TCG, the default accelerator; only the \
             clock commands (`clock_step`, `clock_set`) need the qtest accelerator"
        }
        _ => ": choose another accelerator (`MachineBuilder::accel`), e.g. TCG",
    }
}

fn kept_note(kept: &Option<PathBuf>) -> String {
    match kept {
        Some(path) => format!(" (temporary directory kept at {})", path.display()),
        None => String::new(),
    }
}

/// Why a graceful shutdown failed.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum ShutdownCause {
    /// QEMU did not exit within the shutdown timeout.
    #[error(
        "QEMU still ran {0:?} after it was asked to quit: is it stopped or hung? \
         give it a longer timeout if it needs one"
    )]
    Timeout(Duration),
    /// QEMU did not exit by itself within the timeout of
    /// [`Machine::wait_or_kill`](crate::Machine::wait_or_kill) (nothing asked
    /// it to quit).
    #[error(
        "QEMU did not exit by itself within {0:?}: the guest did not power off \
         (or QEMU runs without `-no-shutdown`? give it a longer timeout if it needs one)"
    )]
    DidNotExit(Duration),
    /// The `quit` command failed (other than by the expected EOF).
    #[error("the `quit` command failed")]
    Qmp(#[source] qmp_client::Error),
    /// Signalling or waiting for QEMU failed.
    #[error("could not signal or wait for QEMU")]
    Io(#[source] io::Error),
}

/// Why a launch failed, with everything needed to reproduce it.
///
/// Its message holds the reason, QEMU's exit, the command line and the
/// tail of QEMU's output; [`log`](Self::log) holds all of the output.
/// [`source`](std::error::Error::source) leads to the reason's cause (the
/// QMP error, the `io::Error`, or QEMU's [`ExitInfo`]).
pub struct LaunchError {
    pub(crate) command: String,
    pub(crate) reason: LaunchFailure,
    pub(crate) exit: Option<ExitInfo>,
    pub(crate) output_tail: String,
    pub(crate) log: String,
    pub(crate) log_path: PathBuf,
    pub(crate) kept_temp_dir: Option<PathBuf>,
}

/// What went wrong during a launch.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum LaunchFailure {
    /// QEMU exited before it was ready (its exit is in
    /// [`LaunchError::exit`] and the error's source).
    #[error("QEMU exited before it was ready")]
    Exited,
    /// QEMU was not ready (connected, greeted, negotiated) in time.
    #[error(
        "QEMU's QMP monitor was not ready within {0:?} (QEMU hung or stopped? \
         raise `qmp_timeout` for slow hosts)"
    )]
    Timeout(Duration),
    /// The QMP connection failed during the greeting or negotiation.
    #[error("the QMP handshake failed")]
    Qmp(#[source] qmp_client::Error),
    /// Waiting for QEMU or accepting its connection failed.
    #[error("waiting for QEMU failed")]
    Io(#[source] io::Error),
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

    /// The last lines of QEMU's stdout and stderr (the ones the message
    /// shows).
    pub fn output_tail(&self) -> &str {
        &self.output_tail
    }

    /// Everything QEMU wrote to stdout and stderr before it ended (its
    /// last MiB, as [`Machine::log`](crate::Machine::log)), read before
    /// the files were removed (`QEMUMachine`'s `VMLaunchFailure.output`).
    pub fn log(&self) -> &str {
        &self.log
    }

    /// Where QEMU's log was written. The file is still there when it is in
    /// a [`log_dir`](crate::MachineBuilder::log_dir) of yours or in a
    /// [kept](Self::kept_temp_dir) temporary directory; otherwise it was
    /// removed with the temporary directory and [`log`](Self::log) holds
    /// its text.
    pub fn log_path(&self) -> &std::path::Path {
        &self.log_path
    }

    /// The temporary directory, if `keep_temp_dir_on_failure` kept it.
    pub fn kept_temp_dir(&self) -> Option<&std::path::Path> {
        self.kept_temp_dir.as_deref()
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

/// The message already holds the reason, so the chain goes on with the
/// reason's own cause; QEMU's exit is the root when it exited by itself.
impl std::error::Error for LaunchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match (self.reason.source(), &self.exit) {
            (Some(cause), _) => Some(cause),
            (None, Some(exit)) => Some(exit),
            (None, None) => None,
        }
    }
}

/// The readable `Debug` of every error type here: the message, then each
/// cause the message does not already hold, one per line.
fn write_chain(
    error: &(dyn std::error::Error + 'static),
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    let message = error.to_string();
    f.write_str(&message)?;
    let mut cause = error.source();
    while let Some(current) = cause {
        let text = current.to_string();
        if !message.contains(&text) {
            write!(f, "\n  caused by: {text}")?;
        }
        cause = current.source();
    }
    Ok(())
}

macro_rules! readable_debug {
    ($($error:ty),*) => {$(
        impl fmt::Debug for $error {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_chain(self, f)
            }
        }
    )*};
}

readable_debug!(Error, ShutdownCause, LaunchError, LaunchFailure);

#[cfg(test)]
mod tests {
    use super::*;

    fn not_found() -> io::Error {
        io::Error::from_raw_os_error(2)
    }

    #[test]
    fn debug_reads_like_display_with_the_causes() {
        let error = Error::Process {
            what: "wait for",
            source: not_found(),
        };
        assert_eq!(
            format!("{error:?}"),
            "could not wait for the QEMU process\n  caused by: No such file or directory (os error 2)"
        );
        let wrapped: Result<(), Error> = Err(Error::QmpDisabled);
        let shown = format!("{wrapped:?}");
        assert!(
            shown.contains("this machine has no QMP monitor") && !shown.contains("QmpDisabled"),
            "{shown}"
        );
    }

    #[test]
    fn a_spawn_error_keeps_the_reason_and_says_what_to_do() {
        let error = Error::Spawn {
            program: PathBuf::from("/opt/no/qemu-system-x86_64"),
            command: "/opt/no/qemu-system-x86_64 -machine none".to_owned(),
            source: not_found(),
        };
        let message = error.to_string();
        for part in [
            "`/opt/no/qemu-system-x86_64`",
            "No such file or directory",
            "QEMUKIT_QEMU",
            "apt-get install",
        ] {
            assert!(message.contains(part), "{part:?} missing from {message}");
        }
        // The cause is in the message already: Debug does not repeat it.
        assert_eq!(format!("{error:?}"), message);
    }
}
