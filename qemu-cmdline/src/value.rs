//! Conversions between typed property values and their option text.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

/// A type that can be one property value of a `key=value` option.
pub(crate) trait PropValue: Sized {
    /// The value's text (before escaping).
    fn to_os(&self) -> OsString;
    /// Reads the text back; `None` when it is not this type's canonical
    /// form (the property is then kept verbatim in `props`).
    fn from_os(value: &OsStr) -> Option<Self>;
}

impl PropValue for String {
    fn to_os(&self) -> OsString {
        OsString::from(self)
    }
    fn from_os(value: &OsStr) -> Option<Self> {
        value.to_str().map(str::to_owned)
    }
}

impl PropValue for OsString {
    fn to_os(&self) -> OsString {
        self.clone()
    }
    fn from_os(value: &OsStr) -> Option<Self> {
        Some(value.to_owned())
    }
}

impl PropValue for PathBuf {
    fn to_os(&self) -> OsString {
        self.clone().into_os_string()
    }
    fn from_os(value: &OsStr) -> Option<Self> {
        Some(PathBuf::from(value))
    }
}

impl PropValue for bool {
    fn to_os(&self) -> OsString {
        OsString::from(if *self { "on" } else { "off" })
    }
    fn from_os(value: &OsStr) -> Option<Self> {
        match value.to_str()? {
            "on" => Some(true),
            "off" => Some(false),
            _ => None,
        }
    }
}

macro_rules! number_value {
    ($($ty:ty),*) => {$(
        impl PropValue for $ty {
            fn to_os(&self) -> OsString {
                OsString::from(self.to_string())
            }
            fn from_os(value: &OsStr) -> Option<Self> {
                let text = value.to_str()?;
                let parsed: $ty = text.parse().ok()?;
                // Only the canonical spelling is typed, so rendering gives back the same text.
                (parsed.to_string() == text).then_some(parsed)
            }
        }
    )*};
}
number_value!(u16, u32, u64, i32, i64);
