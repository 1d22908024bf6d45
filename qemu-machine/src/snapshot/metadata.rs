//! The metadata file written beside a snapshot's data: `FILE.json`.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::snapshot::error::{SnapshotError, SnapshotFailure};
use crate::snapshot::transport::Transport;

/// The metadata format qemukit writes; another number is refused.
const FORMAT: u32 = 1;

/// A saved snapshot: where its data is and what it was saved from (its
/// metadata file, `FILE.json` beside the data `FILE`).
///
/// ```no_run
/// # fn demo() -> Result<(), qemu_machine::Error> {
/// let snapshot = qemu_machine::Snapshot::open("/var/tmp/guest.snap")?;
/// println!("saved by QEMU {}: {:?}", snapshot.qemu_version(), snapshot.configuration());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    #[serde(skip)]
    path: PathBuf,
    format: u32,
    pub(crate) qemu_version: String,
    qemu_package: String,
    pub(crate) transport: Transport,
    pub(crate) configuration: Vec<String>,
    console: Option<String>,
    pub(crate) devices: Vec<String>,
    pub(crate) data_size: u64,
}

/// What a save knows, to be written as metadata.
pub(crate) struct Saved {
    pub(crate) qemu_version: String,
    pub(crate) qemu_package: String,
    pub(crate) transport: Transport,
    pub(crate) configuration: Vec<String>,
    pub(crate) console: Option<String>,
    pub(crate) devices: Vec<String>,
}

impl Snapshot {
    /// Reads the metadata of the snapshot whose data is `path`.
    ///
    /// # Errors
    ///
    /// [`Error::Snapshot`](crate::Error::Snapshot) when the metadata file
    /// is missing, unreadable or not qemukit's.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, crate::Error> {
        let path = path.as_ref();
        Self::read(path).map_err(|failure| SnapshotError::restoring(path, failure).into())
    }

    pub(crate) fn read(path: &Path) -> Result<Self, SnapshotFailure> {
        let meta = metadata_path(path);
        let text = std::fs::read_to_string(&meta).map_err(|source| SnapshotFailure::File {
            path: meta.clone(),
            source,
        })?;
        let mut snapshot: Snapshot =
            serde_json::from_str(&text).map_err(|error| SnapshotFailure::Metadata {
                path: meta.clone(),
                reason: error.to_string(),
            })?;
        if snapshot.format != FORMAT {
            return Err(SnapshotFailure::Metadata {
                path: meta,
                reason: format!(
                    "format {} (this qemukit reads format {FORMAT})",
                    snapshot.format
                ),
            });
        }
        snapshot.path = path.to_path_buf();
        Ok(snapshot)
    }

    /// Writes the metadata for the data at `path` (already complete),
    /// atomically: a reader sees the old file, none, or the whole new one.
    pub(crate) fn write(path: &Path, saved: Saved) -> Result<Self, SnapshotFailure> {
        let data_size = std::fs::metadata(path)
            .map_err(|source| SnapshotFailure::File {
                path: path.to_path_buf(),
                source,
            })?
            .len();
        let snapshot = Snapshot {
            path: path.to_path_buf(),
            format: FORMAT,
            qemu_version: saved.qemu_version,
            qemu_package: saved.qemu_package,
            transport: saved.transport,
            configuration: saved.configuration,
            console: saved.console,
            devices: saved.devices,
            data_size,
        };
        let meta = metadata_path(path);
        let mut partial = meta.clone().into_os_string();
        partial.push(format!(".partial-{}", std::process::id()));
        let partial = PathBuf::from(partial);
        let written = serde_json::to_vec_pretty(&snapshot)
            .map_err(std::io::Error::other)
            .and_then(|json| {
                let mut file = std::fs::File::create(&partial)?;
                file.write_all(&json)?;
                file.sync_all()
            })
            .and_then(|()| std::fs::rename(&partial, &meta));
        if let Err(source) = written {
            let _ignored = std::fs::remove_file(&partial);
            return Err(SnapshotFailure::File { path: meta, source });
        }
        Ok(snapshot)
    }

    /// The snapshot's data file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its metadata file (`FILE.json`).
    pub fn metadata_path(&self) -> PathBuf {
        metadata_path(&self.path)
    }

    /// The version of the QEMU that saved it, e.g. `10.0.2`.
    pub fn qemu_version(&self) -> &str {
        &self.qemu_version
    }

    /// That QEMU's package string (e.g. `Debian 1:10.0.2+ds-1`).
    pub fn qemu_package(&self) -> &str {
        &self.qemu_package
    }

    /// How the state was written: `mapped-ram file`, `mapped-ram file with
    /// multifd`, `stream`.
    pub fn format_name(&self) -> &'static str {
        self.transport.name()
    }

    /// The saved machine's configuration (see
    /// [`MachineBuilder::configuration`](crate::MachineBuilder::configuration)).
    pub fn configuration(&self) -> &[String] {
        &self.configuration
    }

    /// The console the saved machine had, if any (e.g. `serial port 0`).
    pub fn console(&self) -> Option<&str> {
        self.console.as_deref()
    }

    /// The devices the saved machine had (`id (type)`, or the type of an
    /// unnamed device), sorted.
    pub fn devices(&self) -> &[String] {
        &self.devices
    }

    /// The size of the data file when it was saved (its apparent size: a
    /// `mapped-ram` file is sparse and takes less on disk).
    pub fn data_size(&self) -> u64 {
        self.data_size
    }
}

/// `FILE.json` for the data `FILE`.
pub(crate) fn metadata_path(path: &Path) -> PathBuf {
    let mut meta: OsString = path.as_os_str().to_owned();
    meta.push(".json");
    PathBuf::from(meta)
}

/// The configuration as strings, for the metadata (JSON holds no other).
pub(crate) fn configuration_strings(args: &[OsString]) -> Result<Vec<String>, SnapshotFailure> {
    args.iter()
        .map(|arg| {
            arg.to_str().map(str::to_owned).ok_or_else(|| {
                SnapshotFailure::Unsupported(format!(
                    "the argument {arg:?} is not UTF-8, which snapshot metadata cannot hold"
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_and_other_formats_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("guest state.snap");
        std::fs::write(&data, b"state").expect("data");
        let saved = Saved {
            qemu_version: "10.0.2".into(),
            qemu_package: "Debian".into(),
            transport: Transport::MappedRamFile { multifd: None },
            configuration: vec!["-m".into(), "256".into()],
            console: Some("serial port 0".into()),
            devices: vec!["isa-serial".into()],
        };
        let written = Snapshot::write(&data, saved).expect("written");
        assert_eq!(written.data_size(), 5);
        assert_eq!(Snapshot::read(&data).ok(), Some(written.clone()));
        assert_eq!(
            written.metadata_path(),
            dir.path().join("guest state.snap.json")
        );

        let json = std::fs::read_to_string(written.metadata_path()).expect("json");
        std::fs::write(
            written.metadata_path(),
            json.replace("\"format\": 1", "\"format\": 9"),
        )
        .expect("rewrite");
        let refused = Snapshot::read(&data);
        assert!(
            matches!(&refused, Err(SnapshotFailure::Metadata { reason, .. }) if reason.contains("format 9")),
            "{refused:?}"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("read dir")
            .flatten()
            .map(|entry| entry.file_name())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
    }
}
