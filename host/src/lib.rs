//! # Switchboard
//!
//! A multi-tenant host for WhatsApp CRM automation. The host runs the fixed
//! stages itself and hands the decisions to sandboxed WebAssembly
//! components each tenant uploads:
//!
//! | stage | module | owner |
//! |---|---|---|
//! | ingest: verify, parse, journal, de-duplicate | [`ingest`], [`pipeline::journal`] | host |
//! | identity: `wa_id` → E.164 → one contact | [`identity`] | host |
//! | context: thread, history, window, stats | [`context`] | host |
//! | routing | [`plugins`] (router world) | tenant plugin |
//! | act: replies, assignments | `pipeline::act`, [`outbound`] | host |
//! | CRM records | [`crm`] | host |
//!
//! An inbound message travels: `POST /webhooks/whatsapp` → signature check
//! → parse → journal (durable, de-duplicated) → 200; then a pipeline worker
//! (one per contact, in order) resolves identity, builds the context, asks
//! the tenant's router, acts, and commits every record the message changed
//! in one atomic write that also removes it from the journal.
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
