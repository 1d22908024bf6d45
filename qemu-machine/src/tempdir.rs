//! The machine's private temporary directory: created first, removed last.

use std::fs::Permissions;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A directory only the current user can enter (mode 0700), removed on drop
/// unless [`PrivateDir::keep`] was called.
#[derive(Debug)]
pub(crate) struct PrivateDir {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl PrivateDir {
    /// Creates `<base>/qemu-machine-<name>-XXXXXX` with mode 0700.
    pub(crate) fn create(base: &Path, name: &str) -> io::Result<Self> {
        let prefix = format!("qemu-machine-{name}-");
        let dir = tempfile::Builder::new()
            .prefix(&prefix)
            .permissions(Permissions::from_mode(0o700))
            .tempdir_in(base)?;
        let path = dir.path().to_path_buf();
        Ok(Self {
            dir: Some(dir),
            path,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Leaves the directory on disk (for debugging a failure) and returns
    /// its path.
    pub(crate) fn keep(&mut self) -> PathBuf {
        if let Some(dir) = self.dir.take() {
            // `keep` disarms the removal; the path is already recorded.
            let _kept = dir.keep();
        }
        self.path.clone()
    }

    /// Removes the directory now, reporting (not panicking on) a failure.
    pub(crate) fn remove(&mut self) {
        if let Some(dir) = self.dir.take() {
            if let Err(error) = dir.close() {
                tracing::warn!(path = %self.path.display(), %error, "could not remove the machine's temporary directory");
            }
        }
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        self.remove();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_dir_is_0700_and_removed_on_drop() -> io::Result<()> {
        let base = tempfile::tempdir()?;
        let dir = PrivateDir::create(base.path(), "t")?;
        let path = dir.path().to_path_buf();
        let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::write(path.join("file"), b"x")?;
        drop(dir);
        assert!(!path.exists());
        Ok(())
    }

    #[test]
    fn kept_dir_stays() -> io::Result<()> {
        let base = tempfile::tempdir()?;
        let mut dir = PrivateDir::create(base.path(), "t")?;
        let kept = dir.keep();
        drop(dir);
        assert!(kept.is_dir());
        Ok(())
    }
}
