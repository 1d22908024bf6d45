//! Typed payloads of the QMP events people wait for most.
//!
//! Every event arrives as a raw [`Event`] (name, data, timestamp); read its
//! data as one of these types with [`Event::payload`]. Events not listed
//! here stay available raw.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::Event;
use crate::JsonObject;
use crate::commands::{JobStatus, JobType, MigrationStatus, ShutdownCause};

/// The data of a QMP event, named by its wire name.
pub trait EventPayload: DeserializeOwned {
    /// The event's wire name, e.g. `SHUTDOWN`.
    const NAME: &'static str;
}

impl Event {
    /// Reads the event's data as `E`; `None` when the event is not `E`.
    ///
    /// ```
    /// use qmp_proto::{Event, JsonObject, Timestamp, events};
    ///
    /// let data: JsonObject = serde_json::from_str(r#"{"guest": true, "reason": "guest-shutdown"}"#)?;
    /// let event = Event::new("SHUTDOWN", data, Timestamp::default());
    /// let shutdown = event.payload::<events::Shutdown>().transpose()?;
    /// assert_eq!(shutdown.map(|s| s.guest), Some(true));
    /// assert!(event.payload::<events::Stop>().is_none());
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn payload<E: EventPayload>(&self) -> Option<Result<E, serde_json::Error>> {
        (self.name == E::NAME).then(|| E::deserialize(&self.data))
    }

    /// Whether this is the event `E`.
    pub fn is<E: EventPayload>(&self) -> bool {
        self.name == E::NAME
    }
}

macro_rules! event {
    ($name:ident = $wire:literal) => {
        impl EventPayload for $name {
            const NAME: &'static str = $wire;
        }
    };
}

/// `SHUTDOWN`: the VM shut down (QEMU exits next, unless `-no-shutdown`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Shutdown {
    /// Whether the guest asked for it.
    pub guest: bool,
    /// Why.
    pub reason: ShutdownCause,
}

event!(Shutdown = "SHUTDOWN");

/// `POWERDOWN`: the ACPI power button was pressed (`system_powerdown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Powerdown {}

event!(Powerdown = "POWERDOWN");

/// `RESET`: the VM was reset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Reset {
    /// Whether the guest asked for it.
    pub guest: bool,
    /// Why.
    pub reason: ShutdownCause,
}

event!(Reset = "RESET");

/// `STOP`: the guest's CPUs stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Stop {}

event!(Stop = "STOP");

/// `RESUME`: the guest's CPUs resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Resume {}

event!(Resume = "RESUME");

/// `DEVICE_DELETED`: a device is gone (the completion of `device_del`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeviceDeleted {
    /// The device's id, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Its QOM path.
    pub path: String,
}

event!(DeviceDeleted = "DEVICE_DELETED");

/// `JOB_STATUS_CHANGE`: a job changed state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobStatusChange {
    /// The job's id.
    pub id: String,
    /// Its new state.
    pub status: JobStatus,
}

event!(JobStatusChange = "JOB_STATUS_CHANGE");

/// `BLOCK_JOB_READY`: a mirror is in sync and can be completed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BlockJobReady {
    /// The kind of job.
    #[serde(rename = "type")]
    pub kind: JobType,
    /// The job's id (named `device` for history's sake).
    pub device: String,
    /// The estimated total work.
    pub len: i64,
    /// The work done.
    pub offset: i64,
    /// The speed limit in bytes per second (0: none).
    pub speed: i64,
}

event!(BlockJobReady = "BLOCK_JOB_READY");

/// `BLOCK_JOB_COMPLETED`: a block job finished, successfully or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BlockJobCompleted {
    /// The kind of job.
    #[serde(rename = "type")]
    pub kind: JobType,
    /// The job's id.
    pub device: String,
    /// The estimated total work.
    pub len: i64,
    /// The work done.
    pub offset: i64,
    /// The speed limit in bytes per second.
    pub speed: i64,
    /// Why it failed; absent on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

event!(BlockJobCompleted = "BLOCK_JOB_COMPLETED");

/// `BLOCK_JOB_ERROR`: a block job hit an I/O error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BlockJobError {
    /// The job's id.
    pub device: String,
    /// `read` or `write`.
    pub operation: String,
    /// What the job does about it: `ignore`, `report` or `stop`.
    pub action: String,
}

event!(BlockJobError = "BLOCK_JOB_ERROR");

/// `MIGRATION`: a migration changed state (needs the `events` migration
/// capability).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Migration {
    /// The new state.
    pub status: MigrationStatus,
}

event!(Migration = "MIGRATION");

/// `GUEST_PANICKED`: the guest reported a panic (pvpanic, Hyper-V, s390).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GuestPanicked {
    /// What QEMU does: `pause`, `poweroff` or `run`.
    pub action: String,
    /// Platform details, untyped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<JsonObject>,
}

event!(GuestPanicked = "GUEST_PANICKED");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;
    use serde_json::json;

    fn event(name: &str, data: serde_json::Value) -> Event {
        let data = data.as_object().cloned().unwrap_or_default();
        Event::new(name, data, Timestamp::default())
    }

    #[test]
    fn typed_payloads() {
        let stop = event("STOP", json!({}));
        assert!(stop.is::<Stop>());
        assert!(matches!(stop.payload::<Stop>(), Some(Ok(Stop {}))));
        assert!(stop.payload::<Resume>().is_none());

        let deleted = event("DEVICE_DELETED", json!({"path": "/machine/peripheral/d0"}));
        let deleted = deleted.payload::<DeviceDeleted>().and_then(Result::ok);
        assert_eq!(deleted.map(|d| d.device), Some(None));

        let job = event(
            "JOB_STATUS_CHANGE",
            json!({"status": "concluded", "id": "m0"}),
        );
        let job = job.payload::<JobStatusChange>().and_then(Result::ok);
        assert_eq!(job.map(|j| j.status), Some(JobStatus::Concluded));

        let shutdown = event(
            "SHUTDOWN",
            json!({"guest": false, "reason": "host-qmp-quit"}),
        );
        let shutdown = shutdown.payload::<Shutdown>().and_then(Result::ok);
        assert_eq!(shutdown.map(|s| s.reason), Some(ShutdownCause::HostQmpQuit));
    }

    #[test]
    fn misshapen_data_is_an_error_not_a_panic() {
        let bad = event("SHUTDOWN", json!({"guest": "yes"}));
        assert!(matches!(bad.payload::<Shutdown>(), Some(Err(_))));
    }
}
