//! The whole QMP interface, typed: every command and event of every QEMU
//! version we test, generated from their recorded `query-qmp-schema`.
//!
//! - [`commands`]: one struct per command, implementing
//!   [`Command`](crate::Command) — its fields are the arguments, its
//!   `Output` the reply's type.
//! - [`events`]: one struct per event, implementing
//!   [`EventPayload`](crate::EventPayload), read with
//!   [`Event::payload`](crate::Event::payload).
//! - [`types`]: the structs, unions, enumerations and alternates they use.
//!
//! QEMU's introspection hides the names of its types, so types are named
//! after where they are used (`StatusInfo` for what `query-status`
//! returns, `BlockdevMirrorOnTargetError` for a member's enumeration), a
//! few by hand; the names do not change between versions.
//!
//! # Cargo features
//!
//! Compiling all of it takes several times what the rest of the crate
//! does, so each command is behind the cargo feature of its QAPI module —
//! the QEMU schema file that defines it: `block-core`, `machine-target`,
//! `migration`, `ui`, … (the list is in the crate's `Cargo.toml`) — and
//! each type behind the features of the commands that use it; `full`
//! turns on every module. Always compiled, whatever the features: the
//! commands [`crate::commands`] re-exports, every event, and the types
//! they use. Each gated item's docs name its features. For example,
//! `blockdev-set-active` (below) needs `block-core`:
//!
//! ```toml
//! qmp-proto = { version = "0.1", features = ["block-core"] }
//! ```
//!
//! # Integers
//!
//! Every integer is an `i64`. QEMU's schema has `int8` … `uint64` and
//! `size`, but `query-qmp-schema` reports them all as the one builtin
//! `int`, so the recorded data cannot tell a `uint8` from a `size`; `i64`
//! holds every value QEMU sends in practice, but a `uint64`/`size` member
//! above `i64::MAX` (an "unlimited" `u64::MAX`, say) would not decode
//! into it — read such a reply raw. Floating-point members (`number`)
//! are `f64`.
//!
//! # Across QEMU versions
//!
//! One set of types covers every recorded version: each item's docs say
//! which versions have it ("QEMU 7.2: no; 10.0: yes"). A member missing in
//! some version is an `Option`.
//!
//! The recorded introspection says *whether* a version has an item, not
//! since when: it carries no "since". So `SINCE` (and an enumeration
//! value's `since()`) is the release after the newest recorded one that
//! lacks the item — `(8, 0)` for everything 7.2 lacks and 10.0 has — and
//! `UNTIL` the first recorded release that no longer has it. Only releases
//! known to lack an item are refused before sending; an unrecorded 8.x or
//! 9.x that lacks it answers `CommandNotFound`, which names the connected
//! version (one policy for the whole typed layer). The docs of each item
//! say exactly which recorded versions have it. Decoding tolerates drift: unknown members
//! are ignored, every enumeration keeps unknown values in `Other`, every
//! union keeps an unknown variant's members, so a reply from a newer QEMU
//! still decodes. Sending is checked:
//! [`Command::check_version`](crate::Command::check_version) refuses a
//! command, argument or enumeration value the connected QEMU is known to
//! lack.
//!
//! ```
//! use qmp_proto::{Command, Version};
//! use qmp_proto::qapi::{commands, types};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let status = commands::QueryStatus::parse_output(serde_json::json!(
//!     {"status": "running", "running": true, "singlestep": false}))?;
//! assert_eq!(status.status, types::RunState::Running);
//!
//! // A value newer than this crate is kept, not an error.
//! let status = commands::QueryStatus::parse_output(serde_json::json!(
//!     {"status": "hibernating", "running": false, "new-member": 1}))?;
//! assert_eq!(status.status.as_str(), "hibernating");
//!
//! // `blockdev-set-active` is in 10.0, not in 7.2: refused before sending.
//! let activate = commands::BlockdevSetActive::new(true);
//! let refused = activate.check_version(Version::new(7, 2, 22));
//! assert!(matches!(&refused, Err(e) if e.since == Some((8, 0))), "{refused:?}");
//! assert_eq!(activate.check_version(Version::new(10, 0, 2)), Ok(()));
//! # Ok(())
//! # }
//! ```

// Generated code: arguments are as many as QEMU's required members, names
// follow QEMU's, and docs are one line per item.
#![allow(
    clippy::too_many_arguments,
    clippy::large_enum_variant,
    clippy::enum_variant_names,
    clippy::doc_markdown,
    clippy::module_name_repetitions
)]

/// Defines a QAPI enumeration: one variant per value QEMU knows, each with
/// the releases that have it (`since`, `until`), plus `Other` keeping any
/// value this crate does not know.
macro_rules! qapi_enum {
    (
        $(#[$attr:meta])*
        pub enum $name:ident {
            $($(#[$vattr:meta])* $variant:ident = $wire:literal ($since:expr, $until:expr),)*
        }
    ) => {
        $(#[$attr])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vattr])* $variant,)*
            /// A value this crate does not know, kept as QEMU sent it.
            Other(String),
        }

        impl $name {
            /// Every value this crate knows, as QEMU spells it.
            pub const KNOWN: &'static [&'static str] = &[$($wire),*];

            /// The value as QEMU spells it.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)*
                    Self::Other(value) => value,
                }
            }

            /// The value QEMU spells `wire`.
            pub fn from_wire(wire: &str) -> Self {
                match wire {
                    $($wire => Self::$variant,)*
                    other => Self::Other(other.to_owned()),
                }
            }

            /// The oldest QEMU release not known to lack this value (the
            /// release after the newest recorded one that lacks it), when
            /// an older recorded one lacks it; `None` for values this crate
            /// does not know.
            pub fn since(&self) -> Option<(u32, u32)> {
                match self {
                    $(Self::$variant => $since,)*
                    Self::Other(_) => None,
                }
            }

            /// The first QEMU release without this value, if it was removed.
            pub fn until(&self) -> Option<(u32, u32)> {
                match self {
                    $(Self::$variant => $until,)*
                    Self::Other(_) => None,
                }
            }

            /// `Ok` when QEMU `qemu` knows this value.
            ///
            /// # Errors
            ///
            /// [`Unsupported`](crate::Unsupported) naming the value.
            pub fn check_version(&self, qemu: $crate::Version) -> Result<(), $crate::Unsupported> {
                $crate::Unsupported::check(
                    format_args!("{} `{}`", stringify!($name), self.as_str()),
                    qemu,
                    self.since(),
                    self.until(),
                )
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_str($crate::qapi::support::EnumVisitor(Self::from_wire))
            }
        }

        impl $crate::qapi::support::FromValue for $name {
            fn from_value<E: serde::de::Error>(value: serde_json::Value) -> Result<Self, E> {
                match value {
                    serde_json::Value::String(wire) => Ok(Self::from_wire(&wire)),
                    other => <Self as serde::Deserialize>::deserialize(other).map_err(E::custom),
                }
            }
        }
    };
}

/// Which QEMU versions have a command or event: the oldest release not
/// known to lack it (when an older recorded one lacks it) and the first
/// recorded release that no longer has it (`None`: no bound known).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Availability {
    /// The wire name, e.g. `query-status` or `SHUTDOWN`.
    pub name: &'static str,
    /// The release after the newest recorded one that lacks it, when an
    /// older recorded one lacks it.
    pub since: Option<(u32, u32)>,
    /// The first recorded release that no longer has it.
    pub until: Option<(u32, u32)>,
}

impl Availability {
    /// Whether `qemu` has it.
    pub fn in_version(&self, qemu: crate::Version) -> bool {
        qemu.within(self.since, self.until)
    }
}

pub mod commands;
pub mod events;
pub(crate) mod support;
pub mod types;
