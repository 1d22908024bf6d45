//! A failed launch: QEMU's own exit status if it is exiting anyway (else it
//! is killed), its output, then cleanup, all in one error.

use std::time::Duration;

use crate::error::{Error, LaunchError, LaunchFailure};
use crate::lifecycle;
use crate::logfile;
use crate::machine::Machine;

/// After the QMP connection broke during the launch, how long QEMU gets to
/// exit by itself so that the error can show its real exit status.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// Ends the half-launched `machine` and reports why it failed.
pub(crate) async fn report(machine: Machine, mut reason: LaunchFailure) -> Error {
    let grace = match reason {
        LaunchFailure::Timeout(_) => Duration::ZERO,
        _ => EXIT_GRACE,
    };
    let own_exit = match tokio::time::timeout(grace, machine.child.wait_exit()).await {
        Ok(Ok(exit)) => Some(exit),
        _ => None,
    };
    if own_exit.is_some() && matches!(reason, LaunchFailure::Qmp(_)) {
        // The handshake saw EOF because QEMU exited: say the latter.
        reason = LaunchFailure::Exited;
    }
    if own_exit.is_none() {
        if let Err(error) = lifecycle::kill_and_reap(&machine.child).await {
            tracing::warn!(%error, "could not kill QEMU after a failed launch");
        }
    }
    // The cleanup reads the whole log into memory before removing it.
    let kept_temp_dir = machine.files.finish(true).await;
    let log = machine.files.log();
    let error = LaunchError {
        command: machine.command_line.clone(),
        reason,
        exit: own_exit,
        output_tail: logfile::tail(&log).to_owned(),
        log,
        log_path: machine.files.log_path(),
        kept_temp_dir,
    };
    tracing::warn!(%error, "launch failed");
    Error::Launch(Box::new(error))
}
