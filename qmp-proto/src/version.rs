//! QEMU versions, and which of them have a typed command, argument or value.
//!
//! QEMU's schema drifts: commands, arguments and enumeration values appear
//! and disappear between releases (the `compress` migration capability is
//! gone in 9.1). Each typed command says which versions accept it
//! ([`Command::SINCE`](crate::Command::SINCE),
//! [`Command::UNTIL`](crate::Command::UNTIL),
//! [`Command::check_version`](crate::Command::check_version)); a client
//! checks that against the greeting's [`Version`] before sending and
//! refuses with [`Unsupported`], which names the item, the connected QEMU and
//! the versions that have it.

use serde::{Deserialize, Serialize};

/// A QEMU release, as the greeting and `query-version` report it.
///
/// Ordered by release, displayed as `10.0.2`, and comparable with a
/// `(major, minor)` pair, which ignores the micro number:
///
/// ```
/// use qmp_proto::Version;
///
/// let qemu = Version::new(10, 0, 2);
/// assert!(qemu >= (9, 0) && qemu < (10, 1));
/// assert!(qemu == (10, 0));
/// assert!(Version::new(7, 2, 22) < qemu);
/// assert_eq!(qemu.to_string(), "10.0.2");
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Version {
    /// Major version, e.g. 10 in 10.0.2.
    pub major: u32,
    /// Minor version, e.g. 0 in 10.0.2.
    pub minor: u32,
    /// Micro version, e.g. 2 in 10.0.2 (QEMU counts development snapshots
    /// from 50 up, e.g. 9.2.50 before 10.0.0).
    pub micro: u32,
}

impl Version {
    /// The version `major.minor.micro`.
    pub const fn new(major: u32, minor: u32, micro: u32) -> Self {
        Self {
            major,
            minor,
            micro,
        }
    }

    /// The `(major, minor)` pair, the granularity QEMU documents changes at.
    pub const fn release(self) -> (u32, u32) {
        (self.major, self.minor)
    }

    /// Whether this version lies in `[since, until)`; a missing bound is
    /// open.
    pub fn within(self, since: Option<(u32, u32)>, until: Option<(u32, u32)>) -> bool {
        since.is_none_or(|since| self >= since) && until.is_none_or(|until| self < until)
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.micro)
    }
}

impl PartialEq<(u32, u32)> for Version {
    fn eq(&self, other: &(u32, u32)) -> bool {
        self.release() == *other
    }
}

impl PartialOrd<(u32, u32)> for Version {
    fn partial_cmp(&self, other: &(u32, u32)) -> Option<std::cmp::Ordering> {
        Some(self.release().cmp(other))
    }
}

/// A typed command, argument or enumeration value that the connected QEMU
/// does not have, refused before anything was sent — or a command QEMU
/// answered with `CommandNotFound`.
///
/// `since` is the first release that has the item, `until` the first that
/// no longer has it; `None` means no bound is known on that side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Unsupported {
    /// What is missing, e.g. ``migration capability `compress` ``.
    pub item: String,
    /// The connected QEMU.
    pub qemu: Version,
    /// The oldest release not known to lack the item, when an older release
    /// this crate knows lacks it (for generated items: the release after
    /// the newest recorded one that lacks it).
    pub since: Option<(u32, u32)>,
    /// The first release that no longer has the item.
    pub until: Option<(u32, u32)>,
}

impl Unsupported {
    /// `Ok` when `qemu` lies in `[since, until)`, else the error naming
    /// `item`. This is what [`Command::check_version`] does by default;
    /// overrides call it for the command and then for each argument or value.
    ///
    /// [`Command::check_version`]: crate::Command::check_version
    ///
    /// ```
    /// use qmp_proto::{Unsupported, Version};
    ///
    /// let old = Version::new(7, 2, 22);
    /// assert_eq!(Unsupported::check("`compress`", old, None, Some((9, 1))), Ok(()));
    /// let err = Unsupported::check("`compress`", Version::new(10, 0, 2), None, Some((9, 1)));
    /// assert_eq!(
    ///     err.map_err(|e| e.to_string()),
    ///     Err("`compress` is not available in the connected QEMU 10.0.2 \
    ///          (removed in QEMU 9.1); use an older QEMU or do without it"
    ///         .to_owned())
    /// );
    /// ```
    pub fn check(
        item: impl std::fmt::Display,
        qemu: Version,
        since: Option<(u32, u32)>,
        until: Option<(u32, u32)>,
    ) -> Result<(), Unsupported> {
        if qemu.within(since, until) {
            return Ok(());
        }
        Err(Unsupported {
            item: item.to_string(),
            qemu,
            since,
            until,
        })
    }
}

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is not available in the connected QEMU {}",
            self.item, self.qemu
        )?;
        match (self.since, self.until) {
            (Some((a, b)), Some((c, d))) => write!(
                f,
                " (it exists from QEMU {a}.{b} until before {c}.{d}); use a QEMU in that range"
            ),
            (Some((a, b)), None) => {
                write!(f, " (it needs QEMU {a}.{b} or newer); use a newer QEMU")
            }
            (None, Some((c, d))) => write!(
                f,
                " (removed in QEMU {c}.{d}); use an older QEMU or do without it"
            ),
            (None, None) => write!(
                f,
                " (QEMU reports it unknown: a build without it, or a target that lacks it; \
                 see `query-qmp-schema`)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_and_pairs() {
        let v7 = Version::new(7, 2, 22);
        let v10 = Version::new(10, 0, 2);
        assert!(v7 < v10, "numeric, not lexical: {v7} < {v10}");
        assert!(v10 > (9, 0), "{v10} > 9.0");
        assert!(v10 >= (10, 0), "{v10} >= 10.0");
        assert!(
            v10 <= (10, 0),
            "{v10} <= 10.0: the micro number is not compared"
        );
        assert!(v10 < (10, 1), "{v10} < 10.1");
        assert!(v7 < (9, 0) && v7 == (7, 2) && v7 != (7, 1));
        assert!(v10.within(Some((9, 1)), None) && !v7.within(Some((9, 1)), None));
        assert!(v7.within(None, Some((9, 1))) && !v10.within(None, Some((9, 1))));
        assert!(v10.within(None, None));
    }

    #[test]
    fn refusals_name_the_range() {
        let err = Unsupported::check("x", Version::new(7, 2, 0), Some((9, 0)), Some((10, 1)));
        let text = err.map_err(|e| e.to_string());
        assert_eq!(
            text,
            Err(
                "x is not available in the connected QEMU 7.2.0 (it exists from QEMU 9.0 \
                 until before 10.1); use a QEMU in that range"
                    .to_owned()
            )
        );
        let err = Unsupported::check("y", Version::new(8, 0, 0), Some((9, 0)), None);
        assert!(
            matches!(
                &err,
                Err(Unsupported {
                    since: Some((9, 0)),
                    until: None,
                    ..
                })
            ),
            "{err:?}"
        );
    }
}
