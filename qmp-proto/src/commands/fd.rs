//! Passing file descriptors to QEMU.
//!
//! `getfd` and `add-fd` take the descriptor that arrives with the command's
//! bytes as SCM_RIGHTS ancillary data on a Unix socket; sending it is the
//! transport's job (see `qmp-client`).
//!
//! The commands are the generated ones of
//! [`qapi::commands`](crate::qapi::commands) (`getfd` and `closefd` under
//! their older names [`GetFd`] and [`CloseFd`]); this module adds the
//! constructors that say what they do.

pub use crate::qapi::commands::{AddFd, Closefd as CloseFd, Getfd as GetFd, QueryFdsets, RemoveFd};
pub use crate::qapi::types::{AddFdInfo, FdsetFdInfo, FdsetInfo};

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

impl RemoveFd {
    /// Removes the whole fd set `fdset_id`.
    pub fn set(fdset_id: i64) -> Self {
        Self::new(fdset_id)
    }

    /// Removes descriptor `fd` of fd set `fdset_id`.
    pub fn fd(fdset_id: i64, fd: i64) -> Self {
        Self {
            fdset_id,
            fd: Some(fd),
        }
    }
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
