//! Shared pieces of the benchmark suite: one routing logic, written once
//! per technology, and the input every variant decides on.
//!
//! The rules (identical everywhere): an urgent keyword → support, urgent,
//! 15 min; a late-stage deal → sales, high, 30 min; a buying word → sales,
//! 120 min; a bare greeting inside Mon–Fri 09:00–18:00 → the bot answers;
//! otherwise support, 240 min.

use std::net::SocketAddr;

use switchboard::model::{Assignee, Handler, Priority, Reply, RoutingDecision};
use switchboard::plugins::RouterInput;

const URGENT: &[&str] = &["urgent", "urgente", "cancel", "cancelar", "refund", "reembolso"];
const LATE: &[&str] = &["proposal", "negotiation", "contract"];
const BUYING: &[&str] = &["price", "preço", "precio", "quote", "plan", "plano"];
const GREETING: &[&str] = &["oi", "hi", "hola", "olá", "hello"];

/// The input: the sample context from `examples/inputs/`, with a message
/// that goes through most rules before matching ("buying intent").
pub fn sample() -> RouterInput {
    let text = include_str!("../../../examples/inputs/router-greeting.json");
    let mut input: RouterInput = serde_json::from_str(text).expect("the sample input parses");
    input.message.text = Some("Oi! Qual o preço do plano anual para a minha equipe?".into());
    input
}

fn human(team: &str, priority: Priority, minutes: u64, reason: &str) -> RoutingDecision {
    RoutingDecision {
        needs_reply: true,
        handler: Handler::Human { assignee: Assignee::Team(team.into()) },
        acknowledge: None,
        priority,
        respond_within_ms: Some(minutes * 60_000),
        tags: Vec::new(),
        reason: reason.into(),
    }
}

/// The floor: the logic as a plain Rust function.
pub fn native(input: &RouterInput) -> RoutingDecision {
    let text = input.message.text.as_deref().unwrap_or_default().to_lowercase();
    if URGENT.iter().any(|w| text.contains(w)) {
        return human("support", Priority::Urgent, 15, "urgent keyword");
    }
    if input.context.deal.as_ref().is_some_and(|d| LATE.contains(&d.stage.as_str())) {
        return human("sales", Priority::High, 30, "late-stage deal");
    }
    if BUYING.iter().any(|w| text.contains(w)) {
        return human("sales", Priority::Normal, 120, "buying intent");
    }
    let t = &input.context.local_time;
    let open = t.weekday < 5 && (540..1080).contains(&t.minute_of_day);
    if open && GREETING.iter().any(|w| text.trim_matches(|c: char| !c.is_alphanumeric()) == *w) {
        return RoutingDecision {
            needs_reply: true,
            handler: Handler::Bot { reply: Reply::Text { body: "Hi! How can we help?".into() } },
            acknowledge: None,
            priority: Priority::Normal,
            respond_within_ms: None,
            tags: Vec::new(),
            reason: "greeting".into(),
        };
    }
    human("support", Priority::Normal, 240, "default")
}

/// The logic in Rhai; `input` is the context and message as a map.
pub const RHAI: &str = r#"
fn human(team, priority, minutes, reason) {
    #{ needs_reply: true, handler: #{ type: "human", assignee: #{ kind: "team", id: team } },
       acknowledge: (), priority: priority, respond_within_ms: minutes * 60000, tags: [], reason: reason }
}
fn route(input) {
    let text = input.message.text.to_lower();
    for w in ["urgent", "urgente", "cancel", "cancelar", "refund", "reembolso"] { if text.contains(w) { return human("support", "urgent", 15, "urgent keyword"); } }
    let deal = input.context.deal;
    if deal != () && ["proposal", "negotiation", "contract"].contains(deal.stage) { return human("sales", "high", 30, "late-stage deal"); }
    for w in ["price", "preço", "precio", "quote", "plan", "plano"] { if text.contains(w) { return human("sales", "normal", 120, "buying intent"); } }
    let t = input.context.local_time;
    let open = t.weekday < 5 && t.minute_of_day >= 540 && t.minute_of_day < 1080;
    if open && ["oi", "hi", "hola", "olá", "hello"].contains(text) {
        return #{ needs_reply: true, handler: #{ type: "bot", reply: #{ type: "text", body: "Hi! How can we help?" } },
                  acknowledge: (), priority: "normal", respond_within_ms: (), tags: [], reason: "greeting" };
    }
    human("support", "normal", 240, "default")
}
"#;

/// The logic in Lua.
pub const LUA: &str = r#"
local function human(team, priority, minutes, reason)
  return { needs_reply = true, handler = { type = "human", assignee = { kind = "team", id = team } },
           priority = priority, respond_within_ms = minutes * 60000, tags = {}, reason = reason }
end
local function any(text, words)
  for _, w in ipairs(words) do if string.find(text, w, 1, true) then return true end end
  return false
end
function route(input)
  local text = string.lower(input.message.text or "")
  if any(text, { "urgent", "urgente", "cancel", "cancelar", "refund", "reembolso" }) then return human("support", "urgent", 15, "urgent keyword") end
  local deal = input.context.deal
  if deal and (deal.stage == "proposal" or deal.stage == "negotiation" or deal.stage == "contract") then return human("sales", "high", 30, "late-stage deal") end
  if any(text, { "price", "preço", "precio", "quote", "plan", "plano" }) then return human("sales", "normal", 120, "buying intent") end
  local t = input.context.local_time
  local open = t.weekday < 5 and t.minute_of_day >= 540 and t.minute_of_day < 1080
  if open and (text == "oi" or text == "hi" or text == "hola" or text == "olá" or text == "hello") then
    return { needs_reply = true, handler = { type = "bot", reply = { type = "text", body = "Hi! How can we help?" } },
             priority = "normal", tags = {}, reason = "greeting" }
  end
  return human("support", "normal", 240, "default")
end
"#;

/// The logic behind an HTTP webhook (how most SaaS platforms let customers
/// customise routing): a local axum endpoint, JSON in and out.
pub async fn webhook_server() -> SocketAddr {
    async fn route(axum::Json(input): axum::Json<RouterInput>) -> axum::Json<RoutingDecision> {
        axum::Json(native(&input))
    }
    let app = axum::Router::new().route("/route", axum::routing::post(route));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// The bench router component (built by build.rs).
pub fn bench_router_wasm() -> Vec<u8> {
    std::fs::read(env!("BENCH_ROUTER_WASM")).expect("build.rs built the bench router")
}

/// The Extism plugin (built by build.rs).
pub fn extism_wasm() -> Vec<u8> {
    std::fs::read(env!("BENCH_EXTISM_WASM")).expect("build.rs built the Extism plugin")
}
pub mod load;

/// A Switchboard server in this process, on loopback, over its own sled
/// directory: the same code `switchboard serve` runs.
pub struct Host {
    pub server: switchboard::server::Server,
    pub dir: tempfile::TempDir,
    pub url: String,
    pub config: switchboard::config::Config,
}

pub const SECRET: &str = "bench-app-secret";
pub const API_KEY: &str = "sbk_bench";
pub const ADMIN: &str = "bench-admin";

/// The configuration of a benchmark host on `dir`.
pub fn bench_config(dir: &std::path::Path) -> switchboard::config::Config {
    let mut c = switchboard::config::Config::default();
    c.server.listen = "127.0.0.1:0".into();
    c.server.data_dir = dir.to_path_buf();
    c.server.admin_token = Some(ADMIN.into());
    c.demo.app_secret = Some(SECRET.into());
    c.demo.api_key = Some(API_KEY.into());
    c.log.filter = "warn".into();
    c
}

impl Host {
    pub async fn start(adjust: impl FnOnce(&mut switchboard::config::Config)) -> Host {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = bench_config(dir.path());
        adjust(&mut config);
        Self::start_in(dir, config).await
    }

    pub async fn start_in(dir: tempfile::TempDir, config: switchboard::config::Config) -> Host {
        let server = switchboard::server::start(config.clone(), std::sync::Arc::new(switchboard::clock::SystemClock))
            .await
            .expect("the server starts");
        let url = format!("http://{}", server.addr);
        Host { server, dir, url, config }
    }

    /// The demo tenant as a load target.
    pub fn target(&self, tag: &str) -> load::Target {
        load::Target {
            phone_number_id: self.config.demo.phone_number_id.clone(),
            secret: SECRET.into(),
            key: API_KEY.into(),
            tag: tag.into(),
            body: "Oi! Qual o preço do plano?".into(),
        }
    }

    pub async fn stop(self) -> tempfile::TempDir {
        self.server.stop().await;
        self.dir
    }
}

/// Resident memory of this process, in bytes (Linux).
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

/// Percentile of sorted values.
pub fn pct(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// A real `switchboard serve` process (the `sb-serve` binary is the
/// `switchboard` binary's own `main.rs`) on loopback over a fresh data
/// directory: what the pipeline benchmark loads, so the load generator
/// and the server are separate processes as in production.
pub struct Process {
    child: std::process::Child,
    pub url: String,
    pub dir: tempfile::TempDir,
    pub phone_number_id: String,
}

impl Process {
    /// Starts `binary serve` with `env` on top of the benchmark defaults.
    pub fn start(binary: &str, env: &[(&str, &str)]) -> anyhow::Result<Process> {
        use std::io::{BufRead, BufReader};
        let dir = tempfile::tempdir()?;
        let mut cmd = std::process::Command::new(binary);
        cmd.arg("serve")
            .env("SWITCHBOARD_SERVER__LISTEN", "127.0.0.1:0")
            .env("SWITCHBOARD_SERVER__DATA_DIR", dir.path())
            .env("SWITCHBOARD_SERVER__ADMIN_TOKEN", ADMIN)
            .env("SWITCHBOARD_DEMO__APP_SECRET", SECRET)
            .env("SWITCHBOARD_DEMO__API_KEY", API_KEY)
            .env("RUST_LOG", std::env::var("BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let mut url = None;
        let mut phone_number_id = String::from("100000000000001");
        for line in lines.by_ref() {
            let line = line?;
            if let Some(rest) = line.split("listening on ").nth(1) {
                url = Some(rest.trim().to_string());
            }
            if let Some(rest) = line.split("phone_number_id ").nth(1) {
                phone_number_id = rest.trim_end_matches(')').trim().to_string();
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        let url = url.ok_or_else(|| anyhow::anyhow!("the server exited before it was listening"))?;
        Ok(Process { child, url, dir, phone_number_id })
    }

    /// The demo tenant as a load target.
    pub fn target(&self, tag: &str) -> load::Target {
        load::Target {
            phone_number_id: self.phone_number_id.clone(),
            secret: SECRET.into(),
            key: API_KEY.into(),
            tag: tag.into(),
            body: "Oi! Qual o preço do plano?".into(),
        }
    }

    /// CPU time (user + system) the server has used so far.
    pub fn cpu(&self) -> Duration {
        cpu_of(&format!("/proc/{}/stat", self.child.id()))
    }

    /// SIGTERM, then waits: the server's own graceful shutdown.
    pub fn stop(mut self) {
        // SAFETY: kill(2) on our own child's pid with a constant signal.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

use std::time::Duration;

/// CPU time (user + system) of this process so far.
pub fn own_cpu() -> Duration {
    cpu_of("/proc/self/stat")
}

/// utime + stime from a `/proc/<pid>/stat` file (Linux; zero elsewhere).
fn cpu_of(path: &str) -> Duration {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name, which is parenthesised and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of stat(5); here 12 and 13.
    // SAFETY: sysconf with a constant name has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_micros((ticks(11) + ticks(12)) * 1_000_000 / hz)
}
