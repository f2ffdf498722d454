//! Group commit: many waiters, one fsync.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;

use tokio::sync::watch;

use super::{Result, StoreError};

/// Each `sync` takes a ticket after its writes; one flush covers every
/// ticket taken before it started, so concurrent waiters share an fsync.
pub(super) struct Flusher {
    engine: Arc<dyn super::Engine>,
    health: Arc<super::health::Health>,
    tickets: AtomicU64,
    signal: Arc<Signal>,
}

/// Kept apart from the `Flusher` so the thread can wait on it, and report
/// a flush, without keeping the database open: the database (and its file
/// lock) must be gone the moment the last `Store` is, or a restart in the
/// same process finds the directory still locked.
struct Signal {
    pending: Mutex<bool>,
    wake: Condvar,
    /// (highest ticket flushed, the error if that flush failed)
    done: watch::Sender<(u64, Option<Arc<str>>)>,
}

impl Flusher {
    pub(super) fn start(engine: Arc<dyn super::Engine>, health: Arc<super::health::Health>) -> Arc<Flusher> {
        let signal =
            Arc::new(Signal { pending: Mutex::new(false), wake: Condvar::new(), done: watch::channel((0, None)).0 });
        let flusher = Arc::new(Flusher { engine, health, tickets: AtomicU64::new(0), signal: signal.clone() });
        let weak = Arc::downgrade(&flusher);
        if let Err(e) = std::thread::Builder::new().name("store-flush".into()).spawn(move || run(weak, signal)) {
            tracing::error!("cannot start the flush thread: {e}");
        }
        flusher
    }

    pub(super) async fn sync(&self) -> Result<()> {
        let ticket = self.tickets.fetch_add(1, Ordering::SeqCst) + 1;
        let mut done = self.signal.done.subscribe();
        {
            let mut pending = self.signal.pending.lock().map_err(|_| StoreError::Closed)?;
            *pending = true;
            self.signal.wake.notify_one();
        }
        let state = done.wait_for(|(flushed, _)| *flushed >= ticket).await.map_err(|_| StoreError::Closed)?;
        match &state.1 {
            Some(e) => Err(StoreError::Engine(format!("flush failed: {e}"))),
            None => Ok(()),
        }
    }
}

/// Holds only a weak handle while waiting, so the database closes (and its
/// file lock is released) as soon as the last `Store` is dropped.
fn run(weak: Weak<Flusher>, signal: Arc<Signal>) {
    loop {
        {
            let Ok(mut pending) = signal.pending.lock() else { return };
            while !*pending {
                if weak.strong_count() == 0 {
                    return;
                }
                pending = match signal.wake.wait_timeout(pending, Duration::from_millis(50)) {
                    Ok((guard, _)) => guard,
                    Err(_) => return,
                };
            }
            *pending = false;
        }
        let Some(f) = weak.upgrade() else { return };
        let upto = f.tickets.load(Ordering::SeqCst);
        let error = f.engine.flush().err().map(|e| Arc::<str>::from(e.to_string()));
        if let Some(e) = &error {
            f.health.failed(e);
        }
        // Let go of the database before waking the waiters: the last of
        // them may be shutting down and expect it closed once it returns.
        drop(f);
        if let Some(e) = &error {
            tracing::error!(error = %e, "flushing the store to disk failed");
        }
        signal.done.send_replace((upto, error));
    }
}
