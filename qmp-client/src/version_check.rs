//! The version policy for typed commands: refuse before sending what the
//! connected QEMU is known to lack, and name its version when QEMU answers
//! `CommandNotFound`.

use qmp_proto::{Command, ErrorClass, Greeting, Unsupported};

use crate::error::Error;

/// `Ok` when the QEMU that sent `greeting` accepts `command` with its
/// arguments (see [`Command::check_version`]).
pub(crate) fn check<C: Command>(command: &C, greeting: &Greeting) -> Result<(), Error> {
    Ok(command.check_version(greeting.version())?)
}

/// A `CommandNotFound` reply to a typed command becomes [`Error::Unsupported`]
/// naming the connected version; other errors pass unchanged.
pub(crate) fn name_version<C: Command>(error: Error, greeting: &Greeting) -> Error {
    match error {
        Error::Qmp {
            class: ErrorClass::CommandNotFound,
            ..
        } => Error::Unsupported(Unsupported {
            item: format!("command `{}`", C::NAME),
            qemu: greeting.version(),
            // QEMU said no within the bounds we know: a build or target
            // without it, so no range to suggest.
            since: None,
            until: None,
        }),
        other => other,
    }
}
