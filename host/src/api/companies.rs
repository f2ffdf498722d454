//! Companies and deals: create, read, update, delete.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiJson, AppState, TenantAuth, blocking};
use crate::clock::SharedClock;
use crate::crm::{Company, CompanyPatch, Crm, Deal, DealPatch, NewCompany, NewDeal};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_companies, create_company))
        .routes(routes!(get_company, update_company, delete_company))
        .routes(routes!(list_deals, create_deal))
        .routes(routes!(get_deal, update_deal, delete_deal))
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

/// Creates a company.
#[utoipa::path(post, path = "/v1/companies", tag = "companies", request_body = NewCompany, security(("tenant_key" = [])),
    responses((status = 201, body = Company), (status = 400, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn create_company(
    TenantAuth(tenant, _): TenantAuth,
    State(crm): State<Crm>,
    State(clock): State<SharedClock>,
    ApiJson(new): ApiJson<NewCompany>,
) -> Result<(StatusCode, Json<Company>), ApiError> {
    let now = clock.now_ms();
    Ok((StatusCode::CREATED, Json(blocking(move || crm.create_company(&tenant.id, new, now)).await?)))
}

/// One company.
#[utoipa::path(get, path = "/v1/companies/{id}", tag = "companies", params(("id" = String, Path)), security(("tenant_key" = [])),
    responses((status = 200, body = Company), (status = 404, body = super::error::ErrorBody)))]
pub async fn get_company(
    TenantAuth(tenant, _): TenantAuth,
    State(crm): State<Crm>,
    Path(id): Path<String>,
) -> Result<Json<Company>, ApiError> {
    Ok(Json(crm.existing_company(&tenant.id, &id)?))
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
    Ok(Json(blocking(move || crm.update_company(&tenant.id, &id, patch)).await?))
}

/// Deletes a company that no contact is linked to.
#[utoipa::path(delete, path = "/v1/companies/{id}", tag = "companies", params(("id" = String, Path)), security(("tenant_key" = [])),
    responses((status = 204), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn delete_company(
    TenantAuth(tenant, _): TenantAuth,
    State(crm): State<Crm>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    blocking(move || crm.remove_company(&tenant.id, &id)).await?;
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
    let now = clock.now_ms();
    Ok((StatusCode::CREATED, Json(blocking(move || crm.create_deal(&tenant.id, new, now)).await?)))
}

/// One deal.
#[utoipa::path(get, path = "/v1/deals/{id}", tag = "deals", params(("id" = String, Path)), security(("tenant_key" = [])),
    responses((status = 200, body = Deal), (status = 404, body = super::error::ErrorBody)))]
pub async fn get_deal(
    TenantAuth(tenant, _): TenantAuth,
    State(crm): State<Crm>,
    Path(id): Path<String>,
) -> Result<Json<Deal>, ApiError> {
    Ok(Json(crm.existing_deal(&tenant.id, &id)?))
}

/// Updates a deal (stage, status, amount, owner…).
#[utoipa::path(patch, path = "/v1/deals/{id}", tag = "deals", params(("id" = String, Path)), request_body = DealPatch, security(("tenant_key" = [])),
    responses((status = 200, body = Deal), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn update_deal(
    TenantAuth(tenant, _): TenantAuth,
    State(crm): State<Crm>,
    State(clock): State<SharedClock>,
    Path(id): Path<String>,
    ApiJson(p): ApiJson<DealPatch>,
) -> Result<Json<Deal>, ApiError> {
    let now = clock.now_ms();
    Ok(Json(blocking(move || crm.update_deal(&tenant.id, &id, p, now)).await?))
}

/// Deletes a deal.
#[utoipa::path(delete, path = "/v1/deals/{id}", tag = "deals", params(("id" = String, Path)), security(("tenant_key" = [])),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
pub async fn delete_deal(
    TenantAuth(tenant, _): TenantAuth,
    State(crm): State<Crm>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    blocking(move || crm.remove_deal(&tenant.id, &id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
