//! The send loop: queue → (durable) → Meta, with retries, then the result
//! back into the journal.
//!
//! Sends to one contact go one at a time, in queue order, so a bot reply
//! never overtakes the message before it. Different contacts go in
//! parallel up to `outbound.concurrency`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{GraphClient, Outbox, SendJob, SendKind, SendOutcome, SendResult};
use crate::clock::SharedClock;
use crate::config::OutboundConfig;
use crate::metrics::{Metrics, labels};
use crate::store::{Batch, Store, StoreError};
use crate::tenants::Tenants;

/// Jobs held in memory ahead of being sent.
const READ_AHEAD: usize = 512;
/// Meta's per-contact limit ("pair rate limit"): about one message every
/// six seconds to the same person, sustained; a send it refuses waits at
/// least that long before its next attempt.
const PAIR_RATE_LIMITED: i64 = 131056;
const PAIR_RATE_WAIT: Duration = Duration::from_secs(6);
/// How often the whole queue is read again (see `Worker::run`).
const RESCAN: Duration = Duration::from_secs(1);

/// Where results go: the pipeline's journal, committed with `batch` (which
/// removes the job from the queue).
pub type ResultSink = Arc<dyn Fn(SendResult, Batch) -> Result<(), StoreError> + Send + Sync>;

/// How a job's turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    Done,
    /// Past the number's messaging limit: looked at again shortly.
    Waiting,
}

/// How long a job waiting for the messaging limit is left alone.
const TIER_RECHECK: Duration = Duration::from_secs(5);

/// A number's pace: one send every `1 / messages_per_second`.
type Pacer = governor::DefaultDirectRateLimiter;

pub struct Worker {
    pub outbox: Outbox,
    pub client: GraphClient,
    pub tenants: Tenants,
    pub store: Store,
    pub clock: SharedClock,
    pub config: OutboundConfig,
    pub sink: ResultSink,
    pub wake: Arc<Notify>,
    pub metrics: Arc<Metrics>,
    /// Phone-number id → its rate and pacer.
    pub pacers: std::sync::Mutex<HashMap<String, (u32, Arc<Pacer>)>>,
    /// Who each number started conversations with today.
    pub tier: super::tier::Tier,
}

impl Worker {
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        self.recover().await;
        let mut d = Dispatch::default();
        // Receipts are queued with a wake: looked for then and on the
        // rescan, not each time a send ends.
        let mut receipts = true;
        loop {
            if std::mem::take(&mut receipts) {
                self.send_receipts().await;
            }
            d.read(&self);
            d.start(&self, &shutdown);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => receipts = true,
                Some(done) = d.tasks.join_next_with_id() => d.finished(done),
                _ = tokio::time::sleep(RESCAN) => receipts = true,
            }
        }
        // Sends in progress finish or are abandoned (they stay queued and
        // go out on the next start: at-least-once).
        while d.tasks.join_next().await.is_some() {}
    }

    /// Sends the waiting read receipts, once each (see `receipts`).
    async fn send_receipts(&self) {
        let waiting = match self.outbox.receipts(64) {
            Ok(r) => r,
            Err(e) => return tracing::warn!(error = %e, "reading read receipts failed"),
        };
        for (key, receipt) in waiting {
            let token = self.tenants.get(&receipt.tenant).ok().flatten().and_then(|t| t.access_token);
            let outcome = match token {
                None => "read_receipt_dry_run",
                Some(token) => {
                    let path = format!("{}/messages", receipt.phone_number_id);
                    match self.client.call(reqwest::Method::POST, &path, &token, &[], Some(&receipt.body())).await {
                        Ok(_) => "read_receipt",
                        Err(e) => {
                            tracing::warn!(error = %e, message_id = %receipt.message_id, "a read receipt was not taken");
                            "read_receipt_failed"
                        }
                    }
                }
            };
            self.metrics.sends.get_or_create(&labels::Send { outcome }).inc();
            if let Err(e) = self.outbox.forget_receipt(&key) {
                tracing::warn!(error = %e, "forgetting a sent read receipt failed");
            }
        }
    }

    /// The number's pacer: evenly spaced (no bursts), at 90% of `rate` a
    /// second, so that Meta — counting arrivals, which the network can
    /// bunch up — never sees more than `rate` in a second.
    fn pacer(&self, number: &str, rate: u32) -> Arc<Pacer> {
        let Ok(mut pacers) = self.pacers.lock() else {
            return Arc::new(governor::RateLimiter::direct(governor::Quota::per_second(std::num::NonZeroU32::MIN)));
        };
        match pacers.get(number) {
            Some((r, pacer)) if *r == rate => pacer.clone(),
            _ => {
                let every = Duration::from_secs_f64(1.0 / (f64::from(rate.max(1)) * 0.9));
                let quota = governor::Quota::with_period(every)
                    .unwrap_or(governor::Quota::per_second(std::num::NonZeroU32::MIN));
                let pacer = Arc::new(governor::RateLimiter::direct(quota));
                pacers.insert(number.to_string(), (rate, pacer.clone()));
                pacer
            }
        }
    }

    /// Sends one job and records its outcome; `Waiting` if it must wait
    /// for the number's messaging limit (it stays queued).
    async fn deliver(&self, key: &[u8], job: SendJob, shutdown: CancellationToken) -> Delivery {
        self.try_deliver(key, job, shutdown).await.unwrap_or(Delivery::Done)
    }

    async fn try_deliver(&self, key: &[u8], job: SendJob, shutdown: CancellationToken) -> Option<Delivery> {
        let tenant = match self.tenants.get(&job.tenant) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "not sending: tenant lookup failed");
                return None;
            }
        };
        let rate = tenant.as_ref().and_then(|t| t.messages_per_second).unwrap_or(self.config.messages_per_second);
        let token = tenant.as_ref().and_then(|t| t.access_token.clone());
        // A dry run leaves the host: nothing to wait for, and doing it
        // again after a crash is harmless.
        let Some(token) = token else {
            self.record(key, &job, SendOutcome::DryRun, false).await;
            return None;
        };
        // Past the number's messaging limit the job stays queued, and is
        // looked at again a few seconds later.
        let limit = tenant.and_then(|t| t.unique_users_per_day);
        if job.starts_conversation {
            match self.tier.admit(&job.phone_number_id, &job.to, limit, self.clock.now_ms()) {
                Ok(true) => {}
                Ok(false) => {
                    self.metrics.sends.get_or_create(&labels::Send { outcome: "waiting_for_tier" }).inc();
                    return Some(Delivery::Waiting);
                }
                Err(e) => {
                    tracing::error!(error = %e, "not sending: the messaging limit could not be read");
                    return None;
                }
            }
        }
        // Mark the send started and wait until that mark — and the decision
        // that queued the job — is on disk: never send for a decision a
        // crash could undo, and after a crash know which sends may have
        // gone out (see `recover`).
        if let Err(e) = self.outbox.start(key, self.clock.now_ms()) {
            tracing::error!(error = %e, "not sending: the send could not be marked started");
            return None;
        }
        if let Err(e) = self.store.sync().await {
            tracing::error!(error = %e, "not sending: the store could not sync");
            return None;
        }
        let pacer = self.pacer(&job.phone_number_id, rate);
        let Some(outcome) = self.send_with_retries(&job, &token, &pacer, &shutdown).await else {
            // Shutting down between attempts, the last of which Meta
            // refused: not sent; the job goes out on the next start.
            if let Err(e) = self.outbox.restart(key) {
                tracing::warn!(error = %e, "clearing a send's start mark failed");
            }
            return None;
        };
        self.record(key, &job, outcome, true).await;
        None
    }

    /// Journals a send's outcome with the job's removal — durably when it
    /// went to Meta: until that is on disk a crash would leave the send
    /// marked started.
    async fn record(&self, key: &[u8], job: &SendJob, outcome: SendOutcome, durably: bool) {
        self.metrics.sends.get_or_create(&labels::Send { outcome: outcome_label(&outcome) }).inc();
        let result = SendResult {
            tenant: job.tenant.clone(),
            message_id: job.message_id.clone(),
            to: job.to.clone(),
            lane: job.lane.clone(),
            at: self.clock.now_ms(),
            outcome,
        };
        let mut batch = Batch::new();
        self.outbox.remove(&mut batch, key);
        if let Err(e) = (self.sink)(result, batch) {
            tracing::error!(error = %e, message_id = %job.message_id, "recording a send result failed");
            return;
        }
        if durably && let Err(e) = self.store.sync().await {
            tracing::error!(error = %e, message_id = %job.message_id, "a send result could not be synced");
        }
    }

    /// Settles the sends a crash interrupted, before sending anything: a
    /// job marked started whose result was never recorded may or may not
    /// have reached Meta. Automated messages are recorded as
    /// [`SendOutcome::Unknown`] and not sent again (a duplicate reply is
    /// worse than a gap, and a status webhook naming the message settles
    /// it later); staff replies are sent again only if the operator chose
    /// so (`outbound.resend_unknown_staff_replies`).
    pub async fn recover(&self) {
        let interrupted = match self.outbox.in_flight() {
            Ok(list) => list,
            Err(e) => {
                tracing::error!(error = %e, "reading interrupted sends failed");
                return;
            }
        };
        for super::Started { key, at: started_at, job } in interrupted {
            match job {
                Some(job) if job.kind == SendKind::Staff && self.config.resend_unknown_staff_replies => {
                    tracing::warn!(message_id = %job.message_id, "a staff reply's send was interrupted; sending it again");
                    if let Err(e) = self.outbox.restart(&key) {
                        tracing::error!(error = %e, "clearing a send's start mark failed");
                    }
                }
                Some(job) => {
                    tracing::warn!(message_id = %job.message_id, "a send was interrupted by a crash; its outcome is unknown and it is not sent again");
                    self.record(&key, &job, SendOutcome::Unknown { started_at }, true).await;
                }
                None => {
                    // Its result was recorded; only the mark was left.
                    let _ = self.outbox.restart(&key);
                }
            }
        }
    }

    /// Sends, paced to the number's throughput, retrying what Meta says
    /// to retry; `None` if the host stopped first.
    async fn send_with_retries(
        &self,
        job: &SendJob,
        token: &str,
        pacer: &Pacer,
        shutdown: &CancellationToken,
    ) -> Option<SendOutcome> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = pacer.until_ready() => {}
            }
            let quoting = job.quoting.as_deref();
            match self.client.send(&job.phone_number_id, token, &job.to, &job.reply, &job.message_id, quoting).await {
                Ok(wamid) => return Some(SendOutcome::Sent { wamid }),
                Err(e) if e.retryable && attempt < self.config.max_attempts => {
                    let mut backoff = e.retry_after.unwrap_or_else(|| self.backoff(attempt));
                    if e.error.code == PAIR_RATE_LIMITED {
                        backoff = backoff.max(PAIR_RATE_WAIT);
                    }
                    tracing::warn!(attempt, error = %e, wait_ms = backoff.as_millis() as u64, message_id = %job.message_id, "send failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return None,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(attempt, error = %e, message_id = %job.message_id, "send failed");
                    return Some(SendOutcome::Failed { errors: vec![e.error], attempts: attempt });
                }
            }
        }
    }

    /// Capped at a minute: Meta's throttling windows are shorter.
    fn backoff(&self, attempt: u32) -> Duration {
        crate::retry::backoff(self.config.initial_backoff, attempt, Duration::from_secs(60))
    }
}

fn outcome_label(o: &SendOutcome) -> &'static str {
    match o {
        SendOutcome::Sent { .. } => "sent",
        SendOutcome::DryRun => "dry_run",
        SendOutcome::Failed { .. } => "failed",
        SendOutcome::Unknown { .. } => "unknown",
    }
}

/// The sender's state: what it has read from the queue and what is being
/// sent.
#[derive(Default)]
struct Dispatch {
    tasks: JoinSet<Delivery>,
    /// Jobs waiting for their number's messaging limit, until when they
    /// are left out of the reading (they would hold the read-ahead).
    waiting_for_tier: HashMap<Vec<u8>, Instant>,
    /// Job key → its contact, for every send in progress.
    running: HashMap<Vec<u8>, (String, String)>,
    task_keys: HashMap<tokio::task::Id, Vec<u8>>,
    /// Jobs read from the queue and not started yet (their contact is
    /// busy, or `concurrency` sends are running), in queue order.
    waiting: BTreeMap<Vec<u8>, SendJob>,
    /// The queue is read past the last key seen, so a wake costs what is
    /// new, not the whole queue. Keys are taken before their commit, so a
    /// job can land behind the cursor; a rescan from the start, a second
    /// after the last, picks those up (and jobs whose send must be tried
    /// again, which leave `running` without leaving the queue).
    cursor: Vec<u8>,
    rescanned: Option<Instant>,
}

impl Dispatch {
    fn read(&mut self, worker: &Worker) {
        let rescan = self.rescanned.is_none_or(|r| r.elapsed() >= RESCAN);
        if rescan {
            self.cursor.clear();
            self.rescanned = Some(Instant::now());
        }
        let room = READ_AHEAD.saturating_sub(self.waiting.len());
        if room == 0 {
            return;
        }
        let now = Instant::now();
        self.waiting_for_tier.retain(|_, until| *until > now);
        let known = |k: &[u8]| {
            self.running.contains_key(k) || self.waiting.contains_key(k) || self.waiting_for_tier.contains_key(k)
        };
        match worker.outbox.pending_after(&self.cursor, room, known) {
            Ok(jobs) => {
                if let Some((last, _)) = jobs.last()
                    && (rescan || last.as_slice() > self.cursor.as_slice())
                {
                    self.cursor = last.clone();
                }
                self.waiting.extend(jobs);
            }
            Err(e) => tracing::error!(error = %e, "reading the send queue failed"),
        }
    }

    /// Starts waiting jobs while there is room, one per contact at a time:
    /// a contact's later jobs wait for its earlier one.
    fn start(&mut self, worker: &Arc<Worker>, shutdown: &CancellationToken) {
        let mut busy: HashSet<(String, String)> = self.running.values().cloned().collect();
        let mut started = Vec::new();
        for (key, job) in &self.waiting {
            if self.running.len() >= worker.config.concurrency {
                break;
            }
            let contact = (job.tenant.clone(), job.to.clone());
            if !busy.insert(contact.clone()) {
                continue;
            }
            self.running.insert(key.clone(), contact);
            started.push(key.clone());
        }
        for key in started {
            let Some(job) = self.waiting.remove(&key) else { continue };
            let (me, stop, task_key) = (worker.clone(), shutdown.clone(), key.clone());
            let handle = self.tasks.spawn(async move { me.deliver(&key, job, stop).await });
            self.task_keys.insert(handle.id(), task_key);
        }
    }

    fn finished(&mut self, done: Result<(tokio::task::Id, Delivery), tokio::task::JoinError>) {
        let (id, delivery) = match &done {
            Ok((id, d)) => (*id, *d),
            Err(e) => (e.id(), Delivery::Done),
        };
        if let Some(key) = self.task_keys.remove(&id) {
            self.running.remove(&key);
            if delivery == Delivery::Waiting {
                self.waiting_for_tier.insert(key, Instant::now() + TIER_RECHECK);
            }
        }
    }
}
