//! The tenant's CRM records: contacts, conversations, companies, deals.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiJson, AppState, TenantAuth, blocking};
use crate::clock::SharedClock;
use crate::crm::{Contact, Conversation, Crm, DecisionRecord, Message};
use crate::feedback::Signals;
use crate::identity::{ContactPatch, Identity, NewContact};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_contacts, create_contact))
        .routes(routes!(get_contact, update_contact))
        .routes(routes!(contact_conversations))
        .routes(routes!(contact_signals))
        .routes(routes!(get_conversation))
}

const MAX_PAGE: usize = 500;

#[derive(Deserialize, IntoParams)]
pub struct ContactQuery {
    /// Phone (any format: matched on its digits, or exactly once normalised)
    /// or part of a name or email.
    q: Option<String>,
    /// Page size, 1–500 (default 50).
    limit: Option<usize>,
    /// The last id of the previous page.
    after: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ContactPage {
    pub contacts: Vec<Contact>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next: Option<String>,
}

/// Lists contacts, optionally searching by phone or name.
#[utoipa::path(get, path = "/v1/contacts", tag = "contacts", params(ContactQuery), security(("tenant_key" = [])),
    responses((status = 200, body = ContactPage), (status = 401, body = super::error::ErrorBody)))]
pub async fn list_contacts(
    TenantAuth(tenant, _): TenantAuth,
    State(crm): State<Crm>,
    Query(query): Query<ContactQuery>,
) -> Result<Json<ContactPage>, ApiError> {
    let limit = query.limit.unwrap_or(50).clamp(1, MAX_PAGE);
    let q = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    // A query that is a whole phone number is an exact index lookup.
    if let Some(phone) = q.and_then(|q| crate::phone::normalize(q, &tenant.default_region).ok()) {
        let contacts: Vec<Contact> = crm.contact_by_phone(&tenant.id, &phone.e164)?.into_iter().collect();
        if !contacts.is_empty() {
            return Ok(Json(ContactPage { contacts, next: None }));
        }
    }
    let contacts = crm.list_contacts(&tenant.id, q, query.after.as_deref(), limit)?;
    let next = (contacts.len() == limit).then(|| contacts.last().map(|c| c.id.clone())).flatten();
    Ok(Json(ContactPage { contacts, next }))
}

/// Creates a contact. The phone is stored in E.164.
#[utoipa::path(post, path = "/v1/contacts", tag = "contacts", request_body = NewContact, security(("tenant_key" = [])),
    responses((status = 201, body = Contact), (status = 400, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn create_contact(
    TenantAuth(tenant, _): TenantAuth,
    State(identity): State<Identity>,
    State(clock): State<SharedClock>,
    ApiJson(new): ApiJson<NewContact>,
) -> Result<(StatusCode, Json<Contact>), ApiError> {
    let now = clock.now_ms();
    Ok((StatusCode::CREATED, Json(blocking(move || identity.create_contact(&tenant, new, now)).await?)))
}

/// One contact.
#[utoipa::path(get, path = "/v1/contacts/{id}", tag = "contacts", params(("id" = String, Path)), security(("tenant_key" = [])),
    responses((status = 200, body = Contact), (status = 404, body = super::error::ErrorBody)))]
pub async fn get_contact(
    TenantAuth(tenant, _): TenantAuth,
    State(crm): State<Crm>,
    Path(id): Path<String>,
) -> Result<Json<Contact>, ApiError> {
    let contact = crm.contact(&tenant.id, &id)?;
    contact.map(Json).ok_or_else(|| ApiError::not_found(format!("no contact {id} in this tenant")))
}

#[derive(Serialize, ToSchema)]
pub struct ConversationList {
    /// Newest first.
    pub conversations: Vec<Conversation>,
}

/// A contact's conversations.
#[utoipa::path(get, path = "/v1/contacts/{id}/conversations", tag = "contacts", params(("id" = String, Path)), security(("tenant_key" = [])),
    responses((status = 200, body = ConversationList), (status = 404, body = super::error::ErrorBody)))]
pub async fn contact_conversations(
    TenantAuth(tenant, _): TenantAuth,
    State(crm): State<Crm>,
    Path(id): Path<String>,
) -> Result<Json<ConversationList>, ApiError> {
    crm.contact(&tenant.id, &id)?.ok_or_else(|| ApiError::not_found(format!("no contact {id} in this tenant")))?;
    Ok(Json(ConversationList { conversations: crm.conversations_of(&tenant.id, &id)? }))
}

#[derive(Serialize, ToSchema)]
pub struct ConversationView {
    pub conversation: Conversation,
    pub contact: Contact,
    /// The whole log, in order (at most the latest 1,000).
    pub messages: Vec<Message>,
    /// Routing decisions, oldest first, each naming the plugin version.
    pub decisions: Vec<DecisionRecord>,
    /// Staff overrides of routing, each naming the decision it replaced.
    pub overrides: Vec<crate::crm::Override>,
    /// The files the messages carry, each naming its message: stored,
    /// still being fetched (with the last error), or failed.
    pub media: Vec<crate::media::MediaRecord>,
}

/// A conversation with its messages and decisions.
#[utoipa::path(get, path = "/v1/conversations/{id}", tag = "conversations", params(("id" = String, Path)), security(("tenant_key" = [])),
    responses((status = 200, body = ConversationView), (status = 404, body = super::error::ErrorBody)))]
pub async fn get_conversation(
    TenantAuth(tenant, _): TenantAuth,
    State(crm): State<Crm>,
    State(media): State<crate::media::Media>,
    Path(id): Path<String>,
) -> Result<Json<ConversationView>, ApiError> {
    let conversation = crm
        .conversation(&tenant.id, &id)?
        .ok_or_else(|| ApiError::not_found(format!("no conversation {id} in this tenant")))?;
    let contact = crm
        .contact(&tenant.id, &conversation.contact_id)?
        .ok_or_else(|| ApiError::not_found(format!("conversation {id} has no contact")))?;
    let messages = crm.recent_messages(&tenant.id, &id, 1000)?;
    Ok(Json(ConversationView {
        media: media.of_messages(&tenant.id, &messages)?,
        messages,
        decisions: crm.decisions(&tenant.id, &id)?,
        overrides: crm.overrides(&tenant.id, &id)?,
        conversation,
        contact,
    }))
}

/// Updates a contact. An email on a company's domain links the contact to
/// that company (free-mail domains excepted) unless it already has one.
#[utoipa::path(patch, path = "/v1/contacts/{id}", tag = "contacts", params(("id" = String, Path)), request_body = ContactPatch,
    security(("tenant_key" = [])),
    responses((status = 200, body = Contact), (status = 400, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn update_contact(
    TenantAuth(tenant, _): TenantAuth,
    State(identity): State<Identity>,
    State(clock): State<SharedClock>,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<ContactPatch>,
) -> Result<Json<Contact>, ApiError> {
    let now = clock.now_ms();
    Ok(Json(blocking(move || identity.update_contact(&tenant, &id, patch, now)).await?))
}

#[derive(Serialize, ToSchema)]
pub struct SignalsView {
    /// Current values (also passed to every router and follow-up decision).
    pub signals: std::collections::BTreeMap<String, crate::crm::Signal>,
    /// Every value the feedback plugin produced, oldest first.
    pub history: Vec<crate::feedback::SignalChange>,
}

/// A contact's learned signals and their history.
#[utoipa::path(get, path = "/v1/contacts/{id}/signals", tag = "contacts", params(("id" = String, Path)), security(("tenant_key" = [])),
    responses((status = 200, body = SignalsView), (status = 404, body = super::error::ErrorBody)))]
pub async fn contact_signals(
    TenantAuth(tenant, _): TenantAuth,
    State(crm): State<Crm>,
    State(signals): State<Signals>,
    Path(id): Path<String>,
) -> Result<Json<SignalsView>, ApiError> {
    let contact =
        crm.contact(&tenant.id, &id)?.ok_or_else(|| ApiError::not_found(format!("no contact {id} in this tenant")))?;
    Ok(Json(SignalsView { signals: contact.signals, history: signals.history(&tenant.id, &id)? }))
}
