//! The tenant's CRM records: contacts, conversations, companies, deals.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, ApiJson, AppState, TenantAuth};
use crate::crm::{Company, Contact, ContactStats, Conversation, Deal, DealStatus, DecisionRecord, Message};
use crate::identity;
use crate::model::new_id;
use crate::store::Batch;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/contacts", get(list_contacts).post(create_contact))
        .route("/v1/contacts/{id}", get(get_contact))
        .route("/v1/contacts/{id}/conversations", get(contact_conversations))
        .route("/v1/conversations/{id}", get(get_conversation))
        .route("/v1/companies", post(create_company))
        .route("/v1/companies/{id}", get(get_company))
        .route("/v1/deals", post(create_deal))
        .route("/v1/deals/{id}", get(get_deal))
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
    State(state): State<AppState>,
    Query(query): Query<ContactQuery>,
) -> Result<Json<ContactPage>, ApiError> {
    let limit = query.limit.unwrap_or(50).clamp(1, MAX_PAGE);
    let crm = &state.stages().crm;
    let q = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    // A query that is a whole phone number is an exact index lookup.
    if let Some(phone) = q.and_then(|q| identity::normalize(q, &tenant.default_region).ok()) {
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
    State(state): State<AppState>,
    ApiJson(new): ApiJson<NewContact>,
) -> Result<(StatusCode, Json<Contact>), ApiError> {
    let s = state.stages();
    let phone = identity::normalize(&new.phone, &tenant.default_region)
        .map_err(|e| ApiError::bad_request("invalid_phone", e.to_string()))?;
    if let Some(existing) = s.crm.contact_by_phone(&tenant.id, &phone.e164)? {
        return Err(ApiError::conflict(format!("contact {} already has phone {}", existing.id, phone.e164)));
    }
    if let Some(company) = &new.company_id {
        s.crm
            .company(&tenant.id, company)?
            .ok_or_else(|| ApiError::not_found(format!("no company {company} in this tenant")))?;
    }
    let now = s.clock.now_ms();
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
    let mut batch = Batch::new();
    s.crm.put_contact(&mut batch, &tenant.id, &contact, None)?;
    s.crm.commit(batch).map_err(|e| match e {
        crate::store::StoreError::Conflict => {
            ApiError::conflict(format!("a contact with phone {} already exists", contact.phone))
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
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Contact>, ApiError> {
    let contact = state.stages().crm.contact(&tenant.id, &id)?;
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
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ConversationList>, ApiError> {
    let crm = &state.stages().crm;
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
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ConversationView>, ApiError> {
    let crm = &state.stages().crm;
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCompany {
    pub name: String,
    pub domain: Option<String>,
}

/// Creates a company.
#[utoipa::path(post, path = "/v1/companies", tag = "companies", request_body = NewCompany, security(("tenant_key" = [])),
    responses((status = 201, body = Company), (status = 400, body = super::error::ErrorBody)))]
pub async fn create_company(
    TenantAuth(tenant, _): TenantAuth,
    State(state): State<AppState>,
    ApiJson(new): ApiJson<NewCompany>,
) -> Result<(StatusCode, Json<Company>), ApiError> {
    if new.name.trim().is_empty() {
        return Err(ApiError::bad_request("invalid_company", "name must not be empty"));
    }
    let s = state.stages();
    let company = Company {
        id: new_id("co"),
        name: new.name.trim().to_string(),
        domain: new.domain.map(|d| d.trim().to_lowercase()).filter(|d| !d.is_empty()),
        created_at: s.clock.now_ms(),
    };
    let mut batch = Batch::new();
    s.crm.put_company(&mut batch, &tenant.id, &company)?;
    s.crm.commit(batch)?;
    Ok((StatusCode::CREATED, Json(company)))
}

/// One company.
#[utoipa::path(get, path = "/v1/companies/{id}", tag = "companies", params(("id" = String, Path)), security(("tenant_key" = [])),
    responses((status = 200, body = Company), (status = 404, body = super::error::ErrorBody)))]
pub async fn get_company(
    TenantAuth(tenant, _): TenantAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Company>, ApiError> {
    let company = state.stages().crm.company(&tenant.id, &id)?;
    company.map(Json).ok_or_else(|| ApiError::not_found(format!("no company {id} in this tenant")))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDeal {
    pub contact_id: String,
    pub name: String,
    /// The tenant's stage name, e.g. `lead`, `proposal`, `negotiation`.
    pub stage: String,
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
    /// The agent who owns the deal.
    pub owner: Option<String>,
}

/// Creates an open deal for a contact (linked to the contact's company).
#[utoipa::path(post, path = "/v1/deals", tag = "deals", request_body = NewDeal, security(("tenant_key" = [])),
    responses((status = 201, body = Deal), (status = 400, body = super::error::ErrorBody)))]
pub async fn create_deal(
    TenantAuth(tenant, _): TenantAuth,
    State(state): State<AppState>,
    ApiJson(new): ApiJson<NewDeal>,
) -> Result<(StatusCode, Json<Deal>), ApiError> {
    let s = state.stages();
    let contact = s
        .crm
        .contact(&tenant.id, &new.contact_id)?
        .ok_or_else(|| ApiError::not_found(format!("no contact {} in this tenant", new.contact_id)))?;
    if new.name.trim().is_empty() || new.stage.trim().is_empty() {
        return Err(ApiError::bad_request("invalid_deal", "name and stage must not be empty"));
    }
    let now = s.clock.now_ms();
    let deal = Deal {
        id: new_id("dl"),
        contact_id: contact.id,
        company_id: contact.company_id,
        name: new.name.trim().to_string(),
        stage: new.stage.trim().to_string(),
        status: DealStatus::Open,
        amount_minor: new.amount_minor,
        currency: new.currency,
        owner: new.owner,
        created_at: now,
        updated_at: now,
    };
    let mut batch = Batch::new();
    s.crm.put_deal(&mut batch, &tenant.id, &deal)?;
    s.crm.commit(batch)?;
    Ok((StatusCode::CREATED, Json(deal)))
}

/// One deal.
#[utoipa::path(get, path = "/v1/deals/{id}", tag = "deals", params(("id" = String, Path)), security(("tenant_key" = [])),
    responses((status = 200, body = Deal), (status = 404, body = super::error::ErrorBody)))]
pub async fn get_deal(
    TenantAuth(tenant, _): TenantAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Deal>, ApiError> {
    let deal = state.stages().crm.deal(&tenant.id, &id)?;
    deal.map(Json).ok_or_else(|| ApiError::not_found(format!("no deal {id} in this tenant")))
}
