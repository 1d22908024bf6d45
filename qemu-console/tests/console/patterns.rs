//! The functional-test helpers: success and failure patterns, commands,
//! interrupting a boot loader.

use std::time::Duration;

use qemu_console::{Console, ConsoleConfig, DEFAULT_INTERRUPT_EVERY, Error, KERNEL_PANIC, Needle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::LONG;

fn attach() -> Result<(Console, tokio::io::DuplexStream), Error> {
    let (ours, guest) = tokio::io::duplex(4096);
    let console = Console::attach(
        ours,
        ConsoleConfig {
            name: "ttyS0".into(),
            ..ConsoleConfig::default()
        },
    )?;
    Ok((console, guest))
}

#[tokio::test]
async fn the_success_pattern_is_returned_with_what_came_before()
-> Result<(), Box<dyn std::error::Error>> {
    let (console, mut guest) = attach()?;
    guest.write_all(b"Booting\r\nWelcome to the ").await?;
    guest.write_all(b"guest\r\nKernel panic later\r\n").await?;
    let found = console
        .wait_for_pattern("Welcome", Some(Needle::from("Kernel panic")), LONG)
        .await?;
    assert_eq!(found.before(), b"Booting\r\n");
    assert_eq!(found.matched(), b"Welcome");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_failure_pattern_fails_at_once_with_its_line() -> Result<(), Box<dyn std::error::Error>>
{
    let (console, mut guest) = attach()?;
    guest
        .write_all(
            b"[    1.0] VFS: Unable to mount root\r\n[    1.1] Kernel panic - not syncing: VFS\r\n",
        )
        .await?;
    let started = tokio::time::Instant::now();
    let error = console
        .wait_for_pattern_or_panic("login:", LONG)
        .await
        .err()
        .ok_or("the wait succeeded")?;
    assert!(started.elapsed() < LONG, "waited {:?}", started.elapsed());
    match &error {
        Error::FailurePattern {
            console,
            expected,
            failure,
            line,
            tail,
        } => {
            assert_eq!(console, "ttyS0");
            assert_eq!(expected, "\"login:\"");
            assert_eq!(failure, &format!("\"{KERNEL_PANIC}\""));
            assert_eq!(line, "[    1.1] Kernel panic - not syncing");
            assert!(tail.contains("Unable to mount root"), "{tail}");
        }
        other => panic!("expected FailurePattern, got {other:?}"),
    }
    let message = error.to_string();
    assert!(
        message.contains("Kernel panic - not syncing\" showed"),
        "{message}"
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_timeout_names_both_patterns() -> Result<(), Box<dyn std::error::Error>> {
    let (console, mut guest) = attach()?;
    guest.write_all(b"nothing useful\r\n").await?;
    let error = console
        .wait_for_pattern(
            "login:",
            Some(Needle::from("panic")),
            Duration::from_secs(5),
        )
        .await
        .err()
        .ok_or("the wait succeeded")?;
    assert!(
        matches!(&error, Error::Timeout { expected, tail, .. }
            if expected == "\"login:\" (failing on \"panic\")" && tail.contains("nothing useful")),
        "{error:?}"
    );
    Ok(())
}

#[tokio::test]
async fn exec_sends_the_command_with_a_carriage_return_and_waits()
-> Result<(), Box<dyn std::error::Error>> {
    let (console, mut guest) = attach()?;
    let guest_side = async {
        let mut typed = [0u8; 9];
        guest.read_exact(&mut typed).await?;
        guest.write_all(b"version\r\nQEMU 10.0\r\n(qemu) ").await?;
        Ok::<_, std::io::Error>(typed)
    };
    let (found, typed) = tokio::join!(
        console.exec_and_wait_for_pattern(
            "info ver",
            "(qemu) ",
            Some(Needle::from("unknown command")),
            LONG
        ),
        guest_side
    );
    assert_eq!(&typed?, b"info ver\r");
    assert_eq!(found?.before(), b"version\r\nQEMU 10.0\r\n");
    let refused = console.exec_command("a\nb").await;
    assert!(
        matches!(refused, Err(Error::InvalidCommand { .. })),
        "{refused:?}"
    );
    Ok(())
}

#[tokio::test]
async fn interrupting_stops_a_boot_loader_countdown() -> Result<(), Box<dyn std::error::Error>> {
    let (console, mut guest) = attach()?;
    // A boot loader that counts down and listens only after its banner;
    // every key it gets before listening is lost, as on real firmware.
    let loader = async {
        guest
            .write_all(b"Hit any key to stop autoboot:  3 ")
            .await?;
        let mut key = [0u8; 1];
        // Swallow the interrupts sent before it listens.
        guest.read_exact(&mut key).await?;
        guest.write_all(b"\x08\x08 2 ").await?;
        guest.read_exact(&mut key).await?;
        guest.write_all(b"\x08\x08 0 \r\n=> ").await?;
        Ok::<_, std::io::Error>(key)
    };
    let (found, key) = tokio::join!(
        console.interrupt_until_pattern(
            "\r",
            "=> ",
            Some(Needle::from("Starting kernel")),
            DEFAULT_INTERRUPT_EVERY,
            LONG
        ),
        loader
    );
    assert_eq!(&key?, b"\r");
    let found = found?;
    assert!(found.before().ends_with(b" 0 \r\n"), "{:?}", found.before());
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn interrupting_a_guest_that_boots_anyway_fails_on_the_failure_pattern()
-> Result<(), Box<dyn std::error::Error>> {
    let (console, mut guest) = attach()?;
    guest.write_all(b"Starting kernel ...\r\n").await?;
    let error = console
        .interrupt_until_pattern(
            "\r",
            "=> ",
            Some(Needle::from("Starting kernel")),
            DEFAULT_INTERRUPT_EVERY,
            LONG,
        )
        .await
        .err()
        .ok_or("the wait succeeded")?;
    assert!(matches!(error, Error::FailurePattern { .. }), "{error:?}");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn interrupting_in_vain_times_out_saying_what_was_sent()
-> Result<(), Box<dyn std::error::Error>> {
    let (console, _guest) = attach()?;
    let error = console
        .interrupt_until_pattern(
            "\r",
            "=> ",
            None,
            Duration::from_secs(1),
            Duration::from_secs(5),
        )
        .await
        .err()
        .ok_or("the wait succeeded")?;
    assert!(
        matches!(&error, Error::Timeout { expected, waited, .. }
            if expected.contains("sending \\r every 1s") && *waited >= Duration::from_secs(5)),
        "{error:?}"
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn errors_name_the_console_once() -> Result<(), Box<dyn std::error::Error>> {
    let (ours, _guest) = tokio::io::duplex(64);
    let unnamed = Console::attach(ours, ConsoleConfig::default())?;
    let error = unnamed
        .expect("x", Duration::from_secs(1))
        .await
        .err()
        .ok_or("matched")?;
    assert!(
        error.to_string().starts_with("console: timed out"),
        "{error}"
    );
    let (console, _guest) = attach()?;
    let error = console
        .expect("x", Duration::from_secs(1))
        .await
        .err()
        .ok_or("matched")?;
    assert!(
        error.to_string().starts_with("console ttyS0: timed out"),
        "{error}"
    );
    Ok(())
}

/// `Duration::MAX` means "forever" (Python's `timeout=None`), never a panic.
#[tokio::test]
async fn forever_is_a_timeout_like_any_other() -> Result<(), Box<dyn std::error::Error>> {
    let (console, mut guest) = attach()?;
    guest.write_all(b"login: ").await?;
    console.expect("login:", Duration::MAX).await?;
    guest.write_all(b"=> ").await?;
    console
        .interrupt_until_pattern("\r", "=> ", None, DEFAULT_INTERRUPT_EVERY, Duration::MAX)
        .await?;
    guest.write_all(b"# ").await?;
    console
        .exec_and_wait_for_pattern("true", "# ", Some(Needle::from("panic")), Duration::MAX)
        .await?;
    drop(guest);
    console.expect_eof(Duration::MAX).await?;
    Ok(())
}
