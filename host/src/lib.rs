//! # Switchboard
//!
//! A multi-tenant host for WhatsApp CRM automation. The host runs the fixed
//! stages itself and hands the decisions to sandboxed WebAssembly
//! components each tenant uploads:
//!
//! | stage | module | owner |
//! |---|---|---|
//! | ingest: verify, parse, journal, de-duplicate | [`ingest`], [`pipeline::journal`] | host |
//! | tenancy: phone-number id → tenant, keys, limits; creating and changing tenants | [`tenants`] | host |
//! | identity: `wa_id` → E.164 → one contact; contacts created and changed by staff, import, duplicates, merge | [`identity`] | host |
//! | context: thread, history, window, stats, signals | [`context`] | host |
//! | routing: the fallback; acting under the host's rules | [`routing`] ([`routing::act`]); the call is [`plugins`]' one call path | tenant plugin decides, host enforces |
//! | follow-up: plans, durable timers, rules at firing time | [`followup`] (follow-up world), `pipeline::timer` | plugin plans, host enforces |
//! | feedback: measures of a closed exchange → contact signals | [`feedback`] (feedback world), [`pipeline::learn`] | tenant plugin |
//! | human control: staff actions, pauses, opt-out, storm guard, audit | [`control`] ([`control::staff`]) | host |
//! | sending: the message log entry and the send queue, then Meta | [`outbound`] | host |
//! | message templates: synced from Meta, kept current by webhooks, every template send checked | [`templates`] | host |
//! | inbound media: downloaded off the ack path, checked, kept content-addressed, served | [`media`] | host |
//! | the pipeline: one unit of work per event, in order per contact | [`pipeline`] (`inbound`, `timer`, `status`) | host |
//! | plugin runtime: sandbox, one call path for every world | [`plugins`] ([`plugins::call`]) | host |
//! | CRM records; companies and deals as staff change them | [`crm`] | host |
//! | CRM sync: transactional outbox → signed webhooks | [`sync`] | host |
//!
//! Beneath the stages, leaves that import no stage: [`model`] (the values
//! every stage shares), [`phone`] (numbers to E.164 and match keys),
//! [`bsuid`] (business-scoped user ids),
//! [`config`], [`clock`], [`metrics`]; and beneath everything the crate
//! `switchboard-store` (`store/`, re-exported as [`store`]): the storage
//! engines behind one trait (sled, memory), which cargo keeps from
//! depending on the host. `tests/architecture.rs` fails the build if any
//! two modules import each other in a circle.
//!
//! An inbound message travels: `POST /webhooks/whatsapp` → signature check
//! → parse → journal (durable, de-duplicated) → 200; then a pipeline worker
//! (one per contact, in order) resolves identity, builds the context, asks
//! the tenant's router, acts, asks the follow-up plugin for a plan, and
//! commits every record the message changed — with their outbox events and
//! audit entries — in one atomic write that also removes it from the
//! journal.
//!
//! Everything is reachable from [`server::start`], which the binary calls
//! and the tests call too: the same code runs in both.

pub(crate) mod api;
pub mod bsuid;
pub mod cli;
pub mod clock;
pub mod config;
pub mod context;
pub(crate) mod control;
pub mod crm;
pub(crate) mod feedback;
pub mod followup;
pub(crate) mod identity;
pub mod ingest;
pub mod media;
pub(crate) mod metrics;
pub mod model;
pub mod numbers;
pub(crate) mod outbound;
pub mod phone;
pub mod pipeline;
pub mod plugins;
mod retry;
pub(crate) mod routing;
pub mod server;
pub use switchboard_store as store;
pub(crate) mod sync;
pub mod templates;
pub mod tenants;
mod threads;
