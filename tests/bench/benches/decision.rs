//! Decision cost: the same routing logic, on the same input, through every
//! way a tenant could run it. `cargo bench -p switchboard-bench --bench decision`.
//!
//! 1. `native`: a plain Rust function (the floor);
//! 2. `switchboard`: the router component through the real plugin runtime —
//!    a fresh instance per decision from the pooling allocator, fuel and
//!    epoch deadline, WASI denied, the context lowered into the component and
//!    the decision lifted and validated (`Runtime::call`, what the pipeline
//!    calls);
//! 3. `rhai` and `lua` (mlua, Lua 5.4): embedded scripts, input and output
//!    through serde;
//! 4. `extism`: an Extism plugin, JSON in and out, through the `extism` host
//!    crate — `extism_reused` keeps one instance (Extism's usual use, state
//!    leaks between calls), `extism_fresh` makes one per decision from a
//!    `CompiledPlugin` with a fuel limit (the same isolation as ours);
//! 5. `http_webhook`: an axum endpoint on loopback called with a pooled
//!    client, JSON both ways (how most SaaS platforms let customers customise
//!    routing).
//!
//! Criterion measures each (median and confidence interval in its report,
//! `target/criterion/decision/`). Then every variant is timed call by call,
//! twice: in a run of its own (warm caches), and interleaved round-robin
//! with the others (each call finds the caches as the others left them, and
//! noise on a shared machine hits all variants alike). One table gives the
//! median and p99 per decision of both passes with the ratios to the floor
//! and to Switchboard's path. `DECISION_SAMPLES` sets the calls per variant
//! (default 20,000).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::Criterion;
use switchboard::config::PluginConfig;
use switchboard::model::RoutingDecision;
use switchboard::plugins::RouterInput;
use switchboard::plugins::Runtime;
use switchboard_bench::{LUA, RHAI, bench_router_wasm, extism_wasm, native, pct, sample, webhook_server};

type Variant<'a> = (&'static str, Box<dyn FnMut(&RouterInput) -> RoutingDecision + 'a>);

fn main() {
    let input = sample();
    let expected = native(&input);

    // Switchboard: exactly the host's call path and limits.
    let cache = tempfile::tempdir().expect("temp dir");
    let config = PluginConfig::default();
    let runtime = Runtime::new(&config, cache.path()).expect("runtime");
    let plugin = runtime.compile(&bench_router_wasm(), None).expect("the bench router compiles");
    let settings = Arc::new(BTreeMap::new());

    let engine = rhai::Engine::new();
    let ast = engine.compile(RHAI).expect("the Rhai script compiles");

    let lua = mlua::Lua::new();
    lua.load(LUA).exec().expect("the Lua script loads");
    let lua_route: mlua::Function = lua.globals().get("route").expect("route()");

    let manifest = extism::Manifest::new([extism::Wasm::data(extism_wasm())]);
    let mut extism_reused = extism::Plugin::new(&manifest, [], false).expect("the Extism plugin loads");
    let compiled = extism::CompiledPlugin::new(
        extism::PluginBuilder::new(manifest.clone()).with_wasi(false).with_fuel_limit(config.limits.fuel),
    )
    .expect("the Extism plugin compiles");

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let addr = rt.block_on(webhook_server());
    let http = reqwest::Client::builder().pool_max_idle_per_host(4).build().expect("client");
    let url = format!("http://{addr}/route");

    let mut variants: Vec<Variant> = vec![
        ("native", Box::new(native)),
        (
            "switchboard",
            Box::new(|i: &RouterInput| {
                runtime.call(&plugin, &config.limits, settings.clone(), i).result.expect("decided")
            }),
        ),
        (
            "rhai",
            Box::new(|i: &RouterInput| {
                let value = rhai::serde::to_dynamic(i).expect("to rhai");
                let out: rhai::Dynamic =
                    engine.call_fn(&mut rhai::Scope::new(), &ast, "route", (value,)).expect("rhai route");
                rhai::serde::from_dynamic(&out).expect("from rhai")
            }),
        ),
        (
            "lua",
            Box::new(|i: &RouterInput| {
                use mlua::LuaSerdeExt;
                let value = lua.to_value(i).expect("to lua");
                let out: mlua::Value = lua_route.call(value).expect("lua route");
                lua.from_value(out).expect("from lua")
            }),
        ),
        (
            "extism_reused",
            Box::new(|i: &RouterInput| {
                let out: String = extism_reused.call("route", serde_json::to_string(i).expect("json")).expect("call");
                serde_json::from_str(&out).expect("decision")
            }),
        ),
        (
            "extism_fresh",
            Box::new(|i: &RouterInput| {
                let mut p = extism::Plugin::new_from_compiled(&compiled).expect("instance");
                let out: String = p.call("route", serde_json::to_string(i).expect("json")).expect("call");
                serde_json::from_str(&out).expect("decision")
            }),
        ),
        (
            "http_webhook",
            Box::new(|i: &RouterInput| {
                rt.block_on(async {
                    http.post(&url).json(i).send().await.expect("POST").json().await.expect("decision")
                })
            }),
        ),
    ];
    for (name, call) in &mut variants {
        assert_eq!(call(&input), expected, "{name} decides like the native function");
    }

    let mut c = Criterion::default().configure_from_args();
    {
        let mut group = c.benchmark_group("decision");
        for (name, call) in &mut variants {
            group.bench_function(*name, |b| b.iter(|| call(black_box(&input))));
        }
        group.finish();
    }
    c.final_summary();

    // Call by call: first each variant in a run of its own (warm caches,
    // as criterion sees it), then all interleaved round-robin, so that each
    // call finds the caches as the other variants left them — closer to a
    // server, where a decision runs between parsing, storage and I/O.
    let samples: usize = std::env::var("DECISION_SAMPLES").ok().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let mut warm: Vec<Vec<u64>> = vec![Vec::with_capacity(samples); variants.len()];
    for (k, (_, call)) in variants.iter_mut().enumerate() {
        for _ in 0..samples {
            let started = Instant::now();
            black_box(call(black_box(&input)));
            warm[k].push(started.elapsed().as_nanos() as u64);
        }
    }
    let mut mixed: Vec<Vec<u64>> = vec![Vec::with_capacity(samples); variants.len()];
    for _ in 0..samples {
        for (k, (_, call)) in variants.iter_mut().enumerate() {
            let started = Instant::now();
            black_box(call(black_box(&input)));
            mixed[k].push(started.elapsed().as_nanos() as u64);
        }
    }
    for t in warm.iter_mut().chain(mixed.iter_mut()) {
        t.sort_unstable();
    }
    let median = |t: &[Vec<u64>], k: usize| pct(&t[k], 0.5) as f64;
    println!("\n{samples} calls per variant, timed one by one on one thread; ratios of medians within each pass:\n");
    println!(
        "| variant | own run: median | p99 | ÷ native | ÷ switchboard | interleaved: median | p99 | ÷ native | ÷ switchboard |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (k, (name, _)) in variants.iter().enumerate() {
        let row = |t: &[Vec<u64>]| {
            format!(
                "{} | {} | ×{:.1} | ×{:.2}",
                human(median(t, k)),
                human(pct(&t[k], 0.99) as f64),
                median(t, k) / median(t, 0),
                median(t, k) / median(t, 1)
            )
        };
        println!("| {name} | {} | {} |", row(&warm), row(&mixed));
    }
}

fn human(ns: f64) -> String {
    if ns >= 1_000_000.0 {
        format!("{:.2} ms", ns / 1_000_000.0)
    } else if ns >= 1_000.0 {
        format!("{:.1} µs", ns / 1_000.0)
    } else {
        format!("{ns:.0} ns")
    }
}
