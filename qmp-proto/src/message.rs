//! The QMP message model: what a server (QEMU) sends and what a client sends.
//!
//! Decoding never fails on a well-formed JSON object: an object that fits
//! none of the known shapes becomes [`ServerMessage::Unknown`] or
//! [`ClientMessage::Unknown`], because QEMU's schema drifts between versions.

use serde::Deserialize;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::Version;

/// A JSON object, as QMP uses for arguments and event data.
pub type JsonObject = Map<String, Value>;

/// The greeting QEMU sends once, when a client connects.
///
/// On the wire: `{"QMP": {"version": {"qemu": {"major": 7, "minor": 2,
/// "micro": 0}, "package": "..."}, "capabilities": ["oob"]}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Greeting {
    /// The QEMU version and the distribution's package string.
    pub version: VersionInfo,
    /// Capabilities the server offers; unknown ones are kept.
    pub capabilities: Vec<Capability>,
}

impl Greeting {
    /// A greeting for the given version offering `capabilities`.
    pub fn new(version: VersionInfo, capabilities: Vec<Capability>) -> Self {
        Self {
            version,
            capabilities,
        }
    }

    /// The QEMU release that sent the greeting, to compare with
    /// `(major, minor)` pairs (`greeting.version() >= (9, 0)`).
    pub fn version(&self) -> Version {
        self.version.qemu
    }

    /// Whether the server offers out-of-band execution.
    pub fn offers_oob(&self) -> bool {
        self.capabilities.contains(&Capability::Oob)
    }
}

/// QEMU's version as reported in the greeting and by `query-version`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, Deserialize)]
#[non_exhaustive]
pub struct VersionInfo {
    /// The upstream version numbers.
    pub qemu: Version,
    /// The package string, e.g. `Debian 1:7.2+dfsg-7+deb12u18`.
    #[serde(default)]
    pub package: String,
}

impl VersionInfo {
    /// A version with the given numbers and package string.
    pub fn new(qemu: Version, package: impl Into<String>) -> Self {
        Self {
            qemu,
            package: package.into(),
        }
    }
}

/// The upstream version numbers of QEMU: the former name of [`Version`].
pub type QemuVersion = Version;

/// A QMP capability, as offered in the greeting and enabled with
/// `qmp_capabilities`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Capability {
    /// Out-of-band command execution (`exec-oob`).
    Oob,
    /// A capability this crate does not know, kept by name.
    Other(String),
}

impl Capability {
    /// The capability's wire name.
    pub fn as_str(&self) -> &str {
        match self {
            Capability::Oob => "oob",
            Capability::Other(name) => name,
        }
    }

    fn from_name(name: String) -> Self {
        match name.as_str() {
            "oob" => Capability::Oob,
            _ => Capability::Other(name),
        }
    }
}

impl Serialize for Capability {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Whether a request runs in band (`execute`) or out of band (`exec-oob`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ExecKind {
    /// `execute`: queued behind other in-band commands.
    #[default]
    Execute,
    /// `exec-oob`: runs at once; needs the `oob` capability and an id.
    ExecOob,
}

impl ExecKind {
    /// The wire key: `execute` or `exec-oob`.
    pub fn key(self) -> &'static str {
        match self {
            ExecKind::Execute => "execute",
            ExecKind::ExecOob => "exec-oob",
        }
    }
}

/// A command request sent by a client.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Request {
    /// In band or out of band.
    pub kind: ExecKind,
    /// The command's name, e.g. `query-status`.
    pub command: String,
    /// The command's arguments, if any.
    pub arguments: Option<JsonObject>,
    /// The id echoed in the reply; any JSON value.
    pub id: Option<Value>,
}

impl Request {
    /// An in-band request for `command` with no arguments and no id.
    pub fn new(command: impl Into<String>) -> Self {
        Self {
            kind: ExecKind::Execute,
            command: command.into(),
            arguments: None,
            id: None,
        }
    }

    /// Sets the arguments.
    pub fn with_arguments(mut self, arguments: JsonObject) -> Self {
        self.arguments = Some(arguments);
        self
    }

    /// Sets the id echoed in the reply.
    pub fn with_id(mut self, id: impl Into<Value>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Marks the request out of band (`exec-oob`).
    pub fn oob(mut self) -> Self {
        self.kind = ExecKind::ExecOob;
        self
    }

    /// Reads a request from a decoded JSON value, or gives the value back
    /// when it is not a request.
    pub fn from_value(value: Value) -> Result<Self, Value> {
        let Value::Object(mut map) = value else {
            return Err(value);
        };
        let (kind, command) = match (map.get("execute"), map.get("exec-oob")) {
            (Some(Value::String(_)), None) => (ExecKind::Execute, map.remove("execute")),
            (None, Some(Value::String(_))) => (ExecKind::ExecOob, map.remove("exec-oob")),
            _ => return Err(Value::Object(map)),
        };
        let arguments = match map.get("arguments") {
            None => None,
            Some(Value::Object(_)) => match map.remove("arguments") {
                Some(Value::Object(arguments)) => Some(arguments),
                _ => None,
            },
            Some(_) => {
                restore(&mut map, kind.key(), command);
                return Err(Value::Object(map));
            }
        };
        let Some(Value::String(command)) = command else {
            return Err(Value::Object(map));
        };
        let id = map.remove("id");
        Ok(Self {
            kind,
            command,
            arguments,
            id,
        })
    }
}

fn restore(map: &mut JsonObject, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        map.insert(key.to_owned(), value);
    }
}

impl Serialize for Request {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let len = 1 + usize::from(self.arguments.is_some()) + usize::from(self.id.is_some());
        let mut map = serializer.serialize_map(Some(len))?;
        map.serialize_entry(self.kind.key(), &self.command)?;
        if let Some(arguments) = &self.arguments {
            map.serialize_entry("arguments", arguments)?;
        }
        if let Some(id) = &self.id {
            map.serialize_entry("id", id)?;
        }
        map.end()
    }
}

/// A successful reply: `{"return": ..., "id": ...}`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Success {
    /// The command's return value (often `{}`).
    pub ret: Value,
    /// The request's id, when it had one.
    pub id: Option<Value>,
}

impl Success {
    /// A reply carrying `ret` for the request with `id`.
    pub fn new(ret: Value, id: Option<Value>) -> Self {
        Self { ret, id }
    }
}

/// The class of a QMP error reply. Unknown classes are kept by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// `GenericError`: most failures.
    GenericError,
    /// `CommandNotFound`: the command does not exist or is not enabled.
    CommandNotFound,
    /// `DeviceNotActive`: the device is not active.
    DeviceNotActive,
    /// `DeviceNotFound`: no device by that name.
    DeviceNotFound,
    /// `KVMMissingCap`: KVM lacks a needed capability.
    KvmMissingCap,
    /// A class this crate does not know, kept by name.
    Other(String),
}

impl ErrorClass {
    /// The class's wire name.
    pub fn as_str(&self) -> &str {
        match self {
            ErrorClass::GenericError => "GenericError",
            ErrorClass::CommandNotFound => "CommandNotFound",
            ErrorClass::DeviceNotActive => "DeviceNotActive",
            ErrorClass::DeviceNotFound => "DeviceNotFound",
            ErrorClass::KvmMissingCap => "KVMMissingCap",
            ErrorClass::Other(name) => name,
        }
    }

    /// The class named `name`.
    pub fn from_name(name: impl Into<String>) -> Self {
        let name = name.into();
        match name.as_str() {
            "GenericError" => ErrorClass::GenericError,
            "CommandNotFound" => ErrorClass::CommandNotFound,
            "DeviceNotActive" => ErrorClass::DeviceNotActive,
            "DeviceNotFound" => ErrorClass::DeviceNotFound,
            "KVMMissingCap" => ErrorClass::KvmMissingCap,
            _ => ErrorClass::Other(name),
        }
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorClass {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// An error reply: `{"error": {"class": ..., "desc": ...}, "id": ...}`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ErrorReply {
    /// The error class.
    pub class: ErrorClass,
    /// QEMU's human-readable description.
    pub desc: String,
    /// The request's id, when it had one (and QEMU could read it).
    pub id: Option<Value>,
}

impl ErrorReply {
    /// An error reply of `class` saying `desc` for the request with `id`.
    pub fn new(class: ErrorClass, desc: impl Into<String>, id: Option<Value>) -> Self {
        Self {
            class,
            desc: desc.into(),
            id,
        }
    }
}

/// When an event happened, as QEMU stamps it (host wall clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    pub seconds: i64,
    /// Microseconds within the second.
    pub microseconds: i64,
}

/// An asynchronous event: `{"event": "STOP", "data": {...}, "timestamp": {...}}`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Event {
    /// The event's name, e.g. `SHUTDOWN`.
    pub name: String,
    /// The event's data; an empty object when QEMU sent none.
    pub data: JsonObject,
    /// When it happened.
    pub timestamp: Timestamp,
}

impl Event {
    /// An event named `name` carrying `data`.
    pub fn new(name: impl Into<String>, data: JsonObject, timestamp: Timestamp) -> Self {
        Self {
            name: name.into(),
            data,
            timestamp,
        }
    }
}

/// Everything a QMP server sends.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage {
    /// The greeting, first on every connection.
    Greeting(Greeting),
    /// A successful reply to a request.
    Success(Success),
    /// An error reply to a request (or to input QEMU could not parse).
    Error(ErrorReply),
    /// An asynchronous event.
    Event(Event),
    /// A well-formed JSON value that fits none of the shapes above.
    Unknown(Value),
}

impl ServerMessage {
    /// The id of a reply; `None` for greetings, events, unknown messages
    /// and replies without an id.
    pub fn id(&self) -> Option<&Value> {
        match self {
            ServerMessage::Success(reply) => reply.id.as_ref(),
            ServerMessage::Error(reply) => reply.id.as_ref(),
            _ => None,
        }
    }

    /// Classifies a decoded JSON value. Never fails: a value of no known
    /// shape becomes [`ServerMessage::Unknown`].
    pub fn from_value(value: Value) -> Self {
        let Value::Object(map) = value else {
            return ServerMessage::Unknown(value);
        };
        if map.contains_key("return") {
            success_from(map)
        } else if map.contains_key("event") {
            event_from(map)
        } else if map.contains_key("error") {
            error_from(map)
        } else if map.contains_key("QMP") {
            greeting_from(map)
        } else {
            ServerMessage::Unknown(Value::Object(map))
        }
    }
}

fn success_from(mut map: JsonObject) -> ServerMessage {
    if map.len() > 2 || (map.len() == 2 && !map.contains_key("id")) {
        return ServerMessage::Unknown(Value::Object(map));
    }
    let ret = map.remove("return").unwrap_or(Value::Null);
    let id = map.remove("id");
    ServerMessage::Success(Success { ret, id })
}

fn event_from(mut map: JsonObject) -> ServerMessage {
    let timestamp = match map.get("timestamp") {
        None => Some(Timestamp::default()),
        Some(value) => timestamp_from(value),
    };
    let data_ok = matches!(map.get("data"), None | Some(Value::Object(_)));
    let (Some(Value::String(_)), Some(timestamp), true) = (map.get("event"), timestamp, data_ok)
    else {
        return ServerMessage::Unknown(Value::Object(map));
    };
    let Some(Value::String(name)) = map.remove("event") else {
        return ServerMessage::Unknown(Value::Object(map));
    };
    let data = match map.remove("data") {
        Some(Value::Object(data)) => data,
        _ => JsonObject::new(),
    };
    ServerMessage::Event(Event {
        name,
        data,
        timestamp,
    })
}

fn timestamp_from(value: &Value) -> Option<Timestamp> {
    let object = value.as_object()?;
    Some(Timestamp {
        seconds: object.get("seconds")?.as_i64()?,
        microseconds: object.get("microseconds")?.as_i64()?,
    })
}

fn error_from(mut map: JsonObject) -> ServerMessage {
    let parsed = map
        .get("error")
        .and_then(Value::as_object)
        .and_then(|error| {
            let class = error.get("class")?.as_str()?;
            let desc = error.get("desc")?.as_str()?;
            Some((ErrorClass::from_name(class), desc.to_owned()))
        });
    match parsed {
        Some((class, desc)) => ServerMessage::Error(ErrorReply {
            class,
            desc,
            id: map.remove("id"),
        }),
        None => ServerMessage::Unknown(Value::Object(map)),
    }
}

fn greeting_from(map: JsonObject) -> ServerMessage {
    match parse_greeting(&map) {
        Some(greeting) => ServerMessage::Greeting(greeting),
        None => ServerMessage::Unknown(Value::Object(map)),
    }
}

fn parse_greeting(map: &JsonObject) -> Option<Greeting> {
    let qmp = map.get("QMP")?.as_object()?;
    let version = qmp.get("version")?.as_object()?;
    let numbers = version.get("qemu")?.as_object()?;
    let number = |key: &str| {
        numbers
            .get(key)
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
    };
    let qemu = Version {
        major: number("major")?,
        minor: number("minor")?,
        micro: number("micro")?,
    };
    let package = match version.get("package") {
        None => String::new(),
        Some(package) => package.as_str()?.to_owned(),
    };
    let capabilities = match qmp.get("capabilities") {
        None => Vec::new(),
        Some(list) => list
            .as_array()?
            .iter()
            .map(|capability| {
                capability
                    .as_str()
                    .map(|name| Capability::from_name(name.into()))
            })
            .collect::<Option<Vec<_>>>()?,
    };
    Some(Greeting {
        version: VersionInfo { qemu, package },
        capabilities,
    })
}

impl Serialize for ServerMessage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ServerMessage::Greeting(greeting) => {
                let version = serde_json::json!({
                    "qemu": {
                        "major": greeting.version.qemu.major,
                        "minor": greeting.version.qemu.minor,
                        "micro": greeting.version.qemu.micro,
                    },
                    "package": greeting.version.package,
                });
                let qmp = serde_json::json!({
                    "version": version,
                    "capabilities": greeting.capabilities,
                });
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("QMP", &qmp)?;
                map.end()
            }
            ServerMessage::Success(reply) => {
                let mut map = serializer.serialize_map(None)?;
                map.serialize_entry("return", &reply.ret)?;
                if let Some(id) = &reply.id {
                    map.serialize_entry("id", id)?;
                }
                map.end()
            }
            ServerMessage::Error(reply) => {
                let error = serde_json::json!({"class": reply.class, "desc": reply.desc});
                let mut map = serializer.serialize_map(None)?;
                map.serialize_entry("error", &error)?;
                if let Some(id) = &reply.id {
                    map.serialize_entry("id", id)?;
                }
                map.end()
            }
            ServerMessage::Event(event) => {
                let timestamp = serde_json::json!({
                    "seconds": event.timestamp.seconds,
                    "microseconds": event.timestamp.microseconds,
                });
                let mut map = serializer.serialize_map(Some(3))?;
                map.serialize_entry("event", &event.name)?;
                map.serialize_entry("data", &event.data)?;
                map.serialize_entry("timestamp", &timestamp)?;
                map.end()
            }
            ServerMessage::Unknown(value) => value.serialize(serializer),
        }
    }
}

/// Everything a QMP client sends.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    /// A command request.
    Request(Request),
    /// A well-formed JSON value that is not a request. QEMU answers these
    /// with an error reply without an id.
    Unknown(Value),
}

impl ClientMessage {
    /// Classifies a decoded JSON value. Never fails.
    pub fn from_value(value: Value) -> Self {
        match Request::from_value(value) {
            Ok(request) => ClientMessage::Request(request),
            Err(value) => ClientMessage::Unknown(value),
        }
    }
}

impl Serialize for ClientMessage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ClientMessage::Request(request) => request.serialize(serializer),
            ClientMessage::Unknown(value) => value.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn classify(value: Value) -> ServerMessage {
        ServerMessage::from_value(value)
    }

    #[test]
    fn greeting_from_qemu_7_2() {
        let message = classify(json!({"QMP": {"version": {"qemu": {"micro": 22, "minor": 2,
            "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18"}, "capabilities": ["oob"]}}));
        let ServerMessage::Greeting(greeting) = message else {
            panic!("not a greeting: {message:?}");
        };
        assert_eq!(greeting.version.qemu.to_string(), "7.2.22");
        assert!(greeting.offers_oob());
    }

    #[test]
    fn unknown_capabilities_and_error_classes_are_kept() {
        let message = classify(json!({"QMP": {"version": {"qemu": {"micro": 0, "minor": 0,
            "major": 42}, "package": ""}, "capabilities": ["oob", "teleport"]}}));
        let ServerMessage::Greeting(greeting) = message else {
            panic!("not a greeting");
        };
        assert_eq!(
            greeting.capabilities[1],
            Capability::Other("teleport".into())
        );

        let message = classify(json!({"error": {"class": "Novel", "desc": "d"}, "id": 3}));
        assert_eq!(
            message,
            ServerMessage::Error(ErrorReply::new(
                ErrorClass::Other("Novel".into()),
                "d",
                Some(json!(3))
            ))
        );
    }

    #[test]
    fn events_without_data_get_an_empty_object() {
        let message = classify(json!({"event": "STOP",
            "timestamp": {"seconds": 1, "microseconds": 2}}));
        let ServerMessage::Event(event) = message else {
            panic!("not an event");
        };
        assert_eq!(event.name, "STOP");
        assert!(event.data.is_empty());
        assert_eq!(event.timestamp.microseconds, 2);
    }

    #[test]
    fn misshapen_objects_are_unknown_not_errors() {
        for value in [
            json!({"event": 3}),
            json!({"error": "boom"}),
            json!({"QMP": {}}),
            json!({"return": {}, "extra": 1}),
            json!({"event": "X", "data": [1]}),
            json!([1, 2]),
            json!({}),
        ] {
            assert_eq!(classify(value.clone()), ServerMessage::Unknown(value));
        }
    }

    #[test]
    fn server_messages_round_trip_through_json() {
        for value in [
            json!({"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0},
                "package": "p"}, "capabilities": ["oob"]}}),
            json!({"return": {"status": "running"}, "id": "a"}),
            json!({"error": {"class": "GenericError", "desc": "no"}, "id": 1}),
            json!({"event": "RESUME", "data": {}, "timestamp": {"seconds": 5, "microseconds": 6}}),
        ] {
            let message = classify(value.clone());
            assert_eq!(serde_json::to_value(&message).ok(), Some(value));
        }
    }

    #[test]
    fn requests_round_trip() {
        let request = Request::new("device_del")
            .with_arguments(json!({"id": "d0"}).as_object().cloned().unwrap_or_default())
            .with_id(json!({"n": 1}))
            .oob();
        let value = serde_json::to_value(&request).ok();
        assert_eq!(
            value,
            Some(json!({"exec-oob": "device_del", "arguments": {"id": "d0"}, "id": {"n": 1}}))
        );
        let parsed = value.map(ClientMessage::from_value);
        assert_eq!(parsed, Some(ClientMessage::Request(request)));
    }

    #[test]
    fn non_requests_are_unknown_client_messages() {
        for value in [
            json!({"execute": 1}),
            json!({"execute": "a", "exec-oob": "b"}),
            json!({"execute": "a", "arguments": [1]}),
            json!("x"),
        ] {
            assert_eq!(
                ClientMessage::from_value(value.clone()),
                ClientMessage::Unknown(value)
            );
        }
    }
}
