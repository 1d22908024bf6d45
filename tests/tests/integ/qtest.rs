//! The qtest client against the real QEMU under TCG: guest memory, port
//! I/O, and an interrupt a real device (the RTC) raises, seen through
//! `irq_intercept_in`. These builds have no qtest accelerator, so the clock
//! commands must fail with the typed error that says so.

use std::os::fd::{AsFd as _, AsRawFd as _};
use std::time::Duration;

use qemu_machine::Error;
use qemu_machine::qtest::{Endianness, QtestClient, QtestConfig, QtestDisconnect};
use qemukit_tests::QemuChild;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// An RTC tick on a loaded machine; the first periodic interrupt comes
/// within a millisecond on an idle one.
const IRQ_WAIT: Duration = Duration::from_secs(30);

/// A stopped PC (`-S`: no CPU runs, so nothing but the test touches the
/// devices) with a qtest socket, and the client on it.
///
/// The chardev is named `qtest`: QEMU 7.2 looks the qtest chardev up by
/// that name whatever `-qtest chardev:ID` says (10.0 follows the ID).
fn launch() -> Result<(QemuChild, QtestClient), Box<dyn std::error::Error>> {
    let (ours, theirs) = qemukit_tests::socket_pair()?;
    let args = [
        "-M".to_owned(),
        "pc".into(),
        "-accel".into(),
        "tcg".into(),
        "-S".into(),
        "-nodefaults".into(),
        "-display".into(),
        "none".into(),
        "-m".into(),
        "64".into(),
        "-chardev".into(),
        format!("socket,id=qtest,fd={}", theirs.as_raw_fd()),
        "-qtest".into(),
        "chardev:qtest".into(),
        "-qtest-log".into(),
        "/dev/null".into(),
    ];
    let qemu = QemuChild::spawn(&args, &[theirs.as_fd()])?;
    drop(theirs);
    let qtest = QtestClient::new(ours, QtestConfig::default())?;
    Ok((qemu, qtest))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qtest_reads_and_writes_guest_memory() -> TestResult {
    let (qemu, qtest) = launch()?;
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
    explain(outcome, &qemu)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qtest_sees_the_rtc_raise_and_lower_its_interrupt() -> TestResult {
    let (qemu, qtest) = launch()?;
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
            matches!(event, Ok(qemu_machine::qtest::IrqEvent { line: 8, raised: true })),
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
                    Ok(qemu_machine::qtest::IrqEvent { line: 8, raised: false }) => return Ok(()),
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
    explain(outcome, &qemu)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qtest_clock_commands_name_the_missing_accelerator() -> TestResult {
    let (mut qemu, qtest) = launch()?;
    let step = qtest.clock_step(None).await;
    assert!(
        matches!(&step, Err(Error::NoQtestAccelerator { command, .. }) if command == "clock_step"),
        "{step:?}\nQEMU said: {}",
        qemu.log()
    );
    let set = qtest.clock_set(1_000).await;
    assert!(
        matches!(&set, Err(Error::NoQtestAccelerator { .. })),
        "{set:?}"
    );
    // The session goes on after a failed request.
    assert_eq!(qtest.endianness().await?, Endianness::Little);

    // When QEMU dies, requests fail at once instead of waiting.
    qemu.kill().await?;
    let after = qtest.readb(0).await;
    assert!(
        matches!(
            &after,
            Err(Error::QtestDisconnected(
                QtestDisconnect::PeerClosed | QtestDisconnect::Io(_)
            ))
        ),
        "{after:?}"
    );
    Ok(())
}

/// Adds QEMU's output to a failure.
fn explain(outcome: TestResult, qemu: &QemuChild) -> TestResult {
    outcome.map_err(|error| format!("{error}\nQEMU said: {}", qemu.log()).into())
}
