//! Keeps Switchboard serving through storage failures.
//!
//! When the disk fills, sled refuses every write from then on — even once
//! space is freed — until the database is opened again. So when storage
//! fails, the supervisor stops the server in order (what was acknowledged
//! is on disk or in the journal, exactly as after a crash), answers every
//! request on the same port with `503` and an `unhealthy` `/healthz` while
//! it waits, and starts the server again as soon as a test write in the
//! data directory succeeds. The port stays bound throughout.

use std::path::Path;
use std::time::Duration;

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{Server, ServerError, bind, start_on};
use crate::clock::SharedClock;
use crate::config::Config;

/// How often, while storage is failing, writing is tried again.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// Written (and removed) by each probe: room for the server to start.
const PROBE_BYTES: usize = 1 << 20;

/// Runs the server until `shutdown`, restarting it after storage failures.
/// `started` is called after every start (the first one prints the banner).
pub async fn run(
    config: Config,
    clock: SharedClock,
    shutdown: CancellationToken,
    mut started: impl FnMut(&Server, u32),
) -> Result<(), ServerError> {
    let listener = bind(&config.server.listen)?;
    let mut starts = 0;
    loop {
        let socket = listener.try_clone().map_err(|e| ServerError::Io(e.to_string()))?;
        let server = match start_on(config.clone(), clock.clone(), socket).await {
            Ok(server) => server,
            // The first start's errors are the operator's to fix; later ones
            // are storage still recovering.
            Err(e) if starts == 0 => return Err(e),
            Err(e) => {
                tracing::error!(error = %e, "restarting after the storage failure failed; waiting");
                if wait_for_storage(&config, &listener, &e.to_string(), &shutdown).await.is_err() {
                    return Ok(());
                }
                continue;
            }
        };
        started(&server, starts);
        starts += 1;
        let store = server.state.stages().store.clone();
        let server_stop = server.shutdown_token();
        let failure = tokio::select! {
            _ = shutdown.cancelled() => None,
            _ = server_stop.cancelled() => None,
            failure = store.failed() => Some(failure),
        };
        drop(store);
        server.stop().await;
        let Some(failure) = failure else { return Ok(()) };
        tracing::error!(
            error = %failure,
            "storage failed; the server stopped in order and answers 503 until writing to {} works again",
            config.server.data_dir.display()
        );
        if wait_for_storage(&config, &listener, &failure, &shutdown).await.is_err() {
            return Ok(());
        }
        tracing::info!("storage writes again; restarting");
    }
}

/// Serves the unavailable answer on `listener` until a test write in the
/// data directory succeeds (`Ok`) or `shutdown` (`Err`).
async fn wait_for_storage(
    config: &Config,
    listener: &std::net::TcpListener,
    failure: &str,
    shutdown: &CancellationToken,
) -> Result<(), ()> {
    let socket = listener.try_clone().map_err(|_| ())?;
    let socket = tokio::net::TcpListener::from_std(socket).map_err(|_| ())?;
    let stop = CancellationToken::new();
    let app = unavailable_app(failure.to_string());
    let serving = {
        let stop = stop.clone();
        tokio::spawn(async move { axum::serve(socket, app).with_graceful_shutdown(stop.cancelled_owned()).await })
    };
    let dir = config.server.data_dir.clone();
    let outcome = loop {
        tokio::select! {
            _ = shutdown.cancelled() => break Err(()),
            _ = tokio::time::sleep(PROBE_EVERY) => {}
        }
        let dir = dir.clone();
        if let Ok(true) = tokio::task::spawn_blocking(move || writable(&dir)).await {
            break Ok(());
        }
    };
    stop.cancel();
    let _ = serving.await;
    outcome
}

/// Whether a test file can be written and synced in `dir`.
fn writable(dir: &Path) -> bool {
    use std::io::Write;
    let path = dir.join(".switchboard-write-probe");
    let result = std::fs::File::create(&path).and_then(|mut f| {
        f.write_all(&vec![0u8; PROBE_BYTES])?;
        f.sync_all()
    });
    let _ = std::fs::remove_file(&path);
    result.is_ok()
}

/// What every request gets while storage is failing: the one error shape
/// with `503` (Meta retries webhooks), an unhealthy `/healthz`, and the
/// storage gauge on `/metrics` (nothing tenant-specific, so no token).
fn unavailable_app(failure: String) -> axum::Router {
    let health = json!({
        "status": "unhealthy",
        "storage": { "writable": false, "error": failure },
    });
    axum::Router::new()
        .route("/healthz", get(move || async move { (StatusCode::SERVICE_UNAVAILABLE, Json(health)) }))
        .route(
            "/metrics",
            get(|| async {
                let text = "# HELP switchboard_storage_unwritable 1 while storage refuses writes.\n\
                            # TYPE switchboard_storage_unwritable gauge\n\
                            switchboard_storage_unwritable 1\n# EOF\n";
                ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text)
            }),
        )
        .fallback(|| async {
            crate::api::ApiError::unavailable("storage is failing (disk full?); retry later").into_response()
        })
}
