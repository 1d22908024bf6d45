//! The qtest client against scripted peers: what a real QEMU cannot show on
//! these builds (the clock commands of the qtest accelerator) and faults it
//! will not produce on demand. The real QEMU is in `tests/tests/integ/qtest.rs`.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio::sync::mpsc;

use super::*;
use crate::Error;

const WAIT: Duration = Duration::from_secs(10);

/// What a scripted peer does with one request line.
enum Answer {
    /// Write these bytes.
    Send(String),
    /// Write nothing now.
    Hold,
    /// Close the connection.
    Close,
}

/// A qtest peer that answers each request line with `script`; every line
/// it receives is also reported on the returned channel.
fn peer(
    mut script: impl FnMut(&str) -> Answer + Send + 'static,
) -> (
    QtestClient,
    mpsc::UnboundedReceiver<String>,
    mpsc::UnboundedSender<String>,
) {
    let (ours, theirs) = tokio::io::duplex(1 << 16);
    let (seen_tx, seen) = mpsc::unbounded_channel();
    let (inject, mut injected) = mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        let (read, mut write) = tokio::io::split::<DuplexStream>(theirs);
        let mut lines = BufReader::new(read).lines();
        loop {
            tokio::select! {
                line = lines.next_line() => {
                    let Ok(Some(line)) = line else { return };
                    let _ = seen_tx.send(line.clone());
                    match script(&line) {
                        Answer::Send(bytes) => {
                            if write.write_all(bytes.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                        Answer::Hold => {}
                        Answer::Close => return,
                    }
                }
                Some(bytes) = injected.recv() => {
                    if write.write_all(bytes.as_bytes()).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    let client = QtestClient::new(ours, QtestConfig::default())
        .unwrap_or_else(|error| panic!("client: {error}"));
    (client, seen, inject)
}

/// A peer with the qtest accelerator: a virtual clock that only moves
/// forward, as `system/qtest.c` serves it.
fn clock_peer() -> QtestClient {
    let mut now: i64 = 0;
    let (client, _seen, _inject) = peer(move |line| {
        let words: Vec<&str> = line.split(' ').collect();
        let reply = match words.as_slice() {
            ["clock_step"] => {
                now += 1_000_000;
                format!("OK {now}\n")
            }
            ["clock_step", ns] => {
                now += ns.parse::<i64>().unwrap_or(0);
                format!("OK {now}\n")
            }
            ["clock_set", ns] => {
                let target = ns.parse::<i64>().unwrap_or(0);
                if target >= now {
                    now = target;
                    format!("OK {now}\n")
                } else {
                    format!("FAIL {now}\n")
                }
            }
            _ => format!("FAIL Unknown command '{}'\n", words[0]),
        };
        Answer::Send(reply)
    });
    client
}

#[tokio::test]
async fn clock_commands_return_the_new_virtual_time() {
    let qtest = clock_peer();
    assert_eq!(qtest.clock_step(None).await.ok(), Some(1_000_000));
    assert_eq!(qtest.clock_step(Some(500)).await.ok(), Some(1_000_500));
    assert_eq!(qtest.clock_set(2_000_000).await.ok(), Some(2_000_000));
    let backwards = qtest.clock_set(10).await;
    assert!(
        matches!(&backwards, Err(Error::QtestFailed { command, reply }) if command == "clock_set" && reply == "FAIL 2000000"),
        "{backwards:?}"
    );
}

#[tokio::test]
async fn clock_commands_without_the_qtest_accelerator_say_so() {
    // What QEMU under TCG or KVM answers (checked on 7.2 and 10.0).
    let (qtest, _seen, _inject) = peer(|line| {
        let word = line.split(' ').next().unwrap_or_default();
        Answer::Send(format!("FAIL Unknown command '{word}'\n"))
    });
    for result in [qtest.clock_step(Some(10)).await, qtest.clock_set(10).await] {
        assert!(
            matches!(&result, Err(Error::NoQtestAccelerator { .. })),
            "{result:?}"
        );
        let message = result.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("-accel qtest"), "{message}");
    }
}

#[tokio::test]
async fn irq_lines_are_read_while_no_request_waits() {
    let (qtest, _seen, inject) = peer(|_| Answer::Send("OK\n".into()));
    let mut events = qtest.irq_events();
    assert!(!qtest.irq_level(4));
    let _ = inject.send("IRQ raise 4\n".into());
    let raised = qtest.wait_irq(4, true, WAIT).await;
    assert!(matches!(raised, Ok(())), "{raised:?}");
    assert!(qtest.irq_level(4));
    let _ = inject.send("IRQ lower 4\n".into());
    let lowered = qtest.wait_irq(4, false, WAIT).await;
    assert!(matches!(lowered, Ok(())), "{lowered:?}");
    let first = tokio::time::timeout(WAIT, events.recv()).await;
    let second = tokio::time::timeout(WAIT, events.recv()).await;
    assert!(
        matches!(
            first,
            Ok(Ok(IrqEvent {
                line: 4,
                raised: true
            }))
        ),
        "{first:?}"
    );
    assert!(
        matches!(
            second,
            Ok(Ok(IrqEvent {
                line: 4,
                raised: false
            }))
        ),
        "{second:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_each_get_their_own_answer() {
    // The peer answers `readq ADDR` with ADDR, and sends IRQ lines in between.
    let (qtest, _seen, _inject) = peer(|line| match line.strip_prefix("readq ") {
        Some(addr) => Answer::Send(format!("IRQ raise 1\nOK {addr}\nIRQ lower 1\n")),
        None => Answer::Send("FAIL\n".into()),
    });
    let tasks: Vec<_> = (0..64u64)
        .map(|i| {
            let qtest = qtest.clone();
            tokio::spawn(async move { (i, qtest.readq(i * 8).await) })
        })
        .collect();
    for task in tasks {
        let (i, value) = task.await.unwrap_or_else(|e| panic!("task: {e}"));
        assert!(matches!(value, Ok(v) if v == i * 8), "readq {i}: {value:?}");
    }
}

#[tokio::test]
async fn a_timed_out_request_does_not_shift_the_answers_of_the_next() {
    let mut held = true;
    let (qtest, mut seen, inject) = peer(move |line| {
        if line == "inb 0x1" && held {
            held = false;
            Answer::Hold
        } else {
            Answer::Send(format!(
                "OK {}\n",
                if line == "inb 0x2" { "0x02" } else { "0x01" }
            ))
        }
    });
    let late = qtest
        .execute_with_timeout(
            QtestCommand::In {
                width: Width::Byte,
                port: 1,
            },
            Duration::from_millis(50),
        )
        .await;
    assert!(matches!(late, Err(Error::QtestTimeout { .. })), "{late:?}");
    // The held answer arrives now, after the timeout; it must go nowhere.
    assert_eq!(seen.recv().await.as_deref(), Some("inb 0x1"));
    let _ = inject.send("OK 0x01\n".into());
    let next = qtest.inb(2).await;
    assert!(matches!(next, Ok(2)), "{next:?}");
}

#[tokio::test]
async fn a_malformed_line_fails_waiting_and_later_requests_at_once() {
    let (qtest, _seen, _inject) = peer(|_| Answer::Send("{\"QMP\": {}}\n".into()));
    let first = qtest.endianness().await;
    assert!(
        matches!(
            &first,
            Err(Error::QtestDisconnected(QtestDisconnect::Protocol(
                ProtocolViolation::Malformed { .. }
            )))
        ),
        "{first:?}"
    );
    let later = qtest.readb(0).await;
    assert!(
        matches!(
            &later,
            Err(Error::QtestDisconnected(QtestDisconnect::Protocol(_)))
        ),
        "{later:?}"
    );
    let irq = qtest.wait_irq(1, true, WAIT).await;
    assert!(matches!(&irq, Err(Error::QtestDisconnected(_))), "{irq:?}");
}

#[tokio::test]
async fn a_peer_that_goes_away_fails_the_waiting_request() {
    let (qtest, _seen, _inject) = peer(|_| Answer::Close);
    let result = qtest.readl(0x1000).await;
    assert!(
        matches!(
            &result,
            Err(Error::QtestDisconnected(QtestDisconnect::PeerClosed))
        ),
        "{result:?}"
    );
    assert!(
        matches!(qtest.close_reason(), Some(QtestDisconnect::PeerClosed)),
        "{:?}",
        qtest.close_reason()
    );
}

#[tokio::test]
async fn refused_requests_are_never_written() {
    let (qtest, mut seen, _inject) = peer(|_| Answer::Send("OK\n".into()));
    let refused = qtest.irq_intercept_in("two words").await;
    assert!(
        matches!(&refused, Err(Error::QtestInvalidArgument { .. })),
        "{refused:?}"
    );
    // Zero-length buffers never reach QEMU (it would abort on `read`).
    assert!(matches!(qtest.read(0, 0).await.as_deref(), Ok([])));
    assert!(matches!(qtest.write(0, &[]).await, Ok(())));
    let ok = qtest.outb(0x80, 1).await;
    assert!(matches!(ok, Ok(())), "{ok:?}");
    assert_eq!(seen.recv().await.as_deref(), Some("outb 0x80 0x1"));
    let nothing = seen.try_recv();
    assert!(
        matches!(nothing, Err(mpsc::error::TryRecvError::Empty)),
        "{nothing:?}"
    );
}

#[tokio::test]
async fn raw_requests_return_the_answer_line_as_it_is() {
    let (qtest, _seen, _inject) = peer(|line| {
        Answer::Send(if line == "endianness" {
            "OK little\n".into()
        } else {
            "FAIL Unknown command 'x'\n".into()
        })
    });
    assert_eq!(
        qtest.raw("endianness").await.ok().as_deref(),
        Some("OK little")
    );
    assert_eq!(
        qtest.raw("x").await.ok().as_deref(),
        Some("FAIL Unknown command 'x'")
    );
}
