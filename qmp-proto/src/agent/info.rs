//! `guest-ping` and `guest-info`.

use serde::{Deserialize, Serialize};

use crate::{Command, Empty};

/// `guest-ping`: checks that the agent is alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GuestPing;

impl Command for GuestPing {
    const NAME: &'static str = "guest-ping";
    type Output = Empty;
}

/// `guest-info`: the agent's version and supported commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GuestInfo;

impl Command for GuestInfo {
    const NAME: &'static str = "guest-info";
    type Output = GuestAgentInfo;
}

/// What `guest-info` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GuestAgentInfo {
    /// The agent's version, e.g. `7.2.22`.
    pub version: String,
    /// Every command the agent knows.
    pub supported_commands: Vec<GuestAgentCommandInfo>,
}

impl GuestAgentInfo {
    /// An answer listing `commands`, all enabled and answering on success
    /// (for a mock agent).
    pub fn new(version: impl Into<String>, commands: &[&str]) -> Self {
        Self {
            version: version.into(),
            supported_commands: commands
                .iter()
                .map(|name| GuestAgentCommandInfo {
                    name: (*name).to_owned(),
                    enabled: true,
                    success_response: true,
                })
                .collect(),
        }
    }

    /// Whether the agent knows `name` and has it enabled.
    pub fn supports(&self, name: &str) -> bool {
        self.supported_commands
            .iter()
            .any(|command| command.name == name && command.enabled)
    }
}

/// One entry of [`GuestAgentInfo::supported_commands`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GuestAgentCommandInfo {
    /// The command's name.
    pub name: String,
    /// Whether it may be run (`--block-rpcs` disables some).
    pub enabled: bool,
    /// Whether it replies on success (`guest-shutdown` does not).
    #[serde(rename = "success-response")]
    pub success_response: bool,
}
