//! The test guest booted once per test process and configuration, saved
//! as a snapshot, and restored for every scenario that does not test
//! booting itself.
//!
//! The snapshots live in a private directory of this process
//! (`$TMPDIR/qemukit-snapshots-PID`), removed when the process exits; one
//! left by a killed run is removed by the next.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use qemu_machine::{AfterSave, Machine, MachineBuilder, SaveOptions};
use tokio::sync::OnceCell;

use crate::{READY_MARKER, qemu_binary};

/// A cold boot under TCG on a loaded machine: generous.
const BOOT: Duration = Duration::from_secs(120);

type Error = Box<dyn std::error::Error>;

/// One snapshot per (binary, configuration), made by whoever asks first.
type Snapshots = HashMap<(PathBuf, Vec<OsString>), Arc<OnceCell<PathBuf>>>;

static SNAPSHOTS: Mutex<Option<Snapshots>> = Mutex::new(None);
static NEXT: AtomicUsize = AtomicUsize::new(0);
static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// A machine launched from `make()` with the guest already at its shell
/// prompt: restored from a snapshot of the same configuration, which the
/// first call boots and saves. `make` must return the same configuration
/// each time (it may differ in anything else, e.g. `base_temp_dir`).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use qemu_machine::{ConsoleSpec, MachineBuilder};
/// let guest = qemukit_tests::guest();
/// let machine = qemukit_tests::restore_booted(|| {
///     let mut builder = MachineBuilder::new();
///     builder
///         .binary(qemukit_tests::qemu_binary())
///         .args(guest.args(false))
///         .console(ConsoleSpec::serial());
///     builder
/// })
/// .await?;
/// # drop(machine); Ok(()) }
/// ```
///
/// # Errors
///
/// When the boot, the save or the restore fails.
pub async fn restore_booted(make: impl Fn() -> MachineBuilder) -> Result<Machine, Error> {
    let path = booted_snapshot(&make).await?;
    Ok(make().restore_from(&path).await?)
}

/// The snapshot of `make()`'s configuration booted to its shell prompt,
/// made on the first call in this process.
///
/// # Errors
///
/// When the boot or the save fails (a later call tries again).
pub async fn booted_snapshot(make: &impl Fn() -> MachineBuilder) -> Result<PathBuf, Error> {
    let key = (qemu_binary(), make().configuration()?);
    let cell = SNAPSHOTS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert_with(HashMap::new)
        .entry(key)
        .or_default()
        .clone();
    let path = cell
        .get_or_try_init(|| async {
            let dir = snapshot_dir()?;
            let index = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!("booted-{index}.snap"));
            boot_and_save(make, &path, &dir).await?;
            Ok::<_, Error>(path)
        })
        .await?;
    Ok(path.clone())
}

async fn boot_and_save(
    make: &impl Fn() -> MachineBuilder,
    path: &Path,
    dir: &Path,
) -> Result<(), Error> {
    let machine = make()
        .base_temp_dir(dir)
        .name("snapshot-boot")
        .launch()
        .await?;
    let Some(console) = machine.console() else {
        return Err("restore_booted needs a builder with a console".into());
    };
    if let Err(error) = console.expect(READY_MARKER, BOOT).await {
        return Err(format!("the guest did not boot: {error}; QEMU: {}", machine.log()).into());
    }
    console.expect("# ", BOOT).await?;
    let options = SaveOptions::new().after(AfterSave::Quit);
    machine.save_snapshot_with(path, &options).await?;
    Ok(())
}

/// This process's snapshot directory, created (mode 0700) on first use,
/// with its removal at exit registered.
fn snapshot_dir() -> Result<PathBuf, Error> {
    let dir = DIR.get_or_init(|| {
        let base = std::env::temp_dir();
        remove_abandoned(&base);
        let dir = base.join(format!("qemukit-snapshots-{}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|error| format!("creating {}: {error}", dir.display()))?;
        // SAFETY: `atexit` only stores the pointer of a function that takes
        // nothing; the function touches only a `OnceLock` set before.
        if unsafe { atexit(remove_snapshot_dir) } != 0 {
            tracing::warn!("could not register the removal of {}", dir.display());
        }
        Ok(dir)
    });
    dir.clone().map_err(Into::into)
}

unsafe extern "C" {
    fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
}

extern "C" fn remove_snapshot_dir() {
    if let Some(Ok(dir)) = DIR.get() {
        let _ignored = std::fs::remove_dir_all(dir);
    }
}

/// Removes the snapshot directories of test processes that are gone
/// (killed before they could remove their own).
fn remove_abandoned(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix("qemukit-snapshots-"))
        else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ignored = std::fs::remove_dir_all(entry.path());
        }
    }
}
