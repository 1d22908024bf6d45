//! Ending a machine: graceful shutdown, kill, wait — each bounded and
//! idempotent, each cleaning up after QEMU.

use std::io;
use std::time::Duration;

use rustix::process::Signal;

use crate::error::{Error, ShutdownCause};
use crate::exit::ExitInfo;
use crate::files::MachineFiles;
use crate::process::ChildGuard;

/// How long a SIGKILLed process may take to be reaped before we report it.
/// The kernel needs milliseconds; only a process stuck in an uninterruptible
/// sleep (a dead NFS mount, a hung device) takes longer.
const KILL_REAP_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the QMP connection gets to see the EOF of an exited QEMU.
const QMP_CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// The parts of a machine that ending it touches.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ending<'a> {
    pub(crate) child: &'a ChildGuard,
    pub(crate) qmp: Option<&'a qmp_client::Client>,
    pub(crate) qtest: Option<&'a crate::qtest::QtestClient>,
    pub(crate) files: &'a MachineFiles,
}

pub(crate) async fn shutdown(machine: Ending<'_>, timeout: Duration) -> Result<ExitInfo, Error> {
    if let Some(exit) = already_ended(machine).await? {
        return Ok(exit);
    }
    // `timeout`, not `timeout_at(now + timeout)`: `Duration::MAX` ("wait
    // forever", Python's `timeout=None`) must not overflow into a panic.
    let graceful = tokio::time::timeout(timeout, graceful_exit(machine)).await;
    let cause = match graceful {
        Ok(Ok(exit)) => {
            tracing::debug!(%exit, "QEMU shut down");
            ended(machine, exit).await;
            return Ok(exit);
        }
        Ok(Err(cause)) => cause,
        Err(_elapsed) => ShutdownCause::Timeout(timeout),
    };
    tracing::warn!(%cause, "QEMU did not shut down gracefully; killing it");
    Err(killed_abnormally(machine, cause).await?)
}

/// Kills QEMU, cleans up, and returns the abnormal shutdown to report.
async fn killed_abnormally(machine: Ending<'_>, cause: ShutdownCause) -> Result<Error, Error> {
    let exit = kill_and_reap(machine.child).await?;
    connections_closed(machine).await;
    let kept_temp_dir = machine.files.finish(true).await;
    Ok(Error::AbnormalShutdown {
        cause,
        exit,
        kept_temp_dir,
    })
}

/// Asks QEMU to quit and waits for its exit. Returns the cause to report
/// if it will not exit by itself.
async fn graceful_exit(machine: Ending<'_>) -> Result<ExitInfo, ShutdownCause> {
    let Some(qmp) = machine.qmp else {
        // No monitor to ask: QEMU handles SIGTERM as a clean exit.
        machine
            .child
            .signal_group(Signal::TERM)
            .map_err(ShutdownCause::Io)?;
        return machine.child.wait_exit().await.map_err(ShutdownCause::Io);
    };
    let quit = qmp.execute_raw("quit", None);
    tokio::pin!(quit);
    let mut quit_answered = false;
    loop {
        tokio::select! {
            result = &mut quit, if !quit_answered => {
                quit_answered = true;
                match result {
                    // The reply, or EOF because QEMU is exiting: both fine.
                    Ok(_) | Err(qmp_client::Error::Disconnected(_)) => {}
                    Err(error) => return Err(ShutdownCause::Qmp(error)),
                }
            }
            exit = machine.child.wait_exit() => return exit.map_err(ShutdownCause::Io),
        }
    }
}

pub(crate) async fn kill(machine: Ending<'_>) -> Result<ExitInfo, Error> {
    if let Some(exit) = already_ended(machine).await? {
        return Ok(exit);
    }
    let exit = kill_and_reap(machine.child).await?;
    ended(machine, exit).await;
    Ok(exit)
}

pub(crate) async fn wait(machine: Ending<'_>, timeout: Duration) -> Result<ExitInfo, Error> {
    match tokio::time::timeout(timeout, machine.child.wait_exit()).await {
        Ok(Ok(exit)) => {
            ended(machine, exit).await;
            Ok(exit)
        }
        Ok(Err(source)) => Err(Error::Process {
            what: "wait for",
            source,
        }),
        Err(_elapsed) => Err(Error::WaitTimeout { timeout }),
    }
}

/// [`wait`], and on timeout what `QEMUMachine.wait()` does: kill QEMU,
/// clean up, and report an abnormal shutdown.
pub(crate) async fn wait_or_kill(
    machine: Ending<'_>,
    timeout: Duration,
) -> Result<ExitInfo, Error> {
    let timeout = match wait(machine, timeout).await {
        Err(Error::WaitTimeout { timeout }) => timeout,
        waited => return waited,
    };
    let cause = ShutdownCause::DidNotExit(timeout);
    tracing::warn!(%cause, "killing QEMU");
    Err(killed_abnormally(machine, cause).await?)
}

/// After QEMU exited: lets QMP see the EOF, then cleans up.
async fn ended(machine: Ending<'_>, exit: ExitInfo) {
    connections_closed(machine).await;
    machine.files.finish(exit.killed_unexpectedly()).await;
}

/// Once QEMU is gone, lets the QMP and qtest connections take in the EOF
/// and release their sockets, so that an ended machine holds no descriptor
/// and every qtest waiter has failed (bounded: the EOF is already there).
async fn connections_closed(machine: Ending<'_>) {
    let qmp = async {
        if let Some(qmp) = machine.qmp {
            qmp.closed().await;
        }
    };
    let qtest = async {
        if let Some(qtest) = machine.qtest {
            qtest.closed().await;
        }
    };
    let _closed = tokio::time::timeout(QMP_CLOSE_TIMEOUT, async { tokio::join!(qmp, qtest) }).await;
}

/// If QEMU already ended, cleans up and returns how.
async fn already_ended(machine: Ending<'_>) -> Result<Option<ExitInfo>, Error> {
    let exit = machine.child.try_exit().map_err(|source| Error::Process {
        what: "check on",
        source,
    })?;
    if let Some(exit) = exit {
        machine.files.finish(exit.killed_unexpectedly()).await;
    }
    Ok(exit)
}

/// SIGKILLs QEMU's process group and reaps the leader, bounded.
pub(crate) async fn kill_and_reap(child: &ChildGuard) -> Result<ExitInfo, Error> {
    child
        .signal_group(Signal::KILL)
        .map_err(|source| Error::Process {
            what: "kill",
            source,
        })?;
    match tokio::time::timeout(KILL_REAP_TIMEOUT, child.wait_exit()).await {
        Ok(Ok(exit)) => Ok(exit),
        Ok(Err(source)) => Err(Error::Process {
            what: "reap",
            source,
        }),
        Err(_elapsed) => Err(Error::Process {
            what: "reap",
            source: io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "still not dead {KILL_REAP_TIMEOUT:?} after SIGKILL (uninterruptible sleep?)"
                ),
            ),
        }),
    }
}
