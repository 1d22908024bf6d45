//! `guest-sync-delimited`: resynchronising with the agent.

use serde::{Deserialize, Serialize};

use crate::Command;

/// The byte that resets the agent's parser, and that the agent writes
/// before its reply to [`GuestSyncDelimited`].
pub const SYNC_SENTINEL: u8 = 0xFF;

/// `guest-sync-delimited`: the agent answers with `id`, preceded by
/// [`SYNC_SENTINEL`]. Send the sentinel first (the agent drops any
/// partial input), then this with a fresh random `id`, then discard input
/// up to the sentinel and retry until a reply carries `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GuestSyncDelimited {
    /// The token the agent echoes.
    pub id: i64,
}

impl GuestSyncDelimited {
    /// A sync carrying `id`.
    pub fn new(id: i64) -> Self {
        Self { id }
    }
}

impl Command for GuestSyncDelimited {
    const NAME: &'static str = "guest-sync-delimited";
    type Output = i64;
}
