//! qemu-console against in-memory and socket peers (no QEMU needed).

mod expect;
mod fake_shell;
mod flood;
mod lifecycle;
mod patterns;
mod run;
mod sockets;

use std::time::Duration;

/// Long enough never to fire on a loaded machine; tests that time out on
/// purpose use paused time.
const LONG: Duration = Duration::from_secs(30);
