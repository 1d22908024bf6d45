//! The version of a QEMU binary before it is started (`--version`),
//! remembered per binary file so that many restores ask once.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::snapshot::error::SnapshotFailure;

/// `--version` prints and exits at once; this only guards against a hang.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// What identifies a binary file: replacing it changes one of these.
type FileKey = (PathBuf, u64, u64, i64, u64);

static KNOWN: Mutex<Option<HashMap<FileKey, String>>> = Mutex::new(None);

/// `major.minor.micro` of `binary` (a path, or a name in the `PATH`).
pub(crate) async fn binary_version(binary: &Path) -> Result<String, SnapshotFailure> {
    let key = file_key(binary);
    if let Some(key) = &key {
        let known = KNOWN.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(version) = known.as_ref().and_then(|map| map.get(key)) {
            return Ok(version.clone());
        }
    }
    let owned = binary.to_path_buf();
    let probed =
        tokio::task::spawn_blocking(move || qemu_cmdline::Probe::version(owned, PROBE_TIMEOUT))
            .await
            .map_err(|join| {
                SnapshotFailure::Unsupported(format!("probing QEMU's version panicked: {join}"))
            })?
            .map_err(SnapshotFailure::Version)?;
    let version = format!("{}.{}.{}", probed.major, probed.minor, probed.micro);
    if let Some(key) = key {
        KNOWN
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert_with(HashMap::new)
            .insert(key, version.clone());
    }
    Ok(version)
}

/// The resolved file's path, device, inode, modification time and size;
/// `None` when it cannot be found (the probe then says why).
fn file_key(binary: &Path) -> Option<FileKey> {
    let resolved = if binary.components().count() > 1 {
        binary.to_path_buf()
    } else {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .map(|dir| dir.join(binary))
            .find(|candidate| candidate.is_file())?
    };
    let meta = std::fs::metadata(&resolved).ok()?;
    Some((resolved, meta.dev(), meta.ino(), meta.mtime(), meta.size()))
}
