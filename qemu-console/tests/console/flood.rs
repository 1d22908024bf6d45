//! A 64 MiB flood with nobody expecting: the drain keeps up, memory stays
//! bounded and the log file receives every byte.

use qemu_console::{Console, ConsoleConfig};
use tokio::io::AsyncWriteExt;

use crate::LONG;

const FLOOD: usize = 64 << 20;
const CHUNK: usize = 64 << 10;

/// Chunk `i` of the flood: its bytes depend on `i`, so a lost, repeated or
/// reordered chunk shows.
fn chunk(i: usize) -> Vec<u8> {
    (0..CHUNK).map(|j| ((i * 7 + j * 13) % 251) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_nobody_expects_is_drained_logged_and_bounded()
-> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let log = dir.path().join("flood.log");
    let config = ConsoleConfig {
        log_file: Some(log.clone()),
        buffer_limit: 256 << 10,
        transcript_limit: Some(1 << 20),
        ..ConsoleConfig::default()
    };
    // A small pipe: the writer can only finish if the drain keeps reading.
    let (ours, mut guest) = tokio::io::duplex(CHUNK);
    let console = Console::attach(ours, config)?;

    let writer = tokio::spawn(async move {
        for i in 0..FLOOD / CHUNK {
            guest.write_all(&chunk(i)).await?;
        }
        std::io::Result::Ok(())
        // `guest` drops here: EOF.
    });
    // Nobody expects while the guest writes.
    tokio::time::timeout(LONG, writer).await???;

    let rest = console.expect_eof(LONG).await?;
    assert_eq!(console.received(), FLOOD as u64);
    assert!(
        console.buffered_len() <= (1 << 20) * 3 / 2 + CHUNK,
        "{}",
        console.buffered_len()
    );
    // The window kept only the last 256 KiB of what nobody consumed.
    assert_eq!(rest.len(), 256 << 10);
    let last_four: Vec<u8> = (FLOOD / CHUNK - 4..FLOOD / CHUNK).flat_map(chunk).collect();
    assert!(rest == last_four, "the window is not the last 256 KiB sent");

    let transcript = console.transcript();
    assert_eq!(transcript.len(), 1 << 20);
    let expected_tail: Vec<u8> = (FLOOD / CHUNK - 16..FLOOD / CHUNK)
        .flat_map(chunk)
        .collect();
    assert!(
        transcript == expected_tail,
        "the transcript is not the last MiB sent"
    );

    let logged = tokio::fs::read(&log).await?;
    assert_eq!(logged.len(), FLOOD);
    for (i, got) in logged.chunks(CHUNK).enumerate() {
        assert!(got == chunk(i).as_slice(), "log chunk {i} differs");
    }
    assert_eq!(console.log_error(), None);
    Ok(())
}
