//! Load generation against a running Switchboard: signed webhook batches
//! at a fixed offered rate (open loop), then reading every decision back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::{Value, json};
use switchboard::ingest::signature;
use tokio::sync::Semaphore;

/// How the load is shaped.
#[derive(Clone)]
pub struct Shape {
    pub url: String,
    /// Messages per webhook POST.
    pub batch: usize,
    /// Distinct senders.
    pub contacts: usize,
    /// POSTs in flight at most.
    pub concurrency: usize,
}

/// Where and as whom to send.
#[derive(Clone)]
pub struct Target {
    pub phone_number_id: String,
    pub secret: String,
    pub key: String,
    /// Distinguishes this run's senders and message ids.
    pub tag: String,
    pub body: String,
}

pub async fn ok(response: reqwest::Response) -> Result<Value> {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{status}: {body}");
    }
    Ok(body)
}

/// Whether the demo tenant's router sees the business open or closed. Its
/// default router answers a greeting itself inside business hours and
/// hands everything to a person, with an acknowledgement, outside them:
/// two paths of very different cost. Pinning the hours makes a figure
/// independent of the time of day it was measured at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Hours {
    /// Open all week: a greeting gets the bot's reply.
    Open,
    /// Never open: every message goes to a person, acknowledged once.
    Closed,
    /// Whatever the tenant has configured (depends on the clock).
    Tenant,
}

impl Hours {
    /// The greeting both pinned paths are measured with.
    pub const GREETING: &str = "Oi!";
}

/// Sets the router's `business-hours` for `hours`, keeping its other
/// settings.
pub async fn pin_hours(http: &reqwest::Client, url: &str, key: &str, hours: Hours) -> Result<()> {
    let spec = match hours {
        Hours::Open => "mon-sun 00:00-24:00",
        Hours::Closed => "",
        Hours::Tenant => return Ok(()),
    };
    let endpoint = format!("{url}/v1/plugins/router/config");
    let mut config = ok(http.get(&endpoint).bearer_auth(key).send().await?).await?;
    config["config"]["business-hours"] = json!(spec);
    ok(http.put(&endpoint).bearer_auth(key).json(&config).send().await?).await?;
    Ok(())
}

pub fn sender(tag: &str, i: usize) -> String {
    // 55 11 9xxxx-xxxx, distinct per run tag.
    let salt = tag.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))) % 9000;
    format!("55119{:04}{:04}", 1000 + salt, i % 10_000)
}

/// One signed webhook POST, built before the clock starts so the generator
/// spends its time sending, not serialising and signing.
pub struct Post {
    pub body: bytes::Bytes,
    pub signature: String,
}

/// One inbound text message, as the Cloud API sends it.
pub fn text(from: &str, id: &str, body: &str) -> Value {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
    json!({ "from": from, "id": id, "timestamp": now.to_string(), "type": "text", "text": { "body": body } })
}

/// A webhook POST carrying `messages` to `t`'s number, signed with its secret.
pub fn post(t: &Target, messages: Vec<Value>) -> Result<Post> {
    let body = serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "load", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550000000", "phone_number_id": t.phone_number_id },
            "messages": messages } }] }]
    }))?;
    let signature = signature::sign(t.secret.as_bytes(), &body);
    Ok(Post { body: body.into(), signature })
}

/// The POSTs for `messages` text messages from `args.contacts` senders,
/// `args.batch` per POST.
pub fn prepare(args: &Shape, t: &Target, messages: usize) -> Result<Vec<Post>> {
    let mut posts = Vec::with_capacity(messages.div_ceil(args.batch.max(1)));
    let mut sent = 0;
    while sent < messages {
        let mut batch = Vec::new();
        for _ in 0..args.batch.max(1).min(messages - sent) {
            let from = sender(&t.tag, sent % args.contacts.max(1));
            batch.push(text(&from, &format!("wamid.LOAD{}{sent:08}", t.tag), &format!("{} #{sent}", t.body)));
            sent += 1;
        }
        posts.push(post(t, batch)?);
    }
    Ok(posts)
}

/// Posts `messages` at `rate`/s (0: as fast as `args.concurrency` allows);
/// returns each POST's acknowledgement latency in µs.
pub async fn send(args: &Shape, http: &reqwest::Client, t: &Target, rate: u64, messages: usize) -> Result<Vec<u64>> {
    let posts = prepare(args, t, messages)?;
    send_prepared(args, http, posts, rate).await
}

/// Sends prepared POSTs, open loop: at a fixed rate each POST is due at
/// its scheduled time, and its latency counts from then, not from when
/// the generator got round to it, so a stalled server cannot hide its
/// stall by slowing the generator down (coordinated omission).
pub async fn send_prepared(args: &Shape, http: &reqwest::Client, posts: Vec<Post>, rate: u64) -> Result<Vec<u64>> {
    let interval = (rate > 0).then(|| Duration::from_secs_f64(args.batch.max(1) as f64 / rate as f64));
    let permits = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let url = format!("{}/webhooks/whatsapp", args.url.trim_end_matches('/'));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(posts.len());
    for (i, post) in posts.into_iter().enumerate() {
        let due = match interval {
            Some(iv) => {
                let due = started + iv.mul_f64(i as f64);
                tokio::time::sleep_until(due.into()).await;
                Some(due)
            }
            None => None,
        };
        let permit = permits.clone().acquire_owned().await?;
        let (http, url) = (http.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let from = due.unwrap_or_else(Instant::now);
            let status = http
                .post(url)
                .header("content-type", "application/json")
                .header("x-hub-signature-256", post.signature)
                .body(post.body)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0);
            drop(permit);
            (status, from.elapsed())
        }));
    }
    let mut acks = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (status, took) = task.await?;
        if status != 200 {
            bail!("a webhook POST answered {status}");
        }
        acks.push(took.as_micros() as u64);
    }
    Ok(acks)
}

/// Waits until every acknowledged event is applied and every reply sent.
pub async fn drain(args: &Shape, http: &reqwest::Client) -> Result<()> {
    loop {
        let h: Value = http.get(format!("{}/healthz", args.url.trim_end_matches('/'))).send().await?.json().await?;
        if h["journal_pending"] == 0 && h["outbound_queue"] == 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub async fn get(http: &reqwest::Client, base: &str, key: &str, path: &str) -> Result<Value> {
    Ok(http.get(format!("{}{path}", base.trim_end_matches('/'))).bearer_auth(key).send().await?.json().await?)
}

/// Every decision in the conversations of the contact with phone `+digits`:
/// (message id, latency_us, duration_us).
pub async fn decisions_of(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    digits: &str,
) -> Result<Vec<(String, u64, u64)>> {
    let page = get(http, base, key, &format!("/v1/contacts?q=%2B{digits}")).await?;
    let Some(contact) = page["contacts"].get(0) else { return Ok(Vec::new()) };
    let id = contact["id"].as_str().unwrap_or_default();
    let convs = get(http, base, key, &format!("/v1/contacts/{id}/conversations")).await?;
    let mut out = Vec::new();
    for conv in convs["conversations"].as_array().into_iter().flatten() {
        let view =
            get(http, base, key, &format!("/v1/conversations/{}", conv["id"].as_str().unwrap_or_default())).await?;
        for d in view["decisions"].as_array().into_iter().flatten() {
            out.push((
                d["message_id"].as_str().unwrap_or_default().to_string(),
                d["latency_us"].as_u64().unwrap_or_default(),
                d["duration_us"].as_u64().unwrap_or_default(),
            ));
        }
    }
    Ok(out)
}

/// Reads this run's decisions; returns (latency_us, duration_us) samples.
pub async fn read_back(
    args: &Shape,
    http: &reqwest::Client,
    t: &Target,
    expected: usize,
) -> Result<(Vec<u64>, Vec<u64>)> {
    let (mut latency, mut plugin) = (Vec::new(), Vec::new());
    let prefix = format!("wamid.LOAD{}", t.tag);
    for c in 0..args.contacts.min(expected) {
        for (message, l, p) in decisions_of(http, &args.url, &t.key, &sender(&t.tag, c)).await? {
            if message.starts_with(&prefix) {
                latency.push(l);
                plugin.push(p);
            }
        }
    }
    println!("decisions read back: {} of {expected}", latency.len());
    Ok((latency, plugin))
}

/// Reads back once all `expected` decisions exist (other tenants may still be busy).
pub async fn read_back_when_done(
    args: &Shape,
    http: &reqwest::Client,
    t: &Target,
    expected: usize,
) -> Result<(Vec<u64>, Vec<u64>)> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (latency, plugin) = read_back(args, http, t, expected).await?;
        if latency.len() >= expected || Instant::now() > deadline {
            return Ok((latency, plugin));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub fn run_tag() -> String {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    format!("{:x}", n & 0xff_ffff_ffff)
}

pub fn report(what: &str, values: &mut [u64]) {
    if values.is_empty() {
        println!("{what}: no samples");
        return;
    }
    values.sort_unstable();
    let q = |p: f64| values[((values.len() as f64 * p).ceil() as usize).clamp(1, values.len()) - 1];
    println!(
        "{what}: n={} p50={:.3} ms p90={:.3} ms p99={:.3} ms max={:.3} ms",
        values.len(),
        q(0.50) as f64 / 1000.0,
        q(0.90) as f64 / 1000.0,
        q(0.99) as f64 / 1000.0,
        values[values.len() - 1] as f64 / 1000.0
    );
}
