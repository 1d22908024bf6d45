//! `Machine::save_snapshot`: stop, migrate into a file, write metadata.

use std::path::Path;
use std::time::Duration;

use qmp_client::Client;
use qmp_proto::commands::{Cont, QueryStatus, Stop};
use tracing::Instrument;

use crate::error::Error;
use crate::machine::Machine;
use crate::snapshot::devices::device_set;
use crate::snapshot::error::{SnapshotError, SnapshotFailure};
use crate::snapshot::metadata::{self, Saved, Snapshot};
use crate::snapshot::transport::Transport;
use crate::snapshot::wait;

/// The `multifd` channels of a save (and its restores) by default.
const DEFAULT_MULTIFD_CHANNELS: u8 = 2;

/// What the machine does once its snapshot is saved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AfterSave {
    /// Stays stopped (QEMU's `postmigrate` state); `cont` resumes it.
    #[default]
    Paused,
    /// Runs on, as if nothing happened.
    Running,
    /// Quits QEMU (gracefully, under the save timeout) and cleans up.
    Quit,
}

/// How [`Machine::save_snapshot_with`] saves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaveOptions {
    after: AfterSave,
    timeout: Duration,
    multifd_channels: Option<u8>,
}

impl Default for SaveOptions {
    fn default() -> Self {
        Self {
            after: AfterSave::Paused,
            timeout: Duration::from_secs(120),
            multifd_channels: Some(DEFAULT_MULTIFD_CHANNELS),
        }
    }
}

impl SaveOptions {
    /// Paused afterwards, a 120 s timeout, two multifd channels.
    pub fn new() -> Self {
        Self::default()
    }

    /// What the machine does afterwards (default: stays paused).
    pub fn after(mut self, after: AfterSave) -> Self {
        self.after = after;
        self
    }

    /// How long the migration (and a quit afterwards) may take.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Writes RAM with this many `multifd` threads (QEMU ≥ 9.0, with
    /// `mapped-ram`; ignored before), `0` for none; restores read with the
    /// same number. Default: 2, which cut the restore's load by about a
    /// third on a 2-core host (`cargo bench -p qemu-machine --bench
    /// snapshot` compares).
    pub fn multifd_channels(mut self, channels: u8) -> Self {
        self.multifd_channels = (channels > 0).then_some(channels);
        self
    }
}

impl Machine {
    /// Saves the guest into `path` (and its metadata into `path.json`),
    /// then leaves the machine paused; see [`save_snapshot_with`](Self::save_snapshot_with).
    ///
    /// # Errors
    ///
    /// See [`save_snapshot_with`](Self::save_snapshot_with).
    pub async fn save_snapshot(&self, path: impl AsRef<Path>) -> Result<Snapshot, Error> {
        self.save_snapshot_with(path, &SaveOptions::default()).await
    }

    /// Stops the guest, migrates its whole state into `path` (replacing
    /// it), waits for the migration to complete, writes the metadata file
    /// `path.json` last (so a file without metadata is never taken for a
    /// snapshot), and then pauses, resumes or quits the machine as
    /// `options` say. See the [`snapshot`](crate::snapshot) docs.
    ///
    /// ```no_run
    /// # async fn demo(machine: qemu_machine::Machine) -> Result<(), qemu_machine::Error> {
    /// use qemu_machine::{AfterSave, SaveOptions};
    /// let snapshot = machine
    ///     .save_snapshot_with("/var/tmp/guest.snap", &SaveOptions::new().after(AfterSave::Quit))
    ///     .await?;
    /// println!("{} bytes", snapshot.data_size());
    /// # Ok(()) }
    /// ```
    ///
    /// On failure the guest runs again if it was running, and the
    /// partial data file is removed.
    ///
    /// # Errors
    ///
    /// [`Error::Snapshot`] with the failure (no QMP, a QMP error, QEMU's
    /// migration error, a timeout, a file error); with
    /// [`AfterSave::Quit`], the errors of [`shutdown`](Self::shutdown).
    pub async fn save_snapshot_with(
        &self,
        path: impl AsRef<Path>,
        options: &SaveOptions,
    ) -> Result<Snapshot, Error> {
        let path = path.as_ref();
        let span = tracing::info_span!(parent: &self.span, "save_snapshot", path = %path.display());
        let snapshot = save(self, path, options)
            .instrument(span)
            .await
            .map_err(|failure| Error::from(SnapshotError::saving(path, failure)))?;
        if options.after == AfterSave::Quit {
            self.shutdown(options.timeout).await?;
        }
        Ok(snapshot)
    }
}

async fn save(
    machine: &Machine,
    path: &Path,
    options: &SaveOptions,
) -> Result<Snapshot, SnapshotFailure> {
    let client = machine.try_qmp().map_err(|_| {
        SnapshotFailure::Unsupported(
            "the machine has no QMP monitor (built with `.qmp(false)`)".into(),
        )
    })?;
    let greeting = client.greeting();
    let version = greeting.version();
    let transport = Transport::for_version(version, options.multifd_channels);
    let configuration = metadata::configuration_strings(&machine.configuration)?;
    // Stale metadata must never describe the data overwritten below.
    let meta = metadata::metadata_path(path);
    if let Err(source) = std::fs::remove_file(&meta) {
        if source.kind() != std::io::ErrorKind::NotFound {
            return Err(SnapshotFailure::File { path: meta, source });
        }
    }
    let devices = device_set(client).await?;
    let was_running = client
        .execute(QueryStatus)
        .await
        .map_err(SnapshotFailure::Qmp)?
        .running;
    if was_running {
        client.execute(Stop).await.map_err(SnapshotFailure::Qmp)?;
    }
    tracing::debug!(transport = transport.name(), "saving the guest");
    let migrated = migrate(client, &transport, path, options.timeout).await;
    if let Err(failure) = migrated {
        if let Err(error) = std::fs::remove_file(path) {
            tracing::debug!(%error, "no partial snapshot file to remove");
        }
        if was_running && options.after != AfterSave::Quit {
            if let Err(error) = client.execute(Cont).await {
                tracing::warn!(%error, "could not resume the guest after a failed save");
            }
        }
        return Err(failure);
    }
    let snapshot = Snapshot::write(
        path,
        Saved {
            qemu_version: version.to_string(),
            qemu_package: greeting.version.package.trim().to_owned(),
            transport,
            console: console_of(&configuration),
            configuration,
            devices,
        },
    )?;
    if options.after != AfterSave::Quit {
        // A later live migration by the caller must not inherit these.
        transport.set_capabilities(client, false).await?;
    }
    if options.after == AfterSave::Running {
        client.execute(Cont).await.map_err(SnapshotFailure::Qmp)?;
    }
    tracing::info!(size = snapshot.data_size(), "snapshot saved");
    Ok(snapshot)
}

async fn migrate(
    client: &Client,
    transport: &Transport,
    path: &Path,
    timeout: Duration,
) -> Result<(), SnapshotFailure> {
    transport.set_capabilities(client, true).await?;
    let mut events = client.events();
    transport.start_save(client, path).await?;
    wait::migration_end(client, &mut events, timeout).await?;
    wait::migration_finished(client, timeout).await?;
    Ok(())
}

/// The console as the configuration renders it: `serial port N` or
/// `device TYPE`.
fn console_of(configuration: &[String]) -> Option<String> {
    let chardev = crate::argv::CONSOLE_ID;
    let mut serial_ports = 0;
    for pair in configuration.windows(2) {
        match (pair[0].as_str(), pair[1].as_str()) {
            ("-serial", value) if value == format!("chardev:{chardev}") => {
                return Some(format!("serial port {serial_ports}"));
            }
            ("-serial", _) => serial_ports += 1,
            ("-device", value) if value.ends_with(&format!(",chardev={chardev}")) => {
                let device = value.split(',').next().unwrap_or(value);
                return Some(format!("device {device}"));
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|&arg| arg.to_owned()).collect()
    }

    #[test]
    fn the_console_is_read_from_the_configuration() {
        let serial = strings(&["-serial", "null", "-serial", "chardev:qemukit-console"]);
        assert_eq!(console_of(&serial).as_deref(), Some("serial port 1"));
        let device = strings(&["-device", "virtconsole,chardev=qemukit-console"]);
        assert_eq!(console_of(&device).as_deref(), Some("device virtconsole"));
        assert_eq!(console_of(&strings(&["-m", "256"])), None);
    }
}
