//! `require_accelerator` as QEMU's functional tests mean it: the
//! accelerator must run a guest, which only a boot probe tells (this
//! host's KVM opens `/dev/kvm` and then cannot boot a kernel).

use std::time::Duration;

use qemu_machine::{Accel, AccelProbe, AccelVerdict, MachineBuilder, require};

use crate::migration::TestResult;

fn probe(kernel: &std::path::Path) -> AccelProbe {
    AccelProbe::new(kernel).binary(qemukit_tests::qemu_binary())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcg_runs_the_probe_and_the_answer_is_kept() -> TestResult {
    let guest = qemukit_tests::guest();
    let dir = tempfile::tempdir()?;
    let kernel = dir.path().join("vmlinuz");
    std::fs::copy(&guest.kernel, &kernel)?;
    let probe = probe(&kernel).timeout(Duration::from_secs(120));
    // Two askers at once share one boot.
    let (first, second) = tokio::join!(probe.check("tcg"), probe.check("tcg"));
    assert!(matches!(first, AccelVerdict::Works { .. }), "{first}");
    assert_eq!(first, second);
    // The kernel is gone: only the kept answer can still say it works.
    std::fs::remove_file(&kernel)?;
    let again = probe.check("tcg").await;
    assert_eq!(again, first);
    assert!(matches!(probe.require("tcg").await, Ok(())));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accelerator_qemu_lacks_fails_with_qemu_s_own_words() -> TestResult {
    let guest = qemukit_tests::guest();
    let verdict = probe(&guest.kernel).check("hvf").await;
    assert!(
        matches!(&verdict, AccelVerdict::Fails { reason } if reason.contains("invalid accelerator hvf")),
        "{verdict}"
    );
    let skip = probe(&guest.kernel).require("hvf").await;
    assert!(
        matches!(&skip, Err(skip) if skip.to_string().starts_with("SKIPPED: accelerator hvf cannot run a guest")),
        "{skip:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kernel_that_never_shows_the_pattern_fails_at_the_timeout() -> TestResult {
    let guest = qemukit_tests::guest();
    // panic=0: the kernel (no root file system here) halts after its panic
    // instead of ending QEMU, so on a fast host too only the timeout ends it.
    let verdict = probe(&guest.kernel)
        .append("console=ttyS0 panic=0")
        .ready("a line no kernel prints")
        .timeout(Duration::from_secs(3))
        .check("tcg")
        .await;
    assert!(
        matches!(&verdict, AccelVerdict::Fails { reason } if reason.contains("within 3s")),
        "{verdict}"
    );
    Ok(())
}

/// A test that needs KVM, as `require_accelerator('kvm')` writes it: on a
/// host whose KVM cannot boot the probe it prints `SKIPPED: …` and passes;
/// where KVM works it boots the guest under KVM and QEMU confirms it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kvm_test_runs_under_kvm_or_says_it_was_skipped() -> TestResult {
    let guest = qemukit_tests::guest();
    let probe = probe(&guest.kernel).timeout(Duration::from_secs(20));
    require!(probe.require("kvm").await);
    let machine = MachineBuilder::new()
        .binary(qemukit_tests::qemu_binary())
        .machine_type("pc")
        .accel(Accel::kvm())
        .launch()
        .await?;
    let kvm = machine.qmp().execute_raw("query-kvm", None).await?;
    assert_eq!(kvm["enabled"], true, "{kvm}");
    machine.shutdown(Duration::from_secs(30)).await?;
    Ok(())
}

/// What QEMU runs, asked from QEMU, whichever way the command line chose it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_accelerator_is_what_qemu_reports() -> TestResult {
    use qemu_machine::RunningAccel;
    // The default, and the user's own `-machine …,accel=` (the builder's
    // default `-accel tcg` steps aside: QEMU would refuse both).
    let default = MachineBuilder::new()
        .binary(qemukit_tests::qemu_binary())
        .machine_type("none")
        .launch()
        .await?;
    assert_eq!(default.running_accel().await?, RunningAccel::Tcg);
    default.shutdown(Duration::from_secs(30)).await?;
    let chosen = MachineBuilder::new()
        .binary(qemukit_tests::qemu_binary())
        .args(["-machine", "none,accel=tcg"])
        .launch()
        .await?;
    assert_eq!(chosen.running_accel().await?, RunningAccel::Tcg);
    chosen.shutdown(Duration::from_secs(30)).await?;
    // This host's KVM starts a machine without CPUs (it fails only on a
    // real guest), so `-machine none` shows what `query-kvm` reports.
    if std::path::Path::new("/dev/kvm").exists() {
        let kvm = MachineBuilder::new()
            .binary(qemukit_tests::qemu_binary())
            .machine_type("none")
            .accel(Accel::kvm())
            .launch()
            .await?;
        assert_eq!(kvm.running_accel().await?, RunningAccel::Kvm);
        kvm.shutdown(Duration::from_secs(30)).await?;
        // The user's `-accel kvm` in the arguments: no `-accel tcg` before
        // it, so QEMU runs KVM, not TCG with KVM as an unused fallback.
        let args = MachineBuilder::new()
            .binary(qemukit_tests::qemu_binary())
            .machine_type("none")
            .args(["-accel", "kvm"])
            .launch()
            .await?;
        assert_eq!(args.running_accel().await?, RunningAccel::Kvm);
        args.shutdown(Duration::from_secs(30)).await?;
    } else {
        require!(Err(qemu_machine::Skip {
            reason: "no /dev/kvm: the KVM half of this test cannot run".into()
        }));
    }
    Ok(())
}

/// `self.require_netdev('user')` of QEMU's functional tests: the probe
/// reads `-netdev help` of the binary under test, a back end it lists
/// lets the test go on (and QEMU accepts it), one it lacks is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_netdev_reads_the_binary_under_test() -> TestResult {
    use qemu_machine::qemu_cmdline::{DEFAULT_PROBE_TIMEOUT, Error as CmdlineError, Probe};

    let binary = qemukit_tests::qemu_binary();
    let qemu = Probe::run_async(&binary, DEFAULT_PROBE_TIMEOUT).await?;
    for netdev in ["user", "socket", "stream", "tap", "hubport"] {
        assert!(qemu.has_netdev(netdev), "{netdev}: {:?}", qemu.netdevs);
    }
    let missing = qemu.require_netdev("netmap");
    assert!(
        matches!(&missing, Err(CmdlineError::Missing { kind: "netdev back end", name, .. }) if name == "netmap"),
        "{missing:?}"
    );

    require!(qemu.require_netdev("user"));
    let machine = MachineBuilder::new()
        .binary(&binary)
        .machine_type("pc")
        .args([
            "-S",
            "-nodefaults",
            "-netdev",
            "user,id=n0",
            "-device",
            "virtio-net-pci,netdev=n0",
        ])
        .launch()
        .await?;
    let network = machine
        .qmp()
        .execute_raw(
            "human-monitor-command",
            serde_json::json!({"command-line": "info network"})
                .as_object()
                .cloned(),
        )
        .await?;
    let network = network.as_str().unwrap_or_default().to_owned();
    machine.shutdown(Duration::from_secs(30)).await?;
    assert!(
        network.contains("n0") && network.contains("user"),
        "info network: {network}"
    );
    Ok(())
}
