//! Probing a QEMU binary: what version it is and which machines,
//! accelerators, CPU models and devices it has.

mod help;
mod run;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use help::{CpuModel, DeviceInfo, MachineInfo, Version};

use crate::arg::Arg;
use crate::{Cmdline, Error};

/// The timeout [`Probe::run_default`] gives each QEMU invocation.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a QEMU binary offers, parsed from its `--version` and `… help` output.
///
/// `accels` lists the accelerators compiled in; whether one works on this
/// host (e.g. `/dev/kvm`) is only known by starting QEMU with it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Probe {
    /// The binary probed.
    pub binary: PathBuf,
    /// Its version.
    pub version: Version,
    /// `-machine help`.
    pub machines: Vec<MachineInfo>,
    /// `-accel help`.
    pub accels: Vec<String>,
    /// `-cpu help`: the models.
    pub cpus: Vec<CpuModel>,
    /// `-cpu help`: the CPUID flags.
    pub cpu_flags: Vec<String>,
    /// `-device help`.
    pub devices: Vec<DeviceInfo>,
    /// `-netdev help`: the network back-end types (`user`, `tap`, …).
    pub netdevs: Vec<String>,
}

fn unreadable(binary: &Path, args: &str, what: &str) -> Error {
    Error::ProbeOutput {
        command: format!("{} {args}", binary.display()),
        reason: format!("no {what} found"),
    }
}

impl Probe {
    /// Runs the binary six times (`--version`, then `-machine`, `-accel`,
    /// `-cpu`, `-device`, `-netdev help`), each under `timeout`. Blocks the calling
    /// thread until they end: in async code use `Probe::run_async`.
    pub fn run(binary: impl AsRef<Path>, timeout: Duration) -> Result<Probe, Error> {
        let binary = binary.as_ref();
        let out = |args: &[&str]| run::run(binary, args, timeout);
        Probe::from_outputs(
            binary,
            &out(&["--version"])?,
            &out(&["-machine", "help"])?,
            &out(&["-accel", "help"])?,
            &out(&["-cpu", "help"])?,
            &out(&["-device", "help"])?,
            &out(&["-netdev", "help"])?,
        )
    }

    /// [`Probe::run`] with [`DEFAULT_PROBE_TIMEOUT`].
    pub fn run_default(binary: impl AsRef<Path>) -> Result<Probe, Error> {
        Probe::run(binary, DEFAULT_PROBE_TIMEOUT)
    }

    /// Only the version (`--version`), under `timeout`.
    pub fn version(binary: impl AsRef<Path>, timeout: Duration) -> Result<Version, Error> {
        let binary = binary.as_ref();
        let text = run::run(binary, &["--version"], timeout)?;
        help::parse_version(&text).ok_or_else(|| unreadable(binary, "--version", "version line"))
    }

    /// Builds a probe from output captured earlier (e.g. recorded fixtures).
    pub fn from_outputs(
        binary: impl Into<PathBuf>,
        version: &str,
        machine_help: &str,
        accel_help: &str,
        cpu_help: &str,
        device_help: &str,
        netdev_help: &str,
    ) -> Result<Probe, Error> {
        let binary = binary.into();
        let version = help::parse_version(version)
            .ok_or_else(|| unreadable(&binary, "--version", "version line"))?;
        let machines = help::parse_machines(machine_help)
            .ok_or_else(|| unreadable(&binary, "-machine help", "machine list"))?;
        let accels = help::parse_accels(accel_help)
            .ok_or_else(|| unreadable(&binary, "-accel help", "accelerator list"))?;
        let (cpus, cpu_flags) = help::parse_cpus(cpu_help)
            .ok_or_else(|| unreadable(&binary, "-cpu help", "CPU list"))?;
        let devices = help::parse_devices(device_help)
            .ok_or_else(|| unreadable(&binary, "-device help", "device list"))?;
        let netdevs = help::parse_netdevs(netdev_help)
            .ok_or_else(|| unreadable(&binary, "-netdev help", "netdev back-end list"))?;
        Ok(Probe {
            binary,
            version,
            machines,
            accels,
            cpus,
            cpu_flags,
            devices,
            netdevs,
        })
    }

    /// The machine `name` (or the machine it is an alias for).
    pub fn machine(&self, name: &str) -> Option<&MachineInfo> {
        self.machines.iter().find(|m| m.name == name)
    }

    /// The device `name`, found by name or alias.
    pub fn device(&self, name: &str) -> Option<&DeviceInfo> {
        self.devices
            .iter()
            .find(|d| d.name == name || d.alias.as_deref() == Some(name))
    }

    /// Whether the machine type `name` exists.
    pub fn has_machine(&self, name: &str) -> bool {
        self.machine(name).is_some()
    }

    /// Whether the accelerator `name` is compiled in.
    pub fn has_accel(&self, name: &str) -> bool {
        self.accels.iter().any(|a| a == name)
    }

    /// Whether the CPU model `name` exists (`host` and `max` only with an accelerator that has them).
    pub fn has_cpu(&self, name: &str) -> bool {
        self.cpus.iter().any(|c| c.name == name)
    }

    /// Whether `-device name` is possible (by name or alias, and not `no-user`).
    pub fn has_device(&self, name: &str) -> bool {
        self.device(name).is_some_and(|d| !d.no_user)
    }

    fn missing<'a>(
        &self,
        kind: &'static str,
        name: &str,
        known: impl Iterator<Item = &'a str>,
    ) -> Error {
        let similar: Vec<&str> = known.filter(|known| similar(known, name)).take(6).collect();
        Error::Missing {
            binary: self.binary.clone(),
            version: self.version.to_string(),
            kind,
            name: name.to_owned(),
            hint: if similar.is_empty() {
                String::new()
            } else {
                format!(" (similar: {})", similar.join(", "))
            },
        }
    }

    /// Whether the network back end `name` (`-netdev name,…`) is compiled in
    /// (`require_netdev` of QEMU's functional tests).
    pub fn has_netdev(&self, name: &str) -> bool {
        self.netdevs.iter().any(|n| n == name)
    }

    /// `Ok` when the machine type exists, else an error naming what lacks.
    pub fn require_machine(&self, name: &str) -> Result<(), Error> {
        if self.has_machine(name) {
            return Ok(());
        }
        Err(self.missing(
            "machine",
            name,
            self.machines.iter().map(|m| m.name.as_str()),
        ))
    }

    /// `Ok` when the accelerator is compiled in.
    pub fn require_accel(&self, name: &str) -> Result<(), Error> {
        if self.has_accel(name) {
            return Ok(());
        }
        Err(self.missing("accelerator", name, self.accels.iter().map(String::as_str)))
    }

    /// `Ok` when the CPU model exists.
    pub fn require_cpu(&self, name: &str) -> Result<(), Error> {
        if self.has_cpu(name) {
            return Ok(());
        }
        Err(self.missing("CPU model", name, self.cpus.iter().map(|c| c.name.as_str())))
    }

    /// `Ok` when `-device name` is possible.
    pub fn require_device(&self, name: &str) -> Result<(), Error> {
        if self.has_device(name) {
            return Ok(());
        }
        Err(self.missing("device", name, self.devices.iter().map(|d| d.name.as_str())))
    }

    /// `Ok` when the network back end is compiled in (`-netdev help` lists
    /// it); for a test, the skip form is `qemu_machine::require!`.
    pub fn require_netdev(&self, name: &str) -> Result<(), Error> {
        if self.has_netdev(name) {
            return Ok(());
        }
        Err(self.missing(
            "netdev back end",
            name,
            self.netdevs.iter().map(String::as_str),
        ))
    }

    /// Checks every machine type, accelerator, CPU model, device type and
    /// network back end a command line names (typed options and JSON
    /// `driver`s and `type`s).
    pub fn check(&self, cmdline: &Cmdline) -> Result<(), Error> {
        for arg in cmdline.get_args() {
            match arg {
                Arg::Machine(m) => {
                    if let Some(kind) = &m.kind {
                        self.require_machine(kind)?;
                    }
                    for accel in m.accel.iter().flat_map(|a| a.split(':')) {
                        self.require_accel(accel)?;
                    }
                }
                Arg::Accel(a) => {
                    if let Some(kind) = &a.kind {
                        self.require_accel(kind)?;
                    }
                }
                // `host` and `max` are provided by the accelerator.
                Arg::Cpu(c) if !matches!(c.model.as_str(), "host" | "max" | "base") => {
                    self.require_cpu(&c.model)?;
                }
                Arg::Device(d) => {
                    if let Some(driver) = &d.driver {
                        self.require_device(driver)?;
                    }
                }
                Arg::Netdev(netdev) => {
                    if let Some(kind) = &netdev.kind {
                        self.require_netdev(kind)?;
                    }
                }
                Arg::NetdevJson(json) => {
                    if let Some(kind) = json.get("type").and_then(|t| t.as_str()) {
                        self.require_netdev(kind)?;
                    }
                }
                Arg::DeviceJson(json) => {
                    if let Some(driver) = json.get("driver").and_then(|d| d.as_str()) {
                        self.require_device(driver)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Near enough to suggest: one name contains the other, or they share a
/// prefix of at least four characters.
fn similar(known: &str, wanted: &str) -> bool {
    let common = known
        .chars()
        .zip(wanted.chars())
        .take_while(|(a, b)| a == b)
        .count();
    known.contains(wanted) || wanted.contains(known) || common >= 4
}
