//! Live migration.
//!
//! `migrate`, `migrate-incoming` and `query-migrate` are the generated
//! commands, with a constructor taking the URI. The capabilities stay
//! hand-written: each [`MigrationCapability`] value carries the release
//! QEMU's documentation gives for it (`mapped-ram` since 9.0, `compress`
//! gone in 9.1), finer than the recorded versions (7.2, 10.0) can tell.

use serde::{Deserialize, Serialize};

use crate::command::Empty;
pub use crate::qapi::commands::{Migrate, MigrateIncoming, QueryMigrate};
pub use crate::qapi::types::{MigrationInfo, MigrationStats, MigrationStatus};
use crate::{Unsupported, Version};

impl Migrate {
    /// Migrates to `uri` (`unix:PATH`, `tcp:HOST:PORT`, `fd:NAME`,
    /// `exec:CMD`, `file:PATH`).
    pub fn new(uri: impl Into<String>) -> Self {
        Self {
            uri: Some(uri.into()),
            ..Self::default()
        }
    }
}

impl MigrateIncoming {
    /// Listens for an incoming migration on `uri` (`defer` for QEMU
    /// started with `-incoming defer`, then another URI).
    pub fn new(uri: impl Into<String>) -> Self {
        Self {
            uri: Some(uri.into()),
            ..Self::default()
        }
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
        // The generated status knows only the recorded releases: 7.2 lacks
        // `postcopy-recover-setup` (QEMU 9.1 added it), 10.0 has it, so
        // only 7.2 and older are refused.
        assert_eq!(MigrationStatus::PostcopyRecoverSetup.since(), Some((8, 0)));
        assert_eq!(MigrationStatus::Device.since(), None);
    }

    #[test]
    fn migration_info() {
        assert_eq!(
            QueryMigrate::parse_output(json!({})).ok().map(|i| i.status),
            Some(None)
        );
        let info = QueryMigrate::parse_output(json!({"status": "completed", "total-time": 120,
            "downtime": 8, "x-new-member": 1}));
        let info = info.map_err(|e| e.to_string());
        assert!(
            matches!(&info, Ok(i) if i.status == Some(MigrationStatus::Completed)
                && i.total_time == Some(120) && i.ram.is_none()),
            "{info:?}"
        );
    }
}
