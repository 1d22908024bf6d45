//! Deadlines that accept any timeout, `Duration::MAX` ("forever") included.

use std::time::Duration;

use tokio::time::Instant;

/// About thirty years: later than any wait, early enough never to overflow.
const FAR_FUTURE: Duration = Duration::from_secs(60 * 60 * 24 * 365 * 30);

/// `start + timeout`, or a moment decades away when that would overflow
/// (as `Instant + Duration::MAX` does, with a panic).
pub(crate) fn deadline(start: Instant, timeout: Duration) -> Instant {
    start
        .checked_add(timeout)
        .unwrap_or_else(|| start + FAR_FUTURE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forever_does_not_overflow() {
        let now = Instant::now();
        assert!(deadline(now, Duration::MAX) > now + Duration::from_secs(60 * 60 * 24 * 365));
        assert_eq!(
            deadline(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
    }
}
