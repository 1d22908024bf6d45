//! The [`Command`] trait: a QMP command with typed arguments and output.

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::{Error, JsonObject, Request, Unsupported, Version};

/// A QMP command: its wire name, its arguments (the implementing value,
/// serialised) and the type of its `return` value.
///
/// Commands without arguments are unit structs; they serialise to `null` or
/// `{}`, and [`Command::to_request`] then sends no `arguments` at all.
/// The typed definitions live in [`commands`](crate::commands); raw JSON
/// stays possible with [`Request::new`].
///
/// # Versions
///
/// A command knows which QEMU releases accept it: [`SINCE`](Self::SINCE)
/// and [`UNTIL`](Self::UNTIL) bound the command itself, and
/// [`check_version`](Self::check_version) also checks the arguments and
/// enumeration values set on this value. A client calls `check_version`
/// with the greeting's version before sending, so a request the connected
/// QEMU cannot accept fails with [`Unsupported`] instead of a QEMU error.
pub trait Command: Serialize {
    /// The command's wire name, e.g. `query-status`.
    const NAME: &'static str;

    /// The first QEMU release known to have the command, when an older one
    /// this crate knows (7.2) lacks it; `None` otherwise.
    ///
    /// For the generated commands this is the release after the newest
    /// recorded one that lacks it (`(8, 0)` for everything 7.2 lacks and
    /// 10.0 has): the recorded schemas do not say in which release in
    /// between QEMU added it, so only the releases known to lack it are
    /// refused; an unrecorded one that lacks it answers `CommandNotFound`.
    const SINCE: Option<(u32, u32)> = None;

    /// The first QEMU release known not to have the command any more;
    /// `None` while every known release has it.
    const UNTIL: Option<(u32, u32)> = None;

    /// What the command returns.
    type Output: DeserializeOwned;

    /// `Ok` when QEMU `qemu` accepts this command with these arguments.
    ///
    /// The default checks [`SINCE`](Self::SINCE) and [`UNTIL`](Self::UNTIL);
    /// commands with arguments or values that exist in only some releases
    /// override it (calling [`Unsupported::check`] for each).
    ///
    /// # Errors
    ///
    /// [`Unsupported`], naming the command (or argument, or value), the
    /// version and the releases that have it.
    fn check_version(&self, qemu: Version) -> Result<(), Unsupported> {
        Unsupported::check(
            format_args!("command `{}`", Self::NAME),
            qemu,
            Self::SINCE,
            Self::UNTIL,
        )
    }

    /// The command's arguments as a JSON object; `None` when it has none.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] when serialisation fails, and
    /// [`Error::ArgumentsNotAnObject`] when the arguments serialise to
    /// something other than an object.
    fn arguments(&self) -> Result<Option<JsonObject>, Error> {
        match serde_json::to_value(self).map_err(Error::Encode)? {
            Value::Null => Ok(None),
            Value::Object(map) if map.is_empty() => Ok(None),
            Value::Object(map) => Ok(Some(map)),
            _ => Err(Error::ArgumentsNotAnObject {
                command: Self::NAME,
            }),
        }
    }

    /// An in-band request for this command, without an id.
    ///
    /// # Errors
    ///
    /// As [`Command::arguments`].
    fn to_request(&self) -> Result<Request, Error> {
        let request = Request::new(Self::NAME);
        Ok(match self.arguments()? {
            Some(arguments) => request.with_arguments(arguments),
            None => request,
        })
    }

    /// Reads the command's `return` value.
    ///
    /// # Errors
    ///
    /// The serde error when the value does not have the expected shape.
    fn parse_output(ret: Value) -> Result<Self::Output, serde_json::Error> {
        serde_json::from_value(ret)
    }
}

/// The output of commands that return nothing useful (`{}` on the wire).
///
/// Any value is accepted, so a QEMU that starts returning data does not
/// turn success into an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Empty;

impl<'de> Deserialize<'de> for Empty {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(deserializer).map(|_| Empty)
    }
}

impl Serialize for Empty {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        JsonObject::new().serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Serialize)]
    struct NoArgs;

    impl Command for NoArgs {
        const NAME: &'static str = "no-args";
        type Output = Empty;
    }

    #[derive(Serialize)]
    struct WithArgs {
        id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        bus: Option<String>,
    }

    impl Command for WithArgs {
        const NAME: &'static str = "with-args";
        type Output = u32;
    }

    #[derive(Serialize)]
    struct Wrong(u8);

    impl Command for Wrong {
        const NAME: &'static str = "wrong";
        type Output = Empty;
    }

    #[test]
    fn requests_from_commands() {
        let request = NoArgs.to_request().ok();
        assert_eq!(request, Some(Request::new("no-args")));
        let request = WithArgs {
            id: "d0".into(),
            bus: None,
        }
        .to_request()
        .ok();
        assert_eq!(
            request.map(|request| serde_json::to_value(request).ok()),
            Some(Some(
                json!({"execute": "with-args", "arguments": {"id": "d0"}})
            ))
        );
        assert!(matches!(
            Wrong(1).to_request(),
            Err(Error::ArgumentsNotAnObject { command: "wrong" })
        ));
    }

    #[derive(Serialize)]
    struct Young;

    impl Command for Young {
        const NAME: &'static str = "young";
        const SINCE: Option<(u32, u32)> = Some((9, 1));
        type Output = Empty;
    }

    #[test]
    fn versions_checked_by_default() {
        assert_eq!(NoArgs.check_version(Version::new(7, 2, 0)), Ok(()));
        assert_eq!(Young.check_version(Version::new(9, 1, 0)), Ok(()));
        let err = Young.check_version(Version::new(9, 0, 2));
        assert!(
            matches!(&err, Err(Unsupported { item, since: Some((9, 1)), until: None, .. })
                if item == "command `young`"),
            "{err:?}"
        );
    }

    #[test]
    fn outputs() {
        assert_eq!(NoArgs::parse_output(json!({})).ok(), Some(Empty));
        assert_eq!(NoArgs::parse_output(json!({"new": 1})).ok(), Some(Empty));
        assert_eq!(WithArgs::parse_output(json!(7)).ok(), Some(7));
        let wrong = WithArgs::parse_output(json!("seven"));
        assert!(matches!(&wrong, Err(e) if e.is_data()), "{wrong:?}");
    }
}
