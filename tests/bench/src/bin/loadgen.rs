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
//! - `steady` (default): the demo tenant at `--rate` messages/s, its
//!   business hours pinned by `--hours` (`open` by default).
//! - `crm-sync`: adds a CRM endpoint pointing at the example receiver
//!   (examples/crm-receiver, started here on loopback), sends `--messages`
//!   at `--rate`, and reports how fast the outbox delivered every event
//!   (events/s, until nothing is pending) and that none was lost.
//! - `noisy-neighbour`: needs `server.admin_token`. Creates two tenants,
//!   `quiet` (built-in router) and `noisy` (a router that burns its whole
//!   budget on every message). Runs `quiet` alone at `--rate`, then again
//!   while `noisy` sends `--noisy-rate` messages/s, and compares `quiet`'s
//!   decision latency between the two runs.
//!
//! - `hostile`: needs `server.admin_token`. Creates `quiet` (built-in
//!   router) and `hostile` (the scripted test router), and compares
//!   `quiet`'s decision latency alone with its latency while `hostile`
//!   (a) sleeps a minute in every decision, (b) uploads `--upload FILE`
//!   (e.g. the JavaScript router, 12 MB), (c) returns 100 MB outputs.
//!
//! ```text
//! cargo run --release -- serve                                    # terminal 1
//! cargo run --release -p switchboard-bench --bin loadgen -- --rate 200 --messages 4000
//! SWITCHBOARD_SERVER__ADMIN_TOKEN=t cargo run --release -- serve  # for the noisy scenario
//! cargo run --release -p switchboard-bench --bin loadgen -- --scenario noisy-neighbour --admin-token t
//! ```

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde_json::json;
use switchboard_bench::load::{
    Hours, Shape, Target, drain, ok, pin_hours, read_back, read_back_when_done, report, run_tag, send,
};

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
    /// For `hostile`: the component the hostile tenant uploads meanwhile.
    #[arg(long)]
    upload: Option<PathBuf>,
    /// For `steady`: pin the demo router's business hours (`open`: a
    /// greeting gets the bot's reply; `closed`: every message goes to a
    /// person with an acknowledgement), or keep the tenant's (`tenant`:
    /// the figures then depend on the time of day).
    #[arg(long, value_enum, default_value = "open")]
    hours: Hours,
}

impl Args {
    fn shape(&self) -> Shape {
        Shape { url: self.url.clone(), batch: self.batch, contacts: self.contacts, concurrency: self.concurrency }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let http = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency).build()?;
    match args.scenario.as_str() {
        "steady" => steady(&args, &http).await,
        "noisy-neighbour" => noisy(&args, &http).await,
        "crm-sync" => crm_sync(&args, &http).await,
        "hostile" => hostile(&args, &http).await,
        other => bail!("unknown scenario {other:?}: steady, noisy-neighbour, crm-sync or hostile"),
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
        body: match args.hours {
            Hours::Tenant => "Oi! Qual o preço do plano?".into(),
            _ => Hours::GREETING.into(),
        },
    };
    pin_hours(http, &args.url, &target.key, args.hours).await?;
    println!(
        "offered: {} msg/s, {} messages in POSTs of {}, business hours {:?}",
        args.rate, args.messages, args.batch, args.hours
    );
    let started = Instant::now();
    let mut acks = send(&args.shape(), http, &target, args.rate, args.messages).await?;
    drain(&args.shape(), http).await?;
    let drained = started.elapsed();
    println!(
        "drained after {:.2}s: sustained {:.0} messages/s",
        drained.as_secs_f64(),
        args.messages as f64 / drained.as_secs_f64()
    );
    report("webhook ack (durable 200)", &mut acks);
    if !args.no_report {
        let (mut latency, mut plugin) = read_back(&args.shape(), http, &target, args.messages).await?;
        report("webhook → decision committed", &mut latency);
        report("plugin call (router)", &mut plugin);
    }
    Ok(())
}

async fn noisy(args: &Args, http: &reqwest::Client) -> Result<()> {
    let admin = args.admin_token.clone().context("--admin-token (or SWITCHBOARD_SERVER__ADMIN_TOKEN) is needed")?;
    let quiet = tenant(args, http, &admin, "quiet", "300000000000003", None).await?;
    let burn = std::fs::read(Path::new(env!("BENCH_GUESTS_DIR")).join("burn_router.wasm"))?;
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
        send(&args.shape(), http, &quiet_alone, args.rate, args.messages).await?;
        drain(&args.shape(), http).await?;
        let (l, p) = read_back(&args.shape(), http, &quiet_alone, args.messages).await?;
        alone.extend(l);
        alone_plugin.extend(p);

        println!("round {round}: quiet again while noisy sends {} msg/s that each burn a full budget", args.noisy_rate);
        let quiet_shared = Target { tag: run_tag(), ..quiet.clone() };
        let noisy_run = Target { tag: run_tag(), ..noisy_target.clone() };
        let shape = args.shape();
        let (q, n) = tokio::join!(
            send(&shape, http, &quiet_shared, args.rate, args.messages),
            send(&shape, http, &noisy_run, args.noisy_rate, noisy_messages)
        );
        q?;
        n?;
        // Only the quiet tenant's decisions are compared; the noisy backlog
        // may still be draining, which is its own problem.
        let (l, p) = read_back_when_done(&args.shape(), http, &quiet_shared, args.messages).await?;
        shared.extend(l);
        shared_plugin.extend(p);
        drain(&args.shape(), http).await?;
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

async fn hostile(args: &Args, http: &reqwest::Client) -> Result<()> {
    let admin = args.admin_token.clone().context("--admin-token (or SWITCHBOARD_SERVER__ADMIN_TOKEN) is needed")?;
    let quiet = tenant(args, http, &admin, "quiet", "300000000000005", None).await?;
    let scripted = std::fs::read(Path::new(env!("BENCH_GUESTS_DIR")).join("scripted_router.wasm"))?;
    let hostile = tenant(args, http, &admin, "hostile", "300000000000006", Some(scripted)).await?;
    let base = args.url.trim_end_matches('/').to_string();
    let script = |s: serde_json::Value| {
        let (http, base, key) = (http.clone(), base.clone(), hostile.key.clone());
        async move {
            let body = json!({ "config": { "script": s.to_string() } });
            ok(http.put(format!("{base}/v1/plugins/router/config")).bearer_auth(&key).json(&body).send().await?).await
        }
    };
    // The quiet tenant's decision latency over one run, while `beside` runs.
    let run = |what: &'static str| {
        let quiet = Target { tag: run_tag(), ..quiet.clone() };
        async move {
            println!("quiet: {} msg/s × {} messages — {what}", args.rate, args.messages);
            send(&args.shape(), http, &quiet, args.rate, args.messages).await?;
            let (l, _) = read_back_when_done(&args.shape(), http, &quiet, args.messages).await?;
            anyhow::Ok(l)
        }
    };
    let hostile_load = |body: &'static str| {
        let t = Target { tag: run_tag(), body: body.into(), ..hostile.clone() };
        async move { send(&args.shape(), http, &t, (args.rate / 4).max(1), args.messages / 4).await.map(drop) }
    };
    // The first run pays for instantiating the quiet tenant's plugin and
    // warming caches: not a baseline.
    run("warming up (not counted)").await?;
    let mut results = vec![("alone", run("alone").await?)];

    script(json!({ "sleep_ms": 60_000 })).await?;
    let (l, h) = tokio::join!(run("beside a plugin sleeping a minute per decision"), hostile_load("oi"));
    h?;
    results.push(("beside a sleeping plugin", l?));

    if let Some(file) = &args.upload {
        let wasm = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let wasm = switchboard::plugins::inspect::with_custom_section(&wasm, &run_tag());
        let started = Instant::now();
        let upload = async {
            let r = http.put(format!("{base}/v1/plugins/router")).bearer_auth(&hostile.key).body(wasm).send().await?;
            let mut body: serde_json::Value = r.json().await?;
            while body["state"] == "queued" || body["state"] == "compiling" {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let id = body["id"].as_str().unwrap_or_default().to_string();
                body = ok(http.get(format!("{base}/v1/plugins/uploads/{id}")).bearer_auth(&hostile.key).send().await?)
                    .await?;
            }
            println!("the upload finished after {:.1}s: {}", started.elapsed().as_secs_f64(), body["state"]);
            anyhow::Ok(())
        };
        let (l, u) = tokio::join!(run("during an upload"), upload);
        u?;
        results.push(("during an upload", l?));
    }

    script(json!({ "reason_bytes": 100_000_000 })).await?;
    let (l, h) = tokio::join!(run("beside a plugin returning 100 MB"), hostile_load("oi"));
    h?;
    results.push(("beside 100 MB outputs", l?));
    drain(&args.shape(), http).await?;

    let q = |v: &[u64], p: f64| v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1] as f64 / 1000.0;
    for (_, l) in &mut results {
        l.sort_unstable();
    }
    let (a50, a99) = (q(&results[0].1, 0.5), q(&results[0].1, 0.99));
    println!("\n| quiet tenant's webhook → decision | p50 ms | p99 ms | p99 vs alone |\n|---|---|---|---|");
    for (what, l) in results {
        println!("| {what} | {:.1} | {:.1} | ×{:.2} |", q(&l, 0.5), q(&l, 0.99), q(&l, 0.99) / a99);
    }
    println!("(alone: p50 {a50:.1} ms, p99 {a99:.1} ms)");
    Ok(())
}

async fn crm_sync(args: &Args, http: &reqwest::Client) -> Result<()> {
    let env = switchboard::tenants::read_demo_env(&args.data_dir.join("demo.env"));
    let key = env.get("SWITCHBOARD_DEMO_API_KEY").context("no API key in demo.env: start the server first")?.clone();
    let target = Target {
        phone_number_id: env
            .get("SWITCHBOARD_DEMO_PHONE_NUMBER_ID")
            .cloned()
            .unwrap_or_else(|| "100000000000001".into()),
        secret: env.get("SWITCHBOARD_DEMO_APP_SECRET").context("no app secret")?.clone(),
        key: key.clone(),
        tag: run_tag(),
        body: "Oi! Qual o preço do plano?".into(),
    };
    let receiver = switchboard_crm_receiver::Receiver::new("");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/events", listener.local_addr()?);
    let served = receiver.clone();
    tokio::spawn(async move { axum::serve(listener, switchboard_crm_receiver::app(served)).await });
    let base = args.url.trim_end_matches('/');
    let created = ok(http
        .post(format!("{base}/v1/sync/endpoints"))
        .bearer_auth(&key)
        .json(&json!({ "url": url }))
        .send()
        .await?)
    .await?;
    *receiver.secret.lock().map_err(|_| anyhow::anyhow!("poisoned"))? =
        created["secret"].as_str().unwrap_or_default().to_string();
    let endpoint = created["endpoint"]["id"].as_str().unwrap_or_default().to_string();
    println!("CRM endpoint {endpoint} → {url}; {} messages at {} msg/s", args.messages, args.rate);
    let started = Instant::now();
    send(&args.shape(), http, &target, args.rate, args.messages).await?;
    let sent = started.elapsed();
    drain(&args.shape(), http).await?;
    loop {
        let eps = ok(http.get(format!("{base}/v1/sync/endpoints")).bearer_auth(&key).send().await?).await?;
        let pending = eps["endpoints"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["id"] == endpoint.as_str())
            .map(|e| e["pending"].clone());
        if pending == Some(json!(0)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered_after = started.elapsed();
    let (events, logged, duplicates, failed_sigs) = {
        let crm = receiver.crm.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        let events: usize = crm.arrivals.values().map(Vec::len).sum();
        let logged: usize = crm.arrivals.values().flatten().filter(|e| e["type"] == "message.logged").count();
        (events, logged, crm.duplicates, crm.rejected_signatures)
    };
    ok(http.delete(format!("{base}/v1/sync/endpoints/{endpoint}")).bearer_auth(&key).send().await?).await.ok();
    println!("sent in {:.2}s; every event delivered after {:.2}s", sent.as_secs_f64(), delivered_after.as_secs_f64());
    println!(
        "delivered {events} events ({logged} message.logged for {} messages); {:.0} events/s; duplicates {duplicates}; bad signatures {failed_sigs}",
        args.messages,
        events as f64 / delivered_after.as_secs_f64()
    );
    if logged < args.messages {
        bail!("lost events: {logged} message.logged for {} messages", args.messages);
    }
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
