//! Companies and deals: create, read, update, delete.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiJson, AppState, TenantAuth};
use crate::clock::SharedClock;
use crate::crm::{Company, Crm, Deal, DealStatus};
use crate::model::new_id;
use crate::store::{Batch, StoreError};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_companies, create_company))
        .routes(routes!(get_company, update_company, delete_company))
        .routes(routes!(list_deals, create_deal))
        .routes(routes!(get_deal, update_deal, delete_deal))
}

fn domain_of(d: Option<String>) -> Option<String> {
    d.map(|d| d.trim().trim_start_matches('@').to_lowercase()).filter(|d| !d.is_empty())
}

fn conflict_on_domain(e: StoreError) -> ApiError {
    match e {
        StoreError::Taken { .. } => ApiError::already_exists("another company already has this domain"),
        other => other.into(),
    }
}

#[derive(Serialize, ToSchema)]
pub struct CompanyList {
    pub companies: Vec<Company>,
}

/// All companies.
#[utoipa::path(get, path = "/v1/companies", tag = "companies", security(("tenant_key" = [])), responses((status = 200, body = CompanyList)))]
pub async fn list_companies(
    TenantAuth(tenant, _): TenantAuth,
    State(crm): State<Crm>,
) -> Result<Json<CompanyList>, ApiError> {
    Ok(Json(CompanyList { companies: crm.companies(&tenant.id)? }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCompany {
    pub name: String,
    /// Email domain, e.g. `acme.com`: contacts with emails there link to it.
    pub domain: Option<String>,
}

/// Creates a company.
#[utoipa::path(post, path = "/v1/companies", tag = "companies", request_body = NewCompany, security(("tenant_key" = [])),
    responses((status = 201, body = Company), (status = 400, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn create_company(
    TenantAuth(tenant, _): TenantAuth,
    State(crm): State<Crm>,
    State(clock): State<SharedClock>,
    ApiJson(new): ApiJson<NewCompany>,
) -> Result<(StatusCode, Json<Company>), ApiError> {
    if new.name.trim().is_empty() {
        return Err(ApiError::bad_request("invalid_company", "name must not be empty"));
    }
    let company = Company {
        id: new_id("co"),
        name: new.name.trim().to_string(),
        domain: domain_of(new.domain),
        created_at: clock.now_ms(),
    };
    let mut batch = Batch::new();
    crm.put_company(&mut batch, &tenant.id, &company, None)?;
    crm.commit(batch).map_err(conflict_on_domain)?;
    Ok((StatusCode::CREATED, Json(company)))
}

fn company(crm: &Crm, tenant: &str, id: &str) -> Result<Company, ApiError> {
    crm.company(tenant, id)?.ok_or_else(|| ApiError::not_found(format!("no company {id} in this tenant")))
}

/// One company.
#[utoipa::path(get, path = "/v1/companies/{id}", tag = "companies", params(("id" = String, Path)), security(("tenant_key" = [])),
    responses((status = 200, body = Company), (status = 404, body = super::error::ErrorBody)))]
pub async fn get_company(
    TenantAuth(tenant, _): TenantAuth,
    State(crm): State<Crm>,
    Path(id): Path<String>,
) -> Result<Json<Company>, ApiError> {
    Ok(Json(company(&crm, &tenant.id, &id)?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompanyPatch {
    pub name: Option<String>,
    /// `""` removes the domain.
    pub domain: Option<String>,
}

/// Updates a company.
#[utoipa::path(patch, path = "/v1/companies/{id}", tag = "companies", params(("id" = String, Path)), request_body = CompanyPatch,
    security(("tenant_key" = [])), responses((status = 200, body = Company), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn update_company(
    TenantAuth(tenant, _): TenantAuth,
    State(crm): State<Crm>,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<CompanyPatch>,
) -> Result<Json<Company>, ApiError> {
    let read = company(&crm, &tenant.id, &id)?;
    let mut c = read.clone();
    if let Some(n) = patch.name.filter(|n| !n.trim().is_empty()) {
        c.name = n.trim().to_string();
    }
    if let Some(d) = patch.domain {
        c.domain = domain_of(Some(d));
    }
    let mut batch = Batch::new();
    crm.put_company(&mut batch, &tenant.id, &c, Some(&read))?;
    crm.commit(batch).map_err(conflict_on_domain)?;
    Ok(Json(c))
}

/// Deletes a company that no contact is linked to.
#[utoipa::path(delete, path = "/v1/companies/{id}", tag = "companies", params(("id" = String, Path)), security(("tenant_key" = [])),
    responses((status = 204), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn delete_company(
    TenantAuth(tenant, _): TenantAuth,
    State(crm): State<Crm>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let c = company(&crm, &tenant.id, &id)?;
    let linked = crm.contacts_of_company(&tenant.id, &id)?.len();
    if linked > 0 {
        return Err(ApiError::conflict(format!("{linked} contacts are linked to this company; unlink them first")));
    }
    let mut batch = Batch::new();
    crm.delete_company(&mut batch, &tenant.id, &c);
    crm.commit(batch)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
pub struct DealQuery {
    /// Only this contact's deals.
    contact_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DealList {
    pub deals: Vec<Deal>,
}

/// Deals, all or one contact's (newest first).
#[utoipa::path(get, path = "/v1/deals", tag = "deals", params(DealQuery), security(("tenant_key" = [])), responses((status = 200, body = DealList)))]
pub async fn list_deals(
    TenantAuth(tenant, _): TenantAuth,
    State(crm): State<Crm>,
    Query(q): Query<DealQuery>,
) -> Result<Json<DealList>, ApiError> {
    let deals = match q.contact_id {
        Some(c) => crm.deals_of(&tenant.id, &c)?,
        None => crm.deals(&tenant.id)?,
    };
    Ok(Json(DealList { deals }))
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
/// The contact's next conversation is tied to it; the deal's stage reaches
/// the plugins' context.
#[utoipa::path(post, path = "/v1/deals", tag = "deals", request_body = NewDeal, security(("tenant_key" = [])),
    responses((status = 201, body = Deal), (status = 400, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn create_deal(
    TenantAuth(tenant, _): TenantAuth,
    State(crm): State<Crm>,
    State(clock): State<SharedClock>,
    ApiJson(new): ApiJson<NewDeal>,
) -> Result<(StatusCode, Json<Deal>), ApiError> {
    let contact = crm
        .contact(&tenant.id, &new.contact_id)?
        .ok_or_else(|| ApiError::not_found(format!("no contact {} in this tenant", new.contact_id)))?;
    if new.name.trim().is_empty() || new.stage.trim().is_empty() {
        return Err(ApiError::bad_request("invalid_deal", "name and stage must not be empty"));
    }
    let now = clock.now_ms();
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
    crm.put_deal(&mut batch, &tenant.id, &deal, None)?;
    crm.commit(batch)?;
    Ok((StatusCode::CREATED, Json(deal)))
}

fn deal(crm: &Crm, tenant: &str, id: &str) -> Result<Deal, ApiError> {
    crm.deal(tenant, id)?.ok_or_else(|| ApiError::not_found(format!("no deal {id} in this tenant")))
}

/// One deal.
#[utoipa::path(get, path = "/v1/deals/{id}", tag = "deals", params(("id" = String, Path)), security(("tenant_key" = [])),
    responses((status = 200, body = Deal), (status = 404, body = super::error::ErrorBody)))]
pub async fn get_deal(
    TenantAuth(tenant, _): TenantAuth,
    State(crm): State<Crm>,
    Path(id): Path<String>,
) -> Result<Json<Deal>, ApiError> {
    Ok(Json(deal(&crm, &tenant.id, &id)?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DealPatch {
    pub name: Option<String>,
    pub stage: Option<String>,
    pub status: Option<DealStatus>,
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
    pub owner: Option<String>,
}

/// Updates a deal (stage, status, amount, owner…).
#[utoipa::path(patch, path = "/v1/deals/{id}", tag = "deals", params(("id" = String, Path)), request_body = DealPatch, security(("tenant_key" = [])),
    responses((status = 200, body = Deal), (status = 404, body = super::error::ErrorBody)))]
pub async fn update_deal(
    TenantAuth(tenant, _): TenantAuth,
    State(crm): State<Crm>,
    State(clock): State<SharedClock>,
    Path(id): Path<String>,
    ApiJson(p): ApiJson<DealPatch>,
) -> Result<Json<Deal>, ApiError> {
    let read = deal(&crm, &tenant.id, &id)?;
    let mut d = read.clone();
    if let Some(v) = p.name.filter(|v| !v.trim().is_empty()) {
        d.name = v.trim().into();
    }
    if let Some(v) = p.stage.filter(|v| !v.trim().is_empty()) {
        d.stage = v.trim().into();
    }
    if let Some(v) = p.status {
        d.status = v;
    }
    if p.amount_minor.is_some() {
        d.amount_minor = p.amount_minor;
    }
    if p.currency.is_some() {
        d.currency = p.currency;
    }
    if p.owner.is_some() {
        d.owner = p.owner;
    }
    d.updated_at = clock.now_ms();
    let mut batch = Batch::new();
    crm.put_deal(&mut batch, &tenant.id, &d, Some(&read))?;
    crm.commit(batch)?;
    Ok(Json(d))
}

/// Deletes a deal.
#[utoipa::path(delete, path = "/v1/deals/{id}", tag = "deals", params(("id" = String, Path)), security(("tenant_key" = [])),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
pub async fn delete_deal(
    TenantAuth(tenant, _): TenantAuth,
    State(crm): State<Crm>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let d = deal(&crm, &tenant.id, &id)?;
    let mut batch = Batch::new();
    crm.delete_deal(&mut batch, &tenant.id, &d);
    crm.commit(batch)?;
    Ok(StatusCode::NO_CONTENT)
}
