//! Parsers of QEMU's `--version` and `… help` output.

/// A QEMU version, from `--version`.
///
/// Comparable with a `(major, minor)` pair, so callers can branch on what a
/// release has (`probe.version >= (9, 0)`); the micro number and the package
/// are not compared then.
///
/// This crate does not depend on `qmp-proto`, whose `Version` is the same
/// three numbers as the QMP greeting reports them; this one also keeps the
/// distribution's package string that `--version` prints.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub struct Version {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Micro version.
    pub micro: u32,
    /// The distribution's package version, e.g. `Debian 1:7.2+dfsg-7`.
    pub package: Option<String>,
}

impl Version {
    /// The `(major, minor)` pair, the granularity QEMU documents changes at.
    pub fn release(&self) -> (u32, u32) {
        (self.major, self.minor)
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "QEMU {}.{}.{}", self.major, self.minor, self.micro)
    }
}

impl PartialEq<(u32, u32)> for Version {
    fn eq(&self, other: &(u32, u32)) -> bool {
        self.release() == *other
    }
}

impl PartialOrd<(u32, u32)> for Version {
    fn partial_cmp(&self, other: &(u32, u32)) -> Option<std::cmp::Ordering> {
        Some(self.release().cmp(other))
    }
}

/// One machine type, from `-machine help`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MachineInfo {
    /// The name to pass to `-machine`.
    pub name: String,
    /// QEMU's description.
    pub description: String,
    /// The machine this name is an alias of (`pc` → `pc-i440fx-7.2`).
    pub alias_of: Option<String>,
    /// QEMU's default machine.
    pub is_default: bool,
    /// Marked deprecated.
    pub deprecated: bool,
}

/// One CPU model, from `-cpu help`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CpuModel {
    /// The architecture column, e.g. `x86` (QEMU 7.2); QEMU 10.0 indents
    /// the models instead and has no such column, so it is `None` there.
    pub arch: Option<String>,
    /// The name to pass to `-cpu`.
    pub name: String,
    /// QEMU's note, e.g. `(alias of Broadwell-v3)`; may be empty.
    pub description: String,
}

/// One device type, from `-device help`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeviceInfo {
    /// The name to pass to `-device`.
    pub name: String,
    /// The category heading, e.g. `Storage`.
    pub category: String,
    /// The bus it plugs into, e.g. `PCI`.
    pub bus: Option<String>,
    /// Another name for it.
    pub alias: Option<String>,
    /// QEMU's description.
    pub description: Option<String>,
    /// Cannot be created with `-device` (`no-user`).
    pub no_user: bool,
}

/// Parses `--version`: `QEMU emulator version 7.2.22 (Debian …)`.
pub(crate) fn parse_version(text: &str) -> Option<Version> {
    let line = text.lines().find(|line| line.contains("version"))?;
    let rest = line.split_once("version ")?.1;
    let (number, package) = match rest.split_once(' ') {
        Some((number, package)) => (number, Some(package.trim())),
        None => (rest.trim(), None),
    };
    let mut parts = number.split('.').map(|part| part.parse::<u32>().ok());
    let major = parts.next()??;
    let minor = parts.next().flatten().unwrap_or(0);
    let micro = parts.next().flatten().unwrap_or(0);
    let package = package
        .map(|p| p.trim_start_matches('(').trim_end_matches(')').to_owned())
        .filter(|p| !p.is_empty());
    Some(Version {
        major,
        minor,
        micro,
        package,
    })
}

/// Parses `-machine help`.
pub(crate) fn parse_machines(text: &str) -> Option<Vec<MachineInfo>> {
    let mut lines = text.lines();
    lines.find(|line| line.starts_with("Supported machines"))?;
    let mut out = Vec::new();
    for line in lines.filter(|line| !line.trim().is_empty()) {
        let (name, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let mut description = rest.trim();
        let mut info = MachineInfo {
            name: name.to_owned(),
            description: String::new(),
            alias_of: None,
            is_default: false,
            deprecated: false,
        };
        loop {
            if let Some(d) = description.strip_suffix("(default)") {
                info.is_default = true;
                description = d.trim_end();
            } else if let Some(d) = description.strip_suffix("(deprecated)") {
                info.deprecated = true;
                description = d.trim_end();
            } else if let Some((d, alias)) = description
                .strip_suffix(')')
                .and_then(|d| d.rsplit_once("(alias of "))
            {
                info.alias_of = Some(alias.to_owned());
                description = d.trim_end();
            } else {
                break;
            }
        }
        info.description = description.to_owned();
        out.push(info);
    }
    Some(out)
}

/// Parses `-accel help`.
pub(crate) fn parse_accels(text: &str) -> Option<Vec<String>> {
    let mut lines = text.lines();
    lines.find(|line| line.starts_with("Accelerators supported"))?;
    Some(
        lines
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(str::to_owned)
            .collect(),
    )
}

/// Parses `-netdev help`: one back-end type a line under a heading, the
/// same in 7.2 and 10.0 (`vde`, `l2tpv3`, … only when compiled in).
pub(crate) fn parse_netdevs(text: &str) -> Option<Vec<String>> {
    let mut lines = text.lines();
    lines.find(|line| line.starts_with("Available netdev backend types"))?;
    let netdevs: Vec<String> = lines
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect();
    // Every build has at least `socket` and `hubport`: an empty list is
    // output we do not understand, not a QEMU without networking.
    (!netdevs.is_empty()).then_some(netdevs)
}

/// Parses `-cpu help`: the models, and the CPUID flags QEMU knows.
pub(crate) fn parse_cpus(text: &str) -> Option<(Vec<CpuModel>, Vec<String>)> {
    let mut lines = text.lines();
    lines.find(|line| line.starts_with("Available CPUs"))?;
    let mut models = Vec::new();
    let mut flags = Vec::new();
    let mut in_flags = false;
    for line in lines {
        if line.trim().is_empty() {
            continue;
        }
        if line.ends_with(':') {
            in_flags = line.contains("flags");
            continue;
        }
        if in_flags {
            flags.extend(line.split_whitespace().map(str::to_owned));
            continue;
        }
        models.push(parse_cpu_line(line));
    }
    // A heading without models is not a CPU list we can read.
    (!models.is_empty()).then_some((models, flags))
}

/// One model line: `x86 Broadwell-IBRS  (alias of Broadwell-v3)` up to QEMU
/// 9.x (the x86 target prefixed its models), `  Broadwell-IBRS  (alias of
/// Broadwell-v3)` from QEMU 10.0 and for targets without the column. A bare
/// unindented word is a model name too.
fn parse_cpu_line(line: &str) -> CpuModel {
    let indented = line.starts_with(char::is_whitespace);
    let mut words = line.trim().splitn(2, char::is_whitespace);
    let first = words.next().unwrap_or_default();
    let rest = words.next().unwrap_or_default().trim_start();
    let (arch, name, description) = if indented || rest.is_empty() {
        (None, first, rest)
    } else {
        let mut words = rest.splitn(2, char::is_whitespace);
        let name = words.next().unwrap_or_default();
        (Some(first), name, words.next().unwrap_or_default())
    };
    CpuModel {
        arch: arch.map(str::to_owned),
        name: name.to_owned(),
        description: description.trim().to_owned(),
    }
}

/// Parses `-device help`.
pub(crate) fn parse_devices(text: &str) -> Option<Vec<DeviceInfo>> {
    let mut out = Vec::new();
    let mut category = String::new();
    let mut seen_heading = false;
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        if let Some(heading) = line.strip_suffix(" devices:") {
            category = heading.to_owned();
            seen_heading = true;
            continue;
        }
        if let Some(device) = parse_device_line(line, &category) {
            out.push(device);
        }
    }
    (seen_heading || !out.is_empty()).then_some(out)
}

/// `name "virtio-blk-pci", bus PCI, alias "virtio-blk", desc "…"`.
fn parse_device_line(line: &str, category: &str) -> Option<DeviceInfo> {
    let rest = line.strip_prefix("name ")?;
    let (name, mut rest) = quoted(rest)?;
    let mut device = DeviceInfo {
        name,
        category: category.to_owned(),
        bus: None,
        alias: None,
        description: None,
        no_user: false,
    };
    while let Some(next) = rest.strip_prefix(", ") {
        let key_end = next.find([' ', ',']).unwrap_or(next.len());
        let key = &next[..key_end];
        let after = &next[key_end..];
        let (value, remaining) = match after.strip_prefix(' ') {
            Some(v) if v.starts_with('"') => quoted(v)?,
            Some(v) => {
                let end = v.find(',').unwrap_or(v.len());
                (v[..end].to_owned(), &v[end..])
            }
            None => (String::new(), after),
        };
        match key {
            "bus" => device.bus = Some(value),
            "alias" => device.alias = Some(value),
            "desc" => device.description = Some(value),
            "no-user" => device.no_user = true,
            _ => {}
        }
        rest = remaining;
    }
    Some(device)
}

/// Reads `"text"` at the start of `s`; returns the text and what follows.
fn quoted(s: &str) -> Option<(String, &str)> {
    let inner = s.strip_prefix('"')?;
    let end = inner.find('"')?;
    Some((inner[..end].to_owned(), &inner[end + 1..]))
}
