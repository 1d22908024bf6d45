//! Whether the user's own arguments choose an accelerator, so that the
//! builder's default `-accel` steps aside: QEMU refuses `-accel` beside
//! `-machine accel=` ("options are incompatible"), and a second `-accel`
//! only adds a fallback, so `-accel tcg -accel kvm` silently runs TCG.

use std::ffi::OsString;

use qemu_cmdline::{Arg, Cmdline};

/// The ways a command line names its accelerator: `-accel NAME[,…]`,
/// `-machine …,accel=NAME[:NAME…]` (also `-M`, one or two dashes), and
/// `-enable-kvm`. The arguments are read as QEMU reads them (qemu-cmdline
/// knows which options take a value), so `-name -accel` names no
/// accelerator. Arguments qemu-cmdline cannot parse choose nothing: QEMU
/// will refuse them anyway.
pub(crate) fn chooses_accel(args: &[OsString]) -> bool {
    let Ok(cmdline) = Cmdline::parse_args(args.iter().cloned()) else {
        return false;
    };
    cmdline.get_args().iter().any(|arg| match arg {
        Arg::Accel(_) => true,
        Arg::Machine(machine) => machine.accel.is_some(),
        Arg::Raw(raw) => matches!(raw.to_str(), Some("-enable-kvm" | "--enable-kvm")),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &[&str]) -> Vec<OsString> {
        line.iter().map(OsString::from).collect()
    }

    #[test]
    fn every_way_of_choosing_an_accelerator_is_seen() {
        let choosing: &[&[&str]] = &[
            &["-accel", "kvm"],
            &["--accel", "tcg,thread=single"],
            &["-enable-kvm"],
            &["--enable-kvm"],
            &["-machine", "pc,accel=kvm"],
            &["-M", "q35,accel=kvm:tcg"],
            &["--machine", "accel=tcg"],
            &["-m", "256", "-M", "type=pc,accel=tcg", "-S"],
        ];
        for line in choosing {
            assert!(chooses_accel(&args(line)), "{line:?}");
        }
    }

    #[test]
    fn arguments_that_only_look_alike_are_not_a_choice() {
        let neutral: &[&[&str]] = &[
            &[],
            &["-M", "pc"],
            &["-machine", "pc,memory-backend=accel=x"],
            &["-machine", "pc,dump-guest-core=off,,accel=kvm"],
            &["-append", "accel=kvm"],
            &["-name", "-accel"],
            &["-device", "virtio-net,accel=on"],
            &["-M"],
        ];
        for line in neutral {
            assert!(!chooses_accel(&args(line)), "{line:?}");
        }
    }
}
