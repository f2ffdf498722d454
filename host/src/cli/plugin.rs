//! `switchboard plugin …`: the plugin author's loop.
//!
//! `run` and `check` execute the component here, with exactly the limits
//! and checks the host applies; `deploy` and `logs` talk to a running host.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde_json::{Value, json};

use crate::config::Config;
use crate::model::{FeedbackInput, FollowUpInput, RouterInput};
use crate::plugins::{CallReport, Runtime, World, registry};

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Run FILE on a JSON input and print the decision, fuel, time and logs.
    Run {
        file: PathBuf,
        /// router, follow-up or feedback (default: the component's own).
        #[arg(long)]
        world: Option<String>,
        /// The input, as documented in docs/plugins.md (samples in examples/inputs/).
        #[arg(long)]
        input: PathBuf,
        /// A setting for the `config` import, KEY=VALUE (repeatable).
        #[arg(long = "config-value", value_name = "KEY=VALUE")]
        settings: Vec<String>,
    },
    /// Validate FILE exactly as an upload would.
    Check {
        file: PathBuf,
        #[arg(long)]
        world: Option<String>,
    },
    /// Upload FILE to a running host (and optionally activate it).
    Deploy {
        file: PathBuf,
        #[arg(long)]
        world: String,
        #[arg(long)]
        activate: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Print the recent log lines of a tenant's plugins.
    Logs {
        #[arg(long, default_value = "router")]
        world: String,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[command(flatten)]
        remote: Remote,
    },
    /// Create a plugin crate for WORLD that builds with `cargo build --release`.
    Init {
        name: String,
        #[arg(long, default_value = "router")]
        world: String,
        /// The guest SDK (`plugins/sdk` of a Switchboard checkout).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
pub struct Remote {
    /// The host's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Tenant API key; default: $SWITCHBOARD_API_KEY, else the demo tenant's.
    #[arg(long, env = "SWITCHBOARD_API_KEY", hide_env_values = true)]
    key: Option<String>,
}

fn parse_world(w: &str) -> Result<World> {
    World::parse(w).with_context(|| format!("unknown world {w:?}: use router, follow-up or feedback"))
}

pub async fn run(command: PluginCommand, config: &Config) -> Result<()> {
    match command {
        PluginCommand::Run { file, world, input, settings } => {
            let world = world.as_deref().map(parse_world).transpose()?;
            let config = config.clone();
            tokio::task::spawn_blocking(move || run_local(&file, world, &input, &settings, &config)).await?
        }
        PluginCommand::Check { file, world } => {
            let world = world.as_deref().map(parse_world).transpose()?;
            let config = config.clone();
            tokio::task::spawn_blocking(move || check_local(&file, world, &config)).await?
        }
        PluginCommand::Deploy { file, world, activate, remote } => {
            deploy(&file, parse_world(&world)?, activate, &remote, config).await
        }
        PluginCommand::Logs { world, limit, remote } => logs(parse_world(&world)?, limit, &remote, config).await,
        PluginCommand::Init { name, world, sdk } => init(&name, parse_world(&world)?, sdk),
    }
}

/// A runtime with the host's own configuration and a scratch cache.
fn runtime(config: &Config) -> Result<Runtime> {
    let cache = std::env::temp_dir().join("switchboard-plugin-cli-cache");
    Ok(Runtime::new(&config.plugins, &cache)?)
}

fn run_local(file: &Path, world: Option<World>, input: &Path, settings: &[String], config: &Config) -> Result<()> {
    let wasm = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let input_text = std::fs::read_to_string(input).with_context(|| format!("reading {}", input.display()))?;
    let runtime = runtime(config)?;
    let plugin = runtime.compile(&wasm, None)?;
    if let Some(w) = world.filter(|w| *w != plugin.meta.world) {
        bail!("{} is a {} component, not {w}", file.display(), plugin.meta.world);
    }
    let mut map = BTreeMap::new();
    for kv in settings {
        let (k, v) = kv.split_once('=').with_context(|| format!("--config-value {kv:?}: expected KEY=VALUE"))?;
        map.insert(k.to_string(), v.to_string());
    }
    let settings = Arc::new(map);
    let limits = &config.plugins.limits;
    let bad_input = |e: serde_json::Error| {
        anyhow::anyhow!("{} is not a {} input: {e} (see docs/plugins.md)", input.display(), plugin.meta.world)
    };
    let (label, report): (&str, CallReport<Value>) = match plugin.meta.world {
        World::Router => {
            let i: RouterInput = serde_json::from_str(&input_text).map_err(bad_input)?;
            ("decision", to_value(runtime.route(&plugin, limits, settings, &i.context, &i.message)))
        }
        World::FollowUp => {
            let i: FollowUpInput = serde_json::from_str(&input_text).map_err(bad_input)?;
            ("plan", to_value(runtime.plan_follow_up(&plugin, limits, settings, &i)))
        }
        World::Feedback => {
            let i: FeedbackInput = serde_json::from_str(&input_text).map_err(bad_input)?;
            ("signals", to_value(runtime.learn(&plugin, limits, settings, &i)))
        }
    };
    let failed = report.result.is_err();
    let out = json!({
        "world": plugin.meta.world,
        "version": plugin.meta.hash,
        "wit_version": plugin.meta.wit_version,
        label: report.result.as_ref().ok(),
        "failure": report.result.as_ref().err().map(ToString::to_string),
        "fuel_used": report.fuel_used,
        "duration_us": report.duration.as_micros() as u64,
        "limits": { "fuel": limits.fuel, "deadline_ms": limits.deadline.as_millis() as u64, "memory_bytes": limits.memory_bytes },
        "logs": report.logs,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    if failed {
        bail!("the plugin failed; the host would have applied the safe fallback");
    }
    Ok(())
}

fn to_value<T: serde::Serialize>(r: CallReport<T>) -> CallReport<Value> {
    r.map(|v| Ok(serde_json::to_value(v).unwrap_or(Value::Null)))
}

fn check_local(file: &Path, world: Option<World>, config: &Config) -> Result<()> {
    let wasm = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let runtime = runtime(config)?;
    let started = std::time::Instant::now();
    match registry::check(&runtime, &wasm, world, &config.plugins.limits) {
        Ok(plugin) => {
            println!(
                "ok: a {} component for switchboard:plugin@{}, {} bytes, sha256 {} (checked in {} ms)",
                plugin.meta.world,
                plugin.meta.wit_version,
                plugin.meta.size,
                plugin.meta.hash,
                started.elapsed().as_millis()
            );
            Ok(())
        }
        Err(e) => bail!("rejected: {e}"),
    }
}

fn api_key(remote: &Remote, config: &Config) -> Result<String> {
    if let Some(k) = &remote.key {
        return Ok(k.clone());
    }
    let env = crate::tenants::read_demo_env(&config.server.data_dir.join("demo.env"));
    env.get("SWITCHBOARD_DEMO_API_KEY")
        .cloned()
        .context("no --key, no $SWITCHBOARD_API_KEY and no demo tenant key in <data_dir>/demo.env")
}

async fn show(response: reqwest::Response) -> Result<Value> {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let message = body.pointer("/error/message").and_then(Value::as_str).unwrap_or("no details");
        bail!("{status}: {message}");
    }
    Ok(body)
}

async fn deploy(file: &Path, world: World, activate: bool, remote: &Remote, config: &Config) -> Result<()> {
    let wasm = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let url = format!("{}/v1/plugins/{world}?activate={activate}", remote.url.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .put(&url)
        .bearer_auth(api_key(remote, config)?)
        .header("content-type", "application/wasm")
        .body(wasm)
        .send()
        .await
        .with_context(|| format!("uploading to {url}"))?;
    let accepted = response.status() == reqwest::StatusCode::ACCEPTED;
    let mut body = show(response).await?;
    if accepted {
        body = follow_upload(&body, remote, config).await?;
    }
    println!("{}", serde_json::to_string_pretty(&body)?);
    Ok(())
}

/// Follows an upload the server is still checking and compiling (a `202`)
/// to its outcome, saying where it is meanwhile.
async fn follow_upload(started: &Value, remote: &Remote, config: &Config) -> Result<Value> {
    let id = started["id"].as_str().context("the server answered 202 without an upload id")?;
    let url = format!("{}/v1/plugins/uploads/{id}", remote.url.trim_end_matches('/'));
    let key = api_key(remote, config)?;
    let http = reqwest::Client::new();
    let mut last = String::new();
    loop {
        let view = show(http.get(&url).bearer_auth(&key).send().await?).await?;
        let state = view["state"].as_str().unwrap_or_default().to_string();
        match state.as_str() {
            "accepted" => return Ok(view),
            "rejected" => bail!(
                "{} {}: {}",
                view["http_status"],
                view["code"].as_str().unwrap_or_default(),
                view["message"].as_str().unwrap_or("no details")
            ),
            _ => {
                let now = match view["ahead"].as_u64() {
                    Some(ahead) => format!("queued ({ahead} ahead)"),
                    None => state,
                };
                if now != last {
                    eprintln!("upload {id}: {now}…");
                    last = now;
                }
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
    }
}

async fn logs(world: World, limit: usize, remote: &Remote, config: &Config) -> Result<()> {
    let url = format!("{}/v1/plugins/{world}/logs?limit={limit}", remote.url.trim_end_matches('/'));
    let response = reqwest::Client::new().get(&url).bearer_auth(api_key(remote, config)?).send().await?;
    let body = show(response).await?;
    for line in body["logs"].as_array().into_iter().flatten() {
        println!(
            "{} {:5} {:6} {} {}",
            line["at"],
            line["level"].as_str().unwrap_or_default(),
            line["source"].as_str().unwrap_or_default(),
            &line["version"].as_str().unwrap_or_default().chars().take(12).collect::<String>(),
            line["message"].as_str().unwrap_or_default()
        );
    }
    Ok(())
}

fn init(name: &str, world: World, sdk: Option<PathBuf>) -> Result<()> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_') {
        bail!("{name:?}: a crate name is lower-case letters, digits, - and _");
    }
    let sdk = match sdk {
        Some(p) => p,
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/sdk"),
    };
    let sdk = sdk.canonicalize().with_context(|| {
        format!("the guest SDK is not at {}: pass --sdk <switchboard checkout>/plugins/sdk", sdk.display())
    })?;
    let dir = Path::new(name);
    if dir.exists() {
        bail!("{} already exists", dir.display());
    }
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::create_dir_all(dir.join(".cargo"))?;
    let feature = world.as_str();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n\
             [lib]\ncrate-type = [\"cdylib\"]\n\n\
             [dependencies]\nswitchboard-plugin = {{ path = {:?}, features = [\"{feature}\"] }}\n\n\
             # Fast: the host instantiates the plugin for every decision.\n\
             [profile.release]\nopt-level = 3\nlto = true\nstrip = true\npanic = \"abort\"\n\n\
             # A standalone crate, not part of an enclosing workspace.\n[workspace]\n",
            sdk.display().to_string()
        ),
    )?;
    std::fs::write(dir.join(".cargo/config.toml"), GUEST_CARGO_CONFIG)?;
    let (source, sample) = match world {
        World::Router => (ROUTER_TEMPLATE, "router-greeting.json"),
        World::FollowUp => (FOLLOW_UP_TEMPLATE, "follow-up-unanswered.json"),
        World::Feedback => (FEEDBACK_TEMPLATE, "feedback-replied.json"),
    };
    std::fs::write(dir.join("src/lib.rs"), source)?;
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/inputs").join(sample);
    if let Ok(text) = std::fs::read_to_string(&samples) {
        std::fs::write(dir.join("input.json"), text)?;
    }
    let wasm = format!("target/wasm32-wasip2/release/{}.wasm", name.replace('-', "_"));
    std::fs::write(
        dir.join("README.md"),
        format!(
            "# {name}\n\nA Switchboard `{world}` plugin.\n\n```sh\ncargo build --release\n\
             switchboard plugin run {wasm} --input input.json\nswitchboard plugin check {wasm}\n\
             switchboard plugin deploy {wasm} --world {world} --activate\n```\n"
        ),
    )?;
    println!(
        "created {name}/ (a {world} plugin). Next:\n  cd {name} && cargo build --release\n  switchboard plugin run {wasm} --input input.json"
    );
    Ok(())
}

/// Builds for the component target with a 64 KiB stack: every decision
/// resets the instance's dirtied memory, and Rust's default 1 MiB stack makes
/// that memory 17 pages instead of two.
const GUEST_CARGO_CONFIG: &str = "[build]\ntarget = \"wasm32-wasip2\"\n\n\
# A 64 KiB stack (the wasm-ld default) keeps each fresh instance small; raise\n\
# it if the plugin recurses deeply (an overflow traps, and the host falls back).\n\
[target.wasm32-wasip2]\nrustflags = [\"-C\", \"link-arg=-zstack-size=65536\"]\n";

const ROUTER_TEMPLATE: &str = r#"//! A Switchboard router. `route` is called for every inbound message.
use switchboard_plugin::router::*;

struct MyRouter;

impl Router for MyRouter {
    fn route(input: Input) -> Result<Decision, String> {
        let text = input.message.lowercase_text();
        let team = config("team").unwrap_or_else(|| "support".into());
        if text.contains("price") || text.contains("preço") || text.contains("precio") {
            return Ok(Decision::human(Assignee::Team("sales".into()), "buying intent").within_minutes(60).with_tag("sales"));
        }
        log(LogLevel::Info, &format!("routing {} to {team}", input.message.id));
        Ok(Decision::human(Assignee::Team(team), "everything else goes to the team").within_minutes(240))
    }
}

switchboard_plugin::export_router!(MyRouter);
"#;

const FOLLOW_UP_TEMPLATE: &str = r#"//! A Switchboard follow-up planner, asked after everything that happens.
use switchboard_plugin::follow_up::*;

const HOUR: i64 = 3_600_000;

struct MyFollowUp;

impl FollowUp for MyFollowUp {
    fn plan_next(input: Input) -> Result<Plan, String> {
        let max_attempts: u32 = config_or("max-attempts", 2);
        Ok(match input.trigger {
            Trigger::Inbound(_) => Plan::cancel("the contact wrote"),
            Trigger::Outbound(m) if input.unanswered_attempts < max_attempts => Plan::schedule(
                m.at + 24 * HOUR,
                Action::SendTemplate(Template { name: "follow_up".into(), language: "en".into(), parameters: vec![] }),
                input.unanswered_attempts + 1,
                "no answer a day after our message",
            ),
            _ => Plan::nothing("nothing to do"),
        })
    }
}

switchboard_plugin::export_follow_up!(MyFollowUp);
"#;

const FEEDBACK_TEMPLATE: &str = r#"//! A Switchboard feedback plugin, called when an exchange closes.
use switchboard_plugin::feedback::*;

struct MyFeedback;

impl Feedback for MyFeedback {
    fn learn(input: Input) -> Result<Vec<SignalUpdate>, String> {
        let i = &input.interaction;
        let mut out = Vec::new();
        if let Some(latency) = i.contact_reply_latency {
            // 1.0 for an answer within minutes, towards 0 over a day.
            let hours = latency as f64 / 3_600_000.0;
            out.push(SignalUpdate { name: "responsiveness".into(), value: (1.0 / (1.0 + hours)).clamp(0.0, 1.0) });
        }
        Ok(out)
    }
}

switchboard_plugin::export_feedback!(MyFeedback);
"#;
