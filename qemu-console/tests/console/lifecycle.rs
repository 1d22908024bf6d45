//! Attaching, sending, independence of consoles, and the drain task's end.

use qemu_console::{Console, ConsoleConfig, Error};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::LONG;

#[tokio::test]
async fn sends_reach_the_guest() -> Result<(), Box<dyn std::error::Error>> {
    let (ours, mut guest) = tokio::io::duplex(64);
    let console = Console::attach(ours, ConsoleConfig::default())?;
    console.send(b"raw").await?;
    console.send_line("ls /").await?;
    console.send_control('c').await?;
    console.send_control('D').await?;
    let mut got = [0; 10];
    guest.read_exact(&mut got).await?;
    assert_eq!(&got, b"rawls /\n\x03\x04");
    let error = console.send_control('1').await.err().ok_or("sent")?;
    assert!(matches!(error, Error::InvalidControl('1')), "{error}");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_guest_that_reads_nothing_times_a_send_out() -> Result<(), Box<dyn std::error::Error>> {
    let (ours, _guest) = tokio::io::duplex(8);
    let console = Console::attach(ours, ConsoleConfig::default())?;
    let error = console.send([0; 64]).await.err().ok_or("sent")?;
    assert!(
        matches!(error, Error::WriteTimeout { len: 64, .. }),
        "{error}"
    );
    Ok(())
}

#[tokio::test]
async fn sending_to_a_closed_console_fails() -> Result<(), Box<dyn std::error::Error>> {
    let (ours, guest) = tokio::io::duplex(64);
    let console = Console::attach(ours, ConsoleConfig::default())?;
    drop(guest);
    let error = console.send_line("echo").await.err().ok_or("sent")?;
    assert!(matches!(error, Error::Write { .. }), "{error}");
    Ok(())
}

#[tokio::test]
async fn consoles_are_independent() -> Result<(), Box<dyn std::error::Error>> {
    let (first_ours, mut first) = tokio::io::duplex(64);
    let (second_ours, mut second) = tokio::io::duplex(64);
    let ttys0 = Console::attach(
        first_ours,
        ConsoleConfig {
            name: "ttyS0".into(),
            ..ConsoleConfig::default()
        },
    )?;
    let ttys1 = Console::attach(
        second_ours,
        ConsoleConfig {
            name: "ttyS1".into(),
            ..ConsoleConfig::default()
        },
    )?;
    second.write_all(b"on ttyS1").await?;
    first.write_all(b"on ttyS0").await?;
    drop(first);
    let error = ttys0.expect("ttyS1", LONG).await.err().ok_or("matched")?;
    assert!(
        error
            .to_string()
            .starts_with("console ttyS0: reached end of file"),
        "{error}"
    );
    assert_eq!(ttys1.expect("ttyS1", LONG).await?.before(), b"on ");
    assert!(!ttys1.is_eof());
    ttys1.send_line("still here").await?;
    let mut got = [0; 11];
    second.read_exact(&mut got).await?;
    assert_eq!(&got, b"still here\n");
    Ok(())
}

#[tokio::test]
async fn expects_from_several_tasks_on_one_console_take_turns()
-> Result<(), Box<dyn std::error::Error>> {
    let (ours, mut guest) = tokio::io::duplex(64);
    let console = Console::attach(ours, ConsoleConfig::default())?;
    guest.write_all(b"a1 a2 ").await?;
    let (one, two) = tokio::join!(console.expect("a", LONG), console.expect("a", LONG));
    let mut befores = [one?.before().to_vec(), two?.before().to_vec()];
    befores.sort();
    assert_eq!(befores, [b"".to_vec(), b"1 ".to_vec()]);
    Ok(())
}

#[tokio::test]
async fn dropping_the_console_ends_its_drain_task() -> Result<(), Box<dyn std::error::Error>> {
    let (ours, mut guest) = tokio::io::duplex(64);
    let console = Console::attach(ours, ConsoleConfig::default())?;
    guest.write_all(b"hello").await?;
    drop(console);
    // The guest end sees EOF only once the drain task has dropped its half.
    let mut rest = Vec::new();
    tokio::time::timeout(LONG, guest.read_to_end(&mut rest)).await??;
    assert!(rest.is_empty());
    Ok(())
}

#[test]
fn attaching_outside_a_runtime_is_an_error() {
    let (ours, _guest) = tokio::io::duplex(64);
    let error = Console::attach(ours, ConsoleConfig::default()).err();
    assert!(matches!(error, Some(Error::NoRuntime)), "{error:?}");
}

#[tokio::test]
async fn a_log_file_that_cannot_be_created_is_an_error() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let config = ConsoleConfig {
        log_file: Some(dir.path().join("missing/dir/console.log")),
        ..ConsoleConfig::default()
    };
    let (ours, _guest) = tokio::io::duplex(64);
    let error = Console::attach(ours, config).err().ok_or("attached")?;
    assert!(matches!(error, Error::LogFile { .. }), "{error}");
    Ok(())
}

#[tokio::test]
async fn the_transcript_is_bounded_and_readable() -> Result<(), Box<dyn std::error::Error>> {
    let (ours, mut guest) = tokio::io::duplex(64);
    let config = ConsoleConfig {
        transcript_limit: Some(12),
        buffer_limit: 4,
        ..ConsoleConfig::default()
    };
    let console = Console::attach(ours, config)?;
    guest.write_all(b"boot\r\n# \x1b[6nuname\r\r\n").await?;
    drop(guest);
    console.expect_eof(LONG).await?;
    assert_eq!(console.transcript(), b"\x1b[6nuname\r\r\n");
    assert_eq!(console.transcript_text(), "uname\n");
    Ok(())
}

/// A supervisor hands out `&Console` to any task: the console and the
/// futures of its methods must be `Send`, and the console `Sync`.
#[test]
fn consoles_and_their_futures_can_cross_tasks() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let runtime = tokio::runtime::Builder::new_current_thread().build();
    let Ok(runtime) = runtime else {
        panic!("no runtime");
    };
    let _entered = runtime.enter();
    let (ours, _guest) = tokio::io::duplex(64);
    let Ok(console) = Console::attach(ours, ConsoleConfig::default()) else {
        panic!("attach failed");
    };
    send_sync(&console);
    send(&console.expect("x", LONG));
    send(&console.run("true", LONG));
    send(&console.send_line("x"));
    send(&Console::connect_unix(
        "/nonexistent",
        ConsoleConfig::default(),
        LONG,
    ));
}
