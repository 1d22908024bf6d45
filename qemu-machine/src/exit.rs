//! How a QEMU process ended.

use std::fmt;
use std::os::unix::process::ExitStatusExt;

/// How QEMU (or its wrapper) ended: an exit code or a signal, and whether
/// qemu-machine sent that signal.
///
/// ```
/// use qemu_machine::{ExitInfo, ExitStatus};
///
/// let info = ExitInfo::new(ExitStatus::Signal(9), false);
/// assert!(info.killed_unexpectedly());
/// assert_eq!(info.to_string(), "was killed by signal 9 (SIGKILL), not sent by qemu-machine");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExitInfo {
    status: ExitStatus,
    signal_sent_by_us: bool,
}

/// The raw outcome of a process: what `waitpid` reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExitStatus {
    /// The process exited with this code.
    Code(i32),
    /// The process was terminated by this signal number.
    Signal(i32),
}

impl ExitInfo {
    /// An exit record; `signal_sent_by_us` says whether qemu-machine had
    /// signalled the process group before it ended.
    pub fn new(status: ExitStatus, signal_sent_by_us: bool) -> Self {
        Self {
            status,
            signal_sent_by_us,
        }
    }

    pub(crate) fn from_std(status: std::process::ExitStatus, signal_sent_by_us: bool) -> Self {
        let status = match (status.code(), status.signal()) {
            (Some(code), _) => ExitStatus::Code(code),
            (None, Some(signal)) => ExitStatus::Signal(signal),
            // Neither code nor signal only happens for stopped/continued
            // statuses, which `wait` never returns for a reaped child.
            (None, None) => ExitStatus::Code(status.into_raw()),
        };
        Self::new(status, signal_sent_by_us)
    }

    /// The raw status.
    pub fn status(&self) -> ExitStatus {
        self.status
    }

    /// The exit code, when QEMU exited rather than being killed.
    pub fn code(&self) -> Option<i32> {
        match self.status {
            ExitStatus::Code(code) => Some(code),
            ExitStatus::Signal(_) => None,
        }
    }

    /// The signal that terminated QEMU, if one did.
    pub fn signal(&self) -> Option<i32> {
        match self.status {
            ExitStatus::Signal(signal) => Some(signal),
            ExitStatus::Code(_) => None,
        }
    }

    /// Whether qemu-machine had signalled QEMU (kill, hard shutdown, or the
    /// SIGKILL after a shutdown timeout) before it ended.
    pub fn signal_sent_by_us(&self) -> bool {
        self.signal_sent_by_us
    }

    /// Whether QEMU exited with code 0.
    pub fn success(&self) -> bool {
        self.status == ExitStatus::Code(0)
    }

    /// Whether a signal that qemu-machine did not send killed QEMU (a crash,
    /// the OOM killer, someone else's `kill`).
    pub fn killed_unexpectedly(&self) -> bool {
        matches!(self.status, ExitStatus::Signal(_)) && !self.signal_sent_by_us
    }
}

impl fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            ExitStatus::Code(code) => write!(f, "exited with code {code}"),
            ExitStatus::Signal(signal) => {
                write!(f, "was killed by signal {signal}")?;
                if let Some(name) = signal_name(signal) {
                    write!(f, " ({name})")?;
                }
                if self.signal_sent_by_us {
                    f.write_str(", sent by qemu-machine")
                } else {
                    f.write_str(", not sent by qemu-machine")
                }
            }
        }
    }
}

/// An exit is the root cause of a launch that failed because QEMU exited.
impl std::error::Error for ExitInfo {}

/// The names of the signals a QEMU process commonly dies of (Linux numbers).
fn signal_name(signal: i32) -> Option<&'static str> {
    Some(match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_says_who_sent_the_signal() {
        let ours = ExitInfo::new(ExitStatus::Signal(9), true);
        assert_eq!(
            ours.to_string(),
            "was killed by signal 9 (SIGKILL), sent by qemu-machine"
        );
        assert!(!ours.killed_unexpectedly());
        let code = ExitInfo::new(ExitStatus::Code(1), false);
        assert_eq!(code.to_string(), "exited with code 1");
        assert_eq!(code.code(), Some(1));
        assert_eq!(code.signal(), None);
        assert!(!code.success());
        assert!(!code.killed_unexpectedly());
        assert_eq!(
            ExitInfo::new(ExitStatus::Signal(64), false).to_string(),
            "was killed by signal 64, not sent by qemu-machine"
        );
    }

    #[test]
    fn converts_std_statuses() {
        let exited = std::process::ExitStatus::from_raw(3 << 8);
        assert_eq!(ExitInfo::from_std(exited, false).code(), Some(3));
        let killed = std::process::ExitStatus::from_raw(9);
        assert_eq!(ExitInfo::from_std(killed, true).signal(), Some(9));
    }
}
