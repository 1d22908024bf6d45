//! `Cmdline`: the builder, in the shape of `std::process::Command`.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use serde::Serialize;

use crate::Error;
use crate::arg::Arg;
use crate::options::{
    Accel, AddFd, Blockdev, Boot, CharDevSpec, Chardev, Cpu, Device, Display, Drive, FwCfg, Global,
    Machine, Memory, Mon, Msg, Name, Netdev, Nic, Object, Rtc, Smp, Trace,
};

/// The binary used when none is set.
pub const DEFAULT_PROGRAM: &str = "qemu-system-x86_64";

/// A QEMU command line: typed options in order, plus raw arguments.
///
/// Every method takes `&mut self` and returns `&mut Self`, like
/// [`std::process::Command`], and the builder can be rendered any number
/// of times. Values are checked and escaped when rendered
/// ([`Cmdline::to_args`]), so errors surface there.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cmdline {
    program: Option<OsString>,
    args: Vec<Arg>,
}

macro_rules! typed {
    ($( $(#[$doc:meta])* $method:ident($ty:ty) => $variant:ident; )*) => {$(
        $(#[$doc])*
        pub fn $method(&mut self, value: $ty) -> &mut Self {
            self.push(Arg::$variant(value))
        }
    )*};
}

macro_rules! flags {
    ($( $(#[$doc:meta])* $method:ident => $variant:ident; )*) => {$(
        $(#[$doc])*
        pub fn $method(&mut self) -> &mut Self {
            self.push(Arg::$variant)
        }
    )*};
}

macro_rules! paths {
    ($( $(#[$doc:meta])* $method:ident => $variant:ident; )*) => {$(
        $(#[$doc])*
        pub fn $method(&mut self, path: impl Into<PathBuf>) -> &mut Self {
            self.push(Arg::$variant(path.into()))
        }
    )*};
}

macro_rules! json {
    ($( $(#[$doc:meta])* $method:ident, $from:ident => $variant:ident, $option:literal; )*) => {$(
        $(#[$doc])*
        pub fn $method(&mut self, value: serde_json::Value) -> &mut Self {
            self.push(Arg::$variant(value))
        }

        #[doc = concat!("`", $option, "` in JSON syntax from any serialisable struct or map.")]
        pub fn $from<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<&mut Self, Error> {
            let value = serde_json::to_value(value)
                .map_err(|source| Error::Json { option: $option, source })?;
            Ok(self.push(Arg::$variant(value)))
        }
    )*};
}

impl Cmdline {
    /// An empty command line for [`DEFAULT_PROGRAM`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the QEMU binary (used by [`Cmdline::command`] and `Display`).
    pub fn program(&mut self, program: impl AsRef<OsStr>) -> &mut Self {
        self.program = Some(program.as_ref().to_owned());
        self
    }

    /// The QEMU binary.
    pub fn get_program(&self) -> &OsStr {
        self.program
            .as_deref()
            .unwrap_or(OsStr::new(DEFAULT_PROGRAM))
    }

    /// The options in order.
    pub fn get_args(&self) -> &[Arg] {
        &self.args
    }

    /// The options, to edit a parsed command line in place.
    pub fn get_args_mut(&mut self) -> &mut Vec<Arg> {
        &mut self.args
    }

    /// Appends a typed option.
    pub fn push(&mut self, arg: Arg) -> &mut Self {
        self.args.push(arg);
        self
    }

    /// Appends one raw argument, passed verbatim (only a NUL is refused).
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.push(Arg::Raw(arg.as_ref().to_owned()))
    }

    /// Appends raw arguments, passed verbatim.
    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for arg in args {
            self.arg(arg);
        }
        self
    }

    typed! {
        /// `-machine`.
        machine(Machine) => Machine;
        /// `-accel` (repeat for a fallback list).
        accel(Accel) => Accel;
        /// `-cpu`.
        cpu(Cpu) => Cpu;
        /// `-smp`.
        smp(Smp) => Smp;
        /// `-m`.
        memory(Memory) => Memory;
        /// `-name`.
        name(Name) => Name;
        /// `-display`.
        display(Display) => Display;
        /// `-serial`.
        serial(CharDevSpec) => Serial;
        /// `-chardev`.
        chardev(Chardev) => Chardev;
        /// `-mon`.
        mon(Mon) => Mon;
        /// `-qmp` (a legacy device string; `chardev` + `mon` is more flexible).
        qmp(CharDevSpec) => Qmp;
        /// `-monitor`: the human monitor (`CharDevSpec::Null` for none).
        monitor(CharDevSpec) => Monitor;
        /// `-device` in `key=value` syntax.
        device(Device) => Device;
        /// `-drive`.
        drive(Drive) => Drive;
        /// `-blockdev` in `key=value` syntax.
        blockdev(Blockdev) => Blockdev;
        /// `-netdev` in `key=value` syntax.
        netdev(Netdev) => Netdev;
        /// `-nic`.
        nic(Nic) => Nic;
        /// `-object` in `key=value` syntax.
        object(Object) => Object;
        /// `-boot`.
        boot(Boot) => Boot;
        /// `-rtc`.
        rtc(Rtc) => Rtc;
        /// `-global`.
        global(Global) => Global;
        /// `-fw_cfg`.
        fw_cfg(FwCfg) => FwCfg;
        /// `-add-fd`.
        add_fd(AddFd) => AddFd;
        /// `-trace`.
        trace(Trace) => Trace;
        /// `-msg`.
        msg(Msg) => Msg;
    }

    flags! {
        /// `-nodefaults`: no default devices.
        nodefaults => NoDefaults;
        /// `-no-reboot`: exit instead of rebooting.
        no_reboot => NoReboot;
        /// `-no-shutdown`: stop instead of exiting when the guest powers off.
        no_shutdown => NoShutdown;
        /// `-S`: start with the CPUs stopped (resume with QMP `cont`).
        paused => Paused;
        /// `-snapshot`: write to temporary overlays, never the images.
        snapshot => Snapshot;
    }

    paths! {
        /// `-kernel`.
        kernel => Kernel;
        /// `-initrd`.
        initrd => Initrd;
        /// `-dtb`.
        dtb => Dtb;
        /// `-bios`.
        bios => Bios;
        /// `-pidfile`.
        pidfile => PidFile;
        /// `-D`: QEMU's log file.
        log_file => LogFile;
    }

    json! {
        /// `-device` in JSON syntax (QEMU ≥ 6.2); `value` must be an object.
        device_json, device_json_from => DeviceJson, "-device";
        /// `-object` in JSON syntax; `value` must be an object.
        object_json, object_json_from => ObjectJson, "-object";
        /// `-blockdev` in JSON syntax; `value` must be an object.
        blockdev_json, blockdev_json_from => BlockdevJson, "-blockdev";
        /// `-netdev` in JSON syntax (QEMU ≥ 7.1); `value` must be an object.
        netdev_json, netdev_json_from => NetdevJson, "-netdev";
    }

    /// `-uuid`.
    pub fn uuid(&mut self, uuid: impl Into<String>) -> &mut Self {
        self.push(Arg::Uuid(uuid.into()))
    }

    /// `-vga`, e.g. `std`, `virtio`, `none`.
    pub fn vga(&mut self, kind: impl Into<String>) -> &mut Self {
        self.push(Arg::Vga(kind.into()))
    }

    /// `-append`: the kernel command line (one line).
    pub fn append(&mut self, cmdline: impl AsRef<OsStr>) -> &mut Self {
        self.push(Arg::Append(cmdline.as_ref().to_owned()))
    }

    /// `-incoming`: wait for a migration from `uri` (or `defer`).
    pub fn incoming(&mut self, uri: impl Into<String>) -> &mut Self {
        self.push(Arg::Incoming(uri.into()))
    }

    /// `-incoming defer`: wait for a migration whose source a later QMP
    /// `migrate-incoming` names, so capabilities and parameters can be
    /// set before anything is read.
    pub fn incoming_defer(&mut self) -> &mut Self {
        self.incoming("defer")
    }

    /// `-d`: log items such as `guest_errors`, `unimp`.
    pub fn log_items<I, S>(&mut self, items: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.push(Arg::Log(items.into_iter().map(Into::into).collect()))
    }

    /// Renders the arguments (without the program), checked and escaped.
    pub fn to_args(&self) -> Result<Vec<OsString>, Error> {
        let mut out = Vec::with_capacity(self.args.len() * 2);
        for arg in &self.args {
            arg.render_into(&mut out)?;
        }
        Ok(out)
    }

    /// The program followed by the arguments.
    pub fn to_argv(&self) -> Result<Vec<OsString>, Error> {
        let mut argv = vec![self.get_program().to_owned()];
        argv.extend(self.to_args()?);
        Ok(argv)
    }
}
