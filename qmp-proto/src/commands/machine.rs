//! Negotiation, run state, introspection and the human monitor.
//!
//! Hand-written here: [`QmpCapabilities`] and [`QueryVersion`] use the
//! greeting's own [`Capability`] and [`VersionInfo`], [`QueryQmpSchema`]
//! returns the raw JSON tools compare, and [`QueryCpusFast`] reads every
//! target's CPUs as one flat [`CpuInfoFast`] (the generated one is a union
//! by target). The other commands are the generated ones.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::command::Empty;
pub use crate::qapi::commands::{
    Cont, HumanMonitorCommand, QueryCommands, QueryKvm, QueryName, QueryStatus, Quit, Screendump,
    Stop, SystemPowerdown, SystemReset,
};
pub use crate::qapi::types::{
    CommandInfo, ImageFormat, KvmInfo, NameInfo, RunState, ShutdownCause, StatusInfo,
};
use crate::{Capability, JsonObject, VersionInfo};

/// `qmp_capabilities`: leaves negotiation mode, enabling `enable`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[non_exhaustive]
pub struct QmpCapabilities {
    /// Capabilities to enable, e.g. [`Capability::Oob`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable: Option<Vec<Capability>>,
}

impl QmpCapabilities {
    /// Enables nothing beyond the defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Enables `capabilities`.
    pub fn enable(capabilities: Vec<Capability>) -> Self {
        Self {
            enable: Some(capabilities),
        }
    }
}

command!(QmpCapabilities = "qmp_capabilities" -> Empty);

no_arguments!(
    /// `query-version`: QEMU's version.
    QueryVersion = "query-version" -> VersionInfo
);

no_arguments!(
    /// `query-cpus-fast`: the virtual CPUs, without interrupting them.
    QueryCpusFast = "query-cpus-fast" -> Vec<CpuInfoFast>
);

/// One entry of `query-cpus-fast`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CpuInfoFast {
    /// The CPU's index.
    #[serde(rename = "cpu-index")]
    pub cpu_index: i64,
    /// Its QOM path.
    #[serde(rename = "qom-path")]
    pub qom_path: String,
    /// The host thread running it (under TCG possibly shared).
    #[serde(rename = "thread-id")]
    pub thread_id: i64,
    /// Its topology properties (`node-id`, `socket-id`, `core-id`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub props: Option<JsonObject>,
    /// The target architecture, e.g. `x86_64`.
    pub target: String,
    /// Members this crate does not type (target-specific ones).
    #[serde(flatten)]
    pub other: JsonObject,
}

no_arguments!(
    /// `query-qmp-schema`: the whole QAPI schema, as raw JSON (an array of
    /// `SchemaInfo` objects, ~200 KB).
    QueryQmpSchema = "query-qmp-schema" -> Value
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Command;
    use serde_json::json;

    #[test]
    fn wire_forms() {
        assert_eq!(QueryStatus.arguments().ok(), Some(None));
        assert_eq!(QmpCapabilities::new().arguments().ok(), Some(None));
        assert_eq!(
            QmpCapabilities::enable(vec![Capability::Oob])
                .arguments()
                .ok(),
            Some(json!({"enable": ["oob"]}).as_object().cloned())
        );
        let mut hmp = HumanMonitorCommand::new("info status");
        hmp.cpu_index = Some(0);
        assert_eq!(
            serde_json::to_value(&hmp).ok(),
            Some(json!({"command-line": "info status", "cpu-index": 0}))
        );
    }

    #[test]
    fn outputs_from_qemu_7_2() {
        let status = QueryStatus::parse_output(
            json!({"status": "prelaunch", "singlestep": false, "running": false}),
        );
        assert_eq!(
            status.ok(),
            Some(StatusInfo {
                running: false,
                singlestep: Some(false),
                status: RunState::Prelaunch
            })
        );
        let version = QueryVersion::parse_output(json!({"qemu": {"micro": 22, "minor": 2,
            "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}));
        assert_eq!(
            version.map(|v| v.qemu.to_string()).ok(),
            Some("7.2.22".into())
        );
        let novel = QueryStatus::parse_output(json!({"status": "dreaming", "running": true}));
        assert_eq!(
            novel.map(|s| s.status).ok(),
            Some(RunState::Other("dreaming".into()))
        );
        assert_eq!(RunState::Other("x".into()).to_string(), "x");
        assert_eq!(
            serde_json::to_value(RunState::GuestPanicked).ok(),
            Some(json!("guest-panicked"))
        );
    }
}
