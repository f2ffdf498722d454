//! `switchboard plugin init`: a plugin crate that builds anywhere — the
//! guest SDK and the WIT contract come with the binary.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::plugins::World;

pub(super) fn init(name: &str, world: World, sdk: Option<PathBuf>) -> Result<()> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_') {
        bail!("{name:?}: a crate name is lower-case letters, digits, - and _");
    }
    let dir = Path::new(name);
    if dir.exists() {
        bail!("{} already exists", dir.display());
    }
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::create_dir_all(dir.join(".cargo"))?;
    // The SDK (and the WIT it binds) comes with the binary, so a plugin
    // crate can be made anywhere; `--sdk` points at a checkout's instead.
    let sdk = match sdk {
        Some(p) => p.canonicalize().with_context(|| format!("the guest SDK is not at {}", p.display()))?,
        None => vendor_sdk(dir)?,
    };
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
    let source = match world {
        World::Router => ROUTER_TEMPLATE,
        World::FollowUp => FOLLOW_UP_TEMPLATE,
        World::Feedback => FEEDBACK_TEMPLATE,
    };
    let sample = crate::plugins::call::sample(world);
    std::fs::write(dir.join("src/lib.rs"), source)?;
    std::fs::write(dir.join("input.json"), sample)?;
    let wasm = format!("target/wasm32-wasip2/release/{}.wasm", name.replace('-', "_"));
    std::fs::write(
        dir.join("README.md"),
        format!(
            "# {name}\n\nA Switchboard `{world}` plugin. The contract it implements is in `wit/`.\n\n\
             ```sh\ncargo build --release\n\
             switchboard plugin run {wasm} --input input.json\nswitchboard plugin check {wasm}\n\
             switchboard plugin deploy {wasm} --world {world} --activate\n```\n"
        ),
    )?;
    println!(
        "created {name}/ (a {world} plugin). Next:\n  cd {name} && cargo build --release\n  switchboard plugin run {wasm} --input input.json"
    );
    Ok(())
}

/// The guest SDK and the WIT it binds, as the binary was built with them.
const SDK_FILES: &[(&str, &str)] = &[
    ("vendor/switchboard-plugin/src/lib.rs", include_str!("../../../plugins/sdk/src/lib.rs")),
    ("vendor/switchboard-plugin/src/router.rs", include_str!("../../../plugins/sdk/src/router.rs")),
    ("vendor/switchboard-plugin/src/follow_up.rs", include_str!("../../../plugins/sdk/src/follow_up.rs")),
    ("vendor/switchboard-plugin/src/feedback.rs", include_str!("../../../plugins/sdk/src/feedback.rs")),
    ("wit/v0.1.0/types.wit", include_str!("../../../wit/v0.1.0/types.wit")),
    ("wit/v0.1.0/router.wit", include_str!("../../../wit/v0.1.0/router.wit")),
    ("wit/v0.1.0/follow-up.wit", include_str!("../../../wit/v0.1.0/follow-up.wit")),
    ("wit/v0.1.0/feedback.wit", include_str!("../../../wit/v0.1.0/feedback.wit")),
];

/// The SDK's manifest, standalone (the repository's inherits from the
/// workspace). Its bindings read `../../wit/v0.1.0`, beside `vendor/`.
const SDK_MANIFEST: &str = "[package]\nname = \"switchboard-plugin\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\
license = \"Apache-2.0\"\npublish = false\n\n[features]\ndefault = []\nrouter = []\nfollow-up = []\nfeedback = []\n\n\
[dependencies]\nwit-bindgen = \"0.63\"\n";

/// Writes the SDK into `dir/vendor` (and the WIT into `dir/wit`); its path.
fn vendor_sdk(dir: &Path) -> Result<PathBuf> {
    for (path, text) in SDK_FILES {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text)?;
    }
    std::fs::write(dir.join("vendor/switchboard-plugin/Cargo.toml"), SDK_MANIFEST)?;
    Ok(PathBuf::from("vendor/switchboard-plugin"))
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
