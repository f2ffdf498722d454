//! Whether storage still accepts writes.

use std::sync::Arc;

use tokio::sync::watch;

/// Set on the first failed write or flush; a new `Store` starts healthy.
pub(super) struct Health {
    failure: watch::Sender<Option<Arc<str>>>,
}

impl Default for Health {
    fn default() -> Self {
        Health { failure: watch::channel(None).0 }
    }
}

impl Health {
    pub(super) fn failed(&self, error: &str) {
        let first = self.failure.send_if_modified(|f| {
            if f.is_some() {
                return false;
            }
            *f = Some(Arc::from(error));
            true
        });
        if first {
            tracing::error!(%error, "storage refuses writes (disk full or failing?); webhooks are answered 503 until it recovers");
        }
    }

    pub(super) fn failure(&self) -> Option<String> {
        self.failure.borrow().as_deref().map(String::from)
    }

    pub(super) async fn wait(&self) -> String {
        let mut rx = self.failure.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(f) => f.as_deref().map(String::from).unwrap_or_default(),
            // The sender lives as long as `self`.
            Err(_) => std::future::pending().await,
        }
    }
}
