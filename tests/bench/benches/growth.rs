//! Growth: how costs move as a deployment grows.
//!
//! `cargo bench -p switchboard-bench --bench growth`
//!
//! 1. Contacts on file (1k, 100k, 1M): the router's decision time and the
//!    per-message time (webhook → decision committed) for messages from
//!    known contacts.
//! 2. Tenants (1, 100, 1,000), each with its own uploaded router: memory
//!    per tenant, and start-up time with the compile cache warm and cold.
//! 3. A conversation with 10 vs 1,000 prior messages: per-message time.
//! 4. Uploads: 1,000 versions across 100 tenants (10 each): resident memory
//!    after them, with version retention and the compiled-code budget.
//!
//! `GROWTH_CONTACTS=1000,100000`, `GROWTH_TENANTS=1,100` and
//! `GROWTH_UPLOADS=10` (tenants; 10 uploads each) shrink the run.

use std::time::{Duration, Instant};

use switchboard::crm::Contact;
use switchboard::model::new_id;
use switchboard::plugins::World;
use switchboard::plugins::inspect::with_custom_section;
use switchboard::store::Batch;
use switchboard::tenants::Tenant;
use switchboard_bench::load::{self, Shape};
use switchboard_bench::{Host, bench_router_wasm, pct, rss_bytes};

fn sizes(var: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(var)
        .ok()
        .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

fn phone(i: usize) -> String {
    format!("+5511{}", 900_000_000 + i)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build().expect("client");
    let mut report = Vec::new();

    // 1. Contacts on file.
    for n in sizes("GROWTH_CONTACTS", &[1_000, 100_000, 1_000_000]) {
        let host = rt.block_on(Host::start(|_| {}));
        let stages = host.server.state.stages();
        let started = Instant::now();
        for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
            let mut batch = Batch::new();
            for &i in chunk {
                let mut c = Contact {
                    id: new_id("ct"),
                    phone: Some(phone(i)),
                    name: Some(format!("Contact {i}")),
                    country: Some("BR".into()),
                    ..Default::default()
                };
                stages.crm.put_contact(&mut batch, "demo", &mut c, None).expect("contact");
            }
            stages.store.commit(batch).expect("commit");
        }
        let populated = started.elapsed();
        // 2,000 messages from 200 of them, spread over the whole range.
        let shape = Shape { url: host.url.clone(), batch: 1, contacts: 200, concurrency: 16 };
        let tag = format!("c{n}");
        let mut target = host.target(&tag);
        target.body = "Oi! Qual o preço do plano?".into();
        let started = Instant::now();
        rt.block_on(send_from_known(&http, &host, &target, n, 2000)).expect("load");
        rt.block_on(load::drain(&shape, &http)).expect("drain");
        let per_message = started.elapsed() / 2000;
        let (lat, plugin) = rt.block_on(decisions_for_known(&http, &host, n));
        let line = format!(
            "| {n} contacts | {:.1} s to load | per message {:.0} µs (wall, 2,000 at full speed) | webhook → decision p50 {:.2} ms | router p50 {} µs |",
            populated.as_secs_f64(),
            per_message.as_micros(),
            pct(&lat, 0.5) as f64 / 1000.0,
            pct(&plugin, 0.5)
        );
        eprintln!("{line}");
        report.push(line);
        rt.block_on(host.stop());
    }

    // 2. Tenants, each with its own router version.
    let wasm = bench_router_wasm();
    for t in sizes("GROWTH_TENANTS", &[1, 100, 1000]) {
        let host = rt.block_on(Host::start(|c| c.demo.enabled = false));
        let stages = host.server.state.stages();
        let before = rss_bytes();
        let started = Instant::now();
        for i in 0..t {
            let id = format!("t{i:04}");
            let tenant = Tenant {
                id: id.clone(),
                name: id.clone(),
                phone_number_ids: vec![format!("9{i:010}")],
                app_secret: "s3cret-s3cret".into(),
                timezone: "UTC".into(),
                default_region: "BR".into(),
                opt_out_keywords: vec![],
                opt_in_keywords: vec![],
                verify_token: None,
                access_token: None,
                waba_id: None,
                read_receipts: false,
                messages_per_second: None,
                unique_users_per_day: None,
                disabled: false,
                limits: None,
                automation: None,
                created_at: 0,
                updated_at: 0,
            };
            stages.tenants.put(&tenant).expect("tenant");
            let own = with_custom_section(&wasm, &id);
            let (v, _) = stages
                .plugins
                .upload(&id, World::Router, &own, &host.config.plugins.limits, "bench", 0)
                .expect("upload");
            stages.plugins.activate_version(&id, World::Router, Some(&v.version), "bench", 0).expect("activate");
        }
        let uploaded = started.elapsed();
        let grown = rss_bytes().saturating_sub(before);
        let (dir, config) = (host.dir.path().to_path_buf(), host.config.clone());
        let dir_guard = rt.block_on(host.stop());
        let warm = time_start(&rt, &config);
        std::fs::remove_dir_all(dir.join("plugin-cache")).ok();
        let cold = time_start(&rt, &config);
        drop(dir_guard);
        let line = format!(
            "| {t} tenants | upload + compile {:.0} ms each | +{:.1} MiB resident ({:.0} KiB per tenant) | start-up warm cache {:.2} s, cold {:.2} s |",
            uploaded.as_millis() as f64 / t as f64,
            grown as f64 / 1048576.0,
            grown as f64 / 1024.0 / t as f64,
            warm.as_secs_f64(),
            cold.as_secs_f64()
        );
        eprintln!("{line}");
        report.push(line);
    }

    // 3. Long conversations.
    let host = rt.block_on(Host::start(|_| {}));
    for (prior, label) in [(10usize, "10"), (1000, "1,000")] {
        let shape = Shape { url: host.url.clone(), batch: 1, contacts: 1, concurrency: 1 };
        let mut target = host.target(&format!("h{prior}"));
        target.body = "mais uma pergunta".into();
        rt.block_on(load::send(&shape, &http, &target, 0, prior)).expect("history");
        rt.block_on(load::drain(&shape, &http)).expect("drain");
        let mut measured = host.target(&format!("h{prior}"));
        measured.body = "e agora?".into();
        // Same sender (same tag), 50 more messages one by one.
        let mut latencies = Vec::new();
        for k in 0..50 {
            let t = load::Target { tag: format!("h{prior}"), ..measured.clone() };
            let started = Instant::now();
            rt.block_on(send_one(&http, &host, &t, &format!("wamid.H{prior}x{k}"))).expect("send");
            rt.block_on(load::drain(&shape, &http)).expect("drain");
            latencies.push(started.elapsed().as_micros() as u64);
        }
        latencies.sort_unstable();
        let line = format!(
            "| conversation with {label} prior messages | per message (webhook → applied) p50 {:.2} ms, p90 {:.2} ms |",
            pct(&latencies, 0.5) as f64 / 1000.0,
            pct(&latencies, 0.9) as f64 / 1000.0
        );
        eprintln!("{line}");
        report.push(line);
    }
    rt.block_on(host.stop());

    // 4. Many uploads.
    for tenants in sizes("GROWTH_UPLOADS", &[100]) {
        report.push(uploads(&rt, tenants, 10));
    }
    println!();
    for l in report {
        println!("{l}");
    }
}

/// `per_tenant` distinct uploads (activated) for each of `tenants`
/// tenants, through the registry as the API does: the resident memory after.
fn uploads(rt: &tokio::runtime::Runtime, tenants: usize, per_tenant: usize) -> String {
    let host = rt.block_on(Host::start(|c| c.demo.enabled = false));
    let stages = host.server.state.stages();
    let wasm = bench_router_wasm();
    let before = rss_bytes();
    let started = Instant::now();
    for t in 0..tenants {
        let id = format!("u{t:04}");
        for n in 0..per_tenant {
            let own = with_custom_section(&wasm, &format!("{id}-{n}"));
            let (v, _) = stages
                .plugins
                .upload(&id, World::Router, &own, &host.config.plugins.limits, "bench", 0)
                .expect("upload");
            stages.plugins.activate_version(&id, World::Router, Some(&v.version), "bench", 0).expect("activate");
        }
    }
    let took = started.elapsed();
    let grown = rss_bytes().saturating_sub(before);
    let line = format!(
        "| {} uploads across {tenants} tenants | {:.0} ms each | +{:.1} MiB resident after ({:.1} MiB total RSS) |",
        tenants * per_tenant,
        took.as_millis() as f64 / (tenants * per_tenant) as f64,
        grown as f64 / 1048576.0,
        rss_bytes() as f64 / 1048576.0
    );
    eprintln!("{line}");
    drop(rt.block_on(host.stop()));
    line
}

fn time_start(rt: &tokio::runtime::Runtime, config: &switchboard::config::Config) -> Duration {
    let started = Instant::now();
    let server = rt
        .block_on(switchboard::server::start(config.clone(), std::sync::Arc::new(switchboard::clock::SystemClock)))
        .expect("restart");
    let took = started.elapsed();
    rt.block_on(server.stop());
    took
}

/// Messages from contacts already on file, spread over all `n` of them.
async fn send_from_known(
    http: &reqwest::Client,
    host: &Host,
    t: &load::Target,
    n: usize,
    messages: usize,
) -> anyhow::Result<()> {
    let posts = (0..messages)
        .map(|m| load::post(t, vec![load::text(&known(m % 200, n), &format!("wamid.G{}{m}", t.tag), &t.body)]))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let shape = Shape { url: host.url.clone(), batch: 1, contacts: 200, concurrency: 16 };
    load::send_prepared(&shape, http, posts, 0).await.map(|_| ())
}

/// The digits of the `k`th of the 200 senders `send_from_known` uses.
fn known(k: usize, n: usize) -> String {
    phone(k * (n / 200).max(1)).trim_start_matches('+').to_string()
}

/// The decisions for the 200 senders used by `send_from_known`.
async fn decisions_for_known(http: &reqwest::Client, host: &Host, n: usize) -> (Vec<u64>, Vec<u64>) {
    let (mut l, mut p) = (Vec::new(), Vec::new());
    for k in 0..200 {
        let found = load::decisions_of(http, &host.url, switchboard_bench::API_KEY, &known(k, n)).await;
        for (_, latency, duration) in found.unwrap_or_default() {
            l.push(latency);
            p.push(duration);
        }
    }
    l.sort_unstable();
    p.sort_unstable();
    (l, p)
}

async fn send_one(http: &reqwest::Client, host: &Host, t: &load::Target, id: &str) -> anyhow::Result<()> {
    let post = load::post(t, vec![load::text(&load::sender(&t.tag, 0), id, &t.body)])?;
    let shape = Shape { url: host.url.clone(), batch: 1, contacts: 1, concurrency: 1 };
    load::send_prepared(&shape, http, vec![post], 0).await.map(|_| ())
}
