//! # Switchboard
//!
//! A multi-tenant host for WhatsApp CRM automation. The host runs the fixed
//! stages itself and hands the decisions to sandboxed WebAssembly
//! components each tenant uploads:
//!
//! | stage | module | owner |
//! |---|---|---|
//! | ingest: verify, parse, journal, de-duplicate | [`ingest`], [`pipeline::journal`] | host |
//! | tenancy: phone-number id → tenant, keys, limits | [`tenants`] | host |
//! | identity: `wa_id` → E.164 → one contact; import, duplicates, merge | [`identity`] | host |
//! | context: thread, history, window, stats, signals | [`context`] | host |
//! | routing | [`plugins`] (router world) | tenant plugin |
//! | follow-up: plans, durable timers, rules at firing time | [`followup`] (follow-up world) | plugin plans, host enforces |
//! | feedback: measures of a closed exchange → contact signals | [`feedback`] (feedback world) | tenant plugin |
//! | human control: takeover, pause, opt-out, audit | [`control`] | host |
//! | act: replies, assignments | `pipeline::act`, [`outbound`] | host |
//! | CRM records | [`crm`] | host |
//! | CRM sync: transactional outbox → signed webhooks | [`sync`] | host |
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

pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod context;
pub mod control;
pub mod crm;
pub mod feedback;
pub mod followup;
pub mod identity;
pub mod ingest;
pub mod metrics;
pub mod model;
pub mod outbound;
pub mod pipeline;
pub mod plugins;
pub mod server;
pub mod store;
pub mod sync;
pub mod tenants;
