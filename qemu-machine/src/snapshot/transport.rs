//! How the migration stream reaches the file and comes back: `file:` with
//! `mapped-ram` on QEMU ≥ 9.0, our own descriptor (`fd:`) before.

use std::fs::File;
use std::path::Path;

use qmp_client::Client;
use qmp_proto::Version;
use qmp_proto::commands::{
    Migrate, MigrateIncoming, MigrateSetCapabilities, MigrationCapability,
    MigrationCapabilityStatus,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::snapshot::error::SnapshotFailure;

/// The first QEMU with the `mapped-ram` capability.
const MAPPED_RAM_SINCE: (u32, u32) = (9, 0);

/// The name the data file's descriptor gets in QEMU (`getfd`).
const FD_NAME: &str = "qemukit-snapshot";

/// How a snapshot's state is written and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub(crate) enum Transport {
    /// `file:` with `mapped-ram`: RAM pages at fixed offsets, zero pages
    /// left as holes; with `multifd` channels when set.
    MappedRamFile {
        /// The number of multifd channels, if multifd is on.
        multifd: Option<u8>,
    },
    /// The plain migration stream, through a descriptor of ours.
    Stream,
}

impl Transport {
    /// The best transport this QEMU version has.
    pub(crate) fn for_version(qemu: Version, multifd: Option<u8>) -> Self {
        if qemu >= MAPPED_RAM_SINCE {
            Self::MappedRamFile { multifd }
        } else {
            Self::Stream
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::MappedRamFile { multifd: None } => "mapped-ram file",
            Self::MappedRamFile { multifd: Some(_) } => "mapped-ram file with multifd",
            Self::Stream => "stream",
        }
    }

    /// Turns on `events` (7.2 sends no `MIGRATION` event without it) and
    /// this transport's capabilities; `enable = false` turns the latter
    /// off again after a save or a restore (`events` stays on).
    pub(crate) async fn set_capabilities(
        &self,
        client: &Client,
        enable: bool,
    ) -> Result<(), SnapshotFailure> {
        let mut capabilities = vec![MigrationCapabilityStatus::new(
            MigrationCapability::Events,
            true,
        )];
        if let Self::MappedRamFile { multifd } = self {
            capabilities.push(MigrationCapabilityStatus::new(
                MigrationCapability::MappedRam,
                enable,
            ));
            if multifd.is_some() {
                capabilities.push(MigrationCapabilityStatus::new(
                    MigrationCapability::Multifd,
                    enable,
                ));
            }
        }
        client
            .execute(MigrateSetCapabilities::new(capabilities))
            .await
            .map_err(SnapshotFailure::Qmp)?;
        if let (
            Self::MappedRamFile {
                multifd: Some(channels),
            },
            true,
        ) = (self, enable)
        {
            let parameters = json!({ "multifd-channels": channels });
            raw(client, "migrate-set-parameters", parameters).await?;
        }
        Ok(())
    }

    /// Starts migrating the (stopped) guest into `path`.
    pub(crate) async fn start_save(
        &self,
        client: &Client,
        path: &Path,
    ) -> Result<(), SnapshotFailure> {
        match self {
            Self::MappedRamFile { .. } => {
                let channels = file_channels(path)?;
                raw(client, "migrate", json!({ "channels": channels })).await
            }
            Self::Stream => {
                let file = File::create(path).map_err(|source| SnapshotFailure::File {
                    path: path.to_path_buf(),
                    source,
                })?;
                pass_fd(client, &file).await?;
                client
                    .execute(Migrate::new(format!("fd:{FD_NAME}")))
                    .await
                    .map(drop)
                    .map_err(SnapshotFailure::Qmp)
            }
        }
    }

    /// Starts loading `path` into a QEMU started with `-incoming defer`.
    pub(crate) async fn start_restore(
        &self,
        client: &Client,
        path: &Path,
    ) -> Result<(), SnapshotFailure> {
        match self {
            Self::MappedRamFile { .. } => {
                let channels = file_channels(path)?;
                raw(client, "migrate-incoming", json!({ "channels": channels })).await
            }
            Self::Stream => {
                let file = File::open(path).map_err(|source| SnapshotFailure::File {
                    path: path.to_path_buf(),
                    source,
                })?;
                pass_fd(client, &file).await?;
                client
                    .execute(MigrateIncoming::new(format!("fd:{FD_NAME}")))
                    .await
                    .map(drop)
                    .map_err(SnapshotFailure::Qmp)
            }
        }
    }
}

/// A `file` migration channel: structured, so no character of the path
/// is ever parsed by QEMU (a `file:` URI treats `,offset=` specially).
fn file_channels(path: &Path) -> Result<Value, SnapshotFailure> {
    let absolute = std::path::absolute(path).map_err(|source| SnapshotFailure::File {
        path: path.to_path_buf(),
        source,
    })?;
    let Some(filename) = absolute.to_str() else {
        return Err(SnapshotFailure::Unsupported(format!(
            "the path {} is not UTF-8, which QMP cannot carry: choose another",
            absolute.display()
        )));
    };
    Ok(json!([{
        "channel-type": "main",
        "addr": { "transport": "file", "filename": filename, "offset": 0 }
    }]))
}

/// Hands QEMU a copy of `file` under [`FD_NAME`]; it takes the copy over
/// for the migration. Needs a Unix-socket monitor.
async fn pass_fd(client: &Client, file: &File) -> Result<(), SnapshotFailure> {
    client
        .getfd(FD_NAME, file)
        .await
        .map_err(|error| match error {
            qmp_client::Error::Qmp { .. } => SnapshotFailure::Qmp(error),
            other => SnapshotFailure::Unsupported(format!(
                "this QEMU saves snapshots through a descriptor, which needs a Unix-socket \
             QMP monitor (the default socketpair is one): {other}"
            )),
        })
}

async fn raw(client: &Client, command: &str, arguments: Value) -> Result<(), SnapshotFailure> {
    let arguments = match arguments {
        Value::Object(map) => Some(map),
        _ => None,
    };
    client
        .execute_raw(command, arguments)
        .await
        .map(drop)
        .map_err(SnapshotFailure::Qmp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_ram_from_9_0() {
        let version = |major, minor| Version::new(major, minor, 0);
        assert_eq!(
            Transport::for_version(version(7, 2), Some(4)),
            Transport::Stream
        );
        assert_eq!(
            Transport::for_version(version(9, 0), None),
            Transport::MappedRamFile { multifd: None }
        );
        assert_eq!(
            Transport::for_version(version(10, 0), Some(4)),
            Transport::MappedRamFile { multifd: Some(4) }
        );
    }

    #[test]
    fn file_channels_carry_the_path_verbatim() {
        let channels = file_channels(Path::new("/tmp/a,offset=9/it's.snap")).ok();
        assert_eq!(
            channels.as_ref().map(|c| c[0]["addr"]["filename"].clone()),
            Some(json!("/tmp/a,offset=9/it's.snap"))
        );
    }
}
