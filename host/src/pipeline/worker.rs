//! The dispatcher and the workers.
//!
//! The dispatcher reads each tenant's journal from its own cursor into the
//! [`Scheduler`], keeping at most `queue_depth` of a tenant's events in
//! memory (the rest wait, durably, in the journal). Workers take jobs from
//! the scheduler: one contact's events in order, tenants in turn.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::scheduler::{Class, Job, Scheduler};
use super::{Event, Pipeline, PipelineError, inbound, learn, status, timer};
use crate::clock::thread_cpu_time;
use crate::metrics::labels;
use crate::store::Batch;

/// Attempts before an event that keeps failing is quarantined.
const MAX_FAILURES: u32 = 3;

/// Parked events (sequence numbers only, see `scheduler`) a tenant may have
/// before the dispatcher stops reading its journal: 16 bytes each.
const MAX_PARKED: usize = 1_000_000;

/// What a panic said, for the quarantine's cause.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(s), _) => (*s).to_string(),
        (_, Some(s)) => s.clone(),
        _ => "(no message)".into(),
    }
}

/// Threads of a running pipeline; join them after cancelling.
pub struct PipelineHandle {
    threads: Vec<JoinHandle<()>>,
    scheduler: Arc<Scheduler>,
    pipeline: Arc<Pipeline>,
}

impl PipelineHandle {
    /// Wakes the dispatcher and every worker (the shutdown token must be
    /// cancelled already) and waits for each to finish its current event
    /// and stop. Once this returns, no pipeline thread holds the store.
    pub fn join(self) {
        self.scheduler.close();
        self.pipeline.notify_all();
        for t in self.threads {
            let _ = t.join();
        }
    }
}

impl Pipeline {
    /// Starts the dispatcher and the workers. They stop when `shutdown` is
    /// cancelled, each after finishing its current event; events not yet
    /// applied stay in the journal for the next start.
    pub fn start(self: &Arc<Self>, shutdown: CancellationToken) -> std::io::Result<PipelineHandle> {
        let workers = self.stages.config.pipeline.worker_count();
        let background = (workers / 4).max(1);
        let scheduler = self.scheduler.clone();
        let mut threads = Vec::new();
        for i in 0..workers + background {
            let (me, sched, stop) = (self.clone(), scheduler.clone(), shutdown.clone());
            let (class, name) = if i < workers {
                (Class::Normal, format!("pipeline-{i}"))
            } else {
                (Class::Background, format!("pipeline-bg-{}", i - workers))
            };
            threads.push(std::thread::Builder::new().name(name).spawn(move || {
                if class == Class::Background {
                    crate::threads::lower_priority();
                }
                me.work(&sched, class, stop)
            })?);
        }
        let (me, sched, stop) = (self.clone(), scheduler.clone(), shutdown.clone());
        threads.push(
            std::thread::Builder::new().name("pipeline-dispatch".into()).spawn(move || me.dispatch(&sched, stop))?,
        );
        Ok(PipelineHandle { threads, scheduler, pipeline: self.clone() })
    }

    fn dispatch(&self, scheduler: &Scheduler, shutdown: CancellationToken) {
        let depth = self.stages.config.pipeline.queue_depth.max(1);
        let mut cursors: HashMap<String, u64> = HashMap::new();
        // Tenants that may have unread events: all of them at start.
        let mut todo: HashSet<String> = match self.journal.tenants_with_pending() {
            Ok(t) => t.into_iter().collect(),
            Err(e) => {
                tracing::error!(error = %e, "listing journaled tenants failed");
                HashSet::new()
            }
        };
        while !shutdown.is_cancelled() {
            todo.extend(self.take_dirty());
            let mut still = HashSet::new();
            let mut progressed = false;
            for tenant in todo.drain() {
                let (loaded, parked) = scheduler.queued(&tenant);
                if loaded >= depth || parked >= MAX_PARKED {
                    still.insert(tenant); // full: read more once it drains
                    continue;
                }
                let cursor = cursors.get(&tenant).copied().unwrap_or(0);
                match self.journal.read_after(&tenant, cursor, depth) {
                    Ok(events) => {
                        let full = events.len() == depth;
                        for (seq, event) in events {
                            cursors.insert(tenant.clone(), seq);
                            scheduler.push(&tenant, event.shard_key(), seq, event);
                            progressed = true;
                        }
                        if full {
                            still.insert(tenant);
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, %tenant, "reading the journal failed; retrying");
                        still.insert(tenant);
                    }
                }
            }
            todo = still;
            if !progressed {
                self.wait_for_work(if todo.is_empty() { Duration::from_millis(250) } else { Duration::from_millis(2) });
            }
        }
    }

    fn work(&self, scheduler: &Scheduler, class: Class, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let Some(job) = scheduler.take(class, Duration::from_millis(250)) else { continue };
            if shutdown.is_cancelled() {
                return;
            }
            // Cost is CPU time: wall time grows when the machine is busy
            // with others, and would send a cheap tenant to the background.
            let started = thread_cpu_time();
            self.apply(&job, scheduler, &shutdown);
            scheduler.done(&job, thread_cpu_time().saturating_sub(started));
            self.mark_dirty(&job.tenant);
        }
    }

    /// Applies one event. Storage trouble is retried (it is the host's, and
    /// the event will apply once storage is back); an event that itself
    /// fails — an error that can never succeed, or a panic, caught here —
    /// is set aside in the quarantine with its cause after
    /// [`MAX_FAILURES`] attempts, so one poisoned event never stops its
    /// contact's lane, let alone the tenant's.
    fn apply(&self, job: &Job, scheduler: &Scheduler, shutdown: &CancellationToken) {
        let span = tracing::info_span!("event", seq = job.seq, tenant = %job.tenant);
        let _entered = span.enter();
        let Some(event) = self.event_of(job, scheduler, shutdown) else { return };
        let (seq, event) = (job.seq, &event);
        let mut failures = 0u32;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| self.handle(seq, event)));
            let (cause, panicked) = match outcome {
                Ok(Ok(())) => return,
                Ok(Err(e)) if e.is_conflict() && attempt < 50 => continue,
                Ok(Err(e)) if e.is_transient() => {
                    if shutdown.is_cancelled() {
                        return; // stays journaled for the next start
                    }
                    tracing::warn!(attempt, kind = event.kind(), error = %e, "applying the event failed; retrying");
                    scheduler.failed_attempt(job, &e.to_string());
                    std::thread::sleep(Duration::from_millis(u64::from(attempt.min(20)) * 50));
                    continue;
                }
                // An error the same event will always meet: no retry.
                Ok(Err(e)) => {
                    failures = MAX_FAILURES;
                    (e.to_string(), false)
                }
                Err(panic) => {
                    failures += 1;
                    (format!("the host panicked applying it: {}", panic_message(panic.as_ref())), true)
                }
            };
            if failures < MAX_FAILURES {
                tracing::warn!(attempt, kind = event.kind(), %cause, "applying the event failed; trying again");
                scheduler.failed_attempt(job, &cause);
                continue;
            }
            self.set_aside(job, event, &cause, panicked, scheduler, shutdown);
            return;
        }
    }

    /// The job's event: in memory, or read back from the journal if it was
    /// parked. `None` if there is nothing (left) to apply.
    fn event_of(&self, job: &Job, scheduler: &Scheduler, shutdown: &CancellationToken) -> Option<Event> {
        if let Some(e) = &job.event {
            return Some(e.clone());
        }
        loop {
            match self.journal.get(&job.tenant, job.seq) {
                Ok(event) => {
                    if let Some(e) = &event {
                        scheduler.loaded(job, e.since());
                    }
                    return event;
                }
                Err(e) if !shutdown.is_cancelled() => {
                    tracing::warn!(error = %e, "reading a parked event failed; retrying");
                    scheduler.failed_attempt(job, &e.to_string());
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(_) => return None,
            }
        }
    }

    /// Moves the event to the quarantine, retrying while storage cannot
    /// write: leaving it in the journal would block the lane at the next
    /// start.
    fn set_aside(
        &self,
        job: &Job,
        event: &Event,
        cause: &str,
        panicked: bool,
        scheduler: &Scheduler,
        shutdown: &CancellationToken,
    ) {
        // Ids, never bodies, in the log: a message's text is the contact's.
        tracing::error!(kind = event.kind(), id = event.id(), %cause, "event cannot be applied; quarantined");
        let why = if panicked { "panic" } else { "error" };
        self.stages
            .metrics
            .quarantined_total
            .get_or_create(&labels::Quarantine { kind: event.kind(), cause: why })
            .inc();
        while let Err(e) = self.journal.quarantine(job.seq, event, cause) {
            if shutdown.is_cancelled() {
                return;
            }
            tracing::error!(error = %e, "quarantining failed; retrying");
            scheduler.failed_attempt(job, &e.to_string());
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn handle(&self, seq: u64, event: &Event) -> Result<(), PipelineError> {
        match event {
            Event::Inbound(m) => inbound::handle(self, seq, m),
            Event::Status(s) => status::handle_status(self, seq, s),
            Event::SendResult(r) => status::handle_send_result(self, seq, r),
            Event::TimerFired(t) => timer::handle_timer(self, seq, t),
            Event::ExchangeClosed(e) => learn::handle_exchange_closed(self, seq, e),
        }
    }

    /// Commits `batch` with the journal ack for `seq` of `tenant`.
    pub(super) fn commit(&self, tenant: &str, seq: u64, mut batch: Batch) -> Result<(), PipelineError> {
        self.journal.ack(&mut batch, tenant, seq);
        self.stages.store.commit(batch)?;
        self.journal.applied();
        Ok(())
    }
}
