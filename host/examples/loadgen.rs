//! Load generator: posts signed WhatsApp webhooks to a running
//! `switchboard serve` at a fixed offered rate (open loop), waits for the
//! pipeline to drain, then reads every decision back through the API and
//! reports:
//!
//! - webhook acknowledgement latency (client-side, durable 200),
//! - webhook → decision committed latency (`latency_us` of each decision),
//! - plugin call latency (`duration_us`),
//! - sustained throughput (messages / time until the pipeline drained).
//!
//! ```text
//! cargo run --release -- serve                      # terminal 1
//! cargo run --release --example loadgen -- --rate 200 --messages 4000
//! ```
//!
//! Credentials default to the demo tenant's (`./data/demo.env`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde_json::{Value, json};
use switchboard::ingest::signature;
use tokio::sync::Semaphore;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Offered rate in messages per second; 0 = as fast as `--concurrency` allows.
    #[arg(long, default_value_t = 100)]
    rate: u64,
    #[arg(long, default_value_t = 2000)]
    messages: usize,
    /// Messages per webhook POST (Meta batches several).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Distinct senders.
    #[arg(long, default_value_t = 200)]
    contacts: usize,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    #[arg(long, default_value = "./data")]
    data_dir: PathBuf,
    #[arg(long, default_value = "100000000000001")]
    phone_number_id: String,
    /// Skip reading decisions back (for pure ingest load).
    #[arg(long)]
    no_report: bool,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let env = switchboard::tenants::read_demo_env(&args.data_dir.join("demo.env"));
    let secret = env.get("SWITCHBOARD_DEMO_APP_SECRET").context("no app secret in demo.env: start the server first")?;
    let key = env.get("SWITCHBOARD_DEMO_API_KEY").context("no API key in demo.env")?.clone();
    let http = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency).build()?;
    let run = uuid_ish();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let posts = args.messages.div_ceil(args.batch);
    let interval = (args.rate > 0).then(|| Duration::from_secs_f64(args.batch as f64 / args.rate as f64));
    let permits = Arc::new(Semaphore::new(args.concurrency));
    let url = format!("{}/webhooks/whatsapp", args.url);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(posts);
    let mut sent = 0;
    for post in 0..posts {
        if let Some(iv) = interval {
            let due = started + iv.mul_f64(post as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        let mut messages = Vec::new();
        let mut profiles = Vec::new();
        for _ in 0..args.batch.min(args.messages - sent) {
            let from = sender(sent % args.contacts);
            messages.push(json!({
                "from": from, "id": format!("wamid.LOAD{run}{sent:08}"), "timestamp": now.to_string(),
                "type": "text", "text": { "body": format!("Oi! Qual o preço do plano? #{sent}") }
            }));
            profiles.push(json!({ "profile": { "name": format!("Load {}", sent % args.contacts) }, "wa_id": from }));
            sent += 1;
        }
        let body = serde_json::to_vec(&json!({
            "object": "whatsapp_business_account",
            "entry": [{ "id": "load", "changes": [{ "field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": { "display_phone_number": "15550000000", "phone_number_id": args.phone_number_id },
                "contacts": profiles, "messages": messages } }] }]
        }))?;
        let sig = signature::sign(secret.as_bytes(), &body);
        let permit = permits.clone().acquire_owned().await?;
        let (http, url) = (http.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let status = http
                .post(url)
                .header("content-type", "application/json")
                .header("x-hub-signature-256", sig)
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0);
            drop(permit);
            (status, t.elapsed())
        }));
    }
    let mut acks = Vec::with_capacity(posts);
    let mut failures = 0;
    for t in tasks {
        let (status, took) = t.await?;
        if status == 200 {
            acks.push(took.as_micros() as u64);
        } else {
            failures += 1;
        }
    }
    let sending = started.elapsed();
    // Wait for the pipeline to apply everything.
    loop {
        let h: Value = http.get(format!("{}/healthz", args.url)).send().await?.json().await?;
        if h["journal_pending"] == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let drained = started.elapsed();
    println!("offered: {} msg/s ({} messages in {} POSTs of {})", args.rate, args.messages, posts, args.batch);
    println!(
        "sent in {:.2}s; drained after {:.2}s; failed POSTs: {failures}",
        sending.as_secs_f64(),
        drained.as_secs_f64()
    );
    println!("sustained: {:.0} messages/s (sent → applied)", args.messages as f64 / drained.as_secs_f64());
    report("webhook ack (durable 200)", &mut acks);
    if failures > 0 {
        bail!("{failures} POSTs failed");
    }
    if args.no_report {
        return Ok(());
    }
    let (mut latency, mut plugin) = (Vec::new(), Vec::new());
    let prefix = format!("wamid.LOAD{run}");
    for c in 0..args.contacts.min(args.messages) {
        let phone = format!("%2B{}", sender(c));
        let page: Value = get(&http, &args.url, &key, &format!("/v1/contacts?q={phone}")).await?;
        let Some(contact) = page["contacts"].get(0) else { bail!("sender {} has no contact", sender(c)) };
        let convs: Value = get(
            &http,
            &args.url,
            &key,
            &format!("/v1/contacts/{}/conversations", contact["id"].as_str().unwrap_or_default()),
        )
        .await?;
        for conv in convs["conversations"].as_array().into_iter().flatten() {
            let view: Value =
                get(&http, &args.url, &key, &format!("/v1/conversations/{}", conv["id"].as_str().unwrap_or_default()))
                    .await?;
            for d in view["decisions"].as_array().into_iter().flatten() {
                if d["message_id"].as_str().is_some_and(|m| m.starts_with(&prefix)) {
                    latency.push(d["latency_us"].as_u64().unwrap_or_default());
                    plugin.push(d["duration_us"].as_u64().unwrap_or_default());
                }
            }
        }
    }
    println!("decisions read back: {} of {}", latency.len(), args.messages);
    report("webhook → decision committed", &mut latency);
    report("plugin call (router)", &mut plugin);
    Ok(())
}

async fn get(http: &reqwest::Client, base: &str, key: &str, path: &str) -> Result<Value> {
    Ok(http.get(format!("{base}{path}")).bearer_auth(key).send().await?.json().await?)
}

fn sender(i: usize) -> String {
    format!("5511{}", 960_000_000 + i)
}

fn uuid_ish() -> String {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    format!("{:x}", n & 0xffff_ffff_ffff)
}

fn report(what: &str, values: &mut [u64]) {
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
