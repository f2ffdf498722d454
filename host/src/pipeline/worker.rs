//! The dispatcher and the per-contact workers.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Event, Pipeline, PipelineError, inbound, status};
use crate::store::Batch;

/// Threads of a running pipeline; join them after cancelling.
pub struct PipelineHandle {
    threads: Vec<JoinHandle<()>>,
}

impl PipelineHandle {
    /// Waits for the dispatcher and every worker to finish their current
    /// event and stop.
    pub fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

impl Pipeline {
    /// Starts the dispatcher and `workers` workers. They stop when
    /// `shutdown` is cancelled, each after finishing its current event;
    /// events not yet applied stay in the journal for the next start.
    pub fn start(self: &Arc<Self>, shutdown: CancellationToken) -> std::io::Result<PipelineHandle> {
        let workers = self.stages.config.pipeline.worker_count();
        let depth = self.stages.config.pipeline.queue_depth.max(1);
        let mut threads = Vec::new();
        let mut senders = Vec::new();
        for i in 0..workers {
            let (tx, rx) = sync_channel::<(u64, Event)>(depth);
            senders.push(tx);
            let me = self.clone();
            let stop = shutdown.clone();
            threads.push(std::thread::Builder::new().name(format!("pipeline-{i}")).spawn(move || me.work(rx, stop))?);
        }
        let me = self.clone();
        let stop = shutdown.clone();
        threads.push(
            std::thread::Builder::new().name("pipeline-dispatch".into()).spawn(move || me.dispatch(senders, stop))?,
        );
        // Wake the dispatcher when shutting down so it notices promptly.
        let me = self.clone();
        tokio::spawn(async move {
            shutdown.cancelled().await;
            me.notify();
        });
        Ok(PipelineHandle { threads })
    }

    fn dispatch(&self, senders: Vec<SyncSender<(u64, Event)>>, shutdown: CancellationToken) {
        let mut cursor = 0u64;
        while !shutdown.is_cancelled() {
            let batch = match self.journal.read_after(cursor, 512) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "reading the journal failed; retrying");
                    std::thread::sleep(Duration::from_millis(200));
                    continue;
                }
            };
            if batch.is_empty() {
                self.wait_for_work();
                continue;
            }
            for (seq, event) in batch {
                let shard = (event.shard_key() % senders.len() as u64) as usize;
                if senders[shard].send((seq, event)).is_err() {
                    return; // the worker stopped: we are shutting down
                }
                cursor = seq;
            }
        }
    }

    fn wait_for_work(&self) {
        let Ok(mut flag) = self.wake.0.lock() else { return };
        if !*flag {
            flag = match self.wake.1.wait_timeout(flag, Duration::from_millis(250)) {
                Ok((f, _)) => f,
                Err(_) => return,
            };
        }
        *flag = false;
    }

    fn work(&self, events: Receiver<(u64, Event)>, shutdown: CancellationToken) {
        for (seq, event) in events {
            if shutdown.is_cancelled() {
                return;
            }
            self.apply(seq, &event, &shutdown);
        }
    }

    /// Applies one event, retrying what can succeed later and setting aside
    /// what never can, so one bad event never blocks a contact forever.
    fn apply(&self, seq: u64, event: &Event, shutdown: &CancellationToken) {
        let tenant = event.tenant().to_string();
        let span = tracing::info_span!("event", seq, kind = event.kind(), tenant = %tenant);
        let _entered = span.enter();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let result = match event {
                Event::Inbound(m) => inbound::handle(self, seq, m),
                Event::Status(s) => status::handle_status(self, seq, s),
                Event::SendResult(r) => status::handle_send_result(self, seq, r),
            };
            match result {
                Ok(()) => return,
                Err(e) if e.is_conflict() && attempt < 50 => continue,
                Err(e) if e.is_transient() && !shutdown.is_cancelled() => {
                    tracing::warn!(attempt, error = %e, "applying the event failed; retrying");
                    std::thread::sleep(Duration::from_millis(u64::from(attempt.min(20)) * 50));
                }
                Err(e) if e.is_transient() => return, // stays journaled for the next start
                Err(e) => {
                    tracing::error!(error = %e, "event cannot be applied; quarantined");
                    if let Err(q) = self.journal.quarantine(seq, event, &e.to_string()) {
                        tracing::error!(error = %q, "quarantining failed; the event stays in the journal");
                    }
                    return;
                }
            }
        }
    }

    /// Commits `batch` with the journal ack for `seq`.
    pub(super) fn commit(&self, seq: u64, mut batch: Batch) -> Result<(), PipelineError> {
        self.journal.ack(&mut batch, seq);
        self.stages.store.commit(batch)?;
        Ok(())
    }
}
