//! Expect semantics: split needles, any-of, timeouts, EOF.

use std::time::Duration;

use qemu_console::{Console, ConsoleConfig, Error, Needle};
use tokio::io::AsyncWriteExt;

use crate::LONG;

/// One byte per read: every multi-byte needle arrives split.
fn byte_by_byte() -> ConsoleConfig {
    ConsoleConfig {
        read_chunk: 1,
        ..ConsoleConfig::default()
    }
}

#[tokio::test]
async fn needles_split_across_reads_match() -> Result<(), Box<dyn std::error::Error>> {
    let (ours, mut guest) = tokio::io::duplex(64);
    let console = Console::attach(ours, byte_by_byte())?;
    let (found, written) = tokio::join!(console.expect("login: ", LONG), async {
        guest.write_all(b"debian lo").await?;
        guest.write_all(b"gin: status=1").await?;
        guest.write_all(b"27 done\n").await
    });
    written?;
    let found = found?;
    assert_eq!(
        (found.before(), found.matched()),
        (&b"debian "[..], &b"login: "[..])
    );

    let status = Needle::regex(r"status=(\d+) (\w+)\n")?;
    let found = console.expect(&status, LONG).await?;
    assert_eq!(found.before(), b"");
    assert_eq!(found.group(1), Some(&b"127"[..]));
    assert_eq!(found.group(2), Some(&b"done"[..]));
    assert_eq!(found.group(3), None);
    Ok(())
}

#[tokio::test]
async fn a_match_consumes_so_the_next_expect_starts_after_it()
-> Result<(), Box<dyn std::error::Error>> {
    let (ours, mut guest) = tokio::io::duplex(64);
    let console = Console::attach(ours, ConsoleConfig::default())?;
    guest.write_all(b"# one\r\n# two\r\n").await?;
    assert_eq!(console.expect("# ", LONG).await?.before(), b"");
    assert_eq!(console.expect("# ", LONG).await?.before(), b"one\r\n");
    let (before, matched) = console.expect("\n", LONG).await?.into_parts();
    assert_eq!(
        (before.as_slice(), matched.as_slice()),
        (&b"two\r"[..], &b"\n"[..])
    );
    // The transcript keeps consumed bytes.
    assert_eq!(console.transcript(), b"# one\r\n# two\r\n");
    Ok(())
}

#[tokio::test]
async fn any_of_the_earliest_match_wins_and_says_which() -> Result<(), Box<dyn std::error::Error>> {
    let (ours, mut guest) = tokio::io::duplex(64);
    let console = Console::attach(ours, ConsoleConfig::default())?;
    guest.write_all(b"aaa bbb ccc").await?;
    let needle = Needle::any_of([Needle::from("ccc"), Needle::regex("b+")?, Needle::eof()]);
    let first = console.expect(&needle, LONG).await?;
    assert_eq!(
        (first.which(), first.before(), first.matched()),
        (1, &b"aaa "[..], &b"bbb"[..])
    );
    let second = console.expect(&needle, LONG).await?;
    assert_eq!(
        (second.which(), second.before(), second.matched()),
        (0, &b" "[..], &b"ccc"[..])
    );
    guest.write_all(b" tail").await?;
    drop(guest);
    let third = console.expect(&needle, LONG).await?;
    assert_eq!(
        (third.which(), third.before(), third.matched()),
        (2, &b" tail"[..], &b""[..])
    );
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_timeout_says_what_how_long_and_what_was_seen() -> Result<(), Box<dyn std::error::Error>>
{
    let (ours, mut guest) = tokio::io::duplex(64);
    let console = Console::attach(ours, ConsoleConfig::default())?;
    guest.write_all(b"Welcome\r\n# \x1b[6n").await?;
    let error = console
        .expect("login:", Duration::from_secs(30))
        .await
        .err()
        .ok_or("expect succeeded")?;
    let Error::Timeout {
        waited,
        ref tail,
        ref expected,
        ..
    } = error
    else {
        return Err(format!("not a timeout: {error}").into());
    };
    assert_eq!(waited, Duration::from_secs(30));
    assert_eq!(expected, "\"login:\"");
    assert_eq!(tail, r"Welcome\r\n# \x1b[6n");
    let message = error.to_string();
    assert!(
        message.contains(r#"timed out after 30s waiting for "login:""#),
        "{message}"
    );
    assert!(message.contains(r"Welcome\r\n# \x1b[6n"), "{message}");
    // Nothing was consumed: the bytes are still there.
    assert_eq!(console.expect("# ", LONG).await?.before(), b"Welcome\r\n");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn eof_fails_pending_and_later_expects_at_once() -> Result<(), Box<dyn std::error::Error>> {
    let (ours, mut guest) = tokio::io::duplex(64);
    let console = Console::attach(ours, ConsoleConfig::default())?;
    let (pending, ()) = tokio::join!(console.expect("never", Duration::from_secs(3600)), async {
        let _ = guest.write_all(b"reboot: Power down\r\n").await;
        drop(guest);
    });
    let error = pending.err().ok_or("expect succeeded")?;
    let Error::Eof {
        waited, ref tail, ..
    } = error
    else {
        return Err(format!("not EOF: {error}").into());
    };
    // Paused time only moves when every task waits on a timer: EOF woke the expect first.
    assert!(waited < Duration::from_secs(3600), "{waited:?}");
    assert_eq!(tail, r"reboot: Power down\r\n");
    assert!(
        error.to_string().contains(r#"end of file after"#),
        "{error}"
    );
    assert!(console.is_eof());

    let later = console.expect("never", Duration::from_secs(3600)).await;
    match later {
        Err(Error::Eof { waited, .. }) => assert_eq!(waited, Duration::ZERO),
        other => return Err(format!("expected EOF, got {other:?}").into()),
    }
    // What was never consumed is handed over at EOF.
    assert_eq!(console.expect_eof(LONG).await?, b"reboot: Power down\r\n");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn expecting_eof_before_the_end_times_out() -> Result<(), Box<dyn std::error::Error>> {
    let (ours, _guest) = tokio::io::duplex(64);
    let console = Console::attach(ours, ConsoleConfig::default())?;
    let error = console
        .expect_eof(Duration::from_secs(5))
        .await
        .err()
        .ok_or("EOF without end")?;
    assert!(matches!(error, Error::Timeout { .. }), "{error}");
    assert!(
        error.to_string().contains("waiting for end of file"),
        "{error}"
    );
    Ok(())
}

#[tokio::test]
async fn a_window_smaller_than_the_output_reports_skipped_bytes()
-> Result<(), Box<dyn std::error::Error>> {
    let (ours, mut guest) = tokio::io::duplex(1 << 16);
    let config = ConsoleConfig {
        buffer_limit: 16,
        ..ConsoleConfig::default()
    };
    let console = Console::attach(ours, config)?;
    guest.write_all(b"0123456789abcdefghij END").await?;
    let found = console.expect("END", LONG).await?;
    // The window holds the last 16 of 24 bytes.
    assert_eq!(found.skipped(), 8);
    assert_eq!(found.before(), b"89abcdefghij ");
    Ok(())
}
