//! The delivery worker: outbox → tenant CRM endpoints, signed, in order per
//! contact, at-least-once, with backoff, jitter and dead letters.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{DeadLetter, Endpoint, Outbox, QueueEntry};
use crate::clock::{Millis, SharedClock};
use crate::config::SyncConfig;
use crate::metrics::{Metrics, labels};
use crate::model::new_id;
use crate::store::Batch;

/// Events younger than this wait one round, so commits racing for the same
/// contact land before either is sent (order per contact).
const SETTLE_US: i64 = 200_000;

/// Failed attempts so far and the last error, per queued event.
type Attempts = HashMap<Vec<u8>, (u32, String)>;

/// `sha256=<hex>` of the body with the endpoint's secret: the scheme Meta
/// signs its webhooks with, so a receiver verifies both the same way.
pub fn sign(secret: &str, body: &[u8]) -> String {
    crate::ingest::signature::sign(secret.as_bytes(), body)
}

/// An error with its causes: reqwest's own message hides why a connection
/// failed (refused, timed out, an internal destination…).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

pub struct Delivery {
    pub outbox: Outbox,
    pub http: reqwest::Client,
    pub clock: SharedClock,
    pub config: SyncConfig,
    pub metrics: Arc<Metrics>,
    pub wake: Arc<Notify>,
}

impl Delivery {
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut attempts = Attempts::new();
        loop {
            let busy = match self.round(&mut attempts).await {
                Ok(busy) => busy,
                Err(e) => {
                    tracing::warn!(error = %e, "CRM sync round failed");
                    false
                }
            };
            let pause = if busy { Duration::from_millis(5) } else { Duration::from_millis(100) };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One pass over every endpoint; true if anything was delivered.
    async fn round(&self, attempts: &mut Attempts) -> Result<bool, crate::store::StoreError> {
        let mut busy = false;
        for endpoint in self.outbox.endpoints.all()? {
            busy |= self.deliver(&endpoint, attempts).await? > 0;
        }
        Ok(busy)
    }

    /// Sends the endpoint's next events (one per contact, up to
    /// `concurrency`) unless it is backing off; returns how many arrived.
    async fn deliver(&self, endpoint: &Endpoint, attempts: &mut Attempts) -> Result<u64, crate::store::StoreError> {
        let now = self.clock.now_ms();
        let health = self.outbox.endpoints.health(endpoint);
        if health.retry_at.is_some_and(|t| t > now) {
            return Ok(0);
        }
        let now_us = crate::clock::wall_micros();
        let heads: Vec<(Vec<u8>, QueueEntry)> = self
            .outbox
            .heads(&endpoint.id, self.config.concurrency.max(1))?
            .into_iter()
            .filter(|(_, e)| now_us - e.emitted_us >= SETTLE_US)
            .collect();
        if heads.is_empty() {
            return Ok(0);
        }
        let results = futures::future::join_all(heads.iter().map(|(_, entry)| self.send(endpoint, entry))).await;
        let mut batch = Batch::new();
        let (mut ok, mut failed) = (0, 0);
        // This endpoint's own last error: the attempt map spans every
        // tenant's endpoints.
        let mut last_error = None;
        for (head, result) in heads.iter().zip(results) {
            match result {
                Ok(()) => {
                    ok += 1;
                    attempts.remove(&head.0);
                    self.outbox.dequeue(&mut batch, &head.0);
                }
                Err(error) => {
                    failed += 1;
                    self.failed(&mut batch, endpoint, attempts, head, &error)?;
                    last_error = Some(error);
                }
            }
        }
        self.outbox.commit(batch)?;
        self.record(endpoint, health.consecutive_failures, ok, failed, last_error, now);
        Ok(ok)
    }

    /// Counts a failed attempt; past `max_attempts` the event moves to the
    /// endpoint's dead letters and leaves the queue.
    fn failed(
        &self,
        batch: &mut Batch,
        endpoint: &Endpoint,
        attempts: &mut Attempts,
        (key, entry): &(Vec<u8>, QueueEntry),
        error: &str,
    ) -> Result<(), crate::store::StoreError> {
        let a = attempts.entry(key.to_vec()).or_insert((0, String::new()));
        a.0 += 1;
        a.1 = error.to_string();
        if a.0 < self.config.max_attempts {
            return Ok(());
        }
        if let Some(event) = self.outbox.event(&entry.event)? {
            let dead = DeadLetter {
                id: new_id("dead"),
                endpoint: endpoint.id.clone(),
                event,
                attempts: a.0,
                last_error: error.to_string(),
                dead_at: self.clock.now_ms(),
            };
            self.outbox.endpoints.add_dead(batch, &endpoint.tenant, &dead)?;
            self.outbox.endpoints.update_health(endpoint, |h| h.dead_lettered += 1);
            tracing::warn!(endpoint = %endpoint.id, attempts = a.0, %error, "CRM event dead-lettered");
        }
        attempts.remove(key);
        self.outbox.dequeue(batch, key);
        Ok(())
    }

    /// The endpoint's health and metrics after a delivery.
    fn record(
        &self,
        endpoint: &Endpoint,
        failures: u32,
        ok: u64,
        failed: u64,
        last_error: Option<String>,
        now: Millis,
    ) {
        let m = |result| labels::Delivery { tenant: endpoint.tenant.clone(), endpoint: endpoint.id.clone(), result };
        self.metrics.sync_deliveries.get_or_create(&m("delivered")).inc_by(ok);
        self.metrics.sync_deliveries.get_or_create(&m("failed")).inc_by(failed);
        let backoff = self.backoff(failures + 1);
        self.outbox.endpoints.update_health(endpoint, |h| {
            h.delivered += ok;
            h.failed_attempts += failed;
            if ok > 0 {
                h.last_success_at = Some(now);
            }
            if failed > 0 && ok == 0 {
                h.consecutive_failures += 1;
                h.retry_at = Some(now + backoff.as_millis() as i64);
                h.last_error = last_error;
            } else {
                h.consecutive_failures = 0;
                h.retry_at = None;
            }
        });
    }

    async fn send(&self, endpoint: &Endpoint, entry: &QueueEntry) -> Result<(), String> {
        let Ok(Some(event)) = self.outbox.event(&entry.event) else { return Ok(()) }; // nothing left to send
        if !self.config.allow_internal_destinations {
            let url = reqwest::Url::parse(&endpoint.url).map_err(|e| format!("invalid URL: {e}"))?;
            super::destination::check_url(&url).map_err(|e| e.to_string())?;
        }
        let body = serde_json::to_vec(&event).map_err(|e| e.to_string())?;
        let response = self
            .http
            .post(&endpoint.url)
            .header("content-type", "application/json")
            .header("x-switchboard-event-id", &event.id)
            .header("x-switchboard-event-type", event.kind.as_str())
            .header("x-switchboard-idempotency-key", &event.idempotency_key)
            .header("x-switchboard-signature", sign(&endpoint.secret, &body))
            .body(body)
            .send()
            .await
            .map_err(|e| format!("network: {}", error_chain(&e)))?;
        match response.status() {
            s if s.is_success() => Ok(()),
            s => Err(format!("HTTP {s}")),
        }
    }

    fn backoff(&self, failures: u32) -> Duration {
        crate::retry::backoff(self.config.initial_backoff, failures, self.config.max_backoff)
    }
}
