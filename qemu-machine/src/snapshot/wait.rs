//! Waiting for a migration to end, and for the run state that follows.

use std::time::Duration;

use qmp_client::{Client, EventStream};
use qmp_proto::commands::{MigrationStatus, QueryMigrate, QueryStatus, RunState};
use qmp_proto::events::Migration;
use tokio::time::Instant;

use crate::snapshot::error::SnapshotFailure;

/// How often a state that has no event of its own is polled.
const POLL: Duration = Duration::from_millis(5);

/// Waits until the migration `events` (subscribed before it started)
/// reports `completed`; `failed` or `cancelled` become
/// [`SnapshotFailure::Migration`] with QEMU's reason.
pub(crate) async fn migration_end(
    client: &Client,
    events: &mut EventStream,
    timeout: Duration,
) -> Result<(), SnapshotFailure> {
    let deadline = Instant::now() + timeout;
    loop {
        let status = match tokio::time::timeout_at(deadline, events.recv()).await {
            Err(_elapsed) => return Err(SnapshotFailure::Timeout(timeout)),
            Ok(None) => {
                return Err(SnapshotFailure::Migration {
                    status: "unfinished: the QMP connection closed (did QEMU exit?)".into(),
                    desc: None,
                });
            }
            // Events were lost: ask for the status instead.
            Ok(Some(Err(_lagged))) => {
                client
                    .execute(QueryMigrate)
                    .await
                    .map_err(SnapshotFailure::Qmp)?
                    .status
            }
            Ok(Some(Ok(event))) => match event.payload::<Migration>() {
                Some(Ok(migration)) => Some(migration.status),
                _ => None,
            },
        };
        match status {
            Some(MigrationStatus::Completed) => return Ok(()),
            Some(status @ (MigrationStatus::Failed | MigrationStatus::Cancelled)) => {
                let desc = client
                    .execute(QueryMigrate)
                    .await
                    .ok()
                    .and_then(|info| info.error_desc);
                return Err(SnapshotFailure::Migration {
                    status: status.to_string(),
                    desc,
                });
            }
            _ => {}
        }
    }
}

/// Waits until the run state is no longer `finish-migrate`: QEMU 7.2
/// reports `completed` before it moves on to `postmigrate`.
pub(crate) async fn migration_finished(
    client: &Client,
    timeout: Duration,
) -> Result<RunState, SnapshotFailure> {
    let deadline = Instant::now() + timeout;
    loop {
        let status = client
            .execute(QueryStatus)
            .await
            .map_err(SnapshotFailure::Qmp)?;
        if status.status != RunState::FinishMigrate {
            return Ok(status.status);
        }
        if Instant::now() >= deadline {
            return Err(SnapshotFailure::Timeout(timeout));
        }
        tokio::time::sleep(POLL).await;
    }
}
