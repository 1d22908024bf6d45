//! qemu-console against the real guest: QEMU spawned directly (not through
//! qemu-machine), its serial ports on socket pairs.

use std::os::fd::AsFd as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use qemu_console::{Console, ConsoleConfig, Error, InheritFd};
use qemukit_tests::{QemuChild, READY_MARKER};
use tokio::io::AsyncWriteExt as _;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Boot under TCG takes 3–4 s; a loaded machine may take many times that.
const BOOT: Duration = Duration::from_secs(120);
const COMMAND: Duration = Duration::from_secs(60);
/// 10 MiB through an emulated UART under TCG.
const FLOOD_TIMEOUT: Duration = Duration::from_secs(600);

/// A booted guest with one console per serial port (ttyS0 first), at its
/// shell prompt. Dropping it kills QEMU.
struct Booted {
    consoles: Vec<Console>,
    qemu: QemuChild,
    /// The raw log of ttyS0.
    log: PathBuf,
    _dir: tempfile::TempDir,
}

async fn boot(serial_ports: usize) -> Result<Booted, Box<dyn std::error::Error>> {
    let guest = qemukit_tests::guest();
    let dir = tempfile::tempdir()?;
    let log = dir.path().join("ttyS0.log");
    let mut args = guest.args(false);
    let mut consoles = Vec::new();
    let mut qemu_ends: Vec<InheritFd> = Vec::new();
    for port in 0..serial_ports {
        let config = ConsoleConfig {
            name: format!("ttyS{port}"),
            log_file: (port == 0).then(|| log.clone()),
            ..ConsoleConfig::default()
        };
        let (console, qemu_end) = Console::socketpair(config)?;
        args.push("-chardev".into());
        args.push(qemu_end.chardev(format!("con{port}")).render()?);
        args.push("-serial".into());
        args.push(format!("chardev:con{port}").into());
        consoles.push(console);
        qemu_ends.push(qemu_end);
    }
    let fds: Vec<_> = qemu_ends.iter().map(|end| end.as_fd()).collect();
    let qemu = QemuChild::spawn(&args, &fds)?;
    drop(fds);
    // QEMU has its copies: ours must go, or EOF never comes.
    drop(qemu_ends);

    let ttys0 = &consoles[0];
    if let Err(error) = ttys0.expect(READY_MARKER, BOOT).await {
        return Err(format!("the guest did not boot: {error}\nQEMU said: {}", qemu.log()).into());
    }
    ttys0.expect("# ", BOOT).await?;
    Ok(Booted {
        consoles,
        qemu,
        log,
        _dir: dir,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_runs_commands_and_reaches_eof_at_poweroff() -> TestResult {
    let mut booted = boot(1).await?;
    let console = &booted.consoles[0];

    let uname = console.run("uname -r", COMMAND).await?;
    let release = console
        .run("cat /proc/sys/kernel/osrelease", COMMAND)
        .await?;
    assert_eq!(uname.status, 0);
    assert!(uname.output.ends_with("-cloud-amd64\n"), "{uname:?}");
    assert_eq!(uname.output, release.output);

    let yes = console.run("true", COMMAND).await?;
    assert_eq!((yes.output.as_str(), yes.status), ("", 0));
    let no = console.run("false", COMMAND).await?;
    assert_eq!((no.output.as_str(), no.status), ("", 1));
    let seven = console.run("echo $((6 * 7)); (exit 7)", COMMAND).await?;
    assert_eq!((seven.output.as_str(), seven.status), ("42\n", 7));
    let missing = console.run("no-such-command", COMMAND).await?;
    assert_eq!(missing.status, 127, "{missing:?}");
    // A typed line longer than the terminal: busybox wraps its echo with \r\r\n.
    let long = "x".repeat(150);
    let echoed = console.run(&format!("echo {long}"), COMMAND).await?;
    assert_eq!(echoed.output, format!("{long}\n"));
    assert!(console.transcript().windows(3).any(|w| w == b"\r\r\n"));

    // An expect pending when QEMU exits fails at once with EOF.
    let started = Instant::now();
    let (pending, sent) = tokio::join!(
        console.expect("never printed", Duration::from_secs(600)),
        console.send_line("poweroff -f")
    );
    sent?;
    let error = pending.err().ok_or("expected EOF")?;
    assert!(matches!(error, Error::Eof { .. }), "{error}");
    assert!(
        started.elapsed() < COMMAND,
        "EOF took {:?}",
        started.elapsed()
    );
    assert!(error.to_string().contains("Power down"), "{error}");
    // Later expects fail at once too (bytes received before EOF still match).
    match console.expect("never printed", COMMAND).await {
        Err(Error::Eof { waited, .. }) => assert!(waited < Duration::from_secs(1), "{waited:?}"),
        other => return Err(format!("expected EOF, got {other:?}").into()),
    }
    let status = booted.qemu.wait(COMMAND).await?;
    assert!(
        status.success(),
        "QEMU exited with {status}: {}",
        booted.qemu.log()
    );
    Ok(())
}

/// `seq 1 LAST` prints 10,488,896 bytes (≥ 10 MiB).
const LAST: u32 = 1_450_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stderr)]
async fn a_10_mib_flood_nobody_expects_arrives_whole() -> TestResult {
    let booted = boot(2).await?;
    let started_at = Instant::now();
    let (ttys0, ttys1) = (&booted.consoles[0], &booted.consoles[1]);

    // Generated first, so that the flood measures the console, not `seq`.
    let guest_sums = ttys0
        .run(
            &format!("seq 1 {LAST} > /tmp/flood; md5sum /tmp/flood; wc -c < /tmp/flood"),
            FLOOD_TIMEOUT,
        )
        .await?;
    let mut sums = guest_sums.output.split_whitespace();
    let (guest_md5, _, guest_len) = (sums.next(), sums.next(), sums.next());
    let generated = started_at.elapsed();

    // The flood on ttyS0, bracketed by markers the shell computes; then a
    // signal on ttyS1. Nobody expects on ttyS0 meanwhile.
    let started = Instant::now();
    ttys0
        .send_line(
            "echo @@$((4000+17))+@@; cat /tmp/flood; echo @@$((4000+17))-@@; echo @@$((5000+17))@@ > /dev/ttyS1",
        )
        .await?;
    ttys1.expect("@@5017@@", FLOOD_TIMEOUT).await?;
    // The UART may still hold the end of the flood: its end marker comes last.
    ttys0.expect("@@4017-@@", COMMAND).await?;
    let elapsed = started.elapsed();

    let logged = tokio::fs::read(&booted.log).await?;
    let flood =
        between(&logged, b"@@4017+@@\r\n", b"@@4017-@@").ok_or("flood markers not in the log")?;
    let wire = flood.len();
    let received = strip_crlf(flood);
    let expected: Vec<u8> = (1..=LAST)
        .flat_map(|i| format!("{i}\n").into_bytes())
        .collect();
    assert_eq!(received.len(), expected.len(), "byte count");
    if let Some(at) = received.iter().zip(&expected).position(|(a, b)| a != b) {
        return Err(format!("the flood differs at byte {at}").into());
    }
    assert_eq!(
        guest_len,
        Some(expected.len().to_string().as_str()),
        "{guest_sums:?}"
    );
    let host_md5 = md5sum(&received).await?;
    assert_eq!(
        guest_md5,
        Some(host_md5.as_str()),
        "guest and host checksums"
    );

    let rate = wire as f64 / elapsed.as_secs_f64() / f64::from(1 << 20);
    eprintln!(
        "console drain: {wire} bytes on the wire ({} of seq output) in {elapsed:.2?} = {rate:.2} MiB/s \
         (the guest took {generated:.2?} to generate and checksum them)",
        received.len()
    );
    Ok(())
}

/// The bytes between the first `start` and the next `end`.
fn between<'a>(haystack: &'a [u8], start: &[u8], end: &[u8]) -> Option<&'a [u8]> {
    let from = find(haystack, start)? + start.len();
    let to = from + find(&haystack[from..], end)?;
    Some(&haystack[from..to])
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Undoes the tty's `\n` → `\r\n`.
fn strip_crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"\r\n") {
            i += 1;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// The host's `md5sum` of `bytes`, in hex.
async fn md5sum(bytes: &[u8]) -> Result<String, Box<dyn std::error::Error>> {
    let mut child = tokio::process::Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    stdin.write_all(bytes).await?;
    drop(stdin);
    let output = tokio::time::timeout(COMMAND, child.wait_with_output()).await??;
    let text = String::from_utf8(output.stdout)?;
    Ok(text
        .split_whitespace()
        .next()
        .ok_or("no md5sum output")?
        .to_owned())
}
