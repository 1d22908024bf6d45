//! Everything on disk a machine makes: its private temporary directory and
//! QEMU's log. Made first, removed last; the removal (and the final read
//! of the log) runs on tokio's blocking pool, off the async runtime.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::OnceCell;

use crate::error::Error;
use crate::log_claim::LogClaim;
use crate::logfile;
use crate::tempdir::PrivateDir;

/// A machine's files; shared with the blocking task that cleans them up.
#[derive(Debug)]
pub(crate) struct MachineFiles {
    files: Arc<Mutex<Files>>,
    /// The cleanup, run once; holds the kept directory, if any.
    finished: OnceCell<Option<PathBuf>>,
    keep_temp_dir_on_failure: bool,
}

#[derive(Debug)]
struct Files {
    temp_dir: Option<PrivateDir>,
    log_path: PathBuf,
    /// Held while QEMU may write a log in a `log_dir`.
    log_claim: Option<LogClaim>,
    /// QEMU's output, kept in memory once QEMU ended.
    log: Option<String>,
}

/// Where a launch's files go.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) files: MachineFiles,
    /// QEMU's stdout and stderr.
    pub(crate) log: File,
    /// The directory relative monitor socket paths are resolved in by
    /// default: the temporary directory.
    pub(crate) temp_dir: PathBuf,
}

impl MachineFiles {
    /// Takes over the temporary directory made in advance, or creates one
    /// under `base` (the first guard: everything after is inside it or
    /// listed here), and creates the log file, in `log_dir` or the
    /// temporary directory.
    pub(crate) fn prepare(
        made: Option<PrivateDir>,
        base: &Path,
        file_name: &str,
        log_dir: Option<&Path>,
        keep_temp_dir_on_failure: bool,
    ) -> Result<Prepared, Error> {
        let temp_dir = match made {
            Some(dir) => dir,
            None => PrivateDir::create(base, file_name).map_err(|source| Error::TempDir {
                base: base.to_path_buf(),
                source,
            })?,
        };
        let temp_path = temp_dir.path().to_path_buf();
        let log_claim = log_dir.map(|dir| LogClaim::new(dir, file_name));
        let log_path = match &log_claim {
            Some(claim) => claim.path().to_path_buf(),
            None => temp_path.join(format!("{file_name}.log")),
        };
        // On error `temp_dir` is dropped, which removes it.
        let log = File::create(&log_path).map_err(|source| Error::LogFile {
            path: log_path.clone(),
            source,
        })?;
        let files = Files {
            temp_dir: Some(temp_dir),
            log_path,
            log_claim,
            log: None,
        };
        Ok(Prepared {
            files: MachineFiles {
                files: Arc::new(Mutex::new(files)),
                finished: OnceCell::new(),
                keep_temp_dir_on_failure,
            },
            log,
            temp_dir: temp_path,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Files> {
        lock(&self.files)
    }

    /// The temporary directory, until cleanup.
    pub(crate) fn temp_dir(&self) -> Option<PathBuf> {
        self.lock()
            .temp_dir
            .as_ref()
            .map(|dir| dir.path().to_path_buf())
    }

    pub(crate) fn log_path(&self) -> PathBuf {
        self.lock().log_path.clone()
    }

    /// QEMU's output so far (its last MiB), or all of it once QEMU ended.
    pub(crate) fn log(&self) -> String {
        let files = self.lock();
        if let Some(log) = &files.log {
            return log.clone();
        }
        logfile::read_log(&files.log_path).unwrap_or_else(|error| {
            format!(
                "(could not read QEMU's log {}: {error})",
                files.log_path.display()
            )
        })
    }

    /// After QEMU ended: keeps its log in memory and removes the files, or
    /// keeps the temporary directory after a failure when asked to.
    /// Returns the kept directory. Runs once; concurrent callers wait for
    /// the same cleanup.
    pub(crate) async fn finish(&self, failed: bool) -> Option<PathBuf> {
        let keep = failed && self.keep_temp_dir_on_failure;
        let files = Arc::clone(&self.files);
        let kept = self
            .finished
            .get_or_init(|| async move {
                let cleanup = tokio::task::spawn_blocking(move || clean_up(&files, keep));
                cleanup.await.unwrap_or_else(|error| {
                    tracing::warn!(%error, "the cleanup task failed");
                    None
                })
            })
            .await;
        kept.clone()
    }

    /// Removes the temporary directory here and now (for `Drop`, which
    /// cannot wait).
    pub(crate) fn remove_now(&self) {
        let dir = self.lock().temp_dir.take();
        if let Some(mut dir) = dir {
            dir.remove();
        }
    }
}

fn lock(files: &Mutex<Files>) -> MutexGuard<'_, Files> {
    // Poisoning only means a panic elsewhere; the file list stays valid.
    files
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The blocking part of `finish`: read the log, then remove (or keep).
fn clean_up(files: &Mutex<Files>, keep: bool) -> Option<PathBuf> {
    tracing::trace!("cleaning up");
    let log_path = lock(files).log_path.clone();
    let log = logfile::read_log(&log_path).unwrap_or_else(|error| {
        format!(
            "(could not read QEMU's log {}: {error})",
            log_path.display()
        )
    });
    let mut dir = {
        let mut files = lock(files);
        files.log.get_or_insert(log);
        files.log_claim = None;
        files.temp_dir.take()?
    };
    if keep {
        let kept = dir.keep();
        tracing::warn!(path = %kept.display(), "kept the machine's temporary directory for debugging");
        Some(kept)
    } else {
        dir.remove();
        None
    }
}
