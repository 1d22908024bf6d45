//! Reaping an ended (or just killed) child in the background, each child
//! on its own: a process stuck in the kernel (uninterruptible sleep)
//! delays nobody else's reaping.
//!
//! On a tokio runtime, a task awaits the child's pidfd and reaps it
//! without blocking; elsewhere (or if the runtime shuts down first) a
//! short-lived thread waits for that one child.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::process::Child;

use rustix::process::{WaitId, WaitIdOptions};
use tokio::io::unix::AsyncFd;

/// Reaps `child` (whose pidfd is `pidfd`) once it has ended.
pub(crate) fn child_later(child: Child, pidfd: OwnedFd) {
    later(Reap::new(Some(child), pidfd));
}

/// Reaps the child behind `pidfd` (one forked without `std::process`).
pub(crate) fn pidfd_later(pidfd: OwnedFd) {
    later(Reap::new(None, pidfd));
}

/// A child to reap; if dropped unreaped (its task cancelled by a runtime
/// shutting down), a thread takes over.
#[derive(Debug)]
struct Reap {
    child: Option<Child>,
    pidfd: OwnedFd,
    done: bool,
}

impl Reap {
    fn new(child: Option<Child>, pidfd: OwnedFd) -> Self {
        Self {
            child,
            pidfd,
            done: false,
        }
    }
}

fn later(mut reap: Reap) {
    if reap.try_reap() {
        return;
    }
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(reap.when_ended());
        }
        // Dropping it hands it to a thread.
        Err(_) => drop(reap),
    }
}

impl Reap {
    /// Reaps without blocking; `true` once the child is reaped (or cannot
    /// be: then there is nothing left to do either).
    fn try_reap(&mut self) -> bool {
        let reaped = match &mut self.child {
            Some(child) => !matches!(child.try_wait(), Ok(None)),
            None => !matches!(
                rustix::process::waitid(
                    WaitId::PidFd(self.pidfd.as_fd()),
                    WaitIdOptions::EXITED | WaitIdOptions::NOHANG,
                ),
                Ok(None)
            ),
        };
        self.done |= reaped;
        self.done
    }

    /// Awaits the pidfd (readable once the child ended), then reaps.
    async fn when_ended(mut self) {
        let watch = match self.pidfd.try_clone().and_then(watch_pidfd) {
            Ok(watch) => watch,
            // Dropping `self` hands the child to a thread.
            Err(_) => return,
        };
        loop {
            match watch.readable().await {
                Ok(mut ready) => {
                    if self.try_reap() {
                        return;
                    }
                    ready.clear_ready();
                }
                Err(_) => return,
            }
        }
    }

    /// Blocks until the child ended and reaps it.
    fn wait_blocking(&mut self) {
        let result = match &mut self.child {
            Some(child) => child.wait().map(drop),
            None => {
                rustix::process::waitid(WaitId::PidFd(self.pidfd.as_fd()), WaitIdOptions::EXITED)
                    .map(drop)
                    .map_err(io::Error::from)
            }
        };
        if let Err(error) = result {
            tracing::warn!(%error, "could not reap a child of qemu-machine");
        }
    }
}

impl Drop for Reap {
    fn drop(&mut self) {
        if self.done || self.try_reap() {
            return;
        }
        // The last resort: a thread for this one child. Marked done first,
        // so that a failed thread start drops it without recursing.
        self.done = true;
        let pidfd = match self.pidfd.try_clone() {
            Ok(pidfd) => pidfd,
            Err(error) => {
                tracing::warn!(%error, "could not reap a child of qemu-machine");
                return;
            }
        };
        let mut reap = Reap::new(self.child.take(), pidfd);
        reap.done = true;
        let started = std::thread::Builder::new()
            .name("qemu-machine-reap".into())
            .spawn(move || reap.wait_blocking());
        if let Err(error) = started {
            tracing::warn!(%error, "could not start a thread to reap a child");
        }
    }
}

/// Registers a pidfd with the tokio reactor: it turns readable when the
/// process ends.
pub(crate) fn watch_pidfd(pidfd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // tokio deprecated the safe constructor because a generic `AsRawFd` may
    // close or swap its descriptor; an `OwnedFd` cannot, so it is sound here.
    #[allow(deprecated)]
    AsyncFd::with_interest(pidfd, tokio::io::Interest::READABLE)
}
