//! The qtest protocol, sans I/O: requests in, bytes out; bytes in, replies
//! (in request order) and IRQ notifications out.
//!
//! The protocol is line-based: one request a line, one reply a line in the
//! same order, and at any time, before a reply or between replies,
//! asynchronous `IRQ raise N` / `IRQ lower N` lines.

use std::collections::VecDeque;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::Error;
use crate::qtest::command::{Expect, QtestCommand};
use crate::qtest::error::{ProtocolViolation, shorten};

/// The default limit on one received line: enough for a 4 MiB `read`.
pub const DEFAULT_MAX_LINE: usize = 8 << 20;

/// The byte order of the target, from `endianness`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endianness {
    /// Little-endian (x86, most Arm).
    Little,
    /// Big-endian (s390x, some PowerPC and MIPS).
    Big,
}

/// A successful answer, typed by the request it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum QtestResponse {
    /// `OK` to a request that returns nothing.
    Done,
    /// The value of a `read[bwlq]` or `in[bwl]`.
    Value(u64),
    /// The bytes of a `read` or `b64read`.
    Bytes(Vec<u8>),
    /// The answer to `endianness`.
    Endianness(Endianness),
    /// The virtual clock, in nanoseconds, after `clock_step`/`clock_set`.
    Clock(i64),
    /// The whole answer line to a raw request (`OK …`, `FAIL …`).
    Raw(String),
}

/// An interrupt line changed level (`IRQ raise N` / `IRQ lower N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IrqEvent {
    /// The line number as QEMU reports it (on a PC with `ioapic`
    /// intercepted: the ISA IRQ, e.g. 8 for the RTC).
    pub line: u32,
    /// `true` for raise, `false` for lower.
    pub raised: bool,
}

/// What [`QtestProtocol::poll_output`] yields.
#[derive(Debug)]
#[non_exhaustive]
pub enum QtestOutput {
    /// The answer to the oldest request still waiting, with its ticket.
    Reply {
        /// The ticket [`QtestProtocol::send`] returned.
        ticket: u64,
        /// The answer, or why the request failed.
        result: Result<QtestResponse, Error>,
    },
    /// An interrupt line changed level.
    Irq(IrqEvent),
}

#[derive(Debug)]
struct Pending {
    ticket: u64,
    command: String,
    expect: Expect,
}

/// The client side of the qtest protocol, without I/O.
///
/// - [`send`](Self::send) checks a request, queues its line and returns a ticket;
/// - [`transmit`](Self::transmit) is what to write next, and
///   [`advance`](Self::advance) says how much was written (so a write cut
///   short never leaves half a line for the next request to run into);
/// - [`receive`](Self::receive) takes bytes read from the peer;
/// - [`poll_output`](Self::poll_output) yields replies (oldest request
///   first) and IRQ notifications, in the order the peer sent them.
///
/// A protocol violation (a line that is no reply and no IRQ, a reply with
/// no request, a line over the limit) is returned once by `poll_output` and
/// ends the protocol: every later call returns it again.
#[derive(Debug)]
pub struct QtestProtocol {
    outgoing: Vec<u8>,
    written: usize,
    incoming: Vec<u8>,
    /// Bytes of `incoming` already searched for a newline.
    scanned: usize,
    pending: VecDeque<Pending>,
    next_ticket: u64,
    max_line: usize,
    violation: Option<ProtocolViolation>,
}

impl Default for QtestProtocol {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_LINE)
    }
}

impl QtestProtocol {
    /// A protocol that accepts received lines of at most `max_line` bytes.
    pub fn new(max_line: usize) -> Self {
        Self {
            outgoing: Vec::new(),
            written: 0,
            incoming: Vec::new(),
            scanned: 0,
            pending: VecDeque::new(),
            next_ticket: 0,
            max_line: max_line.max(64),
            violation: None,
        }
    }

    /// Queues a request and returns the ticket its reply will carry.
    ///
    /// # Errors
    ///
    /// [`Error::QtestInvalidArgument`] and [`Error::QtestTooLarge`] before
    /// anything is queued; [`Error::QtestDisconnected`] after a violation.
    pub fn send(&mut self, command: &QtestCommand) -> Result<u64, Error> {
        if let Some(violation) = &self.violation {
            return Err(Error::QtestDisconnected(
                crate::qtest::QtestDisconnect::Protocol(violation.clone()),
            ));
        }
        let reply_len = command.reply_len();
        if reply_len > self.max_line as u64 {
            return Err(Error::QtestTooLarge {
                command: command.name(),
                reply_len,
                limit: self.max_line,
            });
        }
        command.encode(&mut self.outgoing)?;
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.pending.push_back(Pending {
            ticket,
            command: command.name(),
            expect: command.expect(),
        });
        Ok(ticket)
    }

    /// The bytes to write next (empty when everything is written).
    pub fn transmit(&self) -> &[u8] {
        &self.outgoing[self.written..]
    }

    /// Records that `n` bytes of [`transmit`](Self::transmit) were written.
    pub fn advance(&mut self, n: usize) {
        self.written = (self.written + n).min(self.outgoing.len());
        if self.written == self.outgoing.len() {
            self.outgoing.clear();
            self.written = 0;
        }
    }

    /// Takes bytes read from the peer.
    pub fn receive(&mut self, bytes: &[u8]) {
        self.incoming.extend_from_slice(bytes);
    }

    /// How many requests wait for their reply.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The next reply or IRQ notification, if a whole line has arrived.
    ///
    /// # Errors
    ///
    /// A [`ProtocolViolation`], after which the protocol is finished.
    pub fn poll_output(&mut self) -> Result<Option<QtestOutput>, ProtocolViolation> {
        if let Some(violation) = &self.violation {
            return Err(violation.clone());
        }
        let Some(line) = self.next_line() else {
            if self.incoming.len() > self.max_line {
                return Err(self.violate(ProtocolViolation::LineTooLong {
                    limit: self.max_line,
                }));
            }
            return Ok(None);
        };
        let line = String::from_utf8_lossy(&line).into_owned();
        let line = line.strip_suffix('\r').unwrap_or(&line);
        if let Some(irq) = line.strip_prefix("IRQ ") {
            return match parse_irq(irq) {
                Some(event) => Ok(Some(QtestOutput::Irq(event))),
                None => Err(self.violate(ProtocolViolation::Malformed {
                    line: shorten(line),
                })),
            };
        }
        let word = line.split(' ').next().unwrap_or_default();
        if !matches!(word, "OK" | "FAIL" | "ERR") {
            return Err(self.violate(ProtocolViolation::Malformed {
                line: shorten(line),
            }));
        }
        let Some(pending) = self.pending.pop_front() else {
            return Err(self.violate(ProtocolViolation::Unexpected {
                line: shorten(line),
            }));
        };
        Ok(Some(QtestOutput::Reply {
            ticket: pending.ticket,
            result: parse_reply(&pending, line),
        }))
    }

    fn violate(&mut self, violation: ProtocolViolation) -> ProtocolViolation {
        self.violation = Some(violation.clone());
        violation
    }

    /// Cuts the next complete line (without `\n`) off the input.
    fn next_line(&mut self) -> Option<Vec<u8>> {
        let found = memchr_newline(&self.incoming[self.scanned..]);
        match found {
            Some(at) => {
                let end = self.scanned + at;
                let mut line: Vec<u8> = self.incoming.drain(..=end).collect();
                line.pop();
                self.scanned = 0;
                Some(line)
            }
            None => {
                self.scanned = self.incoming.len();
                None
            }
        }
    }
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

fn parse_irq(rest: &str) -> Option<IrqEvent> {
    let (level, number) = rest.split_once(' ')?;
    let raised = match level {
        "raise" => true,
        "lower" => false,
        _ => return None,
    };
    let line = number.trim().parse().ok()?;
    Some(IrqEvent { line, raised })
}

fn parse_reply(pending: &Pending, line: &str) -> Result<QtestResponse, Error> {
    let command = &pending.command;
    let (word, value) = match line.split_once(' ') {
        Some((word, value)) => (word, Some(value)),
        None => (line, None),
    };
    if pending.expect == Expect::Raw {
        return Ok(QtestResponse::Raw(line.to_owned()));
    }
    if word != "OK" {
        if word == "FAIL"
            && matches!(command.as_str(), "clock_step" | "clock_set")
            && value.is_some_and(|v| v.starts_with("Unknown command"))
        {
            return Err(Error::NoQtestAccelerator {
                command: command.clone(),
                reply: line.to_owned(),
            });
        }
        return Err(Error::QtestFailed {
            command: command.clone(),
            reply: shorten(line),
        });
    }
    let bad = |reason: &str| Error::QtestBadReply {
        command: command.clone(),
        reply: shorten(line),
        reason: reason.to_owned(),
    };
    match pending.expect {
        Expect::Unit => Ok(QtestResponse::Done),
        Expect::Value => {
            let hex = value
                .and_then(|v| v.strip_prefix("0x"))
                .ok_or_else(|| bad("expected a hex value"))?;
            u64::from_str_radix(hex, 16)
                .map(QtestResponse::Value)
                .map_err(|_| bad("expected a hex value"))
        }
        Expect::Hex { len } => {
            let hex = value
                .and_then(|v| v.strip_prefix("0x"))
                .ok_or_else(|| bad("expected 0x and hex digits"))?;
            let bytes = decode_hex(hex).ok_or_else(|| bad("expected pairs of hex digits"))?;
            if bytes.len() as u64 != len {
                return Err(bad(&format!("expected {len} bytes, got {}", bytes.len())));
            }
            Ok(QtestResponse::Bytes(bytes))
        }
        Expect::Base64 { len } => {
            let bytes = BASE64
                .decode(value.unwrap_or_default())
                .map_err(|_| bad("expected base64"))?;
            if bytes.len() as u64 != len {
                return Err(bad(&format!("expected {len} bytes, got {}", bytes.len())));
            }
            Ok(QtestResponse::Bytes(bytes))
        }
        Expect::Endianness => match value {
            Some("little") => Ok(QtestResponse::Endianness(Endianness::Little)),
            Some("big") => Ok(QtestResponse::Endianness(Endianness::Big)),
            _ => Err(bad("expected `little` or `big`")),
        },
        Expect::Clock => value
            .and_then(|v| v.parse().ok())
            .map(QtestResponse::Clock)
            .ok_or_else(|| bad("expected a number of nanoseconds")),
        Expect::Raw => Ok(QtestResponse::Raw(line.to_owned())),
    }
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() % 2 != 0 {
        return None;
    }
    hex.as_bytes()
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(text, 16).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qtest::command::Width;

    fn readl() -> QtestCommand {
        QtestCommand::Read {
            width: Width::Long,
            addr: 0x1000,
        }
    }

    /// Outputs with errors as text, so they compare.
    #[derive(Debug, PartialEq)]
    enum Seen {
        Reply(u64, Result<QtestResponse, String>),
        Irq(IrqEvent),
    }

    fn seen(protocol: &mut QtestProtocol) -> Vec<Seen> {
        outputs(protocol)
            .into_iter()
            .map(|output| match output {
                QtestOutput::Reply { ticket, result } => {
                    Seen::Reply(ticket, result.map_err(|e| e.to_string()))
                }
                QtestOutput::Irq(event) => Seen::Irq(event),
            })
            .collect()
    }

    fn outputs(protocol: &mut QtestProtocol) -> Vec<QtestOutput> {
        let mut out = Vec::new();
        // Bounded: a bug fails the test instead of looping.
        for _ in 0..100 {
            match protocol.poll_output() {
                Ok(Some(output)) => out.push(output),
                Ok(None) => return out,
                Err(violation) => panic!("violation {violation:?} after {out:?}"),
            }
        }
        panic!("poll_output never went idle: {out:?}")
    }

    #[test]
    fn replies_stay_in_request_order_and_irq_lines_come_out_as_events() {
        let mut protocol = QtestProtocol::default();
        let first = protocol.send(&readl()).unwrap_or_else(|e| panic!("{e}"));
        let second = protocol
            .send(&QtestCommand::Endianness)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(protocol.transmit(), b"readl 0x1000\nendianness\n");
        protocol.advance(5);
        assert_eq!(protocol.transmit(), b" 0x1000\nendianness\n");
        protocol.advance(100);
        assert!(protocol.transmit().is_empty());

        // Split anywhere, with IRQ lines before and between replies.
        for chunk in [
            &b"IRQ raise 8\nOK 0x000"[..],
            b"0deadbeef\nIRQ lo",
            b"wer 8\r\nOK little\n",
        ] {
            protocol.receive(chunk);
        }
        assert_eq!(
            seen(&mut protocol),
            [
                Seen::Irq(IrqEvent {
                    line: 8,
                    raised: true
                }),
                Seen::Reply(first, Ok(QtestResponse::Value(0xdead_beef))),
                Seen::Irq(IrqEvent {
                    line: 8,
                    raised: false
                }),
                Seen::Reply(second, Ok(QtestResponse::Endianness(Endianness::Little))),
            ]
        );
        assert_eq!(protocol.pending(), 0);
    }

    #[test]
    fn buffers_come_back_from_hex_and_base64() {
        let mut protocol = QtestProtocol::default();
        let hex = protocol.send(&QtestCommand::ReadBuf { addr: 0, len: 3 });
        let b64 = protocol.send(&QtestCommand::B64Read { addr: 0, len: 4 });
        assert!(matches!((hex, b64), (Ok(0), Ok(1))));
        protocol.receive(b"OK 0x00ab07\nOK cWVtdQ==\n");
        assert_eq!(
            seen(&mut protocol),
            [
                Seen::Reply(0, Ok(QtestResponse::Bytes(vec![0, 0xab, 7]))),
                Seen::Reply(1, Ok(QtestResponse::Bytes(b"qemu".to_vec())))
            ]
        );
    }

    #[test]
    fn fail_answers_are_errors_and_clock_commands_name_the_missing_accelerator() {
        let mut protocol = QtestProtocol::default();
        for command in [
            QtestCommand::ClockStep { ns: None },
            QtestCommand::IrqInterceptIn {
                path: "nosuch".into(),
            },
            QtestCommand::WriteBuf {
                addr: 0,
                data: vec![1],
            },
        ] {
            protocol.send(&command).unwrap_or_else(|e| panic!("{e}"));
        }
        protocol.receive(
            b"FAIL Unknown command 'clock_step'\nFAIL Unknown device\nERR invalid argument size\n",
        );
        let errors: Vec<_> = outputs(&mut protocol)
            .into_iter()
            .map(|output| match output {
                QtestOutput::Reply {
                    result: Err(error), ..
                } => error,
                other => panic!("expected an error reply, got {other:?}"),
            })
            .collect();
        assert!(
            matches!(&errors[0], Error::NoQtestAccelerator { command, .. } if command == "clock_step"),
            "{:?}",
            errors[0]
        );
        assert!(
            matches!(&errors[1], Error::QtestFailed { reply, .. } if reply == "FAIL Unknown device"),
            "{:?}",
            errors[1]
        );
        assert!(
            matches!(&errors[2], Error::QtestFailed { command, .. } if command == "write"),
            "{:?}",
            errors[2]
        );
        assert!(
            errors[0].to_string().contains("-accel qtest"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn a_garbled_value_fails_only_its_request() {
        let mut protocol = QtestProtocol::default();
        for _ in 0..2 {
            protocol.send(&readl()).unwrap_or_else(|e| panic!("{e}"));
        }
        protocol.receive(b"OK zz\nOK 0x1\n");
        let results = outputs(&mut protocol);
        assert!(
            matches!(
                &results[0],
                QtestOutput::Reply {
                    result: Err(Error::QtestBadReply { .. }),
                    ..
                }
            ),
            "{results:?}"
        );
        assert!(
            matches!(
                &results[1],
                QtestOutput::Reply {
                    result: Ok(QtestResponse::Value(1)),
                    ..
                }
            ),
            "{results:?}"
        );
    }

    #[test]
    fn violations_end_the_protocol() {
        type Check = fn(&ProtocolViolation) -> bool;
        let cases: [(&[u8], Check); 4] = [
            (b"{\"QMP\": {}}\n", |v| {
                matches!(v, ProtocolViolation::Malformed { .. })
            }),
            (b"IRQ up 3\n", |v| {
                matches!(v, ProtocolViolation::Malformed { .. })
            }),
            (b"OK\nOK\n", |v| {
                matches!(v, ProtocolViolation::Unexpected { .. })
            }),
            (&[b'x'; 100], |v| {
                matches!(v, ProtocolViolation::LineTooLong { limit: 64 })
            }),
        ];
        for (input, expected) in cases {
            let mut protocol = QtestProtocol::new(10);
            protocol
                .send(&QtestCommand::Endianness)
                .unwrap_or_else(|e| panic!("{e}"));
            protocol.receive(input);
            let first = loop {
                match protocol.poll_output() {
                    Ok(Some(_)) => continue,
                    Ok(None) => panic!("no violation for {input:?}"),
                    Err(violation) => break violation,
                }
            };
            assert!(expected(&first), "{input:?} gave {first:?}");
            let again = protocol.poll_output();
            assert!(matches!(&again, Err(v) if *v == first), "{again:?}");
            let after = protocol.send(&QtestCommand::Endianness);
            assert!(
                matches!(after, Err(Error::QtestDisconnected(_))),
                "{after:?}"
            );
        }
    }

    #[test]
    fn a_read_whose_reply_exceeds_the_limit_is_refused() {
        let mut protocol = QtestProtocol::new(1000);
        let result = protocol.send(&QtestCommand::ReadBuf { addr: 0, len: 600 });
        assert!(
            matches!(
                result,
                Err(Error::QtestTooLarge {
                    reply_len: 1205,
                    limit: 1000,
                    ..
                })
            ),
            "{result:?}"
        );
        assert!(protocol.transmit().is_empty());
    }
}
