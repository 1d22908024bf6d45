//! The machine itself: `-machine`, `-accel`, `-cpu`, `-smp`, `-m`.

use std::ffi::OsString;

use crate::{Error, escape};

keyval_option! {
    /// `-machine`: the machine type and its properties.
    ///
    /// ```
    /// let m = qemu_cmdline::Machine::new("pc").accel("tcg");
    /// assert_eq!(m.render().unwrap(), "pc,accel=tcg");
    /// ```
    Machine { option: "-machine", implied: Some("type") }
    fields {
        /// The machine type, e.g. `pc`, `q35`, `none`.
        kind: String [impl Into<String>] = "type";
        /// Accelerators in order of preference, e.g. `kvm:tcg`.
        accel: String [impl Into<String>] = "accel";
    }
    lists {}
}

impl Machine {
    /// A machine of type `kind`.
    pub fn new(kind: impl Into<String>) -> Self {
        Self::default().kind(kind)
    }
}

keyval_option! {
    /// `-accel`: one accelerator; repeat the option for a fallback list.
    Accel { option: "-accel", implied: Some("accel") }
    fields {
        /// The accelerator: `kvm`, `tcg`, `xen`, `hvf`, …
        kind: String [impl Into<String>] = "accel";
        /// TCG threading: `single` or `multi`.
        thread: String [impl Into<String>] = "thread";
        /// TCG translation-block cache size in MiB.
        tb_size: u64 [u64] = "tb-size";
    }
    lists {}
}

impl Accel {
    /// An accelerator by name.
    pub fn new(kind: impl Into<String>) -> Self {
        Self::default().kind(kind)
    }
    /// KVM.
    pub fn kvm() -> Self {
        Self::new("kvm")
    }
    /// TCG, QEMU's portable translator.
    pub fn tcg() -> Self {
        Self::new("tcg")
    }

    /// The accelerator named by `$QEMUKIT_ACCEL`: `tcg`, `kvm`, any other
    /// `-accel` value (`kvm,kernel-irqchip=off`), or `default` for none
    /// (`None`: QEMU picks); TCG when it is unset or empty. Lets a CI host
    /// with a working KVM opt in without code changes.
    pub fn from_env() -> Option<Self> {
        match std::env::var_os("QEMUKIT_ACCEL") {
            Some(value) => Self::from_setting(&value),
            None => Some(Self::tcg()),
        }
    }

    /// Reads a `QEMUKIT_ACCEL` value; one that does not parse as an
    /// `-accel` value is taken as an accelerator name.
    fn from_setting(value: &std::ffi::OsStr) -> Option<Self> {
        let text = value.to_string_lossy();
        match text.trim() {
            "" => Some(Self::tcg()),
            "default" => None,
            other => Some(Self::parse(other).unwrap_or_else(|_| Self::new(other))),
        }
    }
}

keyval_option! {
    /// `-smp`: the CPU topology.
    Smp { option: "-smp", implied: Some("cpus") }
    fields {
        /// Number of CPUs present at start.
        cpus: u32 [u32] = "cpus";
        /// Sockets.
        sockets: u32 [u32] = "sockets";
        /// Dies per socket.
        dies: u32 [u32] = "dies";
        /// Cores per die.
        cores: u32 [u32] = "cores";
        /// Threads per core.
        threads: u32 [u32] = "threads";
        /// Maximum number of CPUs (for hotplug).
        maxcpus: u32 [u32] = "maxcpus";
    }
    lists {}
}

impl Smp {
    /// `cpus` CPUs and a topology QEMU derives.
    pub fn new(cpus: u32) -> Self {
        Self::default().cpus(cpus)
    }
}

keyval_option! {
    /// `-m`: guest RAM.
    Memory { option: "-m", implied: Some("size") }
    fields {
        /// Start-up RAM: a number of MiB or a size with a suffix (`512M`, `2G`).
        size: String [impl Into<String>] = "size";
        /// Hotplug memory slots.
        slots: u32 [u32] = "slots";
        /// Maximum memory with hotplug (`4G`).
        maxmem: String [impl Into<String>] = "maxmem";
    }
    lists {}
}

impl Memory {
    /// `mib` MiB of RAM.
    pub fn mib(mib: u64) -> Self {
        Self::default().size(format!("{mib}M"))
    }
    /// RAM of a QEMU size string such as `512M` or `2G`.
    pub fn new(size: impl Into<String>) -> Self {
        Self::default().size(size)
    }
}

/// One feature of a `-cpu` model.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CpuFlag {
    /// `+name`: turn the feature on.
    Enable(String),
    /// `-name`: turn the feature off.
    Disable(String),
    /// `name=value`: set a CPU property.
    Set(String, String),
}

/// `-cpu`: a CPU model and feature flags.
///
/// QEMU splits `-cpu` at every comma with no escape, so values holding a
/// comma are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Cpu {
    /// The model, e.g. `qemu64`, `max`, `host`, `Skylake-Client`.
    pub model: String,
    /// Features, in order.
    pub flags: Vec<CpuFlag>,
}

impl Cpu {
    /// The option as written on the command line.
    pub const OPTION: &'static str = "-cpu";

    /// The CPU model `model`.
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            flags: Vec::new(),
        }
    }
    /// Adds `+flag`.
    pub fn enable(mut self, flag: impl Into<String>) -> Self {
        self.flags.push(CpuFlag::Enable(flag.into()));
        self
    }
    /// Adds `-flag`.
    pub fn disable(mut self, flag: impl Into<String>) -> Self {
        self.flags.push(CpuFlag::Disable(flag.into()));
        self
    }
    /// Adds `key=value`.
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.flags.push(CpuFlag::Set(key.into(), value.into()));
        self
    }

    /// Renders the argument of `-cpu`.
    pub fn render(&self) -> Result<OsString, Error> {
        let refuse_empty = |value: &str| Error::Unrepresentable {
            option: Self::OPTION,
            value: value.into(),
            reason: "an empty model or feature name",
        };
        if self.model.is_empty() || self.model.starts_with(['+', '-']) {
            return Err(refuse_empty(&self.model));
        }
        escape::check_no_comma(Self::OPTION, &self.model)?;
        let mut out = self.model.clone();
        for flag in &self.flags {
            out.push(',');
            match flag {
                CpuFlag::Enable(name) | CpuFlag::Disable(name) => {
                    if name.is_empty() {
                        return Err(refuse_empty(name));
                    }
                    escape::check_key(Self::OPTION, name)?;
                    out.push(if matches!(flag, CpuFlag::Enable(_)) {
                        '+'
                    } else {
                        '-'
                    });
                    out.push_str(name);
                }
                CpuFlag::Set(key, value) => {
                    escape::check_key(Self::OPTION, key)?;
                    escape::check_no_comma(Self::OPTION, value)?;
                    out.push_str(key);
                    out.push('=');
                    out.push_str(value);
                }
            }
        }
        Ok(out.into())
    }

    /// Parses the argument of `-cpu`. A bare feature `name` reads as
    /// `name=on`, as QEMU reads it.
    pub fn parse(value: impl AsRef<std::ffi::OsStr>) -> Result<Self, Error> {
        let value = value.as_ref();
        let text = value.to_str().ok_or_else(|| Error::Parse {
            option: Self::OPTION.into(),
            value: value.to_owned(),
            reason: "-cpu takes ASCII text".into(),
        })?;
        let mut parts = text.split(',');
        let mut cpu = Cpu::new(parts.next().unwrap_or_default());
        for part in parts {
            let flag = if let Some(name) = part.strip_prefix('+') {
                CpuFlag::Enable(name.into())
            } else if let Some(name) = part.strip_prefix('-') {
                CpuFlag::Disable(name.into())
            } else if let Some((key, value)) = part.split_once('=') {
                CpuFlag::Set(key.into(), value.into())
            } else {
                CpuFlag::Set(part.into(), "on".into())
            };
            cpu.flags.push(flag);
        }
        Ok(cpu)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accelerator_settings() {
        let setting = |text: &str| Accel::from_setting(std::ffi::OsStr::new(text));
        assert_eq!(setting(""), Some(Accel::tcg()));
        assert_eq!(setting(" kvm "), Some(Accel::kvm()));
        assert_eq!(setting("default"), None);
        assert_eq!(setting("hvf"), Some(Accel::new("hvf")));
        let kvm = setting("kvm,kernel-irqchip=off");
        assert_eq!(
            kvm.map(|accel| accel.render().map_err(|e| e.to_string())),
            Some(Ok("kvm,kernel-irqchip=off".into()))
        );
    }
}
