//! What went wrong while saving or restoring a snapshot.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::snapshot::mismatch::Mismatch;

/// A snapshot could not be saved or restored; see
/// [`Error::Snapshot`](crate::Error::Snapshot).
#[derive(Debug)]
pub struct SnapshotError {
    pub(crate) restoring: bool,
    pub(crate) path: PathBuf,
    pub(crate) failure: SnapshotFailure,
}

/// Why a snapshot could not be saved or restored.
#[derive(Debug)]
#[non_exhaustive]
pub enum SnapshotFailure {
    /// The snapshot does not fit the builder or the binary; nothing was
    /// started (or, for a device set, the QEMU that was started is gone).
    Mismatch(Mismatch),
    /// The snapshot's data or metadata file could not be read or written.
    File {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The metadata file is not one qemukit wrote (or a newer format).
    Metadata {
        /// The metadata file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// QEMU's version could not be read from the binary (`--version`).
    Version(qemu_cmdline::Error),
    /// The machine cannot save this way, e.g. no QMP, or a TCP monitor on
    /// a QEMU that needs to be handed a descriptor.
    Unsupported(String),
    /// A QMP command or event wait failed.
    Qmp(qmp_client::Error),
    /// QEMU reported the migration as failed.
    Migration {
        /// The last status QEMU reported.
        status: String,
        /// QEMU's `error-desc`, when it gave one.
        desc: Option<String>,
    },
    /// The migration did not finish in time.
    Timeout(Duration),
}

impl SnapshotError {
    pub(crate) fn saving(path: &Path, failure: SnapshotFailure) -> Self {
        Self {
            restoring: false,
            path: path.to_path_buf(),
            failure,
        }
    }

    pub(crate) fn restoring(path: &Path, failure: SnapshotFailure) -> Self {
        Self {
            restoring: true,
            path: path.to_path_buf(),
            failure,
        }
    }

    /// The snapshot's data file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this happened while restoring (else while saving).
    pub fn is_restore(&self) -> bool {
        self.restoring
    }

    /// Why it failed.
    pub fn failure(&self) -> &SnapshotFailure {
        &self.failure
    }

    /// The mismatch, when the snapshot was refused for one.
    pub fn mismatch(&self) -> Option<&Mismatch> {
        match &self.failure {
            SnapshotFailure::Mismatch(mismatch) => Some(mismatch),
            _ => None,
        }
    }
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let operation = if self.restoring { "restore" } else { "save" };
        write!(
            f,
            "could not {operation} the snapshot {}: {}",
            self.path.display(),
            self.failure
        )
    }
}

/// The failure is part of the message; its own cause is the source.
impl std::error::Error for SnapshotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.failure {
            SnapshotFailure::File { source, .. } => Some(source),
            SnapshotFailure::Version(error) => Some(error),
            SnapshotFailure::Qmp(error) => Some(error),
            _ => None,
        }
    }
}

impl fmt::Display for SnapshotFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Mismatch(mismatch) => write!(f, "{mismatch}"),
            Self::File { path, .. } => write!(f, "{} could not be used", path.display()),
            Self::Metadata { path, reason } => write!(
                f,
                "{} is not qemukit snapshot metadata ({reason}): save the snapshot again",
                path.display()
            ),
            Self::Version(_) => f.write_str("the QEMU binary's version could not be read"),
            Self::Unsupported(reason) => f.write_str(reason),
            Self::Qmp(_) => f.write_str("a QMP command failed"),
            Self::Migration { status, desc } => {
                write!(f, "QEMU reported the migration {status}")?;
                match desc {
                    Some(desc) => write!(f, ": {desc}"),
                    None => f.write_str(" (see QEMU's log)"),
                }
            }
            Self::Timeout(timeout) => write!(
                f,
                "the migration did not finish within {timeout:?} (raise the timeout on a slow host)"
            ),
        }
    }
}
