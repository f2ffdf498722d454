//! The tenant's CRM records: contacts, conversations, companies, deals.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiJson, AppState, TenantAuth};
use crate::clock::SharedClock;
use crate::crm::{Contact, ContactStats, Conversation, Crm, DecisionRecord, Message};
use crate::feedback::Signals;
use crate::identity;
use crate::model::new_id;
use crate::store::Batch;

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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContact {
    /// Any format; numbers without a country code use the tenant's region.
    pub phone: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub company_id: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Creates a contact. The phone is stored in E.164.
#[utoipa::path(post, path = "/v1/contacts", tag = "contacts", request_body = NewContact, security(("tenant_key" = [])),
    responses((status = 201, body = Contact), (status = 400, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn create_contact(
    TenantAuth(tenant, _): TenantAuth,
    State(crm): State<Crm>,
    State(clock): State<SharedClock>,
    ApiJson(new): ApiJson<NewContact>,
) -> Result<(StatusCode, Json<Contact>), ApiError> {
    let phone = crate::phone::normalize(&new.phone, &tenant.default_region)
        .map_err(|e| ApiError::bad_request("invalid_phone", e.to_string()))?;
    if let Some(existing) = crm.contact_by_phone(&tenant.id, &phone.e164)? {
        return Err(ApiError::already_exists(format!("contact {} already has phone {}", existing.id, phone.e164)));
    }
    if let Some(company) = &new.company_id {
        crm.company(&tenant.id, company)?
            .ok_or_else(|| ApiError::not_found(format!("no company {company} in this tenant")))?;
    }
    let now = clock.now_ms();
    let contact = Contact {
        id: new_id("ct"),
        phone: phone.e164,
        wa_id: None,
        name: new.name.filter(|n| !n.trim().is_empty()),
        profile_name: None,
        email: new.email.filter(|e| !e.trim().is_empty()),
        country: phone.region,
        company_id: new.company_id,
        tags: new.tags,
        opted_out: false,
        signals: Default::default(),
        stats: ContactStats::default(),
        created_at: now,
        updated_at: now,
        ..Default::default()
    };
    let mut contact = contact;
    identity::link_company_by_email(&crm, &tenant.id, &mut contact)?;
    let mut batch = Batch::new();
    crm.put_contact(&mut batch, &tenant.id, &contact, None)?;
    crm.commit(batch).map_err(|e| match e {
        crate::store::StoreError::Taken { .. } => {
            ApiError::already_exists(format!("a contact with phone {} already exists", contact.phone))
        }
        other => other.into(),
    })?;
    Ok((StatusCode::CREATED, Json(contact)))
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
}

/// A conversation with its messages and decisions.
#[utoipa::path(get, path = "/v1/conversations/{id}", tag = "conversations", params(("id" = String, Path)), security(("tenant_key" = [])),
    responses((status = 200, body = ConversationView), (status = 404, body = super::error::ErrorBody)))]
pub async fn get_conversation(
    TenantAuth(tenant, _): TenantAuth,
    State(crm): State<Crm>,
    Path(id): Path<String>,
) -> Result<Json<ConversationView>, ApiError> {
    let conversation = crm
        .conversation(&tenant.id, &id)?
        .ok_or_else(|| ApiError::not_found(format!("no conversation {id} in this tenant")))?;
    let contact = crm
        .contact(&tenant.id, &conversation.contact_id)?
        .ok_or_else(|| ApiError::not_found(format!("conversation {id} has no contact")))?;
    Ok(Json(ConversationView {
        messages: crm.recent_messages(&tenant.id, &id, 1000)?,
        decisions: crm.decisions(&tenant.id, &id)?,
        overrides: crm.overrides(&tenant.id, &id)?,
        conversation,
        contact,
    }))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ContactPatch {
    pub name: Option<String>,
    pub email: Option<String>,
    /// Link to a company (`""` unlinks).
    pub company_id: Option<String>,
    pub tags: Option<Vec<String>>,
    /// IANA timezone, e.g. `America/Bogota` (for quiet hours).
    pub timezone: Option<String>,
    /// A new phone, any format (must not belong to another contact).
    pub phone: Option<String>,
}

/// Updates a contact. An email on a company's domain links the contact to
/// that company (free-mail domains excepted) unless it already has one.
#[utoipa::path(patch, path = "/v1/contacts/{id}", tag = "contacts", params(("id" = String, Path)), request_body = ContactPatch,
    security(("tenant_key" = [])),
    responses((status = 200, body = Contact), (status = 400, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn update_contact(
    TenantAuth(tenant, _): TenantAuth,
    State(crm): State<Crm>,
    State(clock): State<SharedClock>,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<ContactPatch>,
) -> Result<Json<Contact>, ApiError> {
    if let Some(tz) = patch.timezone.as_deref().filter(|t| t.parse::<chrono_tz::Tz>().is_err()) {
        return Err(ApiError::bad_request("invalid_timezone", format!("{tz:?} is not an IANA timezone")));
    }
    let phone = match &patch.phone {
        Some(p) => Some(
            crate::phone::normalize(p, &tenant.default_region)
                .map_err(|e| ApiError::bad_request("invalid_phone", e.to_string()))?,
        ),
        None => None,
    };
    let changed = crate::store::optimistic(|| {
        let read = crm
            .contact(&tenant.id, &id)?
            .ok_or_else(|| ApiError::not_found(format!("no contact {id} in this tenant")))?;
        let mut c = read.clone();
        apply_patch(&crm, &tenant.id, &mut c, &patch, phone.as_ref())?;
        identity::link_company_by_email(&crm, &tenant.id, &mut c)?;
        c.updated_at = clock.now_ms();
        let mut batch = Batch::new();
        crm.put_contact(&mut batch, &tenant.id, &c, Some(&read))?;
        Ok::<_, ApiError>(crate::store::committed(crm.commit(batch))?.then_some(c))
    })?;
    changed.map(Json).ok_or_else(|| ApiError::conflict("the contact keeps changing; retry"))
}

/// The patch's fields on `c`; a new phone must not be another contact's.
fn apply_patch(
    crm: &Crm,
    tenant: &str,
    c: &mut Contact,
    patch: &ContactPatch,
    phone: Option<&crate::phone::Phone>,
) -> Result<(), ApiError> {
    if let Some(v) = &patch.name {
        c.name = Some(v.trim().to_string()).filter(|v| !v.is_empty());
    }
    if let Some(v) = &patch.email {
        c.email = Some(v.trim().to_lowercase()).filter(|v| !v.is_empty());
    }
    if let Some(v) = &patch.company_id {
        if v.is_empty() {
            c.company_id = None;
        } else {
            crm.company(tenant, v)?.ok_or_else(|| ApiError::not_found(format!("no company {v} in this tenant")))?;
            c.company_id = Some(v.clone());
        }
    }
    if let Some(v) = &patch.tags {
        c.tags = v.clone();
    }
    if let Some(v) = &patch.timezone {
        c.timezone = Some(v.clone());
    }
    if let Some(p) = phone {
        if let Some(other) = crm.contact_by_phone(tenant, &p.e164)?.filter(|o| o.id != c.id) {
            return Err(ApiError::already_exists(format!("contact {} already has phone {}", other.id, p.e164)));
        }
        c.phone = p.e164.clone();
        c.country = p.region.clone();
    }
    Ok(())
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
