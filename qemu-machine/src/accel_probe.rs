//! Whether an accelerator can *run a guest*, not only whether QEMU has it
//! compiled in (`require_accelerator` in QEMU's functional tests).
//!
//! A nested or paravirtualised KVM often opens `/dev/kvm` and starts
//! `-machine none`, then crawls through a real kernel's boot and dies with
//! `KVM internal error … emulation failure`; even SeaBIOS and real-mode code
//! run fine there. Only booting a kernel tells, so the probe boots one under
//! a timeout, and remembers the answer for the rest of the process.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use qemu_cmdline::{Accel, CharDevSpec, Cmdline, Display, Machine, Memory};
use tokio::io::AsyncReadExt;
use tokio::sync::OnceCell;
use tokio::time::Instant;

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccelVerdict {
    /// The kernel printed the ready pattern under this accelerator.
    Works {
        /// How long the boot took to print it.
        boot: Duration,
    },
    /// It did not; the reason says what happened instead.
    Fails {
        /// Why, in words (QEMU's own message when it exited).
        reason: String,
    },
}

impl AccelVerdict {
    /// Whether the accelerator ran the probe kernel.
    pub fn works(&self) -> bool {
        matches!(self, AccelVerdict::Works { .. })
    }
}

/// A test requirement that is not met: the test should be skipped, and
/// say so. `Display` reads `SKIPPED: …`; [`Skip::report`] writes it where
/// the test runner shows it even for a passing test.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SKIPPED: {reason}")]
pub struct Skip {
    /// Why the test cannot run here.
    pub reason: String,
}

impl Skip {
    /// Writes `SKIPPED: reason` to the process's standard error directly,
    /// past the test harness's output capture, so the skip shows in the
    /// output of `cargo test` (which has no "skipped" outcome).
    pub fn report(&self) {
        use std::io::Write as _;
        // The write goes to the raw stderr handle on purpose: libtest
        // captures only the print macros. A failed write has nowhere to go.
        let _ = writeln!(std::io::stderr(), "{self}");
    }
}

/// A `Probe::require_*` answer ([`qemu_cmdline::Error::Missing`]: the
/// binary lacks a machine, accelerator, CPU model, device or netdev back
/// end) as a skip, so that [`require!`](crate::require) takes it as it
/// takes [`AccelProbe::require`]. Run the probe itself with `?`: a QEMU that
/// cannot be probed fails the test, it does not skip it.
impl From<qemu_cmdline::Error> for Skip {
    fn from(missing: qemu_cmdline::Error) -> Self {
        Skip {
            reason: missing.to_string(),
        }
    }
}

/// What a skipped test returns: `()` for a plain test, `Ok(())` for one
/// that returns a `Result` (used by [`require!`](crate::require)).
pub trait SkippedOutcome {
    /// The value a skipped test returns.
    fn skipped() -> Self;
}

impl SkippedOutcome for () {
    fn skipped() -> Self {}
}

impl<E> SkippedOutcome for Result<(), E> {
    fn skipped() -> Self {
        Ok(())
    }
}

/// Returns from the enclosing test, reporting the skip, when a requirement
/// (`Result<_, E>` with `E` into [`Skip`]: [`AccelProbe::require`],
/// `Probe::require_netdev` and the other `Probe::require_*`) is not met;
/// otherwise gives the `Ok` value. The report reads
/// `SKIPPED: <binary> (QEMU 10.0.2) has no netdev back end `vde`; …` in
/// `cargo test`'s output.
///
/// The enclosing function must return `()` or a `Result<(), E>`
/// (see [`SkippedOutcome`]).
///
/// ```no_run
/// # async fn test() -> Result<(), Box<dyn std::error::Error>> {
/// use qemu_machine::{AccelProbe, require};
/// use qemu_machine::qemu_cmdline::{DEFAULT_PROBE_TIMEOUT, Probe};
/// let probe = AccelProbe::new("/path/to/vmlinuz");
/// require!(probe.require("kvm").await);
/// // `self.require_netdev('user')` of QEMU's functional tests:
/// let qemu = Probe::run_async("qemu-system-x86_64", DEFAULT_PROBE_TIMEOUT).await?;
/// require!(qemu.require_netdev("user"));
/// // … the test, under KVM with user networking …
/// # Ok(()) }
/// ```
#[macro_export]
macro_rules! require {
    ($requirement:expr) => {
        match $requirement {
            ::core::result::Result::Ok(value) => value,
            ::core::result::Result::Err(unmet) => {
                let skip: $crate::Skip = ::core::convert::Into::into(unmet);
                $crate::Skip::report(&skip);
                return <_ as $crate::SkippedOutcome>::skipped();
            }
        }
    };
}

/// A boot probe for an accelerator: a kernel (and initrd) booted on a PC
/// with its console on the serial port, until it prints `ready` or
/// `timeout` passes.
///
/// Answers are cached for the process by binary, accelerator and kernel:
/// many tests asking about KVM boot the probe once, and concurrent askers
/// share that one boot.
#[derive(Debug, Clone)]
pub struct AccelProbe {
    binary: PathBuf,
    kernel: PathBuf,
    initrd: Option<PathBuf>,
    append: String,
    ready: String,
    timeout: Duration,
}

type Key = (PathBuf, String, PathBuf, Option<PathBuf>);

fn cache() -> &'static Mutex<HashMap<Key, Arc<OnceCell<AccelVerdict>>>> {
    static CACHE: OnceLock<Mutex<HashMap<Key, Arc<OnceCell<AccelVerdict>>>>> = OnceLock::new();
    CACHE.get_or_init(Mutex::default)
}

impl AccelProbe {
    /// A probe that boots `kernel` with `console=ttyS0` and waits up to 30 s
    /// for `Linux version` (the kernel's first line, printed once it runs
    /// in long mode), with the binary from `$QEMUKIT_QEMU` or
    /// `qemu-system-x86_64`.
    pub fn new(kernel: impl Into<PathBuf>) -> Self {
        let binary = std::env::var_os("QEMUKIT_QEMU")
            .filter(|value| !value.is_empty())
            .map_or_else(|| PathBuf::from("qemu-system-x86_64"), PathBuf::from);
        Self {
            binary,
            kernel: kernel.into(),
            initrd: None,
            append: "console=ttyS0 panic=-1".into(),
            ready: "Linux version".into(),
            timeout: Duration::from_secs(30),
        }
    }

    /// The QEMU binary to probe.
    pub fn binary(mut self, binary: impl Into<PathBuf>) -> Self {
        self.binary = binary.into();
        self
    }

    /// An initrd for the probe kernel.
    pub fn initrd(mut self, initrd: impl Into<PathBuf>) -> Self {
        self.initrd = Some(initrd.into());
        self
    }

    /// The kernel command line (keep `console=ttyS0`).
    pub fn append(mut self, append: impl Into<String>) -> Self {
        self.append = append.into();
        self
    }

    /// What the console must show for the accelerator to count as working.
    pub fn ready(mut self, pattern: impl Into<String>) -> Self {
        self.ready = pattern.into();
        self
    }

    /// How long the boot may take.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Boots the probe under `accel` (`"kvm"`, `"tcg"`, …), once per
    /// process for the same binary, accelerator and kernel.
    pub async fn check(&self, accel: &str) -> AccelVerdict {
        let key = (
            self.binary.clone(),
            accel.to_owned(),
            self.kernel.clone(),
            self.initrd.clone(),
        );
        let cell = Arc::clone(
            cache()
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(key)
                .or_default(),
        );
        cell.get_or_init(|| self.boot(accel)).await.clone()
    }

    /// [`check`](Self::check) as a test requirement (see [`require!`](crate::require)).
    ///
    /// # Errors
    ///
    /// A [`Skip`] naming the accelerator and why it cannot run the probe.
    pub async fn require(&self, accel: &str) -> Result<(), Skip> {
        match self.check(accel).await {
            AccelVerdict::Works { .. } => Ok(()),
            AccelVerdict::Fails { reason } => Err(Skip {
                reason: format!(
                    "accelerator {accel} cannot run a guest with {}: {reason}",
                    self.binary.display()
                ),
            }),
        }
    }

    async fn boot(&self, accel: &str) -> AccelVerdict {
        let started = Instant::now();
        let verdict = match self.try_boot(accel, started).await {
            Ok(verdict) => verdict,
            Err(error) => AccelVerdict::Fails {
                reason: format!("could not run {}: {error}", self.binary.display()),
            },
        };
        tracing::debug!(accel, ?verdict, "accelerator probe");
        verdict
    }

    async fn try_boot(&self, accel: &str, started: Instant) -> std::io::Result<AccelVerdict> {
        let mut cmdline = Cmdline::new();
        cmdline
            .program(&self.binary)
            .machine(Machine::new("pc"))
            .accel(Accel::parse(accel).unwrap_or_else(|_| Accel::new(accel)))
            .memory(Memory::mib(256))
            .nodefaults()
            .display(Display::none())
            .no_reboot()
            .monitor(CharDevSpec::None)
            .serial(CharDevSpec::Stdio)
            .kernel(&self.kernel)
            .append(&self.append);
        if let Some(initrd) = &self.initrd {
            cmdline.initrd(initrd);
        }
        let mut command = cmdline.tokio_command().map_err(std::io::Error::other)?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn()?;
        let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take())
        else {
            return Err(std::io::Error::other("QEMU's output pipes are missing"));
        };
        let errors = tokio::spawn(async move {
            let mut text = Vec::new();
            let _ = stderr.read_to_end(&mut text).await;
            text
        });
        let outcome =
            tokio::time::timeout(self.timeout, wait_for(&mut stdout, self.ready.as_bytes())).await;
        let _ = child.start_kill();
        let status = child.wait().await;
        let qemu_said = String::from_utf8_lossy(&errors.await.unwrap_or_default())
            .trim()
            .to_owned();
        Ok(match outcome {
            Ok(true) => AccelVerdict::Works {
                boot: started.elapsed(),
            },
            Ok(false) => AccelVerdict::Fails {
                reason: format!(
                    "QEMU ended ({}) before the kernel printed {:?}{}",
                    status.map_or_else(|e| e.to_string(), |s| s.to_string()),
                    self.ready,
                    said(&qemu_said)
                ),
            },
            Err(_) => AccelVerdict::Fails {
                reason: format!(
                    "the kernel did not print {:?} within {:?} (it crawls or hangs){}",
                    self.ready,
                    self.timeout,
                    said(&qemu_said)
                ),
            },
        })
    }

    /// The kernel the probe boots.
    pub fn kernel(&self) -> &Path {
        &self.kernel
    }
}

fn said(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!("; QEMU said: {stderr}")
    }
}

/// Reads until `pattern` shows (true) or the stream ends (false), keeping
/// only as much as a match split across reads needs.
async fn wait_for(stream: &mut (impl AsyncReadExt + Unpin), pattern: &[u8]) -> bool {
    let mut window: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        window.extend_from_slice(&chunk[..n]);
        if window.windows(pattern.len().max(1)).any(|w| w == pattern) {
            return true;
        }
        let keep = pattern.len().saturating_sub(1);
        let cut = window.len().saturating_sub(keep);
        window.drain(..cut);
    }
}

impl fmt::Display for AccelVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccelVerdict::Works { boot } => write!(f, "runs a guest (probe booted in {boot:?})"),
            AccelVerdict::Fails { reason } => write!(f, "cannot run a guest: {reason}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn missing_netdev() -> qemu_cmdline::Error {
        qemu_cmdline::Error::Missing {
            binary: PathBuf::from("/usr/bin/qemu-system-x86_64"),
            version: "QEMU 10.0.2".into(),
            kind: "netdev back end",
            name: "vde".into(),
            hint: String::new(),
        }
    }

    /// A test body that records whether it ran past its requirement.
    fn test_body(
        requirement: Result<(), qemu_cmdline::Error>,
        ran_on: &mut bool,
    ) -> Result<(), String> {
        crate::require!(requirement);
        *ran_on = true;
        Ok(())
    }

    #[test]
    fn an_unmet_probe_requirement_skips_the_rest_of_the_test() {
        let mut ran_on = false;
        let skipped = test_body(Err(missing_netdev()), &mut ran_on);
        assert!(matches!(skipped, Ok(())), "{skipped:?}");
        assert!(!ran_on, "the test went on past an unmet requirement");
        let met = test_body(Ok(()), &mut ran_on);
        assert!(matches!(met, Ok(())), "{met:?}");
        assert!(ran_on, "a met requirement stopped the test");
    }

    #[test]
    fn a_skip_says_it_skipped_and_what_is_missing() {
        let skip = Skip::from(missing_netdev());
        let message = skip.to_string();
        assert!(message.starts_with("SKIPPED: "), "{message}");
        assert!(
            message.contains("has no netdev back end `vde`"),
            "{message}"
        );
    }
}
