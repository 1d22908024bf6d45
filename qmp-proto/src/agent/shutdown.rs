//! `guest-shutdown`.

use serde::{Deserialize, Serialize};

use crate::{Command, Empty};

/// `guest-shutdown`: asks the guest to power off, halt or reboot. The
/// agent does not answer on success: completion is QEMU's `SHUTDOWN`
/// event, and the end of the agent's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GuestShutdown {
    /// How to shut down; the agent's default is `powerdown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ShutdownMode>,
}

impl GuestShutdown {
    /// A shutdown in `mode` (`None`: the agent's default, `powerdown`).
    pub fn new(mode: Option<ShutdownMode>) -> Self {
        Self { mode }
    }
}

impl Command for GuestShutdown {
    const NAME: &'static str = "guest-shutdown";
    type Output = Empty;
}

/// The `mode` of `guest-shutdown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ShutdownMode {
    /// Power off.
    Powerdown,
    /// Halt without powering off.
    Halt,
    /// Reboot.
    Reboot,
}
