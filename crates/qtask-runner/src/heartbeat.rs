//! The heartbeat thread that renews the lease of the task in hand.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::Scope;
use std::time::Duration;

use qtask_pool::{PoolError, TaskPool};

/// Starts renewing `id`'s lease every third of `lease` until the returned sender is dropped.
///
/// When the pool says the lease is lost, `lost` and `cancel` are raised: the result would be
/// refused anyway, so the work should stop. Other errors (a store that is briefly away) are
/// retried at the next beat while the lease may still be valid.
pub(crate) fn start<'scope, 'env: 'scope>(
    scope: &'scope Scope<'scope, 'env>,
    pool: &'env dyn TaskPool,
    id: String,
    token: String,
    lease: Duration,
    cancel: Arc<AtomicBool>,
    lost: Arc<AtomicBool>,
) -> Sender<()> {
    let (tx, rx) = mpsc::channel::<()>();
    let every = (lease / 3).max(Duration::from_millis(50));
    scope.spawn(move || {
        loop {
            match rx.recv_timeout(every) {
                Err(RecvTimeoutError::Timeout) => match pool.heartbeat(&id, &token, lease) {
                    Ok(()) => {}
                    Err(PoolError::LeaseLost { .. } | PoolError::NotFound { .. }) => {
                        lost.store(true, Ordering::SeqCst);
                        cancel.store(true, Ordering::SeqCst);
                        return;
                    }
                    Err(_) => {}
                },
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    });
    tx
}
