//! The qtest requests a client can send, and how each is written on the wire.
//!
//! Every argument is checked before a byte is written: QEMU's qtest server
//! `g_assert`s on a missing or unparsable argument and aborts, so a bad
//! request must never reach it.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::Error;

/// Width of a memory or port access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Width {
    /// 8 bits (`readb`, `outb`, …).
    Byte,
    /// 16 bits (`readw`, `outw`, …).
    Word,
    /// 32 bits (`readl`, `outl`, …).
    Long,
    /// 64 bits (`readq`, `writeq`; memory only).
    Quad,
}

impl Width {
    fn suffix(self) -> char {
        match self {
            Width::Byte => 'b',
            Width::Word => 'w',
            Width::Long => 'l',
            Width::Quad => 'q',
        }
    }

    /// The largest value of this width.
    pub fn max(self) -> u64 {
        match self {
            Width::Byte => u64::from(u8::MAX),
            Width::Word => u64::from(u16::MAX),
            Width::Long => u64::from(u32::MAX),
            Width::Quad => u64::MAX,
        }
    }
}

/// One qtest request (see QEMU's `system/qtest.c` for the protocol).
///
/// Build them through [`QtestClient`](crate::qtest::QtestClient)'s methods,
/// or directly for [`QtestProtocol::send`](crate::qtest::QtestProtocol::send).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum QtestCommand {
    /// `readb|w|l|q ADDR`: read guest memory.
    Read {
        /// Access width.
        width: Width,
        /// Guest physical address.
        addr: u64,
    },
    /// `writeb|w|l|q ADDR VALUE`: write guest memory.
    Write {
        /// Access width.
        width: Width,
        /// Guest physical address.
        addr: u64,
        /// The value; must fit the width.
        value: u64,
    },
    /// `read ADDR SIZE`: read a buffer (hex on the wire).
    ReadBuf {
        /// Guest physical address.
        addr: u64,
        /// How many bytes; must not be 0.
        len: u64,
    },
    /// `write ADDR SIZE 0xDATA`: write a buffer (hex on the wire).
    WriteBuf {
        /// Guest physical address.
        addr: u64,
        /// The bytes; must not be empty.
        data: Vec<u8>,
    },
    /// `b64read ADDR SIZE`: read a buffer (base64 on the wire).
    B64Read {
        /// Guest physical address.
        addr: u64,
        /// How many bytes.
        len: u64,
    },
    /// `b64write ADDR SIZE DATA`: write a buffer (base64 on the wire).
    B64Write {
        /// Guest physical address.
        addr: u64,
        /// The bytes; must not be empty.
        data: Vec<u8>,
    },
    /// `memset ADDR SIZE VALUE`: fill guest memory with one byte.
    Memset {
        /// Guest physical address.
        addr: u64,
        /// How many bytes (0 does nothing).
        len: u64,
        /// The byte.
        value: u8,
    },
    /// `inb|w|l PORT`: read an I/O port.
    In {
        /// Access width (not [`Width::Quad`]).
        width: Width,
        /// The port.
        port: u16,
    },
    /// `outb|w|l PORT VALUE`: write an I/O port.
    Out {
        /// Access width (not [`Width::Quad`]).
        width: Width,
        /// The port.
        port: u16,
        /// The value; must fit the width.
        value: u32,
    },
    /// `irq_intercept_in QOM-PATH`: report the device's GPIO-in lines as
    /// `IRQ raise|lower N` (on a PC: `ioapic`).
    IrqInterceptIn {
        /// QOM path of the device.
        path: String,
    },
    /// `irq_intercept_out QOM-PATH [NAME]`: report the device's GPIO-out lines.
    IrqInterceptOut {
        /// QOM path of the device.
        path: String,
        /// A named GPIO list, or the unnamed one.
        name: Option<String>,
    },
    /// `set_irq_in QOM-PATH NAME NUM LEVEL`: force an input line's level.
    SetIrqIn {
        /// QOM path of the device.
        path: String,
        /// The GPIO list's name (`unnamed-gpio-in` for the unnamed one).
        name: String,
        /// The line number.
        line: u32,
        /// The level (0 is low).
        level: i32,
    },
    /// `endianness`: the target's byte order.
    Endianness,
    /// `clock_step [NS]`: advance the virtual clock (qtest accelerator only).
    ClockStep {
        /// Nanoseconds, or `None` for "to the next timer deadline".
        ns: Option<i64>,
    },
    /// `clock_set NS`: advance the virtual clock to `NS` (qtest accelerator only).
    ClockSet {
        /// The target time in nanoseconds.
        ns: i64,
    },
    /// Any request line, sent as it is; its answer is returned as it is
    /// (`QEMUQtestMachine.qtest(cmd)`). QEMU aborts on a known command with
    /// missing or unparsable arguments: prefer the typed requests.
    Raw {
        /// The line, without the newline.
        line: String,
    },
}

/// What kind of answer a request gets, so the reply line can be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    Unit,
    Value,
    Hex { len: u64 },
    Base64 { len: u64 },
    Endianness,
    Clock,
    Raw,
}

impl QtestCommand {
    /// The command word (`readl`, `clock_step`, …), for messages.
    pub fn name(&self) -> String {
        match self {
            QtestCommand::Read { width, .. } => format!("read{}", width.suffix()),
            QtestCommand::Write { width, .. } => format!("write{}", width.suffix()),
            QtestCommand::ReadBuf { .. } => "read".into(),
            QtestCommand::WriteBuf { .. } => "write".into(),
            QtestCommand::B64Read { .. } => "b64read".into(),
            QtestCommand::B64Write { .. } => "b64write".into(),
            QtestCommand::Memset { .. } => "memset".into(),
            QtestCommand::In { width, .. } => format!("in{}", width.suffix()),
            QtestCommand::Out { width, .. } => format!("out{}", width.suffix()),
            QtestCommand::IrqInterceptIn { .. } => "irq_intercept_in".into(),
            QtestCommand::IrqInterceptOut { .. } => "irq_intercept_out".into(),
            QtestCommand::SetIrqIn { .. } => "set_irq_in".into(),
            QtestCommand::Endianness => "endianness".into(),
            QtestCommand::ClockStep { .. } => "clock_step".into(),
            QtestCommand::ClockSet { .. } => "clock_set".into(),
            QtestCommand::Raw { line } => line.split(' ').next().unwrap_or_default().to_owned(),
        }
    }

    pub(crate) fn expect(&self) -> Expect {
        match self {
            QtestCommand::Read { .. } | QtestCommand::In { .. } => Expect::Value,
            QtestCommand::ReadBuf { len, .. } => Expect::Hex { len: *len },
            QtestCommand::B64Read { len, .. } => Expect::Base64 { len: *len },
            QtestCommand::Endianness => Expect::Endianness,
            QtestCommand::ClockStep { .. } | QtestCommand::ClockSet { .. } => Expect::Clock,
            QtestCommand::Raw { .. } => Expect::Raw,
            QtestCommand::Write { .. }
            | QtestCommand::WriteBuf { .. }
            | QtestCommand::B64Write { .. }
            | QtestCommand::Memset { .. }
            | QtestCommand::Out { .. }
            | QtestCommand::IrqInterceptIn { .. }
            | QtestCommand::IrqInterceptOut { .. }
            | QtestCommand::SetIrqIn { .. } => Expect::Unit,
        }
    }

    /// The longest reply line this request can get (without the newline),
    /// when it is larger than the usual few dozen bytes.
    pub(crate) fn reply_len(&self) -> u64 {
        match self {
            // "OK 0x" + two hex digits a byte.
            QtestCommand::ReadBuf { len, .. } => len.saturating_mul(2).saturating_add(5),
            // "OK " + four characters per three bytes.
            QtestCommand::B64Read { len, .. } => {
                len.div_ceil(3).saturating_mul(4).saturating_add(3)
            }
            _ => 0,
        }
    }

    /// Checks the arguments and writes the request line (with its newline).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        self.check()?;
        let line = match self {
            QtestCommand::Read { addr, .. } => format!("{} {addr:#x}", self.name()),
            QtestCommand::Write { addr, value, .. } => {
                format!("{} {addr:#x} {value:#x}", self.name())
            }
            QtestCommand::ReadBuf { addr, len } => format!("read {addr:#x} {len:#x}"),
            QtestCommand::WriteBuf { addr, data } => {
                let mut line = format!("write {addr:#x} {:#x} 0x", data.len());
                for byte in data {
                    line.push_str(&format!("{byte:02x}"));
                }
                line
            }
            QtestCommand::B64Read { addr, len } => format!("b64read {addr:#x} {len:#x}"),
            QtestCommand::B64Write { addr, data } => format!(
                "b64write {addr:#x} {:#x} {}",
                data.len(),
                BASE64.encode(data)
            ),
            QtestCommand::Memset { addr, len, value } => {
                format!("memset {addr:#x} {len:#x} {value:#x}")
            }
            QtestCommand::In { port, .. } => format!("{} {port:#x}", self.name()),
            QtestCommand::Out { port, value, .. } => {
                format!("{} {port:#x} {value:#x}", self.name())
            }
            QtestCommand::IrqInterceptIn { path } => format!("irq_intercept_in {path}"),
            QtestCommand::IrqInterceptOut { path, name: None } => {
                format!("irq_intercept_out {path}")
            }
            QtestCommand::IrqInterceptOut {
                path,
                name: Some(name),
            } => format!("irq_intercept_out {path} {name}"),
            QtestCommand::SetIrqIn {
                path,
                name,
                line,
                level,
            } => format!("set_irq_in {path} {name} {line} {level}"),
            QtestCommand::Endianness => "endianness".into(),
            QtestCommand::ClockStep { ns: None } => "clock_step".into(),
            QtestCommand::ClockStep { ns: Some(ns) } => format!("clock_step {ns}"),
            QtestCommand::ClockSet { ns } => format!("clock_set {ns}"),
            QtestCommand::Raw { line } => line.clone(),
        };
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
        Ok(())
    }

    /// Refuses what would make QEMU abort or misread the line.
    fn check(&self) -> Result<(), Error> {
        let invalid = |reason: String| Error::QtestInvalidArgument {
            command: self.name(),
            reason,
        };
        match self {
            QtestCommand::Write { width, value, .. } if *value > width.max() => Err(invalid(
                format!("{value:#x} does not fit in {} bits", width_bits(*width)),
            )),
            QtestCommand::Out { width, value, .. } if u64::from(*value) > width.max() => {
                Err(invalid(format!(
                    "{value:#x} does not fit in {} bits",
                    width_bits(*width)
                )))
            }
            QtestCommand::In {
                width: Width::Quad, ..
            }
            | QtestCommand::Out {
                width: Width::Quad, ..
            } => Err(invalid("port I/O is 8, 16 or 32 bits wide".into())),
            QtestCommand::ReadBuf { len: 0, .. } => {
                Err(invalid("a read of 0 bytes makes QEMU abort".into()))
            }
            QtestCommand::WriteBuf { data, .. } | QtestCommand::B64Write { data, .. }
                if data.is_empty() =>
            {
                Err(invalid("QEMU refuses an empty write".into()))
            }
            QtestCommand::IrqInterceptIn { path } => word(path, "QOM path").map_err(invalid),
            QtestCommand::IrqInterceptOut { path, name } => {
                word(path, "QOM path").map_err(&invalid)?;
                match name {
                    Some(name) => word(name, "GPIO name").map_err(invalid),
                    None => Ok(()),
                }
            }
            QtestCommand::SetIrqIn { path, name, .. } => {
                word(path, "QOM path").map_err(&invalid)?;
                word(name, "GPIO name").map_err(invalid)
            }
            QtestCommand::Raw { line } if line.trim().is_empty() => {
                Err(invalid("an empty line makes QEMU abort".into()))
            }
            QtestCommand::Raw { line } if line.contains(['\n', '\r']) => Err(invalid(
                "a request is one line: it must not contain a line break".into(),
            )),
            _ => Ok(()),
        }
    }
}

fn width_bits(width: Width) -> u32 {
    match width {
        Width::Byte => 8,
        Width::Word => 16,
        Width::Long => 32,
        Width::Quad => 64,
    }
}

/// QEMU splits a request on single spaces: an argument must be one
/// non-empty word without spaces or line breaks.
fn word(value: &str, what: &str) -> Result<(), String> {
    if value.is_empty() || value.contains([' ', '\n', '\r', '\t']) {
        Err(format!(
            "the {what} {value:?} must be one non-empty word (QEMU splits requests on spaces)"
        ))
    } else {
        Ok(())
    }
}

impl fmt::Display for QtestCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = Vec::new();
        match self.encode(&mut line) {
            // Long buffers are shortened: this is for messages.
            Ok(()) => {
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end();
                match text.char_indices().nth(80) {
                    Some((cut, _)) => write!(f, "`{}…`", &text[..cut]),
                    None => write!(f, "`{text}`"),
                }
            }
            Err(_) => write!(f, "`{}` (invalid)", self.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(command: QtestCommand) -> String {
        let mut out = Vec::new();
        match command.encode(&mut out) {
            Ok(()) => String::from_utf8_lossy(&out).into_owned(),
            Err(error) => format!("error: {error}"),
        }
    }

    #[test]
    fn requests_are_written_as_qemu_parses_them() {
        let cases = [
            (
                QtestCommand::Read {
                    width: Width::Long,
                    addr: 0x1000,
                },
                "readl 0x1000\n",
            ),
            (
                QtestCommand::Write {
                    width: Width::Quad,
                    addr: 0,
                    value: u64::MAX,
                },
                "writeq 0x0 0xffffffffffffffff\n",
            ),
            (
                QtestCommand::WriteBuf {
                    addr: 0x10,
                    data: vec![0, 0xab, 7],
                },
                "write 0x10 0x3 0x00ab07\n",
            ),
            (
                QtestCommand::B64Write {
                    addr: 0x10,
                    data: b"qemu".to_vec(),
                },
                "b64write 0x10 0x4 cWVtdQ==\n",
            ),
            (
                QtestCommand::Out {
                    width: Width::Byte,
                    port: 0x70,
                    value: 0x0b,
                },
                "outb 0x70 0xb\n",
            ),
            (
                QtestCommand::In {
                    width: Width::Word,
                    port: 0x71,
                },
                "inw 0x71\n",
            ),
            (
                QtestCommand::SetIrqIn {
                    path: "/machine/ioapic".into(),
                    name: "unnamed-gpio-in".into(),
                    line: 3,
                    level: -1,
                },
                "set_irq_in /machine/ioapic unnamed-gpio-in 3 -1\n",
            ),
            (QtestCommand::ClockStep { ns: None }, "clock_step\n"),
            (
                QtestCommand::ClockStep { ns: Some(100) },
                "clock_step 100\n",
            ),
            (QtestCommand::ClockSet { ns: 5 }, "clock_set 5\n"),
            (
                QtestCommand::Memset {
                    addr: 1,
                    len: 0,
                    value: 0xff,
                },
                "memset 0x1 0x0 0xff\n",
            ),
        ];
        for (command, expected) in cases {
            assert_eq!(line(command.clone()), expected, "{command:?}");
        }
    }

    #[test]
    fn requests_that_would_abort_qemu_are_refused() {
        let refused = [
            QtestCommand::ReadBuf { addr: 0, len: 0 },
            QtestCommand::WriteBuf {
                addr: 0,
                data: vec![],
            },
            QtestCommand::Write {
                width: Width::Byte,
                addr: 0,
                value: 0x100,
            },
            QtestCommand::Out {
                width: Width::Word,
                port: 0,
                value: 0x1_0000,
            },
            QtestCommand::In {
                width: Width::Quad,
                port: 0,
            },
            QtestCommand::IrqInterceptIn {
                path: "two words".into(),
            },
            QtestCommand::Raw { line: " ".into() },
            QtestCommand::Raw {
                line: "inb 0x70\ninb 0x71".into(),
            },
        ];
        for command in refused {
            let mut out = Vec::new();
            let result = command.encode(&mut out);
            assert!(
                matches!(result, Err(Error::QtestInvalidArgument { .. })),
                "{command:?} gave {result:?}"
            );
            assert!(out.is_empty(), "{command:?} wrote {out:?}");
        }
    }
}
