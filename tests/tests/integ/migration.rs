//! Scenario 5, live migration through a file: the guest's tmpfs survives a
//! `migrate` to a file and a second QEMU's `migrate-incoming` from it —
//! `file:PATH` where QEMU has it (8.2 and later), `exec:cat` before.
//!
//! Also home of [`Vm`], the small helper the real-guest scenarios share: a
//! qemu-machine [`Machine`] running the test guest with its ttyS0 console.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use qemu_console::Console;
use qemu_machine::{ConsoleSpec, ExitInfo, Machine, MachineBuilder};
use qmp_client::{Client, EventStream};
use qmp_proto::Version;
use qmp_proto::commands::{
    MigrateIncoming, MigrateSetCapabilities, MigrationCapability, MigrationCapabilityStatus,
    MigrationStatus, QueryQmpSchema, QueryStatus, RunState,
};
use qmp_proto::events::Migration;
use serde_json::Value;
use tokio::time::Instant;

pub(crate) type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// Boot under TCG takes 3–4 s; a loaded machine may take many times that.
pub(crate) const BOOT: Duration = Duration::from_secs(120);
pub(crate) const COMMAND: Duration = Duration::from_secs(60);
/// Migrating 256 MiB (mostly zero pages) to a file, or a mirror job.
pub(crate) const JOB: Duration = Duration::from_secs(120);

/// A QEMU running the test guest, with QMP and a console on ttyS0.
/// Dropping it kills QEMU and removes its temporary directory.
pub(crate) struct Vm {
    pub(crate) machine: Machine,
}

/// QEMU with `args` (usually `guest.args(..)` plus devices; they choose
/// `-M pc,accel=tcg` themselves, and the builder's default accelerator
/// steps aside) and a ttyS0 console. With `guest.args(false)` alone its
/// configuration is `Guest::builder`'s, so both restore one snapshot.
pub(crate) fn builder(name: &str, args: &[OsString]) -> MachineBuilder {
    let mut builder = MachineBuilder::new();
    builder
        .binary(qemukit_tests::qemu_binary())
        .name(name)
        .args(args)
        .console(ConsoleSpec::serial());
    builder
}

impl Vm {
    /// Launches the [`builder`]'s QEMU. Does not wait for the guest.
    pub(crate) async fn launch(name: &str, args: Vec<OsString>) -> TestResult<Vm> {
        let machine = builder(name, &args).launch().await?;
        Ok(Vm { machine })
    }

    /// The [`builder`]'s guest at its shell prompt, restored from the
    /// suite's snapshot of that configuration (booted once per test
    /// process): for scenarios that do not test booting.
    pub(crate) async fn restore(name: &str, args: Vec<OsString>) -> TestResult<Vm> {
        Self::restore_with(|| builder(name, &args)).await
    }

    /// [`restore`](Self::restore) for a configuration `make` builds
    /// (the same each time, as `restore_booted` requires).
    pub(crate) async fn restore_with(make: impl Fn() -> MachineBuilder) -> TestResult<Vm> {
        let machine = qemukit_tests::restore_booted(make).await?;
        Ok(Vm { machine })
    }

    pub(crate) fn qmp(&self) -> &Client {
        self.machine.qmp()
    }

    pub(crate) fn console(&self) -> &Console {
        match self.machine.console() {
            Some(console) => console,
            None => unreachable!("`builder` always asks for a console"),
        }
    }

    /// `poweroff -f` in the guest; QEMU (`-no-reboot`) must exit 0.
    pub(crate) async fn power_off(self) -> TestResult {
        self.console().send_line("poweroff -f").await?;
        self.wait_exit().await
    }

    /// Waits for QEMU to exit on its own, with status 0.
    pub(crate) async fn wait_exit(self) -> TestResult {
        let leftovers = self.leftovers();
        let exit = self.machine.wait(COMMAND).await?;
        self.check_exit(exit, leftovers)
    }

    /// `quit`; QEMU must exit 0.
    pub(crate) async fn quit(self) -> TestResult {
        let leftovers = self.leftovers();
        let exit = self.machine.shutdown(COMMAND).await?;
        self.check_exit(exit, leftovers)
    }

    /// What must be gone once QEMU has exited: its process and the
    /// machine's temporary directory.
    fn leftovers(&self) -> (PathBuf, Option<PathBuf>) {
        let process = PathBuf::from(format!("/proc/{}", self.machine.pid()));
        (process, self.machine.temp_dir())
    }

    fn check_exit(&self, exit: ExitInfo, leftovers: (PathBuf, Option<PathBuf>)) -> TestResult {
        let log = self.machine.log();
        assert!(exit.success(), "QEMU ended with {exit:?}: {log}");
        let (process, temp_dir) = leftovers;
        // Reaped: not even a zombie is left.
        assert!(!process.exists(), "{} still exists", process.display());
        if let Some(dir) = temp_dir {
            assert!(!dir.exists(), "{} was left behind", dir.display());
        }
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

/// Polls `query-status` until the run state is `wanted` (a state change
/// that has no event), failing after `timeout` with the last state seen.
async fn wait_for_run_state(client: &Client, wanted: RunState, timeout: Duration) -> TestResult {
    let deadline = Instant::now() + timeout;
    loop {
        let status = client.execute(QueryStatus).await?;
        if status.status == wanted {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "run state still {:?} after {timeout:?}, expected {wanted:?}",
                status.status
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `exec:` runs its argument with `/bin/sh -c`.
fn shell_word(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// The first release with `file:` migration URIs (QAPI
/// `MigrationAddressType`, "Since: 8.2").
const FILE_URIS: (u32, u32) = (8, 2);

/// Where `qemu` writes (`outgoing`) or reads the migration stream `state`.
fn migration_uri(qemu: Version, state: &Path, outgoing: bool) -> String {
    match (qemu >= FILE_URIS, outgoing) {
        (true, _) => format!("file:{}", state.display()),
        (false, true) => format!("exec:cat > {}", shell_word(state)),
        (false, false) => format!("exec:cat {}", shell_word(state)),
    }
}

/// The `MIGRATION` statuses a plain precopy migration goes through, as the
/// connected release documents them: QEMU 10.0 made the switchover phase
/// its own `device` state on the source ("migration: Always set DEVICE
/// state"); earlier releases entered it only with `pause-before-switchover`.
fn expected_statuses(qemu: Version, outgoing: bool) -> Vec<MigrationStatus> {
    let mut statuses = vec![MigrationStatus::Setup, MigrationStatus::Active];
    if outgoing && qemu >= (10, 0) {
        statuses.push(MigrationStatus::Device);
    }
    statuses.push(MigrationStatus::Completed);
    statuses
}

/// The `MigrationStatus` values of the connected QEMU's own schema (the
/// `status` member of `query-migrate`'s return type and of the `MIGRATION`
/// event, which must agree).
async fn schema_migration_statuses(qmp: &Client) -> TestResult<Vec<String>> {
    let schema = qmp.execute(QueryQmpSchema).await?;
    let entities = schema
        .as_array()
        .ok_or("query-qmp-schema returned no array")?;
    let entity = |name: &str| {
        entities
            .iter()
            .find(|e| e["name"] == name)
            .ok_or(format!("the schema has no {name}"))
    };
    let status_values = |object: &Value| -> TestResult<Vec<String>> {
        let members = object["members"].as_array().ok_or("no members")?;
        let status = members
            .iter()
            .find(|m| m["name"] == "status")
            .and_then(|m| m["type"].as_str())
            .ok_or("no status member")?;
        Ok(serde_json::from_value(entity(status)?["values"].clone())?)
    };
    let ret = entity("query-migrate")?["ret-type"].as_str().unwrap_or("");
    let from_query = status_values(entity(ret)?)?;
    let arg = entity("MIGRATION")?["arg-type"].as_str().unwrap_or("");
    let from_event = status_values(entity(arg)?)?;
    assert_eq!(from_query, from_event);
    Ok(from_query)
}

/// Each status seen is one the QEMU's own schema declares, and the sequence
/// is exactly what its release documents.
async fn check_statuses(qmp: &Client, seen: &[MigrationStatus], outgoing: bool) -> TestResult {
    let qemu = qmp.greeting().version();
    let declared = schema_migration_statuses(qmp).await?;
    for status in seen {
        assert!(
            declared.iter().any(|d| d == status.as_str()),
            "QEMU {qemu} sent {status}, which its schema does not declare: {declared:?}"
        );
    }
    assert_eq!(
        seen,
        expected_statuses(qemu, outgoing),
        "QEMU {qemu}, {} side",
        if outgoing { "source" } else { "destination" }
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_through_a_file_resumes_the_guest_in_a_second_qemu() -> TestResult {
    let guest = qemukit_tests::guest();
    let dir = tempfile::tempdir()?;
    let state = dir.path().join("guest state.bin");

    // The source is the suite's booted guest; the destination, as in any
    // incoming migration, only needs the same configuration and
    // `-incoming defer`, and never boots.
    let source = Vm::restore("source", guest.args(false)).await?;
    let wrote = source
        .console()
        .run(
            "echo kept-$((40+2)) > /tmp/witness; cat /tmp/witness",
            COMMAND,
        )
        .await?;
    assert_eq!(wrote.output, "kept-42\n");

    enable_migration_events(source.qmp()).await?;
    let mut events = source.qmp().events();
    let uri = migration_uri(source.qmp().greeting().version(), &state, true);
    source
        .qmp()
        .execute(qmp_proto::commands::Migrate::new(uri))
        .await?;
    let statuses = migration_statuses(&mut events).await?;
    check_statuses(source.qmp(), &statuses, true).await?;
    // QEMU 7.2 sends `completed` while the source may still be in
    // `finish-migrate`; it moves to `postmigrate` with no event of its own.
    wait_for_run_state(source.qmp(), RunState::Postmigrate, COMMAND).await?;
    source.quit().await?;
    assert!(
        std::fs::metadata(&state)?.len() > 0,
        "the state file is empty"
    );

    let mut args = guest.args(false);
    args.extend(["-incoming".into(), "defer".into()]);
    let target = Vm::launch("target", args).await?;
    let status = target.qmp().execute(QueryStatus).await?;
    assert_eq!(status.status, RunState::Inmigrate);
    enable_migration_events(target.qmp()).await?;
    let mut events = target.qmp().events();
    let resumed = target.qmp().event_waiter("RESUME", None);
    let uri = migration_uri(target.qmp().greeting().version(), &state, false);
    target.qmp().execute(MigrateIncoming::new(uri)).await?;
    let statuses = migration_statuses(&mut events).await?;
    check_statuses(target.qmp(), &statuses, false).await?;
    resumed.wait(Some(JOB)).await?;
    assert!(target.qmp().execute(QueryStatus).await?.running);

    // The guest's tmpfs came along, and the shell answers on the new console.
    let kept = target.console().run("cat /tmp/witness", COMMAND).await?;
    assert_eq!(kept.output, "kept-42\n");
    target.power_off().await
}
