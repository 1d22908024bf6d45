//! The QMP commands people use most, under the names they always had.
//!
//! Each command is a struct implementing [`Command`](crate::Command): its
//! fields are the arguments, under QEMU's wire names, and optional ones are
//! left out when `None`. Most of them are the generated commands of
//! [`qapi::commands`](crate::qapi::commands), re-exported here (with
//! constructors such as [`Migrate::new`], [`AddFd::to_set`] and
//! [`RemoveFd::fd`] added); every other command QEMU has is there too.
//!
//! The hand-written ones stay where they add something the schema cannot
//! say: free-form properties ([`DeviceAdd`], [`BlockdevAdd`],
//! [`NetdevAdd`], [`ChardevAdd`]), the greeting's own types
//! ([`QmpCapabilities`], [`QueryVersion`]), raw JSON ([`QueryQmpSchema`]),
//! flat replies that keep untyped members ([`QueryCpusFast`],
//! [`QueryBlock`], [`QueryNamedBlockNodes`]) and per-value release bounds
//! from QEMU's documentation ([`MigrationCapability`]). A test checks each
//! against its generated counterpart: same wire name, versions, members and
//! optionality, or a stated reason.
//!
//! Every name, argument and enumeration value here is checked against the
//! recorded `query-qmp-schema` of QEMU 7.2 and 10.0 and against the live QEMU
//! the tests run. What exists in only some releases says so in its docs and
//! in its version bounds ([`Command::SINCE`](crate::Command::SINCE),
//! [`Command::UNTIL`](crate::Command::UNTIL), an enumeration value's
//! `since()`/`until()`); [`Command::check_version`](crate::Command::check_version)
//! refuses what the connected QEMU lacks. Struct fields are public; the
//! structs are `#[non_exhaustive]`, so build them with `new` and set optional
//! fields by assignment.
//!
//! Enumerations keep values this crate does not know in an `Other` variant,
//! so a newer QEMU does not break decoding.

/// Defines a string enumeration of QAPI values that keeps unknown values.
///
/// A value that exists in only some QEMU releases carries its bounds after
/// the wire name: `Block = "block" until (9, 1),` or
/// `MappedRam = "mapped-ram" since (9, 0),` (first release with it, first
/// release without it).
macro_rules! qapi_enum {
    (
        $(#[$attr:meta])*
        pub enum $name:ident {
            $(
                $(#[$vattr:meta])*
                $variant:ident = $wire:literal
                $(since ($since_major:literal, $since_minor:literal))?
                $(until ($until_major:literal, $until_minor:literal))?,
            )*
        }
    ) => {
        $(#[$attr])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $(
                #[doc = concat!("`", $wire, "`")]
                $(#[doc = ""] #[doc = concat!(
                    "Since QEMU ", $since_major, ".", $since_minor, ".")])?
                $(#[doc = ""] #[doc = concat!(
                    "Removed in QEMU ", $until_major, ".", $until_minor, ".")])?
                $(#[$vattr])*
                #[serde(rename = $wire)]
                $variant,
            )*
            /// A value this crate does not know, kept as sent.
            #[serde(untagged)]
            Other(String),
        }

        impl $name {
            /// Every value this crate knows, as QEMU spells it.
            pub const KNOWN: &'static [&'static str] = &[$($wire),*];

            /// The value as QEMU spells it.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)*
                    Self::Other(name) => name,
                }
            }

            /// The first QEMU release with this value, when newer than 7.2;
            /// `None` for values this crate does not know.
            pub fn since(&self) -> Option<(u32, u32)> {
                match self {
                    $(Self::$variant => None $(.or(Some(($since_major, $since_minor))))?,)*
                    Self::Other(_) => None,
                }
            }

            /// The first QEMU release without this value, if it was removed.
            pub fn until(&self) -> Option<(u32, u32)> {
                match self {
                    $(Self::$variant => None $(.or(Some(($until_major, $until_minor))))?,)*
                    Self::Other(_) => None,
                }
            }

            /// `Ok` when QEMU `qemu` knows this value.
            ///
            /// # Errors
            ///
            /// [`Unsupported`](crate::Unsupported) naming the value.
            pub fn check_version(
                &self,
                qemu: $crate::Version,
            ) -> Result<(), $crate::Unsupported> {
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
    };
}

/// Defines a command without arguments.
macro_rules! no_arguments {
    ($(#[$attr:meta])* $name:ident = $wire:literal -> $output:ty) => {
        $(#[$attr])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        #[derive(serde::Serialize, serde::Deserialize)]
        pub struct $name;

        impl $crate::Command for $name {
            const NAME: &'static str = $wire;
            type Output = $output;
        }
    };
}

/// Implements [`Command`](crate::Command) for an argument struct.
macro_rules! command {
    ($name:ident = $wire:literal -> $output:ty) => {
        impl $crate::Command for $name {
            const NAME: &'static str = $wire;
            type Output = $output;
        }
    };
}

mod block;
mod device;
mod fd;
mod machine;
mod migration;

pub use crate::command::Empty;
pub use block::{
    BlockDeviceInfo, BlockInfo, BlockdevAdd, BlockdevCacheInfo, BlockdevDel, BlockdevMirror,
    BlockdevOnError, ImageInfo, JobCancel, JobComplete, JobDismiss, JobInfo, JobStatus, JobType,
    MirrorCopyMode, MirrorSyncMode, QueryBlock, QueryJobs, QueryNamedBlockNodes,
};
pub use device::{
    ChardevAdd, ChardevBackend, ChardevRemove, ChardevReturn, DeviceAdd, DeviceDel, NetdevAdd,
    NetdevDel, ObjectPropertyInfo, QomGet, QomList, QomSet,
};
pub use fd::{AddFd, AddFdInfo, CloseFd, FdsetFdInfo, FdsetInfo, GetFd, QueryFdsets, RemoveFd};
pub use machine::{
    CommandInfo, Cont, CpuInfoFast, HumanMonitorCommand, ImageFormat, KvmInfo, NameInfo,
    QmpCapabilities, QueryCommands, QueryCpusFast, QueryKvm, QueryName, QueryQmpSchema,
    QueryStatus, QueryVersion, Quit, RunState, Screendump, ShutdownCause, StatusInfo, Stop,
    SystemPowerdown, SystemReset,
};
pub use migration::{
    Migrate, MigrateIncoming, MigrateSetCapabilities, MigrationCapability,
    MigrationCapabilityStatus, MigrationInfo, MigrationStats, MigrationStatus, QueryMigrate,
};
