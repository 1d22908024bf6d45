//! QEMU's option-value escaping: literal commas are doubled, and what QEMU
//! cannot represent is refused rather than silently mangled.
//!
//! QEMU splits `key=value,key=value` at single commas; `,,` stands for one
//! literal comma inside a value. Keys cannot be escaped at all, so they are
//! checked instead. argv entries are C strings, so no value may hold a NUL.

use std::ffi::{OsStr, OsString};

use crate::Error;
use crate::os;

fn refuse(option: &'static str, value: &[u8], reason: &'static str) -> Error {
    Error::Unrepresentable {
        option,
        value: os::from_bytes(value.to_vec()),
        reason,
    }
}

/// Appends `value` to `out` with every comma doubled.
pub(crate) fn escape_value_into(
    option: &'static str,
    value: &OsStr,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    let bytes = os::bytes(value);
    check_no_nul(option, &bytes)?;
    for &byte in bytes.iter() {
        out.push(byte);
        if byte == b',' {
            out.push(b',');
        }
    }
    Ok(())
}

/// `value` with every comma doubled, for one `key=value` element.
pub fn escape_value(option: &'static str, value: &OsStr) -> Result<OsString, Error> {
    let mut out = Vec::with_capacity(value.len() + 2);
    escape_value_into(option, value, &mut out)?;
    Ok(os::from_bytes(out))
}

/// Checks a property key: QEMU has no escape for `=` or `,` in keys.
pub fn check_key(option: &'static str, key: &str) -> Result<(), Error> {
    let reason = if key.is_empty() {
        "an empty key"
    } else if key.contains('\0') {
        "a NUL byte cannot be passed in argv"
    } else if key.contains('=') {
        "'=' in a key would end the key early"
    } else if key.contains(',') {
        "',' in a key would split the option"
    } else if key.contains(['\n', '\r']) {
        "a line break in a key"
    } else if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        "keys hold only ASCII letters, digits, '-', '_' and '.'"
    } else {
        return Ok(());
    };
    Err(refuse(option, key.as_bytes(), reason))
}

/// Checks a value passed verbatim (no `key=value` parsing): only NUL is fatal.
pub(crate) fn check_plain(option: &'static str, value: &OsStr) -> Result<(), Error> {
    check_no_nul(option, &os::bytes(value))
}

fn check_no_nul(option: &'static str, value: &[u8]) -> Result<(), Error> {
    if value.contains(&0) {
        return Err(refuse(option, value, "a NUL byte cannot be passed in argv"));
    }
    Ok(())
}

/// Checks a value of an option QEMU splits at every comma with no escape
/// (`-cpu`, `-d`).
pub(crate) fn check_no_comma(option: &'static str, value: &str) -> Result<(), Error> {
    check_no_nul(option, value.as_bytes())?;
    if value.contains(',') {
        return Err(refuse(
            option,
            value.as_bytes(),
            "this option splits at every comma and has no escape for one",
        ));
    }
    Ok(())
}

/// Checks a value that must stay on one line (the kernel command line:
/// Linux treats a line break as a separator between parameters).
pub(crate) fn check_single_line(option: &'static str, value: &OsStr) -> Result<(), Error> {
    let bytes = os::bytes(value);
    check_no_nul(option, &bytes)?;
    if bytes.iter().any(|&b| b == b'\n' || b == b'\r') {
        return Err(refuse(
            option,
            &bytes,
            "a line break would split it into separate parameters",
        ));
    }
    Ok(())
}

/// Checks an `id`: QEMU wants a letter first, then letters, digits, `-`, `.`, `_`.
pub(crate) fn check_id(option: &'static str, value: &OsStr) -> Result<(), Error> {
    let bytes = os::bytes(value);
    let well_formed = bytes.first().is_some_and(u8::is_ascii_alphabetic)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !well_formed {
        return Err(refuse(
            option,
            &bytes,
            "QEMU ids start with a letter and hold only letters, digits, '-', '.' and '_'",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (value, escaped) pairs.
    const VALUES: &[(&str, &str)] = &[
        ("", ""),
        ("plain", "plain"),
        (",", ",,"),
        ("a,b", "a,,b"),
        ("a,,b", "a,,,,b"),
        ("a,format=raw,b.img", "a,,format=raw,,b.img"),
        (",id=x", ",,id=x"),
        ("trailing,", "trailing,,"),
        ("=", "="),
        ("k=v", "k=v"),
        ("space and 'quote'", "space and 'quote'"),
        ("line\nbreak", "line\nbreak"),
        ("ünïcødé,", "ünïcødé,,"),
    ];

    #[test]
    fn commas_are_doubled() {
        for (value, escaped) in VALUES {
            let got = escape_value("-test", OsStr::new(value)).unwrap();
            assert_eq!(got, OsStr::new(escaped), "escaping {value:?}");
        }
    }

    #[test]
    fn nul_in_a_value_is_refused_naming_the_option() {
        let err = escape_value("-drive", OsStr::new("a\0b")).unwrap_err();
        match err {
            Error::Unrepresentable { option, value, .. } => {
                assert_eq!(option, "-drive");
                assert_eq!(value, OsStr::new("a\0b"));
            }
            other => panic!("wrong error {other:?}"),
        }
    }

    /// (key, accepted) pairs.
    const KEYS: &[(&str, bool)] = &[
        ("file", true),
        ("node-name", true),
        ("file.filename", true),
        ("x_y", true),
        ("debug-threads", true),
        ("", false),
        ("a=b", false),
        ("a,b", false),
        ("a\nb", false),
        ("a\0b", false),
        ("a b", false),
        ("ключ", false),
    ];

    #[test]
    fn keys_are_checked() {
        for (key, accepted) in KEYS {
            let got = check_key("-device", key);
            if *accepted {
                assert!(matches!(got, Ok(())), "key {key:?}: {got:?}");
            } else {
                assert!(
                    matches!(&got, Err(Error::Unrepresentable { option: "-device", value, .. }) if value == OsStr::new(key)),
                    "key {key:?}: {got:?}"
                );
            }
        }
    }

    #[test]
    fn single_line_and_comma_free_values() {
        let accepted = [
            check_single_line("-append", OsStr::new("console=ttyS0 quiet")),
            check_no_comma("-cpu", "+avx"),
            check_plain("-kernel", OsStr::new("a,b")),
        ];
        for got in &accepted {
            assert!(matches!(got, Ok(())), "{got:?}");
        }
        let refused = [
            ("-append", check_single_line("-append", OsStr::new("a\nb"))),
            ("-append", check_single_line("-append", OsStr::new("a\rb"))),
            ("-cpu", check_no_comma("-cpu", "a,b")),
            ("-kernel", check_plain("-kernel", OsStr::new("a\0b"))),
        ];
        for (expected, got) in &refused {
            assert!(
                matches!(got, Err(Error::Unrepresentable { option, .. }) if option == expected),
                "{expected}: {got:?}"
            );
        }
    }

    #[test]
    fn ids_are_checked() {
        for (id, ok) in [
            ("d0", true),
            ("a.b-c_d", true),
            ("0a", false),
            ("", false),
            ("a,b", false),
            ("a b", false),
        ] {
            let got = check_id("-device", OsStr::new(id));
            if ok {
                assert!(matches!(got, Ok(())), "id {id:?}: {got:?}");
            } else {
                assert!(
                    matches!(
                        got,
                        Err(Error::Unrepresentable {
                            option: "-device",
                            ..
                        })
                    ),
                    "id {id:?}: {got:?}"
                );
            }
        }
    }
}
