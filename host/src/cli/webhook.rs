//! `switchboard webhook send`: post a signed payload as Meta would.

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::clock::{Clock, SystemClock};
use crate::ingest::signature;

pub(super) fn demo_secret(data_dir: &Path) -> Result<String> {
    let path = data_dir.join("demo.env");
    match crate::tenants::read_demo_env(&path).remove("SWITCHBOARD_DEMO_APP_SECRET") {
        Some(s) => Ok(s),
        None => {
            bail!("no --secret given and {} has none; start `switchboard serve` first or pass --secret", path.display())
        }
    }
}

pub(super) async fn send(file: &Path, url: &str, secret: &str, keep_timestamps: bool, new_ids: bool) -> Result<()> {
    let raw = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let body = if keep_timestamps && !new_ids {
        raw
    } else {
        let mut json: serde_json::Value =
            serde_json::from_slice(&raw).with_context(|| format!("{} is not JSON", file.display()))?;
        crate::ingest::payload::restamp(&mut json, (!keep_timestamps).then(|| SystemClock.now_ms() / 1000), new_ids);
        serde_json::to_vec(&json)?
    };
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("x-hub-signature-256", signature::sign(secret.as_bytes(), &body))
        .body(body)
        .send()
        .await
        .with_context(|| format!("posting to {url}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    println!("{status} {text}");
    if !status.is_success() {
        bail!("the webhook answered {status}");
    }
    Ok(())
}
