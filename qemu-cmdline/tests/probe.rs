//! Probe parsing over output recorded from the real qemu-system-x86_64
//! 7.2.22 and 10.0.2 (tests/fixtures, `*-7.2.txt` and `*-10.0.txt`); the
//! integration suite parses the live binary too.

use qemu_cmdline::{Cmdline, Device, Error, Machine, Probe};

/// The outputs recorded from one QEMU release.
struct Recorded {
    version: &'static str,
    machine_help: &'static str,
    accel_help: &'static str,
    cpu_help: &'static str,
    device_help: &'static str,
    netdev_help: &'static str,
}

macro_rules! recorded {
    ($release:literal) => {
        Recorded {
            version: include_str!(concat!("fixtures/version-", $release, ".txt")),
            machine_help: include_str!(concat!("fixtures/machine-help-", $release, ".txt")),
            accel_help: include_str!(concat!("fixtures/accel-help-", $release, ".txt")),
            cpu_help: include_str!(concat!("fixtures/cpu-help-", $release, ".txt")),
            device_help: include_str!(concat!("fixtures/device-help-", $release, ".txt")),
            netdev_help: include_str!(concat!("fixtures/netdev-help-", $release, ".txt")),
        }
    };
}

const QEMU_7_2: Recorded = recorded!("7.2");
const QEMU_10_0: Recorded = recorded!("10.0");

impl Recorded {
    fn probe(&self) -> Probe {
        Probe::from_outputs(
            "qemu-system-x86_64",
            self.version,
            self.machine_help,
            self.accel_help,
            self.cpu_help,
            self.device_help,
            self.netdev_help,
        )
        .unwrap()
    }

    /// The model lines of `-cpu help` (before the flags heading).
    fn cpu_model_lines(&self) -> usize {
        self.cpu_help
            .lines()
            .skip(1)
            .take_while(|line| !line.ends_with(':'))
            .filter(|line| !line.trim().is_empty())
            .count()
    }

    fn device_lines(&self) -> usize {
        self.device_help
            .lines()
            .filter(|l| l.starts_with("name "))
            .count()
    }
}

#[test]
fn version() {
    let probe = QEMU_7_2.probe();
    assert_eq!(
        (
            probe.version.major,
            probe.version.minor,
            probe.version.micro
        ),
        (7, 2, 22)
    );
    assert_eq!(
        probe.version.package.as_deref(),
        Some("Debian 1:7.2+dfsg-7+deb12u18+b3")
    );
    assert_eq!(probe.version.to_string(), "QEMU 7.2.22");

    let probe = QEMU_10_0.probe();
    assert_eq!(
        (
            probe.version.major,
            probe.version.minor,
            probe.version.micro
        ),
        (10, 0, 2)
    );
    assert_eq!(
        probe.version.package.as_deref(),
        Some("Debian 1:10.0.2+ds-2+deb13u1~bpo12+1")
    );
    assert_eq!(probe.version.to_string(), "QEMU 10.0.2");
}

#[test]
fn versions_compare_with_release_pairs() {
    let old = QEMU_7_2.probe().version;
    let new = QEMU_10_0.probe().version;
    assert!(old < new, "{old} < {new}");
    assert!(old < (9, 0) && old == (7, 2) && old >= (7, 2));
    assert!(new >= (9, 0) && new == (10, 0) && new < (10, 1));
    assert_eq!(new.release(), (10, 0));
}

#[test]
fn machines() {
    let probe = QEMU_7_2.probe();
    let pc = probe.machine("pc").unwrap();
    assert_eq!(pc.alias_of.as_deref(), Some("pc-i440fx-7.2"));
    assert_eq!(pc.description, "Standard PC (i440FX + PIIX, 1996)");
    let default = probe.machines.iter().find(|m| m.is_default).unwrap();
    assert_eq!(default.name, "pc-i440fx-7.2");
    assert!(probe.machine("pc-i440fx-1.4").unwrap().deprecated);
    assert!(!probe.machine("pc-i440fx-2.0").unwrap().deprecated);
    assert_eq!(probe.machine("none").unwrap().description, "empty machine");
    assert!(probe.has_machine("q35") && probe.has_machine("microvm"));
    assert_eq!(
        probe.machines.len(),
        QEMU_7_2.machine_help.lines().count() - 1
    );
}

#[test]
fn machines_10_0() {
    let probe = QEMU_10_0.probe();
    // The aliases now sit beside their target, after the older versions.
    let pc = probe.machine("pc").unwrap();
    assert_eq!(pc.alias_of.as_deref(), Some("pc-i440fx-10.0"));
    let q35 = probe.machine("q35").unwrap();
    assert_eq!(q35.alias_of.as_deref(), Some("pc-q35-10.0"));
    assert_eq!(q35.description, "Standard PC (Q35 + ICH9, 2009)");
    let defaults: Vec<&str> = probe
        .machines
        .iter()
        .filter(|m| m.is_default)
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(defaults, ["pc-i440fx-10.0"]);
    // 10.0 deprecates every machine version up to 7.0 and dropped 1.4 to 2.3.
    assert!(probe.machine("pc-i440fx-7.0").unwrap().deprecated);
    assert!(probe.machine("pc-q35-4.0.1").unwrap().deprecated);
    assert!(!probe.machine("pc-i440fx-7.1").unwrap().deprecated);
    assert!(!probe.has_machine("pc-i440fx-1.4"));
    assert!(probe.has_machine("pc-i440fx-7.2") && probe.has_machine("microvm"));
    assert_eq!(probe.machine("isapc").unwrap().description, "ISA-only PC");
    assert_eq!(
        probe.machines.len(),
        QEMU_10_0.machine_help.lines().count() - 1
    );
}

#[test]
fn accels_cpus_devices() {
    let probe = QEMU_7_2.probe();
    assert_eq!(probe.accels, ["tcg", "kvm"]);
    assert!(probe.has_cpu("qemu64") && probe.has_cpu("Skylake-Client-v1"));
    let broadwell = probe
        .cpus
        .iter()
        .find(|c| c.name == "Broadwell-IBRS")
        .unwrap();
    assert_eq!(
        (broadwell.arch.as_deref(), broadwell.description.as_str()),
        (Some("x86"), "(alias of Broadwell-v3)")
    );
    assert!(probe.cpus.iter().all(|c| c.arch.as_deref() == Some("x86")));
    assert_eq!(probe.cpus.len(), QEMU_7_2.cpu_model_lines());
    assert!(probe.cpu_flags.iter().any(|f| f == "avx2"));
    assert!(probe.cpu_flags.iter().all(|f| !f.contains(' ')));
    let blk = probe.device("virtio-blk-pci").unwrap();
    assert_eq!(blk.bus.as_deref(), Some("PCI"));
    assert_eq!(blk.alias.as_deref(), Some("virtio-blk"));
    assert_eq!(blk.category, "Storage");
    assert!(probe.has_device("virtio-blk"), "found by alias");
    let rp = probe.device("cxl-rp").unwrap();
    assert_eq!(rp.description.as_deref(), Some("CXL Root Port"));
    assert_eq!(probe.devices.len(), QEMU_7_2.device_lines());
}

#[test]
fn accels_cpus_devices_10_0() {
    let probe = QEMU_10_0.probe();
    assert_eq!(probe.accels, ["tcg", "kvm"]);
    // QEMU 10.0 lists models indented, without the `x86` column.
    assert_eq!(probe.cpus.len(), QEMU_10_0.cpu_model_lines());
    assert!(
        probe.cpus.iter().all(|c| c.arch.is_none()),
        "{:?}",
        &probe.cpus[..3]
    );
    let broadwell = probe
        .cpus
        .iter()
        .find(|c| c.name == "Broadwell-IBRS")
        .unwrap();
    assert_eq!(broadwell.description, "(alias of Broadwell-v3)");
    let first = &probe.cpus[0];
    assert_eq!(
        (first.name.as_str(), first.description.as_str()),
        ("486", "(alias configured by machine type)")
    );
    let v1 = probe.cpus.iter().find(|c| c.name == "486-v1").unwrap();
    assert_eq!(v1.description, "", "a blank description stays blank");
    let host = probe.cpus.iter().find(|c| c.name == "host").unwrap();
    assert_eq!(
        host.description,
        "processor with all supported host features"
    );
    assert!(probe.has_cpu("qemu64") && probe.has_cpu("SapphireRapids-v3"));
    assert!(probe.has_cpu("Skylake-Client-v1"), "kept from 7.2");
    // Every 7.2 model is still there.
    let old = QEMU_7_2.probe();
    let missing: Vec<&str> = old
        .cpus
        .iter()
        .map(|c| c.name.as_str())
        .filter(|name| !probe.has_cpu(name))
        .collect();
    assert!(missing.is_empty(), "{missing:?}");
    assert!(probe.cpu_flags.iter().any(|f| f == "avx10"));
    assert!(probe.cpu_flags.iter().all(|f| !f.contains(' ')));

    let blk = probe.device("virtio-blk-pci").unwrap();
    assert_eq!(
        (
            blk.bus.as_deref(),
            blk.alias.as_deref(),
            blk.category.as_str()
        ),
        (Some("PCI"), Some("virtio-blk"), "Storage")
    );
    assert!(probe.has_device("igb") && !probe.has_device("pvrdma"));
    assert!(probe.has_device("virtio-sound-pci"));
    assert_eq!(probe.devices.len(), QEMU_10_0.device_lines());
}

#[test]
fn cpu_help_in_either_layout_reads_the_same_models() {
    // The same lines in both layouts: only the column differs.
    let old = "Available CPUs:\nx86 qemu64  QEMU Virtual CPU version 2.5+\nx86 486-v1  \n";
    let new = "Available CPUs:\n  qemu64  QEMU Virtual CPU version 2.5+\n  486-v1  \n";
    let probe = |cpu_help| {
        Probe::from_outputs(
            "q",
            QEMU_10_0.version,
            QEMU_10_0.machine_help,
            QEMU_10_0.accel_help,
            cpu_help,
            QEMU_10_0.device_help,
            QEMU_10_0.netdev_help,
        )
        .unwrap()
    };
    let (old, new) = (probe(old).cpus, probe(new).cpus);
    let names = |cpus: &[qemu_cmdline::CpuModel]| {
        cpus.iter()
            .map(|c| (c.name.clone(), c.description.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&old), names(&new));
    assert_eq!(old.len(), 2);
    // A heading with no model under it is refused, not an empty list.
    let err = Probe::from_outputs(
        "q",
        QEMU_10_0.version,
        QEMU_10_0.machine_help,
        QEMU_10_0.accel_help,
        "Available CPUs:\n\nRecognized CPUID flags:\n  fpu\n",
        QEMU_10_0.device_help,
        QEMU_10_0.netdev_help,
    );
    assert!(matches!(err, Err(Error::ProbeOutput { .. })), "{err:?}");
}

#[test]
fn missing_things_are_named() {
    let probe = QEMU_7_2.probe();
    let err = probe.require_device("virtio-blk-pcie").unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Missing { kind: "device", .. }));
    assert!(
        text.contains("no device `virtio-blk-pcie`") && text.contains("QEMU 7.2.22"),
        "{text}"
    );
    assert!(
        text.contains("virtio-blk-pci"),
        "suggests near names: {text}"
    );
    assert!(
        probe
            .require_accel("hvf")
            .unwrap_err()
            .to_string()
            .contains("no accelerator `hvf`")
    );
    let machine = probe.require_machine("virt");
    assert!(
        matches!(&machine, Err(Error::Missing { kind: "machine", name, .. }) if name == "virt"),
        "{machine:?}"
    );
    let cpu = probe.require_cpu("cortex-a57");
    assert!(
        matches!(&cpu, Err(Error::Missing { kind: "CPU model", name, .. }) if name == "cortex-a57"),
        "{cpu:?}"
    );

    let mut cmd = Cmdline::new();
    cmd.machine(Machine::new("pc").accel("kvm:tcg"))
        .device(Device::new("virtio-blk-pci"));
    probe.check(&cmd).unwrap();
    cmd.device_json(serde_json::json!({"driver": "no-such-device"}));
    assert!(
        probe
            .check(&cmd)
            .unwrap_err()
            .to_string()
            .contains("no-such-device")
    );
}

#[test]
fn netdev_help_lists_the_back_ends_in_both_releases() {
    for (release, recorded) in [("7.2", QEMU_7_2), ("10.0", QEMU_10_0)] {
        let probe = recorded.probe();
        // The back ends Debian builds in, in QEMU's order.
        assert_eq!(
            probe.netdevs,
            [
                "socket",
                "stream",
                "dgram",
                "hubport",
                "tap",
                "user",
                "l2tpv3",
                "vde",
                "bridge",
                "vhost-user",
                "vhost-vdpa"
            ],
            "{release}"
        );
        assert!(probe.has_netdev("user") && !probe.has_netdev("netmap"));
        assert!(matches!(probe.require_netdev("user"), Ok(())), "{release}");
        let missing = probe.require_netdev("netmap");
        assert!(
            matches!(
                &missing,
                Err(Error::Missing { kind: "netdev back end", name, .. }) if name == "netmap"
            ),
            "{release}: {missing:?}"
        );
        let message = missing.map_err(|e| e.to_string()).unwrap_err();
        assert!(
            message.contains("has no netdev back end `netmap`"),
            "{message}"
        );
    }
}

#[test]
fn check_refuses_a_netdev_back_end_the_binary_lacks() {
    let probe = QEMU_10_0.probe();
    let mut cmd = Cmdline::new();
    cmd.netdev(qemu_cmdline::Netdev::user("n0"));
    let typed = probe.check(&cmd);
    assert!(matches!(typed, Ok(())), "{typed:?}");
    cmd.netdev(qemu_cmdline::Netdev::new("netmap", "n1"));
    let typed = probe.check(&cmd);
    assert!(
        matches!(&typed, Err(Error::Missing { name, .. }) if name == "netmap"),
        "{typed:?}"
    );
    let mut json = Cmdline::new();
    json.netdev_json(serde_json::json!({"type": "netmap", "id": "n2", "ifname": "x"}));
    let parsed = probe.check(&json);
    assert!(
        matches!(&parsed, Err(Error::Missing { name, .. }) if name == "netmap"),
        "{parsed:?}"
    );
}

#[test]
fn netdev_help_without_its_heading_is_refused() {
    let err = Probe::from_outputs(
        "q",
        QEMU_10_0.version,
        QEMU_10_0.machine_help,
        QEMU_10_0.accel_help,
        QEMU_10_0.cpu_help,
        QEMU_10_0.device_help,
        "socket\nuser\n",
    );
    assert!(
        matches!(&err, Err(Error::ProbeOutput { command, .. }) if command.ends_with("-netdev help")),
        "{err:?}"
    );
}

#[test]
fn output_that_is_not_qemu_is_refused() {
    let err = Probe::from_outputs("/bin/true", "", "", "", "", "", "").unwrap_err();
    assert!(matches!(err, Error::ProbeOutput { .. }), "{err}");
}

/// Writes an executable script. The spawning tests run in one test
/// function: a script being written while another thread forks can fail
/// to exec with "text file busy".
#[cfg(unix)]
fn script(dir: &std::path::Path, name: &str, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[cfg(unix)]
#[test]
fn running_binaries_that_fail_hang_or_are_absent() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let hanging = script(dir.path(), "slow-qemu", "#!/bin/sh\nexec sleep 30\n");
    let failing = script(
        dir.path(),
        "broken-qemu",
        "#!/bin/sh\necho 'no such option' >&2\nexit 3\n",
    );

    let err = Probe::run("/nonexistent/qemu", Duration::from_secs(5)).unwrap_err();
    assert!(matches!(err, Error::Spawn { .. }));
    assert!(err.to_string().contains("/nonexistent/qemu"));

    let started = Instant::now();
    let err = Probe::version(&hanging, Duration::from_millis(300)).unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));

    let err = Probe::version(&failing, Duration::from_secs(10)).unwrap_err();
    assert!(matches!(err, Error::ProbeFailed { .. }), "{err}");
    assert!(err.to_string().contains("no such option"), "{err}");
}
