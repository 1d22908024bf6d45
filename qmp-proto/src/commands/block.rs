//! Block nodes, block devices, mirroring and jobs.
//!
//! Hand-written here: [`BlockdevAdd`], whose options are an open union
//! (each driver's members, free-form), and `query-block` and
//! `query-named-block-nodes` with their flat replies ([`BlockInfo`],
//! [`BlockDeviceInfo`], [`ImageInfo`]) that keep the members they do not
//! type in `other` and read the strings QEMU types as enumerations
//! (`detect_zeroes`, `io-status`) as strings. The other commands are the
//! generated ones of [`qapi::commands`](crate::qapi::commands), whose
//! `QueryBlock` and `QueryNamedBlockNodes` type every member.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::JsonObject;
use crate::command::Empty;
pub use crate::qapi::commands::{
    BlockdevDel, BlockdevMirror, JobCancel, JobComplete, JobDismiss, QueryJobs,
};
pub use crate::qapi::types::{
    BlockdevOnError, JobInfo, JobStatus, JobType, MirrorCopyMode, MirrorSyncMode,
};

/// `blockdev-add`: adds a block node.
///
/// `driver` selects the node type (`file`, `qcow2`, `raw`, `null-co`, ...);
/// its options (`filename`, `file`, `size`, ...) go in
/// [`BlockdevAdd::options`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BlockdevAdd {
    /// The block driver.
    pub driver: String,
    /// The node's name, used to refer to it later.
    #[serde(rename = "node-name", default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// Whether the node is read-only.
    #[serde(rename = "read-only", default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// Driver-specific and other options.
    #[serde(flatten)]
    pub options: JsonObject,
}

impl BlockdevAdd {
    /// A node of `driver` named `node_name`.
    pub fn new(driver: impl Into<String>, node_name: impl Into<String>) -> Self {
        Self {
            driver: driver.into(),
            node_name: Some(node_name.into()),
            read_only: None,
            options: JsonObject::new(),
        }
    }

    /// Marks the node read-only.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = Some(read_only);
        self
    }

    /// Adds an option.
    pub fn option(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.options.insert(name.into(), value.into());
        self
    }
}

command!(BlockdevAdd = "blockdev-add" -> Empty);

no_arguments!(
    /// `query-block`: the block devices (drives) and what is inserted.
    QueryBlock = "query-block" -> Vec<BlockInfo>
);

/// One block device listed by `query-block`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BlockInfo {
    /// The device's name (empty for `-blockdev`/`-device` setups).
    pub device: String,
    /// The qdev id or QOM path of the device model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qdev: Option<String>,
    /// Historically the device type; always `unknown` now.
    #[serde(rename = "type")]
    pub kind: String,
    /// Whether the medium is removable.
    pub removable: bool,
    /// Whether the guest locked the tray.
    pub locked: bool,
    /// The inserted medium, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inserted: Option<BlockDeviceInfo>,
    /// Whether the tray is open (removable devices only).
    #[serde(rename = "tray_open", default, skip_serializing_if = "Option::is_none")]
    pub tray_open: Option<bool>,
    /// The I/O status (`ok`, `failed`, `nospace`), when tracked.
    #[serde(rename = "io-status", default, skip_serializing_if = "Option::is_none")]
    pub io_status: Option<String>,
}

/// `query-named-block-nodes`: every named block node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct QueryNamedBlockNodes {
    /// Omit the nested `backing-image` chains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flat: Option<bool>,
}

impl QueryNamedBlockNodes {
    /// Lists every node with its full backing chain.
    pub fn new() -> Self {
        Self::default()
    }
}

command!(QueryNamedBlockNodes = "query-named-block-nodes" -> Vec<BlockDeviceInfo>);

/// A block node as `query-block` and `query-named-block-nodes` describe it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BlockDeviceInfo {
    /// The file name or JSON description of the node.
    pub file: String,
    /// The node's name.
    #[serde(rename = "node-name", default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// Whether it is read-only.
    pub ro: bool,
    /// The driver, e.g. `qcow2`.
    pub drv: String,
    /// The backing file's name, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backing_file: Option<String>,
    /// How long the backing chain is.
    pub backing_file_depth: i64,
    /// Whether the image is encrypted.
    pub encrypted: bool,
    /// Zero detection (`off`, `on`, `unmap`).
    pub detect_zeroes: String,
    /// The image.
    pub image: ImageInfo,
    /// Cache modes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<BlockdevCacheInfo>,
    /// Throttling limits and the rest, untyped.
    #[serde(flatten)]
    pub other: JsonObject,
}

/// The cache mode of a block node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BlockdevCacheInfo {
    /// Writeback caching is on.
    pub writeback: bool,
    /// O_DIRECT is used.
    pub direct: bool,
    /// Flush requests are ignored.
    #[serde(rename = "no-flush")]
    pub no_flush: bool,
}

/// An image as `query-block` describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ImageInfo {
    /// The file name.
    pub filename: String,
    /// The image format.
    pub format: String,
    /// The guest-visible size in bytes.
    #[serde(rename = "virtual-size")]
    pub virtual_size: i64,
    /// The space used on the host, when known.
    #[serde(
        rename = "actual-size",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub actual_size: Option<i64>,
    /// Whether the image is marked dirty.
    #[serde(
        rename = "dirty-flag",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub dirty_flag: Option<bool>,
    /// The backing file's name, if any.
    #[serde(
        rename = "backing-filename",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub backing_filename: Option<String>,
    /// The backing image, if any.
    #[serde(
        rename = "backing-image",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub backing_image: Option<Box<ImageInfo>>,
    /// Format-specific information, untyped.
    #[serde(
        rename = "format-specific",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub format_specific: Option<Value>,
    /// The members this crate does not type.
    #[serde(flatten)]
    pub other: JsonObject,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Command;
    use serde_json::json;

    #[test]
    fn blockdev_add_with_free_form_options() {
        let add = BlockdevAdd::new("qcow2", "disk0").read_only(true).option(
            "file",
            json!({"driver": "file", "filename": "/tmp/d.qcow2"}),
        );
        assert_eq!(
            add.arguments().ok().flatten().map(Value::Object),
            Some(
                json!({"driver": "qcow2", "node-name": "disk0", "read-only": true,
                "file": {"driver": "file", "filename": "/tmp/d.qcow2"}})
            )
        );
    }

    #[test]
    fn mirror_arguments() {
        let mut mirror = BlockdevMirror::new("src", "dst", MirrorSyncMode::Full);
        mirror.job_id = Some("m0".into());
        mirror.copy_mode = Some(MirrorCopyMode::WriteBlocking);
        assert_eq!(
            serde_json::to_value(&mirror).ok(),
            Some(
                json!({"job-id": "m0", "device": "src", "target": "dst", "sync": "full",
                "copy-mode": "write-blocking"})
            )
        );
    }

    #[test]
    fn block_info_from_qemu_7_2() {
        let reply = json!([{"io-status": "ok", "device": "", "locked": false, "removable": false,
            "inserted": {"iops_rd": 0, "detect_zeroes": "off", "image": {"virtual-size": 1048576,
            "filename": "null-co://", "format": "null-co", "actual-size": 0},
            "iops_wr": 0, "ro": false, "node-name": "n0", "backing_file_depth": 0,
            "drv": "null-co", "iops": 0, "bps_wr": 0, "write_threshold": 0, "encrypted": false,
            "bps": 0, "bps_rd": 0, "cache": {"no-flush": false, "direct": false,
            "writeback": true}, "file": "null-co://"}, "qdev": "/machine/peripheral/d0/virtio-backend",
            "type": "unknown"}]);
        let info = QueryBlock::parse_output(reply).map_err(|e| e.to_string());
        let info = info.as_ref().map(|list| &list[0]);
        let inserted = info.ok().and_then(|i| i.inserted.as_ref());
        assert_eq!(inserted.map(|i| i.image.virtual_size), Some(1048576));
        assert_eq!(
            inserted.and_then(|i| i.cache).map(|c| c.writeback),
            Some(true)
        );
        assert_eq!(
            inserted.map(|i| i.other.get("bps").cloned()),
            Some(Some(json!(0)))
        );
    }

    #[test]
    fn jobs() {
        let jobs = QueryJobs::parse_output(json!([{"current-progress": 5, "status": "ready",
            "total-progress": 5, "type": "mirror", "id": "m0"}]));
        let job = jobs.ok().and_then(|mut jobs| jobs.pop());
        assert_eq!(job.as_ref().map(|j| &j.status), Some(&JobStatus::Ready));
        assert_eq!(job.map(|j| j.kind), Some(JobType::Mirror));
    }
}
