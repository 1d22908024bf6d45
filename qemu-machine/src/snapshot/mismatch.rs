//! How a snapshot differs from the machine that would restore it.

use std::fmt;

/// Why a snapshot does not fit a builder: QEMU's own error for a mismatched
/// guest is cryptic (`Unknown ramblock "…"`, `Missing section footer for
/// …`), so this is checked first and named.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mismatch {
    /// Another QEMU version saved it (migration streams are only loaded by
    /// the version that wrote them, as far as qemukit is concerned).
    QemuVersion {
        /// The version that saved the snapshot.
        snapshot: String,
        /// The version of the binary that would restore it.
        binary: String,
    },
    /// The builder's configuration is not the one saved (see
    /// [`MachineBuilder::configuration`](crate::MachineBuilder::configuration)).
    Configuration {
        /// Options only the snapshot has, each shell-quoted.
        only_in_snapshot: Vec<String>,
        /// Options only the builder has, each shell-quoted.
        only_in_builder: Vec<String>,
    },
    /// The restored QEMU has other devices than the saved one, e.g. a
    /// device was hot-plugged before the save.
    Devices {
        /// Devices only the saved machine had.
        only_in_snapshot: Vec<String>,
        /// Devices only the restoring machine has.
        only_in_restored: Vec<String>,
    },
    /// The data file is not the size the metadata recorded: it was cut
    /// short or changed after the save.
    DataSize {
        /// The size recorded at the save.
        recorded: u64,
        /// The size now.
        actual: u64,
    },
}

impl Mismatch {
    /// Compares two configurations; `None` when they are equal.
    pub(crate) fn configuration(snapshot: &[String], builder: &[String]) -> Option<Self> {
        if snapshot == builder {
            return None;
        }
        let saved = options(snapshot);
        let wanted = options(builder);
        let mut only_in_snapshot = without(&saved, &wanted);
        let mut only_in_builder = without(&wanted, &saved);
        if only_in_snapshot.is_empty() && only_in_builder.is_empty() {
            // The same options in another order (order matters to QEMU).
            only_in_snapshot = vec![qemu_cmdline::shell_quote(snapshot)];
            only_in_builder = vec![qemu_cmdline::shell_quote(builder)];
        }
        Some(Self::Configuration {
            only_in_snapshot,
            only_in_builder,
        })
    }

    /// Compares two device sets; `None` when they are equal.
    pub(crate) fn devices(snapshot: &[String], restored: &[String]) -> Option<Self> {
        let only_in_snapshot = without(snapshot, restored);
        let only_in_restored = without(restored, snapshot);
        if only_in_snapshot.is_empty() && only_in_restored.is_empty() {
            return None;
        }
        Some(Self::Devices {
            only_in_snapshot,
            only_in_restored,
        })
    }
}

/// The arguments grouped into options: each `-name` with the values that
/// follow it, shell-quoted as one string.
fn options(args: &[String]) -> Vec<String> {
    let mut grouped: Vec<Vec<&String>> = Vec::new();
    for arg in args {
        match grouped.last_mut() {
            Some(option) if !arg.starts_with('-') => option.push(arg),
            _ => grouped.push(vec![arg]),
        }
    }
    grouped
        .iter()
        .map(|option| qemu_cmdline::shell_quote(option))
        .collect()
}

/// The items of `these` not in `those`, as multisets.
fn without(these: &[String], those: &[String]) -> Vec<String> {
    let mut left: Vec<&String> = those.iter().collect();
    these
        .iter()
        .filter(|item| match left.iter().position(|other| other == item) {
            Some(index) => {
                left.swap_remove(index);
                false
            }
            None => true,
        })
        .cloned()
        .collect()
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "nothing".to_owned()
    } else {
        items.join(", ")
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::QemuVersion { snapshot, binary } => write!(
                f,
                "it was saved by QEMU {snapshot} and this binary is QEMU {binary}: \
                 restore with QEMU {snapshot}, or save a new snapshot with this one"
            ),
            Self::Configuration {
                only_in_snapshot,
                only_in_builder,
            } => write!(
                f,
                "it was saved from another configuration: the snapshot has {}, this \
                 builder has {} instead; configure the builder as the saved machine was",
                list(only_in_snapshot),
                list(only_in_builder)
            ),
            Self::Devices {
                only_in_snapshot,
                only_in_restored,
            } => write!(
                f,
                "the saved machine had other devices: only the snapshot has {}, only this \
                 machine has {}; add hot-plugged devices to the command line",
                list(only_in_snapshot),
                list(only_in_restored)
            ),
            Self::DataSize { recorded, actual } => write!(
                f,
                "its data file is {actual} bytes but was {recorded} when saved: it was \
                 changed or cut short, save it again"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|&arg| arg.to_owned()).collect()
    }

    #[test]
    fn equal_configurations_match() {
        let args = strings(&["-m", "256", "-no-reboot"]);
        assert_eq!(Mismatch::configuration(&args, &args), None);
    }

    #[test]
    fn a_changed_option_is_named_on_both_sides() {
        let saved = strings(&["-m", "256", "-append", "console=ttyS0 quiet", "-no-reboot"]);
        let wanted = strings(&["-m", "512", "-append", "console=ttyS0 quiet", "-no-reboot"]);
        let mismatch = Mismatch::configuration(&saved, &wanted);
        assert_eq!(
            mismatch,
            Some(Mismatch::Configuration {
                only_in_snapshot: strings(&["-m 256"]),
                only_in_builder: strings(&["-m 512"]),
            }),
        );
        let text = mismatch.map(|m| m.to_string()).unwrap_or_default();
        assert!(
            text.contains("has -m 256, this builder has -m 512"),
            "{text}"
        );
    }

    #[test]
    fn a_missing_option_and_a_reordering_are_named() {
        let saved = strings(&["-m", "256", "-no-reboot"]);
        let shorter = strings(&["-m", "256"]);
        assert_eq!(
            Mismatch::configuration(&saved, &shorter),
            Some(Mismatch::Configuration {
                only_in_snapshot: strings(&["-no-reboot"]),
                only_in_builder: vec![],
            }),
        );
        let reordered = strings(&["-no-reboot", "-m", "256"]);
        assert!(matches!(
            Mismatch::configuration(&saved, &reordered),
            Some(Mismatch::Configuration { ref only_in_snapshot, .. })
                if only_in_snapshot == &strings(&["-m 256 -no-reboot"])
        ));
    }

    #[test]
    fn device_sets_compare_as_multisets() {
        let saved = strings(&["hpdisk (virtio-blk-pci)", "isa-serial", "isa-serial"]);
        let restored = strings(&["isa-serial", "isa-serial"]);
        assert_eq!(Mismatch::devices(&restored, &restored), None);
        assert_eq!(
            Mismatch::devices(&saved, &restored),
            Some(Mismatch::Devices {
                only_in_snapshot: strings(&["hpdisk (virtio-blk-pci)"]),
                only_in_restored: vec![],
            }),
        );
    }
}
