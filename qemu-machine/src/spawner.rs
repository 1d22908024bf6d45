//! The long-lived thread QEMU is forked from.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits,
//! not the process. Forking from a tokio `spawn_blocking` thread (which
//! retires after an idle period) or from the caller's thread would kill
//! QEMU behind the user's back. The spawner thread lives as long as the
//! process, so the death signal fires exactly when the supervisor dies.

use std::io;
use std::sync::OnceLock;
use std::sync::mpsc::{self, Sender};
use std::thread;

type Job = Box<dyn FnOnce() + Send>;

/// Runs `job` on the spawner thread and returns its result.
///
/// If the caller stops waiting (its future is dropped), the result is
/// dropped on the spawner thread: results must clean up in `Drop`.
pub(crate) async fn on_spawner_thread<T, F>(job: F) -> io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let sender = spawner()
        .ok_or_else(|| io::Error::other("the qemu-machine spawner thread could not be started"))?;
    let (reply, result) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        // A send error means the caller gave up; dropping the value cleans up.
        let _ignored = reply.send(job());
    });
    sender
        .send(job)
        .map_err(|_| io::Error::other("the qemu-machine spawner thread has stopped"))?;
    result
        .await
        .map_err(|_| io::Error::other("the qemu-machine spawner thread dropped a spawn request"))
}

fn spawner() -> Option<&'static Sender<Job>> {
    static SPAWNER: OnceLock<Option<Sender<Job>>> = OnceLock::new();
    SPAWNER
        .get_or_init(|| {
            let (sender, jobs) = mpsc::channel::<Job>();
            let started = thread::Builder::new()
                .name("qemu-machine-spawner".into())
                .spawn(move || {
                    for job in jobs {
                        job();
                    }
                });
            match started {
                Ok(_handle) => Some(sender),
                Err(error) => {
                    tracing::error!(%error, "could not start the qemu-machine spawner thread");
                    None
                }
            }
        })
        .as_ref()
}
