//! Configuration: built-in defaults, then a TOML file, then environment
//! variables (`SWITCHBOARD_<SECTION>__<KEY>`, e.g.
//! `SWITCHBOARD_SERVER__LISTEN=0.0.0.0:8080`). Every default is chosen to
//! work on a fresh machine and is documented in `docs/configuration.md`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub webhook: WebhookConfig,
    pub pipeline: PipelineConfig,
    pub conversations: ConversationConfig,
    pub plugins: PluginConfig,
    pub outbound: OutboundConfig,
    pub media: MediaConfig,
    pub demo: DemoConfig,
    pub sync: SyncConfig,
    pub log: LogConfig,
    /// Caps on automated messages per contact (the storm guard); a tenant
    /// may have its own.
    pub automation: StormLimits,
}

/// Delivery of CRM events to tenants' endpoints.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncConfig {
    /// Attempts before an event goes to the dead-letter list.
    pub max_attempts: u32,
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Contacts delivered to at once, per endpoint.
    pub concurrency: usize,
    /// Let tenants' endpoints point at loopback, private, link-local or
    /// other internal addresses. Off: a tenant key must not reach the
    /// operator's own network (SSRF). Turn on only where every tenant is
    /// trusted, or for a CRM on the same host.
    pub allow_internal_destinations: bool,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            max_attempts: 12,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(300),
            request_timeout: Duration::from_secs(10),
            concurrency: 16,
            allow_internal_destinations: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on. Loopback by default: expose it on purpose.
    pub listen: String,
    /// Where the database, the compiled-plugin cache and demo credentials live.
    pub data_dir: PathBuf,
    /// How long shutdown waits for in-flight work before leaving it (durably)
    /// to the next start.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Bearer token for the operator API (`/admin/v1/…`) and `/metrics`;
    /// unset disables them on the main port.
    pub admin_token: Option<String>,
    /// Serve `/metrics` (and `/healthz`) on this separate address, without
    /// a token, and not on the main port — for a Prometheus on a private
    /// interface. Unset: `/metrics` is on the main port, behind the admin
    /// token (it names tenants and their endpoints).
    pub metrics_listen: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            shutdown_grace: Duration::from_secs(10),
            admin_token: None,
            metrics_listen: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Token Meta echoes in the `GET` verification handshake. A tenant's own
    /// `verify_token` is accepted too.
    pub verify_token: String,
    /// Largest accepted webhook body. Meta sends up to 3 MB.
    pub max_body_bytes: usize,
    /// How long a `wamid` is remembered to drop redeliveries. Meta retries
    /// for up to 7 days.
    #[serde(with = "humantime_serde")]
    pub dedup_window: Duration,
    /// App secrets of Meta apps the operator runs, for bodies that name no
    /// phone-number id a tenant owns (a number not yet assigned, fields
    /// without one). Such bodies are acknowledged only when signed with one
    /// of these; others get 401. Tenants' own app secrets are theirs.
    pub app_secrets: Vec<String>,
    /// How long each message and status is kept exactly as Meta sent it
    /// (`GET /v1/messages/{id}/raw`); `0s` keeps none.
    #[serde(with = "humantime_serde")]
    pub raw_retention: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            verify_token: "switchboard-verify".into(),
            max_body_bytes: 4 * 1024 * 1024,
            dedup_window: Duration::from_secs(14 * 24 * 3600),
            app_secrets: Vec::new(),
            raw_retention: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineConfig {
    /// Worker threads; events of one contact always go to the same worker,
    /// in order. 0 = two per CPU.
    pub workers: usize,
    /// Events queued per worker before the dispatcher waits.
    pub queue_depth: usize,
    /// `false` only acknowledges and journals webhooks (durably) and applies
    /// nothing: the floor the benchmarks compare the pipeline with.
    pub enabled: bool,
    /// A contact's lane whose head event has run (or kept failing) this
    /// long is reported as stalled by `/healthz` and `/metrics`.
    #[serde(with = "humantime_serde")]
    pub stall_after: Duration,
    /// A tenant whose events average more CPU than this (its plugin burns
    /// its budget) runs on the low-priority background workers until they
    /// are cheap again.
    #[serde(with = "humantime_serde")]
    pub heavy_event: Duration,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            workers: 0,
            queue_depth: 256,
            enabled: true,
            stall_after: Duration::from_secs(30),
            heavy_event: Duration::from_millis(5),
        }
    }
}

impl PipelineConfig {
    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            return self.workers;
        }
        std::thread::available_parallelism().map(|n| n.get() * 2).unwrap_or(4)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConversationConfig {
    /// A conversation with no message for this long is closed; the next
    /// message opens a new one.
    #[serde(with = "humantime_serde")]
    pub inactivity_timeout: Duration,
    /// Messages of history handed to plugins.
    pub history: usize,
}

impl Default for ConversationConfig {
    fn default() -> Self {
        ConversationConfig { inactivity_timeout: Duration::from_secs(24 * 3600), history: 20 }
    }
}

/// Operator defaults for every plugin call; tenants may be given their own.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PluginLimits {
    /// Instruction budget per call (wasmtime fuel ≈ Wasm instructions).
    pub fuel: u64,
    /// Wall-clock budget per call, e.g. `50ms`.
    #[serde(with = "humantime_serde")]
    #[schema(value_type = String, example = "50ms")]
    pub deadline: Duration,
    /// Linear memory cap per instance.
    pub memory_bytes: usize,
    /// Table elements cap per instance.
    pub table_elements: usize,
    /// Cap on the size of what a plugin returns (strings and lists).
    pub output_bytes: usize,
    /// Largest component accepted at upload. A JavaScript plugin
    /// (ComponentizeJS) is about 12 MB.
    pub component_bytes: usize,
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits {
            fuel: 50_000_000,
            deadline: Duration::from_millis(50),
            memory_bytes: 128 * 1024 * 1024,
            table_elements: 100_000,
            output_bytes: 64 * 1024,
            component_bytes: 32 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginConfig {
    pub limits: PluginLimits,
    /// Instances that may run at once (pooling allocator slots).
    pub instance_slots: u32,
    /// Where compiled plugins are cached; defaults to `<data_dir>/plugin-cache`.
    pub cache_dir: Option<PathBuf>,
    /// Epoch tick; deadlines are measured in ticks of this length.
    #[serde(with = "humantime_serde")]
    pub epoch_tick: Duration,
    /// Ceiling for any tenant's memory cap (sizes the instance pool).
    pub max_memory_bytes: usize,
    /// Ceiling for any tenant's table cap.
    pub max_table_elements: usize,
    /// Failures (in the breaker's window) after which a tenant's version
    /// is suspended and the last good one takes over — if they are at
    /// least `breaker_failure_rate` of the window's calls and not one
    /// contact's (that contact is quarantined instead).
    pub suspend_after: u32,
    /// Recent calls of a version the breaker looks at.
    pub breaker_window: usize,
    /// Share of the window's calls that must have failed to suspend.
    pub breaker_failure_rate: f64,
    /// How long a contact whose own messages keep failing a version skips
    /// it (its decisions take the fallback).
    #[serde(with = "humantime_serde")]
    pub contact_quarantine: Duration,
    /// Threads that check and compile uploads, at the lowest priority.
    pub compile_threads: usize,
    /// Uploads that may wait for a compile thread, host-wide…
    pub compile_queue: usize,
    /// …and per tenant (queued or compiling).
    pub uploads_per_tenant: usize,
    /// How long an upload request waits for its result before answering
    /// `202` with where to follow it.
    #[serde(with = "humantime_serde")]
    pub upload_wait: Duration,
    /// Versions per tenant and world whose bytes are kept (besides the
    /// active one and those a rollback reaches); older ones are retired:
    /// record and hash kept, bytes deleted.
    pub max_versions: usize,
    /// Compiled code kept in memory for versions not running (least
    /// recently used out; reloaded from the on-disk cache when needed).
    pub compiled_cache_bytes: usize,
}

impl Default for PluginConfig {
    fn default() -> Self {
        PluginConfig {
            limits: PluginLimits::default(),
            instance_slots: 128,
            cache_dir: None,
            epoch_tick: Duration::from_millis(1),
            max_memory_bytes: 512 * 1024 * 1024,
            max_table_elements: 1_000_000,
            suspend_after: 5,
            breaker_window: 20,
            breaker_failure_rate: 0.5,
            contact_quarantine: Duration::from_secs(3600),
            compile_threads: 1,
            compile_queue: 16,
            uploads_per_tenant: 2,
            upload_wait: Duration::from_secs(2),
            max_versions: 20,
            compiled_cache_bytes: 256 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundConfig {
    /// Base of Meta's Graph API; tests point it at a loopback server.
    pub graph_base: String,
    pub api_version: String,
    /// Attempts per send on 429 / 5xx / throughput errors.
    pub max_attempts: u32,
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Sends in flight at once across tenants.
    pub concurrency: usize,
    /// Messages per second per business number (Meta's default
    /// throughput); a tenant may have its own.
    pub messages_per_second: u32,
    /// A staff reply whose send a crash interrupted (Meta may or may not
    /// have it) is sent again when `true`, at the risk of a duplicate;
    /// when `false` it is marked `unknown` for the person to check.
    /// Automated messages are never sent again.
    pub resend_unknown_staff_replies: bool,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            graph_base: "https://graph.facebook.com".into(),
            api_version: "v21.0".into(),
            max_attempts: 5,
            initial_backoff: Duration::from_millis(500),
            request_timeout: Duration::from_secs(15),
            concurrency: 16,
            messages_per_second: 80,
            resend_unknown_staff_replies: false,
        }
    }
}

/// Inbound media files: downloaded from Meta, kept, served.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// Where files are kept; default `<data_dir>/media`.
    pub dir: Option<PathBuf>,
    /// How long a stored file is kept (Meta keeps it 30 days at most).
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Download attempts per file before it is marked failed (Meta's
    /// media ids in webhooks expire after 7 days).
    pub max_attempts: u32,
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    /// Downloads at once across tenants.
    pub concurrency: usize,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            dir: None,
            retention: Duration::from_secs(365 * 24 * 3600),
            max_attempts: 10,
            initial_backoff: Duration::from_secs(5),
            concurrency: 4,
        }
    }
}

/// The tenant created on first start so a fresh clone works end to end.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DemoConfig {
    pub enabled: bool,
    pub phone_number_id: String,
    /// Generated on first start when unset, then kept.
    pub app_secret: Option<String>,
    /// Generated on first start when unset, then kept.
    pub api_key: Option<String>,
    /// When set, sends go to Meta for real.
    pub access_token: Option<String>,
    /// The WhatsApp Business Account, for syncing its message templates.
    pub waba_id: Option<String>,
    pub timezone: String,
    pub default_region: String,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            enabled: true,
            phone_number_id: "100000000000001".into(),
            app_secret: None,
            api_key: None,
            access_token: None,
            waba_id: None,
            timezone: "America/Sao_Paulo".into(),
            default_region: "BR".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `tracing` filter, e.g. `info,switchboard=debug`. `RUST_LOG` wins.
    pub filter: String,
    pub format: LogFormat,
}

/// How log lines are written. Anything else in the configuration is an
/// error at start, not a silent fallback.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// For people.
    #[default]
    Pretty,
    /// One JSON object per line, for log pipelines.
    Json,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { filter: "info".into(), format: LogFormat::Pretty }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Defaults, then `file` if given (it must exist) or `switchboard.toml`
    /// if present, then `SWITCHBOARD_*` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) if !path.exists() => {
                return Err(ConfigError(format!("{} does not exist", path.display())));
            }
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None => figment = figment.merge(Toml::file("switchboard.toml")),
        }
        // Only `SECTION__KEY` variables are configuration; others with the
        // prefix (`SWITCHBOARD_CONFIG`, the demo credentials) belong to the CLI.
        figment = figment.merge(Env::prefixed("SWITCHBOARD_").filter(|k| k.as_str().contains("__")).split("__"));
        let config: Config = figment.extract().map_err(|e| ConfigError(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.plugins.limits;
        if l.fuel == 0 || l.deadline.is_zero() || l.memory_bytes < 64 * 1024 {
            return Err(ConfigError("plugins.limits: fuel, deadline and memory_bytes (≥ 64 KiB) must be set".into()));
        }
        if self.plugins.epoch_tick.is_zero() {
            return Err(ConfigError("plugins.epoch_tick must be positive".into()));
        }
        if self.webhook.max_body_bytes < 1024 {
            return Err(ConfigError("webhook.max_body_bytes must be at least 1024".into()));
        }
        if self.demo.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(ConfigError(format!("demo.timezone: unknown timezone {:?}", self.demo.timezone)));
        }
        Ok(())
    }

    pub fn media_dir(&self) -> PathBuf {
        self.media.dir.clone().unwrap_or_else(|| self.server.data_dir.join("media"))
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.plugins.cache_dir.clone().unwrap_or_else(|| self.server.data_dir.join("plugin-cache"))
    }
}

/// Automated messages to one contact, at most (operator defaults in
/// `[automation]`; a tenant may have its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct StormLimits {
    pub per_contact_per_minute: u32,
    pub per_contact_per_day: u32,
}

impl Default for StormLimits {
    fn default() -> Self {
        StormLimits { per_contact_per_minute: 10, per_contact_per_day: 100 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key of every section (`section.key`, nested tables joined with
    /// `.`), from the defaults as they serialise.
    fn keys(value: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
        let Some(map) = value.as_object() else { return };
        for (k, v) in map {
            let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
            if v.is_object() {
                keys(v, &key, out);
            } else {
                out.push(key);
            }
        }
    }

    /// docs/configuration.md names every key in its section's table, so a
    /// new setting cannot ship undocumented.
    #[test]
    fn the_configuration_guide_names_every_key() {
        let doc = include_str!("../../docs/configuration.md");
        let mut all = Vec::new();
        keys(&serde_json::to_value(Config::default()).expect("serialises"), "", &mut all);
        let missing: Vec<&String> = all
            .iter()
            .filter(|key| {
                let (section, name) = key.split_once('.').expect("a section");
                // Nested tables are documented with their own dots
                // (`limits.fuel` in `[plugins]`).
                let heading = format!("`[{section}]`");
                let Some(start) = doc.find(&heading) else { return true };
                let body = &doc[start..];
                let end = body[1..].find("\n## ").map_or(body.len(), |i| i + 1);
                !body[..end].contains(&format!("| `{name}` |"))
            })
            .collect();
        assert!(missing.is_empty(), "undocumented configuration keys: {missing:?}");
    }
}
