//! Byte access to `OsStr`: exact on Unix, UTF-8 elsewhere.

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};

/// The bytes of an `OsStr`. On Unix every byte survives; elsewhere values
/// that are not Unicode are converted lossily (QEMU's argv is bytes on Unix).
pub(crate) fn bytes(value: &OsStr) -> Cow<'_, [u8]> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Cow::Borrowed(value.as_bytes())
    }
    #[cfg(not(unix))]
    {
        match value.to_string_lossy() {
            Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
            Cow::Owned(s) => Cow::Owned(s.into_bytes()),
        }
    }
}

/// An `OsString` from bytes (lossless on Unix).
pub(crate) fn from_bytes(value: Vec<u8>) -> OsString {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        OsString::from_vec(value)
    }
    #[cfg(not(unix))]
    {
        OsString::from(String::from_utf8_lossy(&value).into_owned())
    }
}
