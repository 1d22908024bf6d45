//! Scenario 5, live migration through a file: the guest's tmpfs survives a
//! `migrate` to `exec:cat > FILE` and a second QEMU's `migrate-incoming`.
//!
//! Also home of [`Vm`], the small launcher the real-guest scenarios share
//! (QEMU spawned directly, QMP and ttyS0 on socket pairs).

use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;
use std::time::Duration;

use qemu_console::{Console, ConsoleConfig};
use qemukit_tests::{QemuChild, READY_MARKER};
use qmp_client::{Client, Config, EventStream};
use qmp_proto::commands::{
    MigrateIncoming, MigrateSetCapabilities, MigrationCapability, MigrationCapabilityStatus,
    MigrationStatus, QueryStatus, Quit, RunState,
};
use qmp_proto::events::Migration;
use tokio::time::Instant;

pub(crate) type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// Boot under TCG takes 3–4 s; a loaded machine may take many times that.
pub(crate) const BOOT: Duration = Duration::from_secs(120);
pub(crate) const COMMAND: Duration = Duration::from_secs(60);
/// Migrating 256 MiB (mostly zero pages) to a file, or a mirror job.
pub(crate) const JOB: Duration = Duration::from_secs(120);

/// A QEMU running the test guest, with QMP and a console on ttyS0.
/// Dropping it kills QEMU.
pub(crate) struct Vm {
    pub(crate) qemu: QemuChild,
    pub(crate) qmp: Client,
    pub(crate) console: Console,
}

impl Vm {
    /// Starts QEMU with `args` (usually `guest.args(..)` plus devices),
    /// QMP and ttyS0 on socket pairs; `inherit` are further fds the args
    /// name. Does not wait for the guest.
    pub(crate) async fn launch(
        name: &str,
        mut args: Vec<OsString>,
        inherit: &[BorrowedFd<'_>],
    ) -> TestResult<Vm> {
        let (qmp_ours, qmp_theirs) = qemukit_tests::socket_pair()?;
        let (console_ours, console_theirs) = qemukit_tests::socket_pair()?;
        for arg in [
            "-chardev".to_owned(),
            format!("socket,id=mon,fd={}", qmp_theirs.as_raw_fd()),
            "-mon".to_owned(),
            "chardev=mon,mode=control".to_owned(),
            "-chardev".to_owned(),
            format!("socket,id=con,fd={}", console_theirs.as_raw_fd()),
            "-serial".to_owned(),
            "chardev:con".to_owned(),
        ] {
            args.push(arg.into());
        }
        let mut fds = vec![qmp_theirs.as_fd(), console_theirs.as_fd()];
        fds.extend_from_slice(inherit);
        let qemu = QemuChild::spawn(&args, &fds)?;
        drop(fds);
        // QEMU holds its copies; ours must go, or EOF never comes.
        drop((qmp_theirs, console_theirs));
        let config = ConsoleConfig {
            name: format!("{name} ttyS0"),
            ..ConsoleConfig::default()
        };
        let console = Console::attach(console_ours, config)?;
        let qmp = match Client::from_stream(qmp_ours, &Config::default()).await {
            Ok(qmp) => qmp,
            Err(error) => {
                return Err(format!("QMP to {name}: {error}; QEMU: {}", qemu.log()).into());
            }
        };
        Ok(Vm { qemu, qmp, console })
    }

    /// Waits for the guest's ready marker and its first prompt.
    pub(crate) async fn boot(&self) -> TestResult {
        if let Err(error) = self.console.expect(READY_MARKER, BOOT).await {
            return Err(
                format!("the guest did not boot: {error}; QEMU: {}", self.qemu.log()).into(),
            );
        }
        self.console.expect("# ", BOOT).await?;
        Ok(())
    }

    /// `poweroff -f` in the guest; QEMU (`-no-reboot`) must exit 0.
    pub(crate) async fn power_off(mut self) -> TestResult {
        self.console.send_line("poweroff -f").await?;
        self.wait_exit().await
    }

    /// `quit`; QEMU must exit 0.
    pub(crate) async fn quit(mut self) -> TestResult {
        self.qmp.execute(Quit).await?;
        self.wait_exit().await
    }

    async fn wait_exit(&mut self) -> TestResult {
        let status = self.qemu.wait(COMMAND).await?;
        assert!(
            status.success(),
            "QEMU exited with {status}: {}",
            self.qemu.log()
        );
        Ok(())
    }
}

/// Turns on the `events` migration capability: without it QEMU 7.2 sends
/// no `MIGRATION` events at all.
async fn enable_migration_events(qmp: &Client) -> TestResult {
    let events = MigrationCapabilityStatus::new(MigrationCapability::Events, true);
    qmp.execute(MigrateSetCapabilities::new(vec![events]))
        .await?;
    Ok(())
}

/// The `MIGRATION` statuses from `events` until `completed` or `failed`.
async fn migration_statuses(events: &mut EventStream) -> TestResult<Vec<MigrationStatus>> {
    let deadline = Instant::now() + JOB;
    let mut statuses = Vec::new();
    loop {
        let event = match tokio::time::timeout_at(deadline, events.recv()).await {
            Err(_) => {
                return Err(format!("migration unfinished after {JOB:?}: {statuses:?}").into());
            }
            Ok(None) => return Err(format!("QMP closed during migration: {statuses:?}").into()),
            Ok(Some(event)) => event?,
        };
        if let Some(migration) = event.payload::<Migration>() {
            let status = migration?.status;
            statuses.push(status.clone());
            if matches!(status, MigrationStatus::Completed | MigrationStatus::Failed) {
                return Ok(statuses);
            }
        }
    }
}

/// `exec:` runs its argument with `/bin/sh -c`.
fn shell_word(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_through_a_file_resumes_the_guest_in_a_second_qemu() -> TestResult {
    let guest = qemukit_tests::guest();
    let dir = tempfile::tempdir()?;
    let state = dir.path().join("guest state.bin");

    let source = Vm::launch("source", guest.args(false), &[]).await?;
    source.boot().await?;
    let wrote = source
        .console
        .run(
            "echo kept-$((40+2)) > /tmp/witness; cat /tmp/witness",
            COMMAND,
        )
        .await?;
    assert_eq!(wrote.output, "kept-42\n");

    enable_migration_events(&source.qmp).await?;
    let mut events = source.qmp.events();
    let uri = format!("exec:cat > {}", shell_word(&state));
    source
        .qmp
        .execute(qmp_proto::commands::Migrate::new(uri))
        .await?;
    let statuses = migration_statuses(&mut events).await?;
    assert_eq!(
        statuses,
        [
            MigrationStatus::Setup,
            MigrationStatus::Active,
            MigrationStatus::Completed
        ]
    );
    let status = source.qmp.execute(QueryStatus).await?;
    assert_eq!(status.status, RunState::Postmigrate);
    source.quit().await?;
    assert!(
        std::fs::metadata(&state)?.len() > 0,
        "the state file is empty"
    );

    let mut args = guest.args(false);
    args.extend(["-incoming".into(), "defer".into()]);
    let target = Vm::launch("target", args, &[]).await?;
    let status = target.qmp.execute(QueryStatus).await?;
    assert_eq!(status.status, RunState::Inmigrate);
    enable_migration_events(&target.qmp).await?;
    let mut events = target.qmp.events();
    let resumed = target.qmp.event_waiter("RESUME", None);
    let uri = format!("exec:cat {}", shell_word(&state));
    target.qmp.execute(MigrateIncoming::new(uri)).await?;
    let statuses = migration_statuses(&mut events).await?;
    assert_eq!(
        statuses,
        [
            MigrationStatus::Setup,
            MigrationStatus::Active,
            MigrationStatus::Completed
        ]
    );
    resumed.wait(Some(JOB)).await?;
    assert!(target.qmp.execute(QueryStatus).await?.running);

    // The guest's tmpfs came along, and the shell answers on the new console.
    let kept = target.console.run("cat /tmp/witness", COMMAND).await?;
    assert_eq!(kept.output, "kept-42\n");
    target.power_off().await
}
