//! The delivery worker: outbox → tenant CRM endpoints, signed, in order per
//! contact, at-least-once, with backoff, jitter and dead letters.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use rand::RngExt;
use sha2::Sha256;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{DeadLetter, Endpoint, Outbox, QueueEntry};
use crate::clock::SharedClock;
use crate::config::SyncConfig;
use crate::metrics::{Metrics, labels};
use crate::model::new_id;
use crate::store::Batch;

/// Events younger than this wait one round, so commits racing for the same
/// contact land before either is sent (order per contact).
const SETTLE_US: i64 = 200_000;

/// `sha256=<hex>` of the body with the endpoint's secret.
pub fn sign(secret: &str, body: &[u8]) -> String {
    // HMAC takes keys of any length.
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
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
        let mut attempts: HashMap<Vec<u8>, (u32, String)> = HashMap::new();
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
    async fn round(&self, attempts: &mut HashMap<Vec<u8>, (u32, String)>) -> Result<bool, crate::store::StoreError> {
        let now = self.clock.now_ms();
        let mut busy = false;
        for endpoint in self.outbox.endpoints.all()? {
            let health = self.outbox.endpoints.health(&endpoint);
            if health.retry_at.is_some_and(|t| t > now) {
                continue;
            }
            let now_us = crate::clock::wall_micros();
            let heads: Vec<(Vec<u8>, QueueEntry)> = self
                .outbox
                .heads(&endpoint.id, self.config.concurrency.max(1))?
                .into_iter()
                .filter(|(_, e)| now_us - e.emitted_us >= SETTLE_US)
                .collect();
            if heads.is_empty() {
                continue;
            }
            let results = futures::future::join_all(heads.iter().map(|(_, entry)| self.send(&endpoint, entry))).await;
            let mut batch = Batch::new();
            let (mut ok, mut failed) = (0, 0);
            // This endpoint's own last error: the attempt map spans every
            // tenant's endpoints.
            let mut last_error = None;
            for ((key, entry), result) in heads.iter().zip(results) {
                match result {
                    Ok(()) => {
                        ok += 1;
                        attempts.remove(key);
                        self.outbox.dequeue(&mut batch, key);
                    }
                    Err(error) => {
                        failed += 1;
                        last_error = Some(error.clone());
                        let a = attempts.entry(key.clone()).or_insert((0, String::new()));
                        a.0 += 1;
                        a.1 = error.clone();
                        if a.0 >= self.config.max_attempts {
                            if let Some(event) = self.outbox.event(&entry.event)? {
                                let dead = DeadLetter {
                                    id: new_id("dead"),
                                    endpoint: endpoint.id.clone(),
                                    event,
                                    attempts: a.0,
                                    last_error: error.clone(),
                                    dead_at: now,
                                };
                                self.outbox.endpoints.add_dead(&mut batch, &endpoint.tenant, &dead)?;
                                self.outbox.endpoints.update_health(&endpoint, |h| h.dead_lettered += 1);
                                tracing::warn!(endpoint = %endpoint.id, attempts = a.0, %error, "CRM event dead-lettered");
                            }
                            attempts.remove(key);
                            self.outbox.dequeue(&mut batch, key);
                        }
                    }
                }
            }
            self.outbox.commit(batch)?;
            let m =
                |result: &str| labels(&[("tenant", &endpoint.tenant), ("endpoint", &endpoint.id), ("result", result)]);
            self.metrics.sync_deliveries.get_or_create(&m("delivered")).inc_by(ok);
            self.metrics.sync_deliveries.get_or_create(&m("failed")).inc_by(failed);
            let backoff = self.backoff(health.consecutive_failures + 1);
            self.outbox.endpoints.update_health(&endpoint, |h| {
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
            busy |= ok > 0;
        }
        Ok(busy)
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
            .header("x-switchboard-event-type", &event.kind)
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

    /// Exponential with full jitter, capped.
    fn backoff(&self, failures: u32) -> Duration {
        let base = self.config.initial_backoff.saturating_mul(1 << failures.min(16).saturating_sub(1));
        let capped = base.min(self.config.max_backoff);
        capped.mul_f64(rand::rng().random_range(0.5..1.0))
    }
}
