//! Log files in a shared `log_dir`: one builder launches every machine
//! under the same name (as `QEMUMachine` relaunched), so two of its
//! machines running at once would write `<name>.log` together. A machine
//! claims its log path while QEMU may write to it; the next concurrent one
//! gets `<name>-2.log`, and a relaunch after the end gets `<name>.log` back.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// The log paths in `log_dir`s that running machines of this process hold.
static CLAIMED: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// A log path held until dropped.
#[derive(Debug)]
pub(crate) struct LogClaim {
    path: PathBuf,
}

impl LogClaim {
    /// Claims `<dir>/<name>.log`, or `<dir>/<name>-<n>.log` with the
    /// lowest `n` not held by a running machine.
    pub(crate) fn new(dir: &Path, name: &str) -> Self {
        let mut claimed = CLAIMED.lock().unwrap_or_else(PoisonError::into_inner);
        let mut path = dir.join(format!("{name}.log"));
        let mut n = 2u64;
        while claimed.contains(&path) {
            path = dir.join(format!("{name}-{n}.log"));
            n += 1;
        }
        claimed.insert(path.clone());
        Self { path }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for LogClaim {
    fn drop(&mut self) {
        CLAIMED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_claims_get_their_own_path_and_a_released_one_is_reused() {
        let dir = Path::new("/log-claim-test");
        let first = LogClaim::new(dir, "vm");
        let second = LogClaim::new(dir, "vm");
        assert_eq!(first.path(), dir.join("vm.log"));
        assert_eq!(second.path(), dir.join("vm-2.log"));
        drop(first);
        let again = LogClaim::new(dir, "vm");
        assert_eq!(again.path(), dir.join("vm.log"));
    }
}
