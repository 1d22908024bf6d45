//! Which accelerator QEMU actually runs, asked from QEMU itself: the
//! command line can choose one in several ways (`-accel`, `-machine
//! accel=`, `-enable-kvm`, a fallback list like `accel=kvm:tcg`), and QMP
//! has no command that names it (only `query-kvm`).

use std::fmt;

use serde_json::json;

use crate::error::Error;
use crate::machine::Machine;

/// The accelerator a running QEMU uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RunningAccel {
    /// KVM (`query-kvm` says enabled).
    Kvm,
    /// TCG, software emulation (HMP `info jit` answers).
    Tcg,
    /// Another one (qtest, xen, hvf, …): QEMU does not say which.
    Other,
}

impl fmt::Display for RunningAccel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RunningAccel::Kvm => "kvm",
            RunningAccel::Tcg => "tcg",
            RunningAccel::Other => "another accelerator than kvm or tcg",
        })
    }
}

impl Machine {
    /// Which accelerator QEMU runs the guest with, from `query-kvm` and,
    /// when KVM is off, HMP `info jit` (which only TCG answers; checked on
    /// QEMU 7.2 and 10.0).
    ///
    /// # Errors
    ///
    /// [`Error::Qmp`] when a query fails, [`Error::QmpDisabled`] without QMP.
    pub async fn running_accel(&self) -> Result<RunningAccel, Error> {
        let qmp = self.try_qmp()?;
        let kvm = qmp.execute_raw("query-kvm", None).await?;
        if kvm["enabled"] == json!(true) {
            return Ok(RunningAccel::Kvm);
        }
        let args = json!({"command-line": "info jit"});
        let jit = qmp
            .execute_raw("human-monitor-command", args.as_object().cloned())
            .await?;
        Ok(tcg_or_other(jit.as_str().unwrap_or_default()))
    }
}

/// TCG answers `info jit` with its translation-buffer statistics; other
/// accelerators with `Error: JIT information is only available with accel=tcg`.
fn tcg_or_other(info_jit: &str) -> RunningAccel {
    if info_jit.contains("Translation buffer state") {
        RunningAccel::Tcg
    } else {
        RunningAccel::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_jit_tells_tcg_from_the_rest() {
        // QEMU 7.2 and 10.0 under TCG, and both under KVM.
        let tcg_72 = "Translation buffer state:\r\ngen code size       0/1073736704\r\n";
        let tcg_10 =
            "Accelerator settings:\r\none-insn-per-tb: off\r\n\r\nTranslation buffer state:\r\n";
        let kvm = "Error: JIT information is only available with accel=tcg\r\n";
        assert_eq!(tcg_or_other(tcg_72), RunningAccel::Tcg);
        assert_eq!(tcg_or_other(tcg_10), RunningAccel::Tcg);
        assert_eq!(tcg_or_other(kvm), RunningAccel::Other);
        assert_eq!(tcg_or_other(""), RunningAccel::Other);
    }
}
