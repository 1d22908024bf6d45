//! Negotiation, run state, introspection and the human monitor.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::command::Empty;
pub use crate::qapi::types::{ImageFormat, RunState, ShutdownCause};
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
    /// `query-status`: whether the guest runs, and the run state.
    QueryStatus = "query-status" -> StatusInfo
);

/// What `query-status` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StatusInfo {
    /// Whether the guest's CPUs run.
    pub running: bool,
    /// Whether single-stepping is on. QEMU 7.2 reports it; it was deprecated
    /// in 8.1 (in favour of the TCG accelerator's `one-insn-per-tb`) and QEMU
    /// 10.0 no longer sends it, so it is `None` there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub singlestep: Option<bool>,
    /// The run state.
    pub status: RunState,
}

no_arguments!(
    /// `query-commands`: the commands this QEMU offers.
    QueryCommands = "query-commands" -> Vec<CommandInfo>
);

/// One entry of `query-commands`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CommandInfo {
    /// The command's name.
    pub name: String,
}

no_arguments!(
    /// `query-name`: the VM's `-name`.
    QueryName = "query-name" -> NameInfo
);

/// What `query-name` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NameInfo {
    /// The name, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

no_arguments!(
    /// `query-kvm`: whether KVM is available and in use.
    QueryKvm = "query-kvm" -> KvmInfo
);

/// What `query-kvm` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KvmInfo {
    /// KVM is in use.
    pub enabled: bool,
    /// KVM is available.
    pub present: bool,
}

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
    /// `stop`: pauses the guest's CPUs.
    Stop = "stop" -> Empty
);

no_arguments!(
    /// `cont`: resumes the guest's CPUs.
    Cont = "cont" -> Empty
);

no_arguments!(
    /// `system_reset`: resets the machine.
    SystemReset = "system_reset" -> Empty
);

no_arguments!(
    /// `system_powerdown`: presses the ACPI power button; the guest decides.
    SystemPowerdown = "system_powerdown" -> Empty
);

no_arguments!(
    /// `quit`: QEMU exits at once. The connection may close before the
    /// reply arrives; that is success, not an error.
    Quit = "quit" -> Empty
);

/// `human-monitor-command`: runs an HMP command and returns its output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HumanMonitorCommand {
    /// The HMP command line, e.g. `info registers`.
    #[serde(rename = "command-line")]
    pub command_line: String,
    /// The CPU to make current first.
    #[serde(rename = "cpu-index", default, skip_serializing_if = "Option::is_none")]
    pub cpu_index: Option<i64>,
}

impl HumanMonitorCommand {
    /// Runs `command_line`.
    pub fn new(command_line: impl Into<String>) -> Self {
        Self {
            command_line: command_line.into(),
            cpu_index: None,
        }
    }
}

command!(HumanMonitorCommand = "human-monitor-command" -> String);

/// `screendump`: writes the display's contents to a file on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Screendump {
    /// The file to write.
    pub filename: String,
    /// The display device (default: the primary one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The head of a multi-head device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<i64>,
    /// The image format (default: PPM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<ImageFormat>,
}

impl Screendump {
    /// Dumps the primary display to `filename`.
    pub fn new(filename: impl Into<String>) -> Self {
        Self {
            filename: filename.into(),
            device: None,
            head: None,
            format: None,
        }
    }
}

command!(Screendump = "screendump" -> Empty);

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
