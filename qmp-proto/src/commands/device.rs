//! Devices, QOM properties, network back ends and character devices.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::JsonObject;
use crate::command::Empty;

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

/// `device_del`: asks the guest to release a device. Completion is the
/// `DEVICE_DELETED` event, not the reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeviceDel {
    /// The device's id or QOM path.
    pub id: String,
}

impl DeviceDel {
    /// Removes the device `id`.
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into() }
    }
}

command!(DeviceDel = "device_del" -> Empty);

/// `qom-list`: the properties of a QOM object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct QomList {
    /// The object's path, e.g. `/machine`.
    pub path: String,
}

impl QomList {
    /// Lists the properties at `path`.
    pub fn new(path: impl Into<String>) -> Self {
        Self { path: path.into() }
    }
}

command!(QomList = "qom-list" -> Vec<ObjectPropertyInfo>);

/// One property listed by `qom-list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ObjectPropertyInfo {
    /// The property's name.
    pub name: String,
    /// Its type, e.g. `bool`, `child<pc-i440fx-7.2-machine>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A description, when QEMU has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The default value, when known.
    #[serde(
        rename = "default-value",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub default_value: Option<Value>,
}

/// `qom-get`: reads a QOM property (any JSON value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct QomGet {
    /// The object's path.
    pub path: String,
    /// The property's name.
    pub property: String,
}

impl QomGet {
    /// Reads `property` of the object at `path`.
    pub fn new(path: impl Into<String>, property: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            property: property.into(),
        }
    }
}

command!(QomGet = "qom-get" -> Value);

/// `qom-set`: writes a QOM property.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct QomSet {
    /// The object's path.
    pub path: String,
    /// The property's name.
    pub property: String,
    /// The new value.
    pub value: Value,
}

impl QomSet {
    /// Sets `property` of the object at `path` to `value`.
    pub fn new(
        path: impl Into<String>,
        property: impl Into<String>,
        value: impl Into<Value>,
    ) -> Self {
        Self {
            path: path.into(),
            property: property.into(),
            value: value.into(),
        }
    }
}

command!(QomSet = "qom-set" -> Empty);

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

/// `netdev_del`: removes a network back end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NetdevDel {
    /// The back end's id.
    pub id: String,
}

impl NetdevDel {
    /// Removes the back end `id`.
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into() }
    }
}

command!(NetdevDel = "netdev_del" -> Empty);

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

/// What `chardev-add` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChardevReturn {
    /// The pty's path, for a `pty` back end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pty: Option<String>,
}

/// `chardev-remove`: removes a character device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChardevRemove {
    /// The character device's id.
    pub id: String,
}

impl ChardevRemove {
    /// Removes the character device `id`.
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into() }
    }
}

command!(ChardevRemove = "chardev-remove" -> Empty);

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
