//! Load generator for a running `switchboard serve`.
//!
//! It posts signed WhatsApp webhooks at a fixed offered rate (open loop),
//! waits for the pipeline to drain, reads every decision back through the
//! API and reports, each as n / p50 / p90 / p99 / max:
//!
//! - webhook acknowledgement latency (client side, the durable 200),
//! - webhook → decision committed (each decision's `latency_us`),
//! - plugin call time (each decision's `duration_us`),
//! - sustained throughput (messages / time until the pipeline drained).
//!
//! Scenarios:
//!
//! - `steady` (default): the demo tenant at `--rate` messages/s.
//! - `noisy-neighbour`: needs `server.admin_token`. Creates two tenants,
//!   `quiet` (built-in router) and `noisy` (a router that burns its whole
//!   budget on every message). Runs `quiet` alone at `--rate`, then again
//!   while `noisy` sends `--noisy-rate` messages/s, and compares `quiet`'s
//!   decision latency between the two runs.
//!
//! ```text
//! cargo run --release -- serve                                    # terminal 1
//! cargo run --release --example loadgen -- --rate 200 --messages 4000
//! SWITCHBOARD_SERVER__ADMIN_TOKEN=t cargo run --release -- serve  # for the noisy scenario
//! cargo run --release --example loadgen -- --scenario noisy-neighbour --admin-token t
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde_json::{Value, json};
use switchboard::ingest::signature;
use tokio::sync::Semaphore;

#[derive(Parser, Clone)]
struct Args {
    #[arg(long, default_value = "steady")]
    scenario: String,
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
    /// For `noisy-neighbour`: the operator's admin token.
    #[arg(long, env = "SWITCHBOARD_SERVER__ADMIN_TOKEN")]
    admin_token: Option<String>,
    /// For `noisy-neighbour`: the noisy tenant's offered rate.
    #[arg(long, default_value_t = 40)]
    noisy_rate: u64,
    /// For `noisy-neighbour`: alone/shared rounds (alternated).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Skip reading decisions back (for pure ingest load).
    #[arg(long)]
    no_report: bool,
}

/// Where and as whom to send.
#[derive(Clone)]
struct Target {
    phone_number_id: String,
    secret: String,
    key: String,
    /// Distinguishes this run's senders and message ids.
    tag: String,
    body: String,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let http = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency).build()?;
    match args.scenario.as_str() {
        "steady" => steady(&args, &http).await,
        "noisy-neighbour" => noisy(&args, &http).await,
        other => bail!("unknown scenario {other:?}: steady or noisy-neighbour"),
    }
}

async fn steady(args: &Args, http: &reqwest::Client) -> Result<()> {
    let env = switchboard::tenants::read_demo_env(&args.data_dir.join("demo.env"));
    let target = Target {
        phone_number_id: env
            .get("SWITCHBOARD_DEMO_PHONE_NUMBER_ID")
            .cloned()
            .unwrap_or_else(|| "100000000000001".into()),
        secret: env
            .get("SWITCHBOARD_DEMO_APP_SECRET")
            .context("no app secret in demo.env: start the server first")?
            .clone(),
        key: env.get("SWITCHBOARD_DEMO_API_KEY").context("no API key in demo.env")?.clone(),
        tag: run_tag(),
        body: "Oi! Qual o preço do plano?".into(),
    };
    println!("offered: {} msg/s, {} messages in POSTs of {}", args.rate, args.messages, args.batch);
    let started = Instant::now();
    let mut acks = send(args, http, &target, args.rate, args.messages).await?;
    drain(args, http).await?;
    let drained = started.elapsed();
    println!(
        "drained after {:.2}s: sustained {:.0} messages/s",
        drained.as_secs_f64(),
        args.messages as f64 / drained.as_secs_f64()
    );
    report("webhook ack (durable 200)", &mut acks);
    if !args.no_report {
        let (mut latency, mut plugin) = read_back(args, http, &target, args.messages).await?;
        report("webhook → decision committed", &mut latency);
        report("plugin call (router)", &mut plugin);
    }
    Ok(())
}

async fn noisy(args: &Args, http: &reqwest::Client) -> Result<()> {
    let admin = args.admin_token.clone().context("--admin-token (or SWITCHBOARD_SERVER__ADMIN_TOKEN) is needed")?;
    let quiet = tenant(args, http, &admin, "quiet", "300000000000003", None).await?;
    let burn = std::fs::read(Path::new(env!("SB_BUILT_GUESTS_DIR")).join("burn_router.wasm"))?;
    let mut noisy_target = tenant(args, http, &admin, "noisy", "300000000000004", Some(burn)).await?;
    noisy_target.body = "burn".into();

    // Alternate alone / shared rounds so drift on a shared machine hits both
    // sides alike; compare the pooled distributions.
    let duration = args.messages as f64 / args.rate as f64;
    let noisy_messages = (args.noisy_rate as f64 * duration) as usize;
    let (mut alone, mut shared, mut alone_plugin, mut shared_plugin) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 1..=args.rounds {
        println!("round {round}: quiet alone, {} msg/s × {} messages", args.rate, args.messages);
        let quiet_alone = Target { tag: run_tag(), ..quiet.clone() };
        send(args, http, &quiet_alone, args.rate, args.messages).await?;
        drain(args, http).await?;
        let (l, p) = read_back(args, http, &quiet_alone, args.messages).await?;
        alone.extend(l);
        alone_plugin.extend(p);

        println!("round {round}: quiet again while noisy sends {} msg/s that each burn a full budget", args.noisy_rate);
        let quiet_shared = Target { tag: run_tag(), ..quiet.clone() };
        let noisy_run = Target { tag: run_tag(), ..noisy_target.clone() };
        let (q, n) = tokio::join!(
            send(args, http, &quiet_shared, args.rate, args.messages),
            send(args, http, &noisy_run, args.noisy_rate, noisy_messages)
        );
        q?;
        n?;
        // Only the quiet tenant's decisions are compared; the noisy backlog
        // may still be draining, which is its own problem.
        let (l, p) = read_back_when_done(args, http, &quiet_shared, args.messages).await?;
        shared.extend(l);
        shared_plugin.extend(p);
        drain(args, http).await?;
    }
    report("quiet alone: webhook → decision", &mut alone);
    report("quiet with noisy neighbour: webhook → decision", &mut shared);
    report("quiet alone: plugin call", &mut alone_plugin);
    report("quiet with noisy neighbour: plugin call", &mut shared_plugin);
    let q = |v: &[u64], p: f64| v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1] as f64;
    println!(
        "decision latency, shared / alone: p50 ×{:.2}, p99 ×{:.2}",
        q(&shared, 0.5) / q(&alone, 0.5),
        q(&shared, 0.99) / q(&alone, 0.99)
    );
    Ok(())
}

/// Creates (or reuses) a tenant with a fresh key; uploads and activates `router`.
async fn tenant(
    args: &Args,
    http: &reqwest::Client,
    admin: &str,
    id: &str,
    phone: &str,
    router: Option<Vec<u8>>,
) -> Result<Target> {
    let base = args.url.trim_end_matches('/');
    let secret = format!("{id}-secret-for-load");
    let exists =
        http.get(format!("{base}/admin/v1/tenants/{id}")).bearer_auth(admin).send().await?.status().is_success();
    if !exists {
        let body = json!({ "id": id, "name": id, "phone_number_ids": [phone], "app_secret": secret, "timezone": "America/Sao_Paulo", "default_region": "BR" });
        ok(http.post(format!("{base}/admin/v1/tenants")).bearer_auth(admin).json(&body).send().await?).await?;
    }
    let key = ok(http
        .post(format!("{base}/admin/v1/tenants/{id}/api-keys"))
        .bearer_auth(admin)
        .json(&json!({ "label": "loadgen" }))
        .send()
        .await?)
    .await?["key"]
        .as_str()
        .context("no key")?
        .to_string();
    if let Some(wasm) = router {
        ok(http.put(format!("{base}/v1/plugins/router?activate=true")).bearer_auth(&key).body(wasm).send().await?)
            .await?;
    }
    Ok(Target {
        phone_number_id: phone.into(),
        secret,
        key,
        tag: run_tag(),
        body: "Olá, tudo bem? Preciso de ajuda".into(),
    })
}

async fn ok(response: reqwest::Response) -> Result<Value> {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{status}: {body}");
    }
    Ok(body)
}

fn sender(tag: &str, i: usize) -> String {
    // 55 11 9xxxx-xxxx, distinct per run tag.
    let salt = tag.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))) % 9000;
    format!("55119{:04}{:04}", 1000 + salt, i % 10_000)
}

/// Posts `messages` at `rate`/s; returns the acknowledgement latencies (µs).
async fn send(args: &Args, http: &reqwest::Client, t: &Target, rate: u64, messages: usize) -> Result<Vec<u64>> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let posts = messages.div_ceil(args.batch);
    let interval = (rate > 0).then(|| Duration::from_secs_f64(args.batch as f64 / rate as f64));
    let permits = Arc::new(Semaphore::new(args.concurrency));
    let url = format!("{}/webhooks/whatsapp", args.url.trim_end_matches('/'));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(posts);
    let mut sent = 0;
    for post in 0..posts {
        if let Some(iv) = interval {
            tokio::time::sleep_until((started + iv.mul_f64(post as f64)).into()).await;
        }
        let mut batch = Vec::new();
        for _ in 0..args.batch.min(messages - sent) {
            batch.push(json!({
                "from": sender(&t.tag, sent % args.contacts), "id": format!("wamid.LOAD{}{sent:08}", t.tag), "timestamp": now.to_string(),
                "type": "text", "text": { "body": format!("{} #{sent}", t.body) }
            }));
            sent += 1;
        }
        let body = serde_json::to_vec(&json!({
            "object": "whatsapp_business_account",
            "entry": [{ "id": "load", "changes": [{ "field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": { "display_phone_number": "15550000000", "phone_number_id": t.phone_number_id },
                "messages": batch } }] }]
        }))?;
        let sig = signature::sign(t.secret.as_bytes(), &body);
        let permit = permits.clone().acquire_owned().await?;
        let (http, url) = (http.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
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
            (status, started.elapsed())
        }));
    }
    let mut acks = Vec::with_capacity(posts);
    for task in tasks {
        let (status, took) = task.await?;
        if status != 200 {
            bail!("a webhook POST answered {status}");
        }
        acks.push(took.as_micros() as u64);
    }
    Ok(acks)
}

async fn drain(args: &Args, http: &reqwest::Client) -> Result<()> {
    loop {
        let h: Value = http.get(format!("{}/healthz", args.url.trim_end_matches('/'))).send().await?.json().await?;
        if h["journal_pending"] == 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn get(http: &reqwest::Client, base: &str, key: &str, path: &str) -> Result<Value> {
    Ok(http.get(format!("{}{path}", base.trim_end_matches('/'))).bearer_auth(key).send().await?.json().await?)
}

/// Reads this run's decisions; returns (latency_us, duration_us) samples.
async fn read_back(args: &Args, http: &reqwest::Client, t: &Target, expected: usize) -> Result<(Vec<u64>, Vec<u64>)> {
    let (mut latency, mut plugin) = (Vec::new(), Vec::new());
    let prefix = format!("wamid.LOAD{}", t.tag);
    for c in 0..args.contacts.min(expected) {
        let page = get(http, &args.url, &t.key, &format!("/v1/contacts?q=%2B{}", sender(&t.tag, c))).await?;
        let Some(contact) = page["contacts"].get(0) else { continue };
        let convs = get(
            http,
            &args.url,
            &t.key,
            &format!("/v1/contacts/{}/conversations", contact["id"].as_str().unwrap_or_default()),
        )
        .await?;
        for conv in convs["conversations"].as_array().into_iter().flatten() {
            let view =
                get(http, &args.url, &t.key, &format!("/v1/conversations/{}", conv["id"].as_str().unwrap_or_default()))
                    .await?;
            for d in view["decisions"].as_array().into_iter().flatten() {
                if d["message_id"].as_str().is_some_and(|m| m.starts_with(&prefix)) {
                    latency.push(d["latency_us"].as_u64().unwrap_or_default());
                    plugin.push(d["duration_us"].as_u64().unwrap_or_default());
                }
            }
        }
    }
    println!("decisions read back: {} of {expected}", latency.len());
    Ok((latency, plugin))
}

/// Reads back once all `expected` decisions exist (other tenants may still be busy).
async fn read_back_when_done(
    args: &Args,
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

fn run_tag() -> String {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    format!("{:x}", n & 0xff_ffff_ffff)
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
