//! Live migration.

use serde::{Deserialize, Serialize};

use crate::command::Empty;
use crate::{JsonObject, Unsupported, Version};

/// `migrate`: starts migrating to `uri` (`tcp:HOST:PORT`, `unix:PATH`,
/// `fd:NAME`, `exec:CMD`, and `file:PATH` since QEMU 8.2). Progress is
/// reported by `MIGRATION` events and `query-migrate`.
///
/// QEMU 9.1 removed the `blk` and `inc` arguments (block migration; use
/// `blockdev-mirror` to an NBD export), which this type never sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Migrate {
    /// Where to migrate to.
    pub uri: String,
    /// Resume a paused postcopy migration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<bool>,
}

impl Migrate {
    /// Migrates to `uri`.
    pub fn new(uri: impl Into<String>) -> Self {
        Self {
            uri: uri.into(),
            resume: None,
        }
    }
}

command!(Migrate = "migrate" -> Empty);

/// `migrate-incoming`: listens for an incoming migration on `uri`; QEMU
/// must have been started with `-incoming defer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MigrateIncoming {
    /// Where to listen.
    pub uri: String,
}

impl MigrateIncoming {
    /// Listens on `uri`.
    pub fn new(uri: impl Into<String>) -> Self {
        Self { uri: uri.into() }
    }
}

command!(MigrateIncoming = "migrate-incoming" -> Empty);

no_arguments!(
    /// `query-migrate`: the state of the current or last migration.
    QueryMigrate = "query-migrate" -> MigrationInfo
);

/// What `query-migrate` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MigrationInfo {
    /// Where the migration stands; absent before the first one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<MigrationStatus>,
    /// RAM transfer statistics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ram: Option<MigrationStats>,
    /// Milliseconds since the migration started.
    #[serde(
        rename = "total-time",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub total_time: Option<i64>,
    /// Expected downtime in milliseconds, while active.
    #[serde(
        rename = "expected-downtime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub expected_downtime: Option<i64>,
    /// Actual downtime in milliseconds, once completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downtime: Option<i64>,
    /// Why it failed, once failed.
    #[serde(
        rename = "error-desc",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub error_desc: Option<String>,
    /// The members this crate does not type.
    #[serde(flatten)]
    pub other: JsonObject,
}

/// RAM transfer statistics of a migration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MigrationStats {
    /// Bytes transferred.
    pub transferred: i64,
    /// Bytes remaining.
    pub remaining: i64,
    /// Total bytes.
    pub total: i64,
    /// Throughput in megabits per second.
    pub mbps: f64,
    /// The members this crate does not type.
    #[serde(flatten)]
    pub other: JsonObject,
}

qapi_enum! {
    /// Where a migration stands (`MigrationStatus`).
    pub enum MigrationStatus {
        None = "none",
        Setup = "setup",
        Cancelling = "cancelling",
        Cancelled = "cancelled",
        Active = "active",
        PostcopyActive = "postcopy-active",
        PostcopyPaused = "postcopy-paused",
        PostcopyRecoverSetup = "postcopy-recover-setup" since (9, 1),
        PostcopyRecover = "postcopy-recover",
        Completed = "completed",
        Failed = "failed",
        Colo = "colo",
        PreSwitchover = "pre-switchover",
        Device = "device",
        WaitUnplug = "wait-unplug",
    }
}

/// `migrate-set-capabilities`: turns migration capabilities on or off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MigrateSetCapabilities {
    /// The capabilities and their new states.
    pub capabilities: Vec<MigrationCapabilityStatus>,
}

impl MigrateSetCapabilities {
    /// Sets the given capabilities.
    pub fn new(capabilities: Vec<MigrationCapabilityStatus>) -> Self {
        Self { capabilities }
    }
}

impl crate::Command for MigrateSetCapabilities {
    const NAME: &'static str = "migrate-set-capabilities";
    type Output = Empty;

    /// Also refuses capabilities the connected QEMU does not have (e.g.
    /// `compress` and `block`, removed in QEMU 9.1).
    fn check_version(&self, qemu: Version) -> Result<(), Unsupported> {
        self.capabilities
            .iter()
            .try_for_each(|status| status.capability.check_version(qemu))
    }
}

/// A migration capability and whether it is on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MigrationCapabilityStatus {
    /// The capability.
    pub capability: MigrationCapability,
    /// On or off.
    pub state: bool,
}

impl MigrationCapabilityStatus {
    /// `capability` turned on or off.
    pub fn new(capability: MigrationCapability, state: bool) -> Self {
        Self { capability, state }
    }
}

qapi_enum! {
    /// A migration capability (`MigrationCapability`).
    pub enum MigrationCapability {
        Xbzrle = "xbzrle",
        RdmaPinAll = "rdma-pin-all",
        AutoConverge = "auto-converge",
        /// Deprecated in QEMU 10.0 (it belonged to block migration).
        ZeroBlocks = "zero-blocks",
        /// Use multifd compression instead.
        Compress = "compress" until (9, 1),
        Events = "events",
        PostcopyRam = "postcopy-ram",
        XColo = "x-colo",
        ReleaseRam = "release-ram",
        /// Use `blockdev-mirror` to an NBD export instead.
        Block = "block" until (9, 1),
        ReturnPath = "return-path",
        PauseBeforeSwitchover = "pause-before-switchover",
        Multifd = "multifd",
        DirtyBitmaps = "dirty-bitmaps",
        PostcopyBlocktime = "postcopy-blocktime",
        LateBlockActivate = "late-block-activate",
        XIgnoreShared = "x-ignore-shared",
        ValidateUuid = "validate-uuid",
        BackgroundSnapshot = "background-snapshot",
        ZeroCopySend = "zero-copy-send",
        PostcopyPreempt = "postcopy-preempt",
        SwitchoverAck = "switchover-ack" since (8, 1),
        DirtyLimit = "dirty-limit" since (8, 1),
        MappedRam = "mapped-ram" since (9, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Command;
    use serde_json::json;

    #[test]
    fn capabilities_on_the_wire() {
        let set = MigrateSetCapabilities::new(vec![
            MigrationCapabilityStatus::new(MigrationCapability::Events, true),
            MigrationCapabilityStatus::new(MigrationCapability::Other("x-new".into()), false),
        ]);
        assert_eq!(
            serde_json::to_value(set).ok(),
            Some(
                json!({"capabilities": [{"capability": "events", "state": true},
                {"capability": "x-new", "state": false}]})
            )
        );
    }

    #[test]
    fn capabilities_exist_in_their_releases_only() {
        let v7 = Version::new(7, 2, 22);
        let v10 = Version::new(10, 0, 2);
        let set = |capability| {
            MigrateSetCapabilities::new(vec![
                MigrationCapabilityStatus::new(MigrationCapability::Events, true),
                MigrationCapabilityStatus::new(capability, true),
            ])
        };
        assert_eq!(set(MigrationCapability::Compress).check_version(v7), Ok(()));
        let err = set(MigrationCapability::Compress).check_version(v10);
        assert!(
            matches!(&err, Err(Unsupported { item, until: Some((9, 1)), .. })
                if item == "MigrationCapability `compress`"),
            "{err:?}"
        );
        let err = set(MigrationCapability::MappedRam).check_version(v7);
        assert!(
            matches!(
                &err,
                Err(Unsupported {
                    since: Some((9, 0)),
                    until: None,
                    ..
                })
            ),
            "{err:?}"
        );
        assert_eq!(
            set(MigrationCapability::MappedRam).check_version(v10),
            Ok(())
        );
        // A value this crate does not know is left to QEMU to judge.
        let novel = set(MigrationCapability::Other("x-new".into()));
        assert_eq!(novel.check_version(v7), Ok(()));
        assert_eq!(MigrationStatus::PostcopyRecoverSetup.since(), Some((9, 1)));
        assert_eq!(MigrationStatus::Device.since(), None);
    }

    #[test]
    fn migration_info() {
        assert_eq!(
            QueryMigrate::parse_output(json!({})).ok().map(|i| i.status),
            Some(None)
        );
        let info = QueryMigrate::parse_output(json!({"status": "completed", "total-time": 120,
            "downtime": 8, "ram": {"transferred": 10, "remaining": 0, "total": 10, "mbps": 1.5,
            "duplicate": 3}}));
        let info = info.map_err(|e| e.to_string());
        assert_eq!(
            info.as_ref().ok().and_then(|i| i.status.clone()),
            Some(MigrationStatus::Completed)
        );
        assert_eq!(
            info.ok().and_then(|i| i.ram).map(|r| r.other.len()),
            Some(1)
        );
    }
}
