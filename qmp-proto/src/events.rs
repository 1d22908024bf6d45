//! Typed payloads of every QMP event.
//!
//! Every event arrives as a raw [`Event`] (name, data, timestamp); read its
//! data as one of these types with [`Event::payload`]. The types are the
//! generated ones of [`qapi::events`](crate::qapi::events), re-exported
//! here under the names this module always had (`Shutdown`,
//! `JobStatusChange`, `BlockJobCompleted`, ...): one set of event types,
//! covering every event of every recorded QEMU version, each saying which
//! versions send it. [`ALL`] lists them with their version bounds.
//!
//! Members QEMU types as enumerations or unions are typed so here too
//! (`BlockJobError::operation` is a
//! [`BlockIoErrorOperation`](crate::qapi::types::BlockIoErrorOperation),
//! `GuestPanicked::info` a [`GuestCrashloadedInfo`](crate::qapi::types::GuestCrashloadedInfo));
//! each enumeration keeps values it does not know in `Other` and reads as
//! its wire string with `as_str()`.

use serde::de::DeserializeOwned;

use crate::Event;
pub use crate::qapi::events::*;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;
    use crate::qapi::types::{JobStatus, ShutdownCause};
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
