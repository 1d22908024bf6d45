//! Probe parsing over output recorded from the real qemu-system-x86_64 7.2
//! (tests/fixtures); the integration suite parses the live binary too.

use qemu_cmdline::{Cmdline, Device, Error, Machine, Probe};

fn fixture_probe() -> Probe {
    Probe::from_outputs(
        "qemu-system-x86_64",
        include_str!("fixtures/version-7.2.txt"),
        include_str!("fixtures/machine-help-7.2.txt"),
        include_str!("fixtures/accel-help-7.2.txt"),
        include_str!("fixtures/cpu-help-7.2.txt"),
        include_str!("fixtures/device-help-7.2.txt"),
    )
    .unwrap()
}

#[test]
fn version() {
    let probe = fixture_probe();
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
}

#[test]
fn machines() {
    let probe = fixture_probe();
    let pc = probe.machine("pc").unwrap();
    assert_eq!(pc.alias_of.as_deref(), Some("pc-i440fx-7.2"));
    assert_eq!(pc.description, "Standard PC (i440FX + PIIX, 1996)");
    let default = probe.machines.iter().find(|m| m.is_default).unwrap();
    assert_eq!(default.name, "pc-i440fx-7.2");
    assert!(probe.machine("pc-i440fx-1.4").unwrap().deprecated);
    assert_eq!(probe.machine("none").unwrap().description, "empty machine");
    assert!(probe.has_machine("q35") && probe.has_machine("microvm"));
    assert_eq!(
        probe.machines.len(),
        include_str!("fixtures/machine-help-7.2.txt")
            .lines()
            .count()
            - 1
    );
}

#[test]
fn accels_cpus_devices() {
    let probe = fixture_probe();
    assert_eq!(probe.accels, ["tcg", "kvm"]);
    assert!(probe.has_cpu("qemu64") && probe.has_cpu("Skylake-Client-v1"));
    let broadwell = probe
        .cpus
        .iter()
        .find(|c| c.name == "Broadwell-IBRS")
        .unwrap();
    assert_eq!(
        (broadwell.arch.as_str(), broadwell.description.as_str()),
        ("x86", "(alias of Broadwell-v3)")
    );
    assert!(probe.cpu_flags.iter().any(|f| f == "avx2"));
    assert!(probe.cpu_flags.iter().all(|f| !f.contains(' ')));
    let blk = probe.device("virtio-blk-pci").unwrap();
    assert_eq!(blk.bus.as_deref(), Some("PCI"));
    assert_eq!(blk.alias.as_deref(), Some("virtio-blk"));
    assert_eq!(blk.category, "Storage");
    assert!(probe.has_device("virtio-blk"), "found by alias");
    let rp = probe.device("cxl-rp").unwrap();
    assert_eq!(rp.description.as_deref(), Some("CXL Root Port"));
    let lines = include_str!("fixtures/device-help-7.2.txt")
        .lines()
        .filter(|l| l.starts_with("name "))
        .count();
    assert_eq!(probe.devices.len(), lines);
}

#[test]
fn missing_things_are_named() {
    let probe = fixture_probe();
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
    assert!(probe.require_machine("virt").is_err());
    assert!(probe.require_cpu("cortex-a57").is_err());

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
fn output_that_is_not_qemu_is_refused() {
    let err = Probe::from_outputs("/bin/true", "", "", "", "", "").unwrap_err();
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
