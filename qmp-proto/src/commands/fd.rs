//! Passing file descriptors to QEMU.
//!
//! `getfd` and `add-fd` take the descriptor that arrives with the command's
//! bytes as SCM_RIGHTS ancillary data on a Unix socket; sending it is the
//! transport's job (see `qmp-client`).

use serde::{Deserialize, Serialize};

use crate::command::Empty;

/// `getfd`: names the descriptor passed with this command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GetFd {
    /// The name to give it, e.g. for `-netdev tap,fd=NAME`.
    pub fdname: String,
}

impl GetFd {
    /// Names the passed descriptor `fdname`.
    pub fn new(fdname: impl Into<String>) -> Self {
        Self {
            fdname: fdname.into(),
        }
    }
}

command!(GetFd = "getfd" -> Empty);

/// `closefd`: closes a descriptor named with `getfd`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CloseFd {
    /// The descriptor's name.
    pub fdname: String,
}

impl CloseFd {
    /// Closes the descriptor named `fdname`.
    pub fn new(fdname: impl Into<String>) -> Self {
        Self {
            fdname: fdname.into(),
        }
    }
}

command!(CloseFd = "closefd" -> Empty);

/// `add-fd`: adds the descriptor passed with this command to an fd set,
/// usable as `/dev/fdset/ID` wherever QEMU opens files.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AddFd {
    /// The fd set (default: a new one).
    #[serde(rename = "fdset-id", default, skip_serializing_if = "Option::is_none")]
    pub fdset_id: Option<i64>,
    /// A free-form note stored with the descriptor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opaque: Option<String>,
}

impl AddFd {
    /// Adds the passed descriptor to a new fd set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the passed descriptor to the fd set `fdset_id`.
    pub fn to_set(fdset_id: i64) -> Self {
        Self {
            fdset_id: Some(fdset_id),
            opaque: None,
        }
    }
}

command!(AddFd = "add-fd" -> AddFdInfo);

/// What `add-fd` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AddFdInfo {
    /// The fd set the descriptor joined.
    #[serde(rename = "fdset-id")]
    pub fdset_id: i64,
    /// The descriptor's number inside QEMU.
    pub fd: i64,
}

/// `remove-fd`: removes one descriptor, or a whole fd set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RemoveFd {
    /// The fd set.
    #[serde(rename = "fdset-id")]
    pub fdset_id: i64,
    /// The descriptor (default: all of the set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fd: Option<i64>,
}

impl RemoveFd {
    /// Removes the whole fd set `fdset_id`.
    pub fn set(fdset_id: i64) -> Self {
        Self { fdset_id, fd: None }
    }

    /// Removes descriptor `fd` of fd set `fdset_id`.
    pub fn fd(fdset_id: i64, fd: i64) -> Self {
        Self {
            fdset_id,
            fd: Some(fd),
        }
    }
}

command!(RemoveFd = "remove-fd" -> Empty);

no_arguments!(
    /// `query-fdsets`: the fd sets and their descriptors.
    QueryFdsets = "query-fdsets" -> Vec<FdsetInfo>
);

/// One fd set listed by `query-fdsets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FdsetInfo {
    /// The set's id.
    #[serde(rename = "fdset-id")]
    pub fdset_id: i64,
    /// Its descriptors.
    pub fds: Vec<FdsetFdInfo>,
}

/// One descriptor of an fd set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FdsetFdInfo {
    /// The descriptor's number inside QEMU.
    pub fd: i64,
    /// The note given to `add-fd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opaque: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Command;
    use serde_json::json;

    #[test]
    fn fd_commands() {
        assert_eq!(
            serde_json::to_value(RemoveFd::fd(1, 9)).ok(),
            Some(json!({"fdset-id": 1, "fd": 9}))
        );
        assert_eq!(AddFd::new().arguments().ok(), Some(None));
        let info = AddFd::parse_output(json!({"fdset-id": 0, "fd": 25})).ok();
        assert_eq!(
            info,
            Some(AddFdInfo {
                fdset_id: 0,
                fd: 25
            })
        );
        let sets = QueryFdsets::parse_output(json!([{"fds": [{"fd": 25, "opaque": "x"}],
            "fdset-id": 0}]));
        assert_eq!(sets.ok().map(|s| s[0].fds[0].fd), Some(25));
    }
}
