//! Devices, QOM properties, network back ends and character devices.
//!
//! [`DeviceAdd`], [`NetdevAdd`] and [`ChardevAdd`] stay hand-written: they
//! take free-form properties (a device's, a back end's) that the schema
//! does not list. The other commands are the generated ones of
//! [`qapi::commands`](crate::qapi::commands).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::JsonObject;
use crate::command::Empty;
pub use crate::qapi::commands::{ChardevRemove, DeviceDel, NetdevDel, QomGet, QomList, QomSet};
pub use crate::qapi::types::{ChardevReturn, ObjectPropertyInfo};

/// `device_add`: hot-plugs a device.
///
/// Besides `driver`, `id` and `bus`, every device property QEMU knows for
/// the driver is accepted; put those in [`DeviceAdd::properties`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeviceAdd {
    /// The device type, e.g. `virtio-blk-pci`.
    pub driver: String,
    /// The device's id, used by `device_del` and `DEVICE_DELETED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The bus to plug it into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bus: Option<String>,
    /// Driver-specific properties, e.g. `"drive": "disk0"`.
    #[serde(flatten)]
    pub properties: JsonObject,
}

impl DeviceAdd {
    /// A device of type `driver` with no id, bus or properties.
    pub fn new(driver: impl Into<String>) -> Self {
        Self {
            driver: driver.into(),
            id: None,
            bus: None,
            properties: JsonObject::new(),
        }
    }

    /// Sets the device's id.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the bus.
    pub fn bus(mut self, bus: impl Into<String>) -> Self {
        self.bus = Some(bus.into());
        self
    }

    /// Adds a driver property.
    pub fn property(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.properties.insert(name.into(), value.into());
        self
    }
}

command!(DeviceAdd = "device_add" -> Empty);

/// `netdev_add`: adds a network back end.
///
/// The options depend on the type (`user`: `hostfwd`, `net`, ...; `tap`:
/// `ifname`, `fd`, ...); put them in [`NetdevAdd::options`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NetdevAdd {
    /// The back end's id, used by `-device ...,netdev=ID`.
    pub id: String,
    /// The back-end type, e.g. `user`, `tap`, `socket`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Type-specific options.
    #[serde(flatten)]
    pub options: JsonObject,
}

impl NetdevAdd {
    /// A back end of type `kind` named `id`.
    pub fn new(kind: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            kind: kind.into(),
            options: JsonObject::new(),
        }
    }

    /// Adds a type-specific option.
    pub fn option(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.options.insert(name.into(), value.into());
        self
    }
}

command!(NetdevAdd = "netdev_add" -> Empty);

/// `chardev-add`: adds a character device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChardevAdd {
    /// The character device's id.
    pub id: String,
    /// What it is connected to.
    pub backend: ChardevBackend,
}

impl ChardevAdd {
    /// A character device `id` on `backend`.
    pub fn new(id: impl Into<String>, backend: ChardevBackend) -> Self {
        Self {
            id: id.into(),
            backend,
        }
    }
}

command!(ChardevAdd = "chardev-add" -> ChardevReturn);

/// A character device back end: `{"type": ..., "data": {...}}` on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChardevBackend {
    /// The back-end type, e.g. `socket`, `file`, `null`, `pty`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Type-specific options (`ChardevSocket`, `ChardevFile`, ...).
    pub data: JsonObject,
}

impl ChardevBackend {
    /// A back end of type `kind` with options `data`.
    pub fn new(kind: impl Into<String>, data: JsonObject) -> Self {
        Self {
            kind: kind.into(),
            data,
        }
    }

    /// A back end that discards output and gives no input.
    pub fn null() -> Self {
        Self::new("null", JsonObject::new())
    }

    /// A back end writing to the host file `path`.
    pub fn file(path: impl Into<String>) -> Self {
        let mut data = JsonObject::new();
        data.insert("out".into(), Value::String(path.into()));
        Self::new("file", data)
    }

    /// A Unix socket at `path`; QEMU listens when `server` is true (without
    /// waiting for a client), else it connects.
    pub fn unix_socket(path: impl Into<String>, server: bool) -> Self {
        let address = serde_json::json!({"type": "unix", "data": {"path": path.into()}});
        let mut data = JsonObject::new();
        data.insert("addr".into(), address);
        data.insert("server".into(), Value::Bool(server));
        if server {
            data.insert("wait".into(), Value::Bool(false));
        }
        Self::new("socket", data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Command;
    use serde_json::json;

    #[test]
    fn free_form_properties_sit_beside_the_typed_ones() {
        let device = DeviceAdd::new("virtio-blk-pci")
            .id("disk1")
            .bus("pci.0")
            .property("drive", "node1")
            .property("bootindex", 2);
        assert_eq!(
            device.arguments().ok().flatten().map(Value::Object),
            Some(
                json!({"driver": "virtio-blk-pci", "id": "disk1", "bus": "pci.0",
                "drive": "node1", "bootindex": 2})
            )
        );
        let back: Result<DeviceAdd, _> = serde_json::from_value(json!({"driver": "e1000",
            "netdev": "n0"}));
        assert_eq!(
            back.ok(),
            Some(DeviceAdd::new("e1000").property("netdev", "n0"))
        );
        let netdev = NetdevAdd::new("user", "n0").option("restrict", true);
        assert_eq!(
            serde_json::to_value(netdev).ok(),
            Some(json!({"id": "n0", "type": "user", "restrict": true}))
        );
    }

    #[test]
    fn chardev_backends() {
        let add = ChardevAdd::new("c0", ChardevBackend::unix_socket("/tmp/s", true));
        assert_eq!(
            serde_json::to_value(add).ok(),
            Some(json!({"id": "c0", "backend": {"type": "socket", "data": {
                "addr": {"type": "unix", "data": {"path": "/tmp/s"}},
                "server": true, "wait": false}}}))
        );
        assert_eq!(
            ChardevAdd::parse_output(json!({"pty": "/dev/pts/3"}))
                .ok()
                .and_then(|r| r.pty),
            Some("/dev/pts/3".into())
        );
    }
}
