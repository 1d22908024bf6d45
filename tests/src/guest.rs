//! The test guest built by `cargo xtask guest` (see GUEST.md).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use qemu_machine::{ConsoleSpec, MachineBuilder};

/// The line the guest prints on ttyS0 once its shell is about to start.
pub const READY_MARKER: &str = "qemukit-guest-ready";

/// The guest's kernel command line: console on ttyS0, a panic exits at
/// once (with `-no-reboot`, QEMU exits), little kernel chatter.
/// `no_timer_check` because under TCG on a loaded host the kernel's IO-APIC
/// timer probe can miss its ticks and panic in `setup_IO_APIC`.
pub const KERNEL_APPEND: &str = "console=ttyS0 no_timer_check panic=-1 quiet";

/// The guest's files.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Guest {
    /// The kernel image (`vmlinuz`).
    pub kernel: PathBuf,
    /// The plain initramfs: busybox, virtio modules, acpid.
    pub initrd: PathBuf,
    /// The same initramfs plus qemu-ga on the virtio port
    /// `org.qemu.guest_agent.0`.
    pub agent_initrd: PathBuf,
}

impl Guest {
    /// GUEST.md's command line for this guest (TCG, 256 MiB, no default
    /// devices, no display, `-no-reboot`, kernel, initrd, append), without
    /// a console or QMP: add those.
    pub fn args(&self, agent: bool) -> Vec<OsString> {
        let initrd = if agent {
            &self.agent_initrd
        } else {
            &self.initrd
        };
        let mut args: Vec<OsString> = [
            "-M",
            "pc,accel=tcg",
            "-m",
            "256",
            "-nodefaults",
            "-display",
            "none",
            "-no-reboot",
        ]
        .into_iter()
        .map(OsString::from)
        .collect();
        args.push("-kernel".into());
        args.push(self.kernel.clone().into());
        args.push("-initrd".into());
        args.push(initrd.clone().into());
        args.push("-append".into());
        args.push(KERNEL_APPEND.into());
        args
    }
}

impl Guest {
    /// A builder for the plain guest as the suite runs it: the test QEMU,
    /// [`args`](Self::args) (which choose `-M pc,accel=tcg`) and a console
    /// on ttyS0. Machines from these builders share one configuration, so
    /// [`restore_booted`](crate::restore_booted) boots it once.
    pub fn builder(&self) -> MachineBuilder {
        let mut builder = MachineBuilder::new();
        builder
            .binary(crate::qemu_binary())
            .accel(None)
            .args(self.args(false))
            .console(ConsoleSpec::serial());
        builder
    }
}

/// Where `cargo xtask guest` puts the guest: `$QEMUKIT_GUEST_DIR`, else
/// `$CARGO_TARGET_DIR/qemukit-guest`, else `target/qemukit-guest` in the
/// workspace.
pub fn guest_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("QEMUKIT_GUEST_DIR") {
        return PathBuf::from(dir);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(|dir| workspace.join(dir))
        .unwrap_or_else(|| workspace.join("target"));
    target.join("qemukit-guest")
}

/// The test guest.
///
/// # Panics
///
/// When it has not been built, saying to run `cargo xtask guest`.
pub fn guest() -> Guest {
    let dir = guest_dir();
    let guest = Guest {
        kernel: dir.join("vmlinuz"),
        initrd: dir.join("initramfs.cpio.gz"),
        agent_initrd: dir.join("initramfs-agent.cpio.gz"),
    };
    for file in [&guest.kernel, &guest.initrd, &guest.agent_initrd] {
        assert!(
            file.is_file(),
            "the test guest is missing ({} does not exist): run `cargo xtask guest` \
             (or `cargo xtask integ`, which builds it), or point QEMUKIT_GUEST_DIR at a built guest",
            file.display()
        );
    }
    guest
}
