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
use crate::plugins::call::run_json;
use crate::plugins::{Runtime, World, registry};

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Run FILE on a JSON input and print the decision, fuel, time and logs.
    Run {
        file: PathBuf,
        /// The component's world (default: the one it declares).
        #[arg(long, value_enum)]
        world: Option<World>,
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
        #[arg(long, value_enum)]
        world: Option<World>,
    },
    /// Upload FILE to a running host (and optionally activate it).
    Deploy {
        file: PathBuf,
        #[arg(long, value_enum)]
        world: World,
        #[arg(long)]
        activate: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Print the recent log lines of a tenant's plugins.
    Logs {
        #[arg(long, value_enum, default_value = "router")]
        world: World,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[command(flatten)]
        remote: Remote,
    },
    /// Create a plugin crate for WORLD that builds with `cargo build --release`.
    Init {
        name: String,
        #[arg(long, value_enum, default_value = "router")]
        world: World,
        /// The guest SDK (`plugins/sdk` of a Switchboard checkout).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
pub struct Remote {
    /// The host's base URL; default: the configured `server.listen`.
    #[arg(long)]
    url: Option<String>,
    /// Tenant API key; default: $SWITCHBOARD_API_KEY, else the demo tenant's.
    #[arg(long, env = "SWITCHBOARD_API_KEY", hide_env_values = true)]
    key: Option<String>,
}

impl Remote {
    fn base(&self, config: &Config) -> String {
        let url = self.url.clone().unwrap_or_else(|| super::server_url(config));
        url.trim_end_matches('/').to_string()
    }
}

pub async fn run(command: PluginCommand, config: &Config) -> Result<()> {
    match command {
        PluginCommand::Run { file, world, input, settings } => {
            let config = config.clone();
            tokio::task::spawn_blocking(move || run_local(&file, world, &input, &settings, &config)).await?
        }
        PluginCommand::Check { file, world } => {
            let config = config.clone();
            tokio::task::spawn_blocking(move || check_local(&file, world, &config)).await?
        }
        PluginCommand::Deploy { file, world, activate, remote } => {
            deploy(&file, world, activate, &remote, config).await
        }
        PluginCommand::Logs { world, limit, remote } => logs(world, limit, &remote, config).await,
        PluginCommand::Init { name, world, sdk } => super::scaffold::init(&name, world, sdk),
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
    let (label, report) = run_json(&runtime, &plugin, limits, settings, &input_text).map_err(|e| {
        anyhow::anyhow!("{} is not a {} input: {e} (see docs/plugins.md)", input.display(), plugin.meta.world)
    })?;
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
    let url = format!("{}/v1/plugins/{world}?activate={activate}", remote.base(config));
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
    let url = format!("{}/v1/plugins/uploads/{id}", remote.base(config));
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
    let url = format!("{}/v1/plugins/{world}/logs?limit={limit}", remote.base(config));
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
