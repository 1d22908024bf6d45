//! `MachineBuilder::restore_from`: check, launch with `-incoming defer`,
//! load, resume.

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use qemu_cmdline::Cmdline;
use qmp_proto::commands::Cont;
use tokio::time::Instant;

use crate::builder::MachineBuilder;
use crate::error::Error;
use crate::machine::Machine;
use crate::snapshot::devices::device_set;
use crate::snapshot::error::{SnapshotError, SnapshotFailure};
use crate::snapshot::metadata::{self, Snapshot};
use crate::snapshot::mismatch::Mismatch;
use crate::snapshot::version::binary_version;
use crate::snapshot::wait;
use crate::spec::LaunchSpec;

/// How [`MachineBuilder::restore_from_with`] restores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreOptions {
    paused: bool,
    timeout: Duration,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        Self {
            paused: false,
            timeout: Duration::from_secs(120),
        }
    }
}

impl RestoreOptions {
    /// Resumed afterwards, a 120 s timeout for loading the state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Leaves the guest paused once loaded (default: resumes it with
    /// `cont`).
    pub fn paused(mut self, paused: bool) -> Self {
        self.paused = paused;
        self
    }

    /// How long loading the state may take (QEMU's start has the
    /// builder's `qmp_timeout`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// Where a restore spent its time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestoreTimings {
    /// Reading the metadata and checking it (the binary's version is
    /// probed once per binary file and process).
    pub check: Duration,
    /// Starting QEMU until its QMP monitor is ready (spawn, greeting,
    /// negotiation, the console attached).
    pub launch: Duration,
    /// Reading QEMU's device set (`qom-list`) and comparing it with the
    /// saved one.
    pub devices: Duration,
    /// Loading the state: capabilities set, `migrate-incoming` until QEMU
    /// reported the migration completed, capabilities reset.
    pub load: Duration,
    /// `cont` (zero when left paused).
    pub resume: Duration,
}

impl MachineBuilder {
    /// Launches a machine from the snapshot at `path` and resumes it; see
    /// [`restore_from_with`](Self::restore_from_with).
    ///
    /// # Errors
    ///
    /// See [`restore_from_with`](Self::restore_from_with).
    pub async fn restore_from(&self, path: impl AsRef<Path>) -> Result<Machine, Error> {
        self.restore_from_with(path, &RestoreOptions::default())
            .await
            .map(|(machine, _timings)| machine)
    }

    /// Launches a machine from the snapshot at `path`: this builder's
    /// configuration must be the saved one. Before QEMU starts, the
    /// metadata is checked against the builder's
    /// [`configuration`](Self::configuration), the binary's version and
    /// the data file's size; then QEMU starts with `-S -incoming defer`
    /// (its console attached, the guest not running), loads the state with
    /// `migrate-incoming` once its device set is found equal to the saved
    /// one, and the guest resumes (`cont`) unless `options` say paused.
    ///
    /// The result is an ordinary [`Machine`]: QMP, events and the console
    /// work as after a boot, and no console byte is lost. Its migration
    /// capabilities are QEMU's defaults again, except `events`, which
    /// stays on, so it can itself be migrated or saved. Any number of
    /// machines may restore from one snapshot at once.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), qemu_machine::Error> {
    /// use std::time::Duration;
    /// use qemu_machine::{ConsoleSpec, MachineBuilder};
    /// let machine = MachineBuilder::new()
    ///     .machine_type("pc")
    ///     .args(["-m", "256", "-kernel", "vmlinuz", "-initrd", "initrd.gz"])
    ///     .console(ConsoleSpec::serial())
    ///     .restore_from("/var/tmp/guest.snap")
    ///     .await?;
    /// let uname = machine.console().map(|c| c.run("uname -r", Duration::from_secs(10)));
    /// # drop(uname); Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Snapshot`] with [`SnapshotFailure::Mismatch`] when the
    /// snapshot does not fit (nothing was started, or it was stopped again
    /// for a device set); with another [`SnapshotFailure`] when the
    /// metadata cannot be read or loading fails (QEMU is then killed and
    /// cleaned up); the errors of [`launch`](Self::launch).
    pub async fn restore_from_with(
        &self,
        path: impl AsRef<Path>,
        options: &RestoreOptions,
    ) -> Result<(Machine, RestoreTimings), Error> {
        let path = path.as_ref();
        let failed = |failure| Error::from(SnapshotError::restoring(path, failure));
        // A value that cannot be rendered is reported as by `launch`.
        let mut spec = self.spec()?;
        let mut timings = RestoreTimings::default();
        let started = Instant::now();
        let (snapshot, configuration) = check_snapshot(&spec, path).await.map_err(failed)?;
        timings.check = started.elapsed();

        let started = Instant::now();
        // Last, after the user's arguments: the guest must not run before
        // its state is loaded, and the state comes later, over QMP.
        let incoming = Cmdline::new()
            .paused()
            .incoming_defer()
            .to_args()
            .map_err(Error::Cmdline)?;
        spec.user_args.extend(incoming);
        let mut machine = crate::launch::launch(spec).await?;
        // What the guest is, for a later save: not how it was started.
        machine.configuration = configuration;
        timings.launch = started.elapsed();

        let started = Instant::now();
        if let Err(failure) = check_devices(&machine, &snapshot).await {
            return Err(failed(failure));
        }
        timings.devices = started.elapsed();
        let started = Instant::now();
        if let Err(failure) = load(&machine, &snapshot, options.timeout).await {
            return Err(failed(with_log_tail(failure, &machine)));
        }
        timings.load = started.elapsed();
        if !options.paused {
            let started = Instant::now();
            machine
                .qmp()
                .execute(Cont)
                .await
                .map_err(|error| failed(SnapshotFailure::Qmp(error)))?;
            timings.resume = started.elapsed();
        }
        tracing::info!(
            name = machine.name(),
            ?timings,
            path = %path.display(),
            "restored from a snapshot"
        );
        Ok((machine, timings))
    }
}

/// Everything that can be checked before QEMU starts; returns the
/// snapshot and the launch's configuration.
async fn check_snapshot(
    spec: &LaunchSpec,
    path: &Path,
) -> Result<(Snapshot, Vec<OsString>), SnapshotFailure> {
    if spec.monitor.is_none() {
        return Err(SnapshotFailure::Unsupported(
            "restoring needs the QMP monitor: do not build with `.qmp(false)`".into(),
        ));
    }
    let snapshot = Snapshot::read(path)?;
    let configuration = crate::argv::configuration(spec)
        .map_err(|error| SnapshotFailure::Unsupported(error.to_string()))?;
    let strings = metadata::configuration_strings(&configuration)?;
    if let Some(mismatch) = Mismatch::configuration(&snapshot.configuration, &strings) {
        return Err(SnapshotFailure::Mismatch(mismatch));
    }
    let version = binary_version(&spec.binary).await?;
    if version != snapshot.qemu_version {
        return Err(SnapshotFailure::Mismatch(Mismatch::QemuVersion {
            snapshot: snapshot.qemu_version.clone(),
            binary: version,
        }));
    }
    let actual = std::fs::metadata(path)
        .map_err(|source| SnapshotFailure::File {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    if actual != snapshot.data_size {
        return Err(SnapshotFailure::Mismatch(Mismatch::DataSize {
            recorded: snapshot.data_size,
            actual,
        }));
    }
    Ok((snapshot, configuration))
}

/// QEMU's own error for a device set that differs is cryptic: compare
/// first.
async fn check_devices(machine: &Machine, snapshot: &Snapshot) -> Result<(), SnapshotFailure> {
    let devices = device_set(machine.qmp()).await?;
    match Mismatch::devices(&snapshot.devices, &devices) {
        Some(mismatch) => Err(SnapshotFailure::Mismatch(mismatch)),
        None => Ok(()),
    }
}

/// Loads the state and waits for the end.
async fn load(
    machine: &Machine,
    snapshot: &Snapshot,
    timeout: Duration,
) -> Result<(), SnapshotFailure> {
    let client = machine.qmp();
    snapshot.transport.set_capabilities(client, true).await?;
    let mut events = client.events();
    snapshot
        .transport
        .start_restore(client, snapshot.path())
        .await?;
    wait::migration_end(client, &mut events, timeout).await?;
    // A later migration by the caller (a live one, or a save on 7.2's
    // stream) must not inherit `mapped-ram` or `multifd` from the restore.
    snapshot.transport.set_capabilities(client, false).await
}

/// QEMU says why an incoming migration failed on stderr, rarely in
/// `error-desc`: take its last line when there is no description.
fn with_log_tail(failure: SnapshotFailure, machine: &Machine) -> SnapshotFailure {
    match failure {
        SnapshotFailure::Migration { status, desc: None } => {
            let log = machine.log();
            let last = log.lines().rev().find(|line| !line.trim().is_empty());
            SnapshotFailure::Migration {
                status,
                desc: last.map(str::to_owned),
            }
        }
        other => other,
    }
}
