//! QEMU's `key=value,key=value` option syntax: rendering with escaping, and
//! splitting an existing option string back into its elements.
//!
//! The first element may omit its key (the "implied" key, e.g. the driver
//! of `-device virtio-blk-pci,drive=d0`). QEMU decides that by looking for
//! `=` before the first comma, so a bare first value may not hold `=`: such
//! a value is rendered with its key instead.

use std::ffi::{OsStr, OsString};

use crate::os;
use crate::{Error, escape};

/// Renders `entries` as one option argument. The first entry is written
/// bare when its key is the option's implied key and the value allows it.
pub(crate) fn render(
    option: &'static str,
    implied: Option<&str>,
    entries: &[(String, OsString)],
) -> Result<OsString, Error> {
    let mut out = Vec::new();
    for (index, (key, value)) in entries.iter().enumerate() {
        escape::check_key(option, key)?;
        if key == "id" {
            escape::check_id(option, value)?;
        }
        if index > 0 {
            out.push(b',');
        }
        let bytes = os::bytes(value);
        let bare = index == 0
            && implied == Some(key.as_str())
            && !bytes.is_empty()
            && !bytes.contains(&b'=');
        if !bare {
            out.extend_from_slice(key.as_bytes());
            out.push(b'=');
        }
        escape::escape_value_into(option, value, &mut out)?;
    }
    Ok(os::from_bytes(out))
}

/// Splits an option argument into `(key, value)` elements, undoing `,,`.
/// A bare first element gets the implied key; a later bare element is a
/// short-form boolean, read as QEMU reads it: `key` is `key=on`, `nokey`
/// is `key=off`.
pub fn split(
    option: &str,
    value: &OsStr,
    implied: Option<&str>,
) -> Result<Vec<(String, OsString)>, Error> {
    let bytes = os::bytes(value);
    let bytes: &[u8] = &bytes;
    let parse_error = |reason: &str| Error::Parse {
        option: option.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let stop = rest
            .iter()
            .position(|&b| b == b'=' || b == b',')
            .unwrap_or(rest.len());
        let (key, value) = if rest.get(stop) == Some(&b'=') {
            let key = &rest[..stop];
            at += stop + 1;
            (
                key_str(key).ok_or_else(|| parse_error("a key is not ASCII"))?,
                read_value(bytes, &mut at),
            )
        } else if let (true, Some(implied)) = (out.is_empty(), implied) {
            (implied.to_owned(), read_value(bytes, &mut at))
        } else {
            let key = &rest[..stop];
            at += (stop + 1).min(rest.len());
            flag(key_str(key).ok_or_else(|| parse_error("a key is not ASCII"))?)
        };
        if key.is_empty() {
            return Err(parse_error("an element has an empty key"));
        }
        out.push((key, value));
    }
    Ok(out)
}

/// QEMU's short-form booleans: `key` is `key=on`, `nokey` is `key=off`.
fn flag(key: String) -> (String, OsString) {
    match key.strip_prefix("no") {
        Some(rest) if !rest.is_empty() => (rest.to_owned(), OsString::from("off")),
        _ => (key, OsString::from("on")),
    }
}

fn key_str(key: &[u8]) -> Option<String> {
    std::str::from_utf8(key).ok().map(str::to_owned)
}

/// Reads a value from `at` up to the next single comma (consumed).
fn read_value(bytes: &[u8], at: &mut usize) -> OsString {
    let mut value = Vec::new();
    while let Some(&byte) = bytes.get(*at) {
        *at += 1;
        if byte == b',' {
            if bytes.get(*at) == Some(&b',') {
                *at += 1;
            } else {
                break;
            }
        }
        value.push(byte);
    }
    os::from_bytes(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(pairs: &[(&str, &str)]) -> Vec<(String, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect()
    }

    #[test]
    fn renders_implied_first_and_escapes() {
        let e = entries(&[("driver", "virtio-blk-pci"), ("drive", "d,0")]);
        let got = render("-device", Some("driver"), &e).unwrap();
        assert_eq!(got, "virtio-blk-pci,drive=d,,0");
    }

    #[test]
    fn implied_value_with_equals_gets_its_key() {
        let e = entries(&[("guest", "a=b")]);
        assert_eq!(render("-name", Some("guest"), &e).unwrap(), "guest=a=b");
        let e = entries(&[("guest", "")]);
        assert_eq!(render("-name", Some("guest"), &e).unwrap(), "guest=");
    }

    #[test]
    fn splits_with_implied_key_and_doubled_commas() {
        let got = split(
            "-device",
            OsStr::new("virtio-blk-pci,drive=d0,serial=a,,b"),
            Some("driver"),
        )
        .unwrap();
        assert_eq!(
            got,
            entries(&[
                ("driver", "virtio-blk-pci"),
                ("drive", "d0"),
                ("serial", "a,b")
            ])
        );
        let got = split(
            "-drive",
            OsStr::new("file=a,,format=raw,,b.img,format=raw"),
            None,
        )
        .unwrap();
        assert_eq!(
            got,
            entries(&[("file", "a,format=raw,b.img"), ("format", "raw")])
        );
        let got = split("-name", OsStr::new("x,,id=y"), Some("guest")).unwrap();
        assert_eq!(got, entries(&[("guest", "x,id=y")]));
        let got = split("-netdev", OsStr::new("user,id=n0,restrict"), Some("type")).unwrap();
        assert_eq!(
            got,
            entries(&[("type", "user"), ("id", "n0"), ("restrict", "on")])
        );
        let got = split(
            "-chardev",
            OsStr::new("socket,id=c,server,nowait"),
            Some("backend"),
        )
        .unwrap();
        assert_eq!(
            got,
            entries(&[
                ("backend", "socket"),
                ("id", "c"),
                ("server", "on"),
                ("wait", "off")
            ])
        );
        assert_eq!(split("-x", OsStr::new(""), None).unwrap(), vec![]);
        let empty_key = split("-x", OsStr::new("=v"), None);
        assert!(
            matches!(
                empty_key,
                Err(Error::Parse { .. } | Error::Unrepresentable { .. })
            ),
            "{empty_key:?}"
        );
    }

    #[test]
    fn refuses_bad_keys_and_ids() {
        for bad in [("a=b", "1"), ("", "1"), ("id", "x,id=y")] {
            let got = render("-device", None, &entries(&[bad]));
            assert!(
                matches!(
                    got,
                    Err(Error::Unrepresentable {
                        option: "-device",
                        ..
                    })
                ),
                "{bad:?}: {got:?}"
            );
        }
    }
}
