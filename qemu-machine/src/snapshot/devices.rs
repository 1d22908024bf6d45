//! The machine's device set, as QOM sees it: every `-device` and every
//! hot-plugged device, named or not.

use qmp_client::Client;
use qmp_proto::commands::QomList;

use crate::snapshot::error::SnapshotFailure;

/// Where QEMU puts devices with an id, and those without.
const NAMED: &str = "/machine/peripheral";
const ANONYMOUS: &str = "/machine/peripheral-anon";

/// The devices, sorted: `id (type)` for named ones, the type for the rest
/// (their `device[N]` names depend only on the order of creation).
pub(crate) async fn device_set(client: &Client) -> Result<Vec<String>, SnapshotFailure> {
    let mut devices = Vec::new();
    for (container, named) in [(NAMED, true), (ANONYMOUS, false)] {
        let children = client
            .execute(QomList::new(container))
            .await
            .map_err(SnapshotFailure::Qmp)?;
        for child in children {
            let Some(kind) = child_type(&child.kind) else {
                continue;
            };
            devices.push(match named {
                true => format!("{} ({kind})", child.name),
                false => kind.to_owned(),
            });
        }
    }
    devices.sort();
    Ok(devices)
}

/// `virtio-blk-pci` from `child<virtio-blk-pci>`; `None` for properties
/// that are not children (`type`, links).
fn child_type(kind: &str) -> Option<&str> {
    kind.strip_prefix("child<")?.strip_suffix('>')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_children_are_devices() {
        assert_eq!(child_type("child<isa-serial>"), Some("isa-serial"));
        assert_eq!(child_type("string"), None);
        assert_eq!(child_type("link<irq>"), None);
    }
}
