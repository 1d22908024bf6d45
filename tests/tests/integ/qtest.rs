//! The qtest machine mode (`QEMUQtestMachine`) against the real QEMU under
//! TCG: guest memory, port I/O, and an interrupt a real device (the RTC)
//! raises, seen through `irq_intercept_in`; QEMU's death and shutdown seen
//! by every waiter; the qtest log. These builds have no qtest accelerator,
//! so the clock commands, and `-accel qtest`, must fail with the typed
//! errors that say so.

use std::time::Duration;

use qemu_cmdline::Probe;
use qemu_machine::qtest::{Endianness, IrqEvent, QtestDisconnect};
use qemu_machine::{Accel, Error, Machine, MachineBuilder};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// An RTC tick on a loaded machine; the first periodic interrupt comes
/// within a millisecond on an idle one.
const IRQ_WAIT: Duration = Duration::from_secs(30);

/// How long QEMU gets to quit.
const SHUTDOWN: Duration = Duration::from_secs(30);

/// A stopped PC (`-S`: no CPU runs, so nothing but the test touches the
/// devices) in qtest mode, as `QEMUQtestMachine` launches it, under the
/// builder's accelerator (TCG unless `$QEMUKIT_ACCEL` says otherwise).
fn builder() -> MachineBuilder {
    let mut builder = MachineBuilder::new();
    builder
        .machine_type("pc")
        .args(["-S", "-nodefaults", "-m", "64"])
        .qtest(true);
    builder
}

async fn launch() -> Result<Machine, Error> {
    builder().launch().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qtest_reads_and_writes_guest_memory() -> TestResult {
    let machine = launch().await?;
    let qtest = machine.qtest()?;
    let outcome = async {
        assert_eq!(qtest.endianness().await?, Endianness::Little);

        qtest.writeb(0x1000, 0xab).await?;
        qtest.writew(0x1002, 0xcdef).await?;
        qtest.writel(0x1004, 0xdead_beef).await?;
        qtest.writeq(0x1008, 0x0123_4567_89ab_cdef).await?;
        assert_eq!(qtest.readb(0x1000).await?, 0xab);
        assert_eq!(qtest.readw(0x1002).await?, 0xcdef);
        assert_eq!(qtest.readl(0x1004).await?, 0xdead_beef);
        assert_eq!(qtest.readq(0x1008).await?, 0x0123_4567_89ab_cdef);
        // Little-endian in memory, as the hex dump shows.
        assert_eq!(
            qtest.read(0x1004, 4).await?,
            [0xef, 0xbe, 0xad, 0xde],
            "read (hex)"
        );

        let data: Vec<u8> = (0..=255u8).collect();
        qtest.write(0x2000, &data).await?;
        assert_eq!(
            qtest.b64read(0x2000, 256).await?,
            data,
            "b64read after write"
        );
        qtest.b64write(0x3000, b"qemukit qtest").await?;
        assert_eq!(
            qtest.read(0x3000, 13).await?,
            b"qemukit qtest",
            "read after b64write"
        );

        qtest.memset(0x3000, 8, 0x5a).await?;
        assert_eq!(
            qtest.read(0x3000, 13).await?,
            b"ZZZZZZZZqtest",
            "read after memset"
        );
        // The raw form answers as QEMUQtestMachine.qtest() does.
        assert_eq!(qtest.raw("readb 0x1000").await?, "OK 0x00000000000000ab");
        Ok::<_, Box<dyn std::error::Error>>(())
    }
    .await;
    explain(outcome, &machine)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qtest_sees_the_rtc_raise_and_lower_its_interrupt() -> TestResult {
    let machine = launch().await?;
    let qtest = machine.qtest()?;
    let outcome = async {
        // Port I/O: CMOS register B holds the RTC's mode (0x02: 24-hour).
        qtest.outb(0x70, 0x0b).await?;
        assert_eq!(qtest.inb(0x71).await?, 0x02, "RTC register B");
        // A byte of CMOS RAM keeps what was written.
        qtest.outb(0x70, 0x40).await?;
        qtest.outb(0x71, 0x5a).await?;
        qtest.outb(0x70, 0x40).await?;
        assert_eq!(qtest.inb(0x71).await?, 0x5a, "CMOS RAM byte 0x40");

        qtest.irq_intercept_in("ioapic").await?;
        let mut events = qtest.irq_events();
        assert!(!qtest.irq_level(8), "IRQ 8 raised before the RTC was set up");
        // Register A: 1024 Hz periodic rate; register B: periodic interrupt on.
        qtest.outb(0x70, 0x0a).await?;
        qtest.outb(0x71, 0x26).await?;
        qtest.outb(0x70, 0x0b).await?;
        qtest.outb(0x71, 0x42).await?;
        qtest.wait_irq(8, true, IRQ_WAIT).await?;
        let event = tokio::time::timeout(IRQ_WAIT, events.recv()).await?;
        assert!(
            matches!(event, Ok(IrqEvent { line: 8, raised: true })),
            "first IRQ event: {event:?}"
        );

        // Reading register C acknowledges the interrupt; QEMU reports the
        // lowered line before the read's answer, so the level is known now.
        qtest.outb(0x70, 0x0c).await?;
        let flags = qtest.inb(0x71).await?;
        assert_eq!(flags & 0xc0, 0xc0, "register C: IRQF and PF, got {flags:#x}");
        // The next periodic tick (every ~1 ms) may raise the line again at
        // once on a busy host, so look for the lowering among the events,
        // not at the level afterwards.
        let lowered = tokio::time::timeout(IRQ_WAIT, async {
            loop {
                match events.recv().await {
                    Ok(IrqEvent { line: 8, raised: false }) => return Ok(()),
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(closed) => return Err(closed),
                }
            }
        })
        .await;
        assert!(
            matches!(lowered, Ok(Ok(()))),
            "no `IRQ lower 8` after reading register C: {lowered:?}"
        );

        // Another device cannot be intercepted in the same session.
        let second = qtest.irq_intercept_in("/machine/i440fx").await;
        assert!(
            matches!(&second, Err(Error::QtestFailed { reply, .. }) if reply.contains("already enabled")),
            "{second:?}"
        );
        Ok::<_, Box<dyn std::error::Error>>(())
    }
    .await;
    explain(outcome, &machine)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qtest_clock_commands_name_the_missing_accelerator() -> TestResult {
    let machine = launch().await?;
    let qtest = machine.qtest()?;
    let step = qtest.clock_step(None).await;
    assert!(
        matches!(&step, Err(Error::NoQtestAccelerator { command, .. }) if command == "clock_step"),
        "{step:?}\nQEMU said: {}",
        machine.log()
    );
    let set = qtest.clock_set(1_000).await;
    assert!(
        matches!(&set, Err(Error::NoQtestAccelerator { .. })),
        "{set:?}"
    );
    // The session goes on after a failed request.
    assert_eq!(qtest.endianness().await?, Endianness::Little);
    machine.shutdown(SHUTDOWN).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qemus_death_fails_every_qtest_waiter_at_once() -> TestResult {
    let machine = launch().await?;
    let qtest = machine.qtest()?.clone();
    qtest.irq_intercept_in("ioapic").await?;
    // Waiters that only QEMU's end releases: an IRQ no device raises, with
    // no timeout of their own.
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let qtest = qtest.clone();
            tokio::spawn(async move { qtest.wait_irq(15, true, Duration::MAX).await })
        })
        .collect();
    // Whether the waiters start before or after the kill, they must fail.
    machine.kill().await?;
    for waiter in waiters {
        // A bound only so that a regression fails instead of hanging.
        let result = tokio::time::timeout(IRQ_WAIT, waiter).await?;
        assert!(
            matches!(
                &result,
                Ok(Err(Error::QtestDisconnected(
                    QtestDisconnect::PeerClosed | QtestDisconnect::Io(_)
                )))
            ),
            "{result:?}"
        );
    }
    // So do later requests, at once.
    let after = qtest.readb(0).await;
    assert!(
        matches!(&after, Err(Error::QtestDisconnected(_))),
        "{after:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_the_qtest_socket_and_the_log_stays_in_a_log_dir() -> TestResult {
    let logs = tempfile::tempdir()?;
    let machine = builder()
        .log_dir(logs.path())
        .qtest_log(true)
        .launch()
        .await?;
    let qtest = machine.qtest()?.clone();
    qtest.writeb(0x1000, 0x42).await?;
    assert_eq!(qtest.readb(0x1000).await?, 0x42);
    let log_path = machine
        .qtest_log_path()
        .ok_or("qtest_log(true) gave no log path")?
        .to_owned();
    assert!(log_path.starts_with(logs.path()), "{}", log_path.display());

    machine.shutdown(SHUTDOWN).await?;
    // By the time shutdown returns, the client has seen QEMU's end.
    assert!(
        matches!(qtest.close_reason(), Some(QtestDisconnect::PeerClosed)),
        "{:?}",
        qtest.close_reason()
    );
    let after = qtest.endianness().await;
    assert!(
        matches!(
            &after,
            Err(Error::QtestDisconnected(QtestDisconnect::PeerClosed))
        ),
        "{after:?}"
    );
    // QEMU logged each request (`[R +t] …`) and its answer (`[S +t] …`),
    // complete now that it exited.
    let log = std::fs::read_to_string(&log_path)?;
    assert!(log.contains("writeb 0x1000 0x42"), "qtest log: {log}");
    assert!(log.contains("readb 0x1000"), "qtest log: {log}");
    assert!(log.contains("OK 0x0000000000000042"), "qtest log: {log}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_qtest_log_is_removed_with_the_temporary_directory() -> TestResult {
    let machine = builder().qtest_log(true).launch().await?;
    machine.qtest()?.endianness().await?;
    let log_path = machine
        .qtest_log_path()
        .ok_or("qtest_log(true) gave no log path")?
        .to_owned();
    let temp_dir = machine.temp_dir().ok_or("no temporary directory")?;
    assert!(log_path.starts_with(&temp_dir), "{}", log_path.display());
    assert!(
        log_path.exists(),
        "QEMU did not create {}",
        log_path.display()
    );
    machine.shutdown(SHUTDOWN).await?;
    assert!(
        !log_path.exists(),
        "{} outlived the machine",
        log_path.display()
    );
    Ok(())
}

/// Without QMP the launch does not wait for QEMU, and shutdown is SIGTERM:
/// requests sent before QEMU reads the socket wait in it, and the end is
/// seen all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qtest_mode_works_without_a_qmp_monitor() -> TestResult {
    let machine = builder().qmp(false).launch().await?;
    let qtest = machine.qtest()?.clone();
    assert_eq!(qtest.endianness().await?, Endianness::Little);
    qtest.writel(0x1000, 0x1234_5678).await?;
    assert_eq!(qtest.readl(0x1000).await?, 0x1234_5678);
    machine.shutdown(SHUTDOWN).await?;
    assert!(
        matches!(qtest.close_reason(), Some(QtestDisconnect::PeerClosed)),
        "{:?}",
        qtest.close_reason()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_without_qtest_mode_says_how_to_get_it() -> TestResult {
    let machine = MachineBuilder::new().machine_type("none").launch().await?;
    let qtest = machine.qtest();
    assert!(matches!(qtest, Err(Error::QtestDisabled)), "{qtest:?}");
    machine.shutdown(SHUTDOWN).await?;
    Ok(())
}

/// `QEMUQtestMachine` runs `-accel qtest`. A build that lacks it (Debian's
/// 7.2 and 10.0) fails the launch with the typed error that says so; a
/// build that has it runs the clock commands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_qtest_accelerator_runs_or_is_named_missing() -> TestResult {
    let binary = qemukit_tests::qemu_binary();
    let probe = Probe::run_async(&binary, qemu_cmdline::DEFAULT_PROBE_TIMEOUT).await?;
    let launched = builder()
        .binary(&binary)
        .accel(Accel::new("qtest"))
        .launch()
        .await;
    if probe.has_accel("qtest") {
        let machine = launched?;
        let qtest = machine.qtest()?;
        let clock = qtest.clock_step(Some(1_000)).await?;
        assert!(clock >= 1_000, "the clock after a 1 µs step: {clock} ns");
        machine.shutdown(SHUTDOWN).await?;
        return Ok(());
    }
    match &launched {
        Err(error @ Error::AccelUnavailable { accel, launch }) => {
            assert_eq!(accel, "qtest");
            let message = error.to_string();
            assert!(message.contains("works under TCG"), "{message}");
            assert!(
                launch.output_tail().contains("invalid accelerator qtest"),
                "{launch}"
            );
        }
        other => panic!(
            "{} lists no qtest accelerator, yet the launch gave {other:?}",
            binary.display()
        ),
    }
    Ok(())
}

/// Adds QEMU's output to a failure.
fn explain(outcome: TestResult, machine: &Machine) -> TestResult {
    outcome.map_err(|error| format!("{error}\nQEMU said: {}", machine.log()).into())
}
