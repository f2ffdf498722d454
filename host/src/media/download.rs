//! The download loop: due records → Meta (`GET /{media-id}` for a fresh,
//! short-lived URL, then the file with the tenant's token) → checked →
//! the blob store, a few at a time, each failure planned again with
//! backoff until `media.max_attempts`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use reqwest::Method;
use serde_json::Value;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{Media, MediaRecord, MediaState, blobs, max_bytes};
use crate::clock::{Millis, SharedClock};
use crate::config::MediaConfig;
use crate::metrics::{Metrics, labels};
use crate::outbound::GraphClient;
use crate::tenants::Tenants;

/// How often due downloads are looked for.
const POLL: Duration = Duration::from_millis(200);

pub struct Downloader {
    pub media: Media,
    pub tenants: Tenants,
    pub graph: GraphClient,
    pub clock: SharedClock,
    pub config: MediaConfig,
    pub metrics: Arc<Metrics>,
}

/// Why an attempt failed, and whether another can help.
struct Failure {
    why: String,
    retry: bool,
}

impl Failure {
    fn new(why: impl Into<String>, retry: bool) -> Failure {
        Failure { why: why.into(), retry }
    }
}

impl Downloader {
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tasks: JoinSet<()> = JoinSet::new();
        // Downloads in progress, by task (a task that panicked frees its
        // file for the next look).
        let mut busy: HashMap<tokio::task::Id, (String, String)> = HashMap::new();
        loop {
            let room = self.config.concurrency.saturating_sub(busy.len());
            if room > 0 {
                let (media, now) = (self.media.clone(), self.clock.now_ms());
                match tokio::task::spawn_blocking(move || media.due(now, room + 64)).await {
                    Ok(Ok(due)) => {
                        let running: HashSet<&(String, String)> = busy.values().collect();
                        let fresh: Vec<_> = due.into_iter().filter(|j| !running.contains(j)).take(room).collect();
                        for job in fresh {
                            let (me, (tenant, media_id)) = (self.clone(), job.clone());
                            let handle = tasks.spawn(async move { me.attempt(&tenant, &media_id).await });
                            busy.insert(handle.id(), job);
                        }
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "reading due media downloads failed"),
                    Err(_) => return,
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(done) = tasks.join_next_with_id() => {
                    let id = match done {
                        Ok((id, ())) => id,
                        Err(e) => e.id(),
                    };
                    busy.remove(&id);
                }
                _ = tokio::time::sleep(POLL) => {}
            }
        }
        // Downloads in progress are dropped; they stay due and run again.
        tasks.abort_all();
    }

    /// One attempt at one file, its outcome written to its record.
    async fn attempt(&self, tenant: &str, media_id: &str) {
        let (media, t, m) = (self.media.clone(), tenant.to_string(), media_id.to_string());
        let before = match tokio::task::spawn_blocking(move || media.get(&t, &m)).await {
            Ok(Ok(Some(r))) if r.state == MediaState::Pending => r,
            _ => return,
        };
        let outcome = self.fetch(tenant, &before).await;
        let now = self.clock.now_ms();
        let attempts = before.attempts + 1;
        let (record, label) = match outcome {
            Ok((digest, size, mime)) => (
                MediaRecord {
                    state: MediaState::Stored,
                    blob: Some(digest),
                    size: Some(size),
                    stored_at: Some(now),
                    next_attempt_at: None,
                    last_error: None,
                    mime_type: mime.or(before.mime_type.clone()),
                    attempts,
                    ..before.clone()
                },
                "stored",
            ),
            Err(f) => self.failed(&before, f, attempts, now),
        };
        self.metrics.media_downloads.get_or_create(&labels::Send { outcome: label }).inc();
        let (media, t) = (self.media.clone(), tenant.to_string());
        match tokio::task::spawn_blocking(move || media.put(&t, &before, &record)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, media_id, "recording a media download failed"),
            Err(_) => {}
        }
    }

    fn failed(&self, before: &MediaRecord, f: Failure, attempts: u32, now: Millis) -> (MediaRecord, &'static str) {
        let again = f.retry && attempts < self.config.max_attempts;
        tracing::warn!(media_id = %before.media_id, attempts, again, reason = %f.why, "a media download failed");
        let next = again.then(|| {
            now + crate::retry::backoff(self.config.initial_backoff, attempts, Duration::from_secs(3600)).as_millis()
                as Millis
        });
        let state = if again { MediaState::Pending } else { MediaState::Failed };
        let record = MediaRecord { state, attempts, last_error: Some(f.why), next_attempt_at: next, ..before.clone() };
        (record, if again { "retry" } else { "failed" })
    }

    /// The file, fetched, checked and stored: its digest, size and type.
    async fn fetch(&self, tenant: &str, r: &MediaRecord) -> Result<(String, u64, Option<String>), Failure> {
        let tenant = match self.tenants.get(tenant) {
            Ok(Some(t)) => t,
            Ok(None) => return Err(Failure::new("the tenant is gone", false)),
            Err(e) => return Err(Failure::new(format!("reading the tenant: {e}"), true)),
        };
        let token = tenant.access_token.ok_or_else(|| Failure::new("the tenant has no access token", false))?;
        let meta = |e: crate::outbound::SendError| Failure::new(format!("Meta: {e}"), e.retryable);
        let info = self.graph.call(Method::GET, &r.media_id, &token, &[], None).await.map_err(meta)?;
        let url = info.get("url").and_then(Value::as_str).ok_or_else(|| Failure::new("Meta gave no URL", true))?;
        let limit = max_bytes(&r.kind);
        let size = info.get("file_size").and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()));
        if let Some(size) = size.filter(|s| *s > limit) {
            return Err(Failure::new(format!("{size} bytes: over WhatsApp's {limit} for {}", r.kind), false));
        }
        let bytes = self.graph.download(url, &token, limit).await.map_err(meta)?;
        let expected = info.get("sha256").and_then(Value::as_str).or(r.sha256.as_deref());
        if let Some(expected) = expected
            && !checksum_matches(expected, &bytes)
        {
            return Err(Failure::new("the file does not match Meta's sha256 (a corrupted download)", true));
        }
        let mime = info.get("mime_type").and_then(Value::as_str).map(String::from);
        let size = bytes.len() as u64;
        let digest = tokio::task::spawn_blocking({
            let media = self.media.clone();
            move || media.blobs.put(&bytes)
        })
        .await
        .map_err(|_| Failure::new("stopping", true))?
        .map_err(|e| Failure::new(format!("storing the file: {e}"), true))?;
        Ok((digest, size, mime))
    }
}

/// Meta writes the checksum in hex (media URL answer) or base64 (webhook).
fn checksum_matches(expected: &str, bytes: &[u8]) -> bool {
    let digest = blobs::digest(bytes);
    let raw = hex::decode(&digest).unwrap_or_default();
    expected.eq_ignore_ascii_case(&digest) || expected == base64::engine::general_purpose::STANDARD.encode(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_in_hex_or_base64() {
        // sha256("abc"), FIPS 180-2.
        assert!(checksum_matches("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", b"abc"));
        assert!(checksum_matches("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", b"abc"));
        assert!(checksum_matches("ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=", b"abc"));
        assert!(!checksum_matches("ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=", b"abd"));
    }
}
