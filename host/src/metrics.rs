//! Prometheus metrics, served as text at `/metrics`.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// One label set per family, so a family is only ever given its own
/// labels, each spelled once (a misspelt or missing label would otherwise
/// start a new series that no dashboard queries). Values that come from a
/// closed set are `&'static str`; tenant, endpoint and version ids are
/// owned.
pub mod labels {
    use prometheus_client::encoding::EncodeLabelSet;

    /// Webhook requests: `accepted` or the error code.
    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    pub struct Result {
        pub result: &'static str,
    }

    /// Inbound messages by WhatsApp type.
    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    pub struct MessageType {
        pub r#type: &'static str,
    }

    /// Status updates by status (sent, delivered, read, failed).
    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    pub struct Status {
        pub status: &'static str,
    }

    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    pub struct World {
        pub world: &'static str,
    }

    /// A plugin decision: `decided` or `fallback`.
    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    pub struct Decision {
        pub world: &'static str,
        pub outcome: &'static str,
    }

    /// A plugin failure, down to the version that failed.
    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    pub struct PluginFailure {
        pub tenant: String,
        pub world: &'static str,
        pub version: String,
        pub kind: &'static str,
    }

    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    pub struct Fallback {
        pub world: &'static str,
        pub cause: &'static str,
    }

    /// A send's outcome (sent, rejected, retried…).
    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    pub struct Send {
        pub outcome: &'static str,
    }

    /// What kind of event was applied (inbound, status).
    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    pub struct Event {
        pub kind: &'static str,
    }

    /// A CRM endpoint.
    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    pub struct Endpoint {
        pub tenant: String,
        pub endpoint: String,
    }

    /// CRM deliveries to an endpoint: `delivered` or `failed`.
    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    pub struct Delivery {
        pub tenant: String,
        pub endpoint: String,
        pub result: &'static str,
    }

    /// A webhook field other than `messages`.
    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    pub struct WebhookField {
        pub field: &'static str,
    }

    /// An unreadable webhook item: a message, a status or a whole change.
    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    pub struct Unreadable {
        pub kind: &'static str,
    }

    /// A quarantined event: its kind, and whether it panicked or failed.
    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    pub struct Quarantine {
        pub kind: &'static str,
        pub cause: &'static str,
    }
}

fn latency_histogram() -> Histogram {
    // 10 µs … ~20 s
    Histogram::new(exponential_buckets(0.000_01, 2.0, 22))
}

pub struct Metrics {
    registry: Registry,
    /// Webhook requests by result (accepted, bad_signature, malformed…).
    pub webhooks: Family<labels::Result, Counter>,
    pub webhook_ack_seconds: Histogram,
    /// Inbound messages by WhatsApp type.
    pub messages_in: Family<labels::MessageType, Counter>,
    pub statuses_in: Family<labels::Status, Counter>,
    pub duplicates: Counter,
    /// Payloads for phone-number ids no tenant owns.
    pub unknown_phone_numbers: Counter,
    /// Webhooks refused because no tenant or operator secret verifies them.
    pub unverified_webhooks: Counter,
    /// Webhook items quarantined because they could not be read, by kind.
    pub unreadable_items: Family<labels::Unreadable, Counter>,
    /// Webhook items in the quarantine now, every tenant's.
    pub unreadable_kept: Gauge,
    /// Changes of other webhook fields kept, by field.
    pub webhook_fields: Family<labels::WebhookField, Counter>,
    /// Decisions by world and outcome (decided / fallback).
    pub decisions: Family<labels::Decision, Counter>,
    pub plugin_call_seconds: Family<labels::World, Histogram>,
    /// Plugin failures by tenant, world, version and kind (trap, fuel…).
    pub plugin_failures: Family<labels::PluginFailure, Counter>,
    pub fallbacks: Family<labels::Fallback, Counter>,
    pub sends: Family<labels::Send, Counter>,
    /// Inbound media download attempts by outcome (`stored`, `retry`,
    /// `failed`).
    pub media_downloads: Family<labels::Send, Counter>,
    /// From webhook receipt to the event's effects committed.
    pub event_seconds: Family<labels::Event, Histogram>,
    /// CRM event deliveries by tenant, endpoint and result.
    pub sync_deliveries: Family<labels::Delivery, Counter>,
    /// Per endpoint: events waiting, and whether it is failing (1) or not (0).
    pub sync_pending: Family<labels::Endpoint, Gauge>,
    pub sync_failing: Family<labels::Endpoint, Gauge>,
    pub sync_dead_letters: Family<labels::Endpoint, Gauge>,
    pub journal_pending: Gauge,
    pub outbound_queue: Gauge,
    pub quarantined: Gauge,
    /// Events quarantined since start, by event kind.
    pub quarantined_total: Family<labels::Quarantine, Counter>,
    /// Lanes whose head event has run or kept failing past `pipeline.stall_after`.
    pub stalled_lanes: Gauge,
    /// Age of the oldest event not yet applied, in seconds (0: none).
    pub oldest_pending_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// 0 while storage accepts writes, 1 while it does not.
    pub storage_unwritable: Gauge,
    /// Compiled plugin code held in memory beside what runs.
    pub compiled_plugin_bytes: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let m = Metrics {
            webhooks: Family::default(),
            webhook_ack_seconds: latency_histogram(),
            messages_in: Family::default(),
            statuses_in: Family::default(),
            duplicates: Counter::default(),
            unknown_phone_numbers: Counter::default(),
            unverified_webhooks: Counter::default(),
            unreadable_items: Family::default(),
            unreadable_kept: Gauge::default(),
            webhook_fields: Family::default(),
            decisions: Family::default(),
            plugin_call_seconds: Family::new_with_constructor(latency_histogram),
            plugin_failures: Family::default(),
            fallbacks: Family::default(),
            sends: Family::default(),
            media_downloads: Family::default(),
            event_seconds: Family::new_with_constructor(latency_histogram),
            sync_deliveries: Family::default(),
            sync_pending: Family::default(),
            sync_failing: Family::default(),
            sync_dead_letters: Family::default(),
            journal_pending: Gauge::default(),
            outbound_queue: Gauge::default(),
            quarantined: Gauge::default(),
            quarantined_total: Family::default(),
            stalled_lanes: Gauge::default(),
            oldest_pending_seconds: Gauge::default(),
            storage_unwritable: Gauge::default(),
            compiled_plugin_bytes: Gauge::default(),
            registry: Registry::default(),
        };
        let registry = m.registry();
        Metrics { registry, ..m }
    }

    /// Every metric under its exported name (`switchboard_…`).
    fn registry(&self) -> Registry {
        let (m, mut registry) = (self, Registry::with_prefix("switchboard"));
        m.register_webhook(&mut registry);
        registry.register("decisions", "Plugin decisions by world and outcome", m.decisions.clone());
        registry.register("plugin_call_seconds", "Plugin call latency", m.plugin_call_seconds.clone());
        registry.register("plugin_failures", "Plugin traps and limit hits", m.plugin_failures.clone());
        registry.register("fallbacks", "Fallback decisions by world and cause", m.fallbacks.clone());
        registry.register("sends", "Outbound sends by outcome", m.sends.clone());
        registry.register("media_downloads", "Inbound media download attempts by outcome", m.media_downloads.clone());
        registry.register("event_seconds", "From receipt to effects committed", m.event_seconds.clone());
        registry.register("sync_deliveries", "CRM event deliveries by endpoint and result", m.sync_deliveries.clone());
        registry.register("sync_pending", "CRM events waiting per endpoint", m.sync_pending.clone());
        registry.register("sync_endpoint_failing", "1 while an endpoint is failing", m.sync_failing.clone());
        registry.register("sync_dead_letters", "Dead-lettered CRM events per endpoint", m.sync_dead_letters.clone());
        registry.register("journal_pending", "Events waiting in the journal", m.journal_pending.clone());
        registry.register("outbound_queue", "Messages waiting to be sent", m.outbound_queue.clone());
        registry.register("quarantined_events", "Events set aside as unprocessable", m.quarantined.clone());
        registry.register("quarantined", "Events quarantined since start, by kind", m.quarantined_total.clone());
        registry.register("stalled_lanes", "Contact lanes stuck on one event", m.stalled_lanes.clone());
        registry.register(
            "oldest_pending_event_seconds",
            "Age of the oldest event not yet applied",
            m.oldest_pending_seconds.clone(),
        );
        registry.register("storage_unwritable", "1 while storage refuses writes", m.storage_unwritable.clone());
        registry.register(
            "compiled_plugin_bytes",
            "Compiled plugin code cached in memory",
            m.compiled_plugin_bytes.clone(),
        );
        registry
    }

    /// The webhook's metrics: requests, what they carried, what was kept.
    fn register_webhook(&self, registry: &mut Registry) {
        let m = self;
        registry.register("webhook_requests", "Webhook requests by result", m.webhooks.clone());
        registry.register(
            "webhook_ack_seconds",
            "Time to acknowledge a webhook (durable)",
            m.webhook_ack_seconds.clone(),
        );
        registry.register("messages_in", "Inbound messages by type", m.messages_in.clone());
        registry.register("statuses_in", "Status updates by status", m.statuses_in.clone());
        registry.register("duplicate_events", "Redelivered events dropped", m.duplicates.clone());
        registry.register(
            "unknown_phone_number_payloads",
            "Payloads for unknown phone-number ids",
            m.unknown_phone_numbers.clone(),
        );
        registry.register(
            "unverified_webhooks",
            "Webhooks naming no known number and signed with no operator secret",
            m.unverified_webhooks.clone(),
        );
        registry.register(
            "unreadable_webhook_items",
            "Webhook items kept in the quarantine because they could not be read",
            m.unreadable_items.clone(),
        );
        registry.register(
            "unreadable_webhook_items_kept",
            "Webhook items in the quarantine now (GET /v1/quarantine)",
            m.unreadable_kept.clone(),
        );
        registry.register(
            "webhook_field_changes",
            "Changes of webhook fields other than messages (account, number, template…), by field",
            m.webhook_fields.clone(),
        );
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
