//! `Machine`: the handle to a launched QEMU.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::process::Signal;
use tracing::Instrument;

use crate::error::Error;
use crate::exit::ExitInfo;
use crate::files::MachineFiles;
use crate::lifecycle::{self, Ending};
use crate::options::MonitorAddress;
use crate::process::ChildGuard;
use crate::qtest::QtestClient;

/// A running (or ended) QEMU process with its QMP monitor and console.
///
/// Methods take `&self`, so one machine can be shared between tasks (in an
/// `Arc`). [`shutdown`](Self::shutdown), [`kill`](Self::kill) and
/// [`wait`](Self::wait) are idempotent and bounded in time.
///
/// Dropping a machine kills QEMU's process group at once, reaps it off the
/// async runtime and removes every file it made; call `shutdown` first for
/// a graceful exit.
pub struct Machine {
    pub(crate) name: String,
    /// The `machine{name=…}` span the launch ran in, for later operations.
    pub(crate) span: tracing::Span,
    pub(crate) argv: Vec<OsString>,
    /// [`MachineBuilder::configuration`](crate::MachineBuilder::configuration)
    /// at launch, recorded by snapshots.
    pub(crate) configuration: Vec<OsString>,
    pub(crate) command_line: String,
    pub(crate) qmp: Option<qmp_client::Client>,
    /// Where QEMU's QMP monitor connected (`None` without QMP).
    pub(crate) monitor_address: Option<MonitorAddress>,
    pub(crate) console: Option<qemu_console::Console>,
    /// The qtest client, in qtest mode.
    pub(crate) qtest: Option<QtestClient>,
    /// The `-qtest-log` file, when asked for.
    pub(crate) qtest_log: Option<PathBuf>,
    pub(crate) child: ChildGuard,
    pub(crate) files: MachineFiles,
}

impl Machine {
    /// The machine's name (from the builder, or generated).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The QMP client: typed and raw commands, events, `wait_event`.
    ///
    /// # Panics
    ///
    /// If the machine was built with `.qmp(false)`; use
    /// [`try_qmp`](Self::try_qmp) when that is possible.
    pub fn qmp(&self) -> &qmp_client::Client {
        match &self.qmp {
            Some(client) => client,
            None => panic!("Machine::qmp: this machine was built with `.qmp(false)`"),
        }
    }

    /// The QMP client, or [`Error::QmpDisabled`] if the machine has none.
    ///
    /// # Errors
    ///
    /// [`Error::QmpDisabled`] when built with `.qmp(false)`.
    pub fn try_qmp(&self) -> Result<&qmp_client::Client, Error> {
        self.qmp.as_ref().ok_or(Error::QmpDisabled)
    }

    /// Waits up to `timeout` for the first of `events` (a name and an
    /// optional [`qmp_client::event_match`] filter each) and returns it,
    /// looking at events that already arrived first, like
    /// `QEMUMachine.events_wait`. For one event, see
    /// [`qmp_client::Client::wait_event`].
    ///
    /// ```no_run
    /// # async fn demo(machine: qemu_machine::Machine) -> Result<(), qemu_machine::Error> {
    /// use std::time::Duration;
    /// let event = machine
    ///     .events_wait(&[("SHUTDOWN", None), ("RESET", None)], Duration::from_secs(30))
    ///     .await?;
    /// println!("{}", event.name);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Qmp`] with `EventTimeout` when none came in time or when
    /// the connection ended; [`Error::QmpDisabled`] without QMP.
    pub async fn events_wait(
        &self,
        events: &[(&str, Option<serde_json::Value>)],
        timeout: Duration,
    ) -> Result<qmp_proto::Event, Error> {
        let client = self.try_qmp()?;
        Ok(crate::events::any_event(client, events, timeout).await?)
    }

    /// The console, if one was configured with
    /// [`MachineBuilder::console`](crate::MachineBuilder::console).
    pub fn console(&self) -> Option<&qemu_console::Console> {
        self.console.as_ref()
    }

    /// The qtest client of a machine built with
    /// [`MachineBuilder::qtest`](crate::MachineBuilder::qtest)
    /// (`QEMUQtestMachine.qtest`, libqtest's calls). When QEMU ends, every
    /// request waiting on it and every later one fails at once with
    /// [`Error::QtestDisconnected`].
    ///
    /// # Errors
    ///
    /// [`Error::QtestDisabled`] when the machine is not in qtest mode.
    pub fn qtest(&self) -> Result<&QtestClient, Error> {
        self.qtest.as_ref().ok_or(Error::QtestDisabled)
    }

    /// The qtest log QEMU writes (`-qtest-log`), when
    /// [`MachineBuilder::qtest_log`](crate::MachineBuilder::qtest_log)
    /// asked for one: beside [`log_path`](Self::log_path), complete once
    /// QEMU has exited (QEMU buffers it), and removed at cleanup unless it
    /// is in a `log_dir` of yours.
    pub fn qtest_log_path(&self) -> Option<&Path> {
        self.qtest_log.as_deref()
    }

    /// QEMU's process id (the wrapper's, when there is a wrapper); it is
    /// also the id of QEMU's process group.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Whether QEMU is still running (reaps it without blocking if not).
    pub fn is_running(&self) -> bool {
        matches!(self.child.try_exit(), Ok(None))
    }

    /// How QEMU ended, once it has (`None` while it runs).
    pub fn exit_info(&self) -> Option<ExitInfo> {
        self.child.try_exit().ok().flatten()
    }

    /// QEMU's exit code, once it exited with one (`QEMUMachine.exitcode`).
    pub fn exit_code(&self) -> Option<i32> {
        self.exit_info().and_then(|exit| exit.code())
    }

    /// The full command line QEMU was started with (wrapper included).
    pub fn argv(&self) -> &[OsString] {
        &self.argv
    }

    /// The command line as one shell-quoted string.
    pub fn command_line(&self) -> &str {
        &self.command_line
    }

    /// Where the QMP monitor is, as QEMU was told to reach it:
    /// [`MonitorAddress::SocketPair`], the socket's full path, or the TCP
    /// address with the port actually bound (the one port 0 picked).
    /// `None` for a machine built with `.qmp(false)`.
    pub fn monitor_address(&self) -> Option<&MonitorAddress> {
        self.monitor_address.as_ref()
    }

    /// The machine's private temporary directory (mode 0700), until cleanup
    /// (made in advance by [`MachineBuilder::temp_dir`](crate::MachineBuilder::temp_dir),
    /// or by the launch).
    pub fn temp_dir(&self) -> Option<PathBuf> {
        self.files.temp_dir()
    }

    /// The file QEMU's stdout and stderr go to.
    pub fn log_path(&self) -> PathBuf {
        self.files.log_path()
    }

    /// QEMU's stdout and stderr so far (its last MiB); after QEMU ended,
    /// what it wrote in total, even once the log file is removed.
    pub fn log(&self) -> String {
        self.files.log()
    }

    /// Asks QEMU to quit over QMP (without QMP: SIGTERM), waits up to
    /// `timeout` for it to exit, and cleans up. EOF after `quit` is success.
    ///
    /// If QEMU does not exit in time, or `quit` fails, QEMU is killed with
    /// SIGKILL, cleaned up all the same, and [`Error::AbnormalShutdown`]
    /// reports the cause. If QEMU had already ended, returns how.
    ///
    /// # Errors
    ///
    /// [`Error::AbnormalShutdown`] as above; [`Error::Process`] if the
    /// process could not be waited for.
    pub async fn shutdown(&self, timeout: Duration) -> Result<ExitInfo, Error> {
        lifecycle::shutdown(self.ending(), timeout)
            .instrument(self.span.clone())
            .await
    }

    /// Kills QEMU at once (SIGKILL to its process group), as
    /// `QEMUMachine.shutdown(hard=True)`; the same as [`kill`](Self::kill).
    ///
    /// # Errors
    ///
    /// See [`kill`](Self::kill).
    pub async fn shutdown_hard(&self) -> Result<ExitInfo, Error> {
        lifecycle::kill(self.ending())
            .instrument(self.span.clone())
            .await
    }

    /// Kills QEMU's process group with SIGKILL, reaps it and cleans up.
    ///
    /// # Errors
    ///
    /// [`Error::Process`] if signalling or reaping failed (the process is
    /// then still killed and reaped when the machine is dropped).
    pub async fn kill(&self) -> Result<ExitInfo, Error> {
        lifecycle::kill(self.ending())
            .instrument(self.span.clone())
            .await
    }

    /// Waits up to `timeout` for QEMU to exit on its own (a guest that
    /// powers itself off), then cleans up. The non-destructive wait: on
    /// timeout QEMU keeps running, and the machine can be waited for again,
    /// shut down or killed. For `QEMUMachine.wait()`, which kills QEMU on
    /// timeout, see [`wait_or_kill`](Self::wait_or_kill).
    ///
    /// # Errors
    ///
    /// [`Error::WaitTimeout`] when QEMU still runs after `timeout`;
    /// [`Error::Process`] if the process could not be waited for.
    pub async fn wait(&self, timeout: Duration) -> Result<ExitInfo, Error> {
        lifecycle::wait(self.ending(), timeout)
            .instrument(self.span.clone())
            .await
    }

    /// `QEMUMachine.wait()`: waits up to `timeout` for QEMU to exit on its
    /// own, then cleans up; if it is still running then, kills it (SIGKILL
    /// to its process group), cleans up all the same and reports an
    /// abnormal shutdown. The machine has ended either way. For a wait that
    /// leaves QEMU running, see [`wait`](Self::wait).
    ///
    /// # Errors
    ///
    /// [`Error::AbnormalShutdown`] with [`ShutdownCause::DidNotExit`](crate::ShutdownCause::DidNotExit)
    /// when QEMU was killed; [`Error::Process`] if the process could not be
    /// waited for or killed.
    pub async fn wait_or_kill(&self, timeout: Duration) -> Result<ExitInfo, Error> {
        lifecycle::wait_or_kill(self.ending(), timeout)
            .instrument(self.span.clone())
            .await
    }

    fn ending(&self) -> Ending<'_> {
        Ending {
            child: &self.child,
            qmp: self.qmp.as_ref(),
            qtest: self.qtest.as_ref(),
            files: &self.files,
        }
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        // Kill before removing files QEMU may still be writing; ChildGuard's
        // own drop then reaps it off this thread.
        if let Err(error) = self.child.signal_group(Signal::KILL) {
            tracing::warn!(pid = self.child.pid(), %error, "could not kill QEMU's process group");
        }
        self.files.remove_now();
    }
}

impl fmt::Debug for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Machine")
            .field("name", &self.name)
            .field("pid", &self.child.pid())
            .field("command_line", &self.command_line)
            .field("qmp", &self.qmp.is_some())
            .field("console", &self.console.is_some())
            .field("qtest", &self.qtest.is_some())
            .field("exit", &self.child.exit_info())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_can_be_shared_between_tasks() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<Machine>();
        shareable::<crate::MachineBuilder>();
        shareable::<Error>();
    }
}
