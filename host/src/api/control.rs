//! The staff API: take over, reply, override routing, pause, resolve; the
//! audit log and the inbox. Tenant key auth; the staff member is named per
//! call in the `X-Staff-Id` header and recorded as the actor.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiJson, AppState, TenantAuth};
use crate::clock::{Millis, SharedClock};
use crate::control::staff::{Reassignment, StaffActions, StaffError};
use crate::control::{AuditEntry, Control, Pause};
use crate::crm::{Contact, Conversation, Crm, Message};
use crate::followup::{Timer, Timers};
use crate::model::{Assignee, Priority, Reply, Template};
use crate::pipeline::Pipeline;
use crate::store::Batch;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(takeover))
        .routes(routes!(release))
        .routes(routes!(reply))
        .routes(routes!(message_contact))
        .routes(routes!(mark_read))
        .routes(routes!(reassign))
        .routes(routes!(resolve))
        .routes(routes!(pause_conversation))
        .routes(routes!(resume_conversation))
        .routes(routes!(conversation_audit))
        .routes(routes!(pending_follow_up))
        .routes(routes!(pause_contact))
        .routes(routes!(resume_contact))
        .routes(routes!(automation))
        .routes(routes!(pause_tenant))
        .routes(routes!(resume_tenant))
        .routes(routes!(tenant_audit))
        .routes(routes!(inbox))
}

/// The staff member acting, from `X-Staff-Id`.
pub struct Staff(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let id = parts.headers.get("x-staff-id").and_then(|v| v.to_str().ok()).map(str::trim).unwrap_or_default();
        if id.is_empty() || id.len() > 128 {
            return Err(ApiError::bad_request(
                "missing_staff",
                "name the staff member acting in the X-Staff-Id header",
            ));
        }
        Ok(Staff(id.to_string()))
    }
}

/// Runs a staff action on the blocking pool (it reads and writes the store).
async fn act<T: Send + 'static>(
    staff: StaffActions,
    f: impl FnOnce(&StaffActions) -> Result<T, StaffError> + Send + 'static,
) -> Result<T, ApiError> {
    super::blocking(move || f(&staff)).await
}

/// A staff member takes over: automation (bot replies, follow-ups) stops
/// for this conversation at once, until release.
#[utoipa::path(post, path = "/v1/conversations/{id}/takeover", tag = "staff", params(("id" = String, Path), ("X-Staff-Id" = String, Header)),
    security(("tenant_key" = [])), responses((status = 200, body = Conversation), (status = 404, body = super::error::ErrorBody)))]
pub async fn takeover(
    TenantAuth(tenant, _): TenantAuth,
    Staff(who): Staff,
    State(staff): State<StaffActions>,
    Path(id): Path<String>,
) -> Result<Json<Conversation>, ApiError> {
    Ok(Json(act(staff, move |s| s.take_over(&tenant.id, &id, &who)).await?))
}

/// Hands the conversation back to automation.
#[utoipa::path(post, path = "/v1/conversations/{id}/release", tag = "staff", params(("id" = String, Path), ("X-Staff-Id" = String, Header)),
    security(("tenant_key" = [])), responses((status = 200, body = Conversation), (status = 404, body = super::error::ErrorBody)))]
pub async fn release(
    TenantAuth(tenant, _): TenantAuth,
    Staff(who): Staff,
    State(staff): State<StaffActions>,
    Path(id): Path<String>,
) -> Result<Json<Conversation>, ApiError> {
    Ok(Json(act(staff, move |s| s.release(&tenant.id, &id, &who)).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffReply {
    /// Free-form text (only inside the 24-hour window)…
    pub text: Option<String>,
    /// …or an approved template (any time)…
    pub template: Option<Template>,
    /// …or any other message (inside the window): media, reply buttons,
    /// a list, a URL button, a location request, a reaction.
    pub message: Option<Reply>,
    /// The contact's message (`wamid…`) this one answers: WhatsApp shows
    /// it quoted.
    pub reply_to: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Queued {
    /// The message, recorded and queued for sending.
    pub message: Message,
}

/// Replies as a person: sent through WhatsApp, recorded with its author,
/// and counted like any reply for the 24-hour window and follow-ups.
#[utoipa::path(post, path = "/v1/conversations/{id}/messages", tag = "staff", params(("id" = String, Path), ("X-Staff-Id" = String, Header)),
    request_body = StaffReply, security(("tenant_key" = [])),
    responses((status = 202, body = Queued), (status = 404, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub async fn reply(
    TenantAuth(tenant, _): TenantAuth,
    Staff(who): Staff,
    State(staff): State<StaffActions>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<StaffReply>,
) -> Result<(StatusCode, Json<Queued>), ApiError> {
    let quoting = body.reply_to.clone();
    let reply = body.reply()?;
    let phone_number_id = tenant.phone_number_ids.first().cloned().unwrap_or_default();
    let message = act(staff, move |s| {
        let message = s.reply(&tenant.id, &id, &who, &reply, quoting.as_deref(), &phone_number_id)?;
        if tenant.read_receipts {
            s.mark_read(&tenant.id, &id, &phone_number_id, false)?;
        }
        Ok(message)
    })
    .await?;
    Ok((StatusCode::ACCEPTED, Json(Queued { message })))
}

impl StaffReply {
    /// The one message it asks for, within WhatsApp's limits.
    fn reply(self) -> Result<Reply, ApiError> {
        let reply = match (self.text, self.template, self.message) {
            (Some(text), None, None) => Reply::Text { body: text },
            (None, Some(t), None) if !t.name.is_empty() && !t.language.is_empty() => Reply::Template(t),
            (None, None, Some(m)) => m,
            _ => {
                return Err(ApiError::bad_request(
                    "invalid_reply",
                    "send one of `text` (1–4096 characters), a `template` or a `message`",
                ));
            }
        };
        crate::outbound::limits::check(&reply)
            .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "over_whatsapp_limits", e.to_string()))?;
        Ok(reply)
    }
}

#[derive(Serialize, ToSchema)]
pub struct MarkedRead {
    /// The contact's message marked read; `null` if they wrote nothing yet.
    pub message_id: Option<String>,
}

/// A person opened the conversation: the contact's last message is marked
/// read and they see "typing…" (until the reply, or 25 seconds).
#[utoipa::path(post, path = "/v1/conversations/{id}/read", tag = "staff", params(("id" = String, Path), ("X-Staff-Id" = String, Header)),
    security(("tenant_key" = [])), responses((status = 200, body = MarkedRead), (status = 404, body = super::error::ErrorBody)))]
pub async fn mark_read(
    TenantAuth(tenant, _): TenantAuth,
    Staff(_who): Staff,
    State(staff): State<StaffActions>,
    Path(id): Path<String>,
) -> Result<Json<MarkedRead>, ApiError> {
    let phone_number_id = tenant.phone_number_ids.first().cloned().unwrap_or_default();
    let message_id = act(staff, move |s| s.mark_read(&tenant.id, &id, &phone_number_id, true)).await?;
    Ok(Json(MarkedRead { message_id }))
}

#[derive(Serialize, ToSchema)]
pub struct Started {
    /// The contact's open conversation, or the one this message opened.
    pub conversation: Conversation,
    pub message: Message,
}

/// Writes to a contact first, as a person: into its open conversation, or
/// opening one (assigned to the sender) — outside the 24-hour window only
/// with an approved template. A contact who opted out gets nothing (422
/// `opted_out`).
#[utoipa::path(post, path = "/v1/contacts/{id}/messages", tag = "staff", params(("id" = String, Path), ("X-Staff-Id" = String, Header)),
    request_body = StaffReply, security(("tenant_key" = [])),
    responses((status = 202, body = Started), (status = 404, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub async fn message_contact(
    TenantAuth(tenant, _): TenantAuth,
    Staff(who): Staff,
    State(staff): State<StaffActions>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<StaffReply>,
) -> Result<(StatusCode, Json<Started>), ApiError> {
    if body.reply_to.is_some() {
        let why = "`reply_to` quotes a message of a conversation: send to /v1/conversations/{id}/messages";
        return Err(ApiError::bad_request("invalid_reply", why));
    }
    let reply = body.reply()?;
    let phone_number_id = tenant.phone_number_ids.first().cloned().unwrap_or_default();
    let (conversation, message) =
        act(staff, move |s| s.message_contact(&tenant.id, &id, &who, &reply, &phone_number_id)).await?;
    Ok((StatusCode::ACCEPTED, Json(Started { conversation, message })))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reassign {
    pub assignee: Assignee,
    pub priority: Option<Priority>,
    pub reason: String,
}

/// Overrides routing: reassigns and/or reprioritises. Recorded next to the
/// plugin decision it replaced.
#[utoipa::path(post, path = "/v1/conversations/{id}/assignment", tag = "staff", params(("id" = String, Path), ("X-Staff-Id" = String, Header)),
    request_body = Reassign, security(("tenant_key" = [])), responses((status = 200, body = Conversation), (status = 404, body = super::error::ErrorBody)))]
pub async fn reassign(
    TenantAuth(tenant, _): TenantAuth,
    Staff(who): Staff,
    State(staff): State<StaffActions>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Reassign>,
) -> Result<Json<Conversation>, ApiError> {
    if body.reason.trim().is_empty() {
        return Err(ApiError::bad_request("invalid_override", "say why in `reason`"));
    }
    let r = Reassignment { assignee: body.assignee, priority: body.priority, reason: body.reason };
    Ok(Json(act(staff, move |s| s.reassign(&tenant.id, &id, &who, &r)).await?))
}

/// Marks the conversation resolved; pending follow-ups are dropped.
#[utoipa::path(post, path = "/v1/conversations/{id}/resolve", tag = "staff", params(("id" = String, Path), ("X-Staff-Id" = String, Header)),
    security(("tenant_key" = [])), responses((status = 200, body = Conversation), (status = 404, body = super::error::ErrorBody)))]
pub async fn resolve(
    TenantAuth(tenant, _): TenantAuth,
    Staff(who): Staff,
    State(pipeline): State<Arc<Pipeline>>,
    State(staff): State<StaffActions>,
    State(clock): State<SharedClock>,
    Path(id): Path<String>,
) -> Result<Json<Conversation>, ApiError> {
    let tenant_id = tenant.id.clone();
    let (c, contact) = act(staff, move |s| s.resolve(&tenant_id, &id, &who)).await?;
    // The exchange closes: the contact's worker measures it (feedback).
    let closed = crate::pipeline::learn::ExchangeClosed {
        tenant: tenant.id.clone(),
        conversation_id: c.id.clone(),
        wa_id: contact.lane(),
        closed_by: crate::model::CloseReason::Resolved,
        at: clock.now_ms(),
    };
    super::blocking(move || pipeline.submit(vec![crate::pipeline::Event::ExchangeClosed(closed)], Batch::new()))
        .await?;
    Ok(Json(c))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    /// Resume on its own at this time (ms since the epoch); default: until resumed.
    pub until: Option<Millis>,
    pub reason: Option<String>,
}

/// An empty body pauses until resumed.
fn parse_pause(body: &axum::body::Bytes) -> Result<PauseRequest, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(PauseRequest::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request("invalid_body", e.to_string()))
}

/// Pauses automation for this conversation (optionally until a time).
#[utoipa::path(post, path = "/v1/conversations/{id}/pause", tag = "staff", params(("id" = String, Path), ("X-Staff-Id" = String, Header)),
    request_body = PauseRequest, security(("tenant_key" = [])), responses((status = 200, body = Conversation)))]
pub async fn pause_conversation(
    TenantAuth(tenant, _): TenantAuth,
    Staff(who): Staff,
    State(staff): State<StaffActions>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Conversation>, ApiError> {
    let req = parse_pause(&body)?;
    let c = act(staff, move |s| {
        let pause = s.pause(&who, req.until, req.reason)?;
        s.pause_conversation(&tenant.id, &id, &who, Some(pause))
    });
    Ok(Json(c.await?))
}

/// Resumes automation for this conversation.
#[utoipa::path(post, path = "/v1/conversations/{id}/resume", tag = "staff", params(("id" = String, Path), ("X-Staff-Id" = String, Header)),
    security(("tenant_key" = [])), responses((status = 200, body = Conversation)))]
pub async fn resume_conversation(
    TenantAuth(tenant, _): TenantAuth,
    Staff(who): Staff,
    State(staff): State<StaffActions>,
    Path(id): Path<String>,
) -> Result<Json<Conversation>, ApiError> {
    Ok(Json(act(staff, move |s| s.pause_conversation(&tenant.id, &id, &who, None)).await?))
}

/// Pauses automation for everything about this contact.
#[utoipa::path(post, path = "/v1/contacts/{id}/pause", tag = "staff", params(("id" = String, Path), ("X-Staff-Id" = String, Header)),
    request_body = PauseRequest, security(("tenant_key" = [])), responses((status = 200, body = Contact)))]
pub async fn pause_contact(
    TenantAuth(tenant, _): TenantAuth,
    Staff(who): Staff,
    State(staff): State<StaffActions>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Contact>, ApiError> {
    let req = parse_pause(&body)?;
    let c = act(staff, move |s| {
        let pause = s.pause(&who, req.until, req.reason)?;
        s.pause_contact(&tenant.id, &id, &who, Some(pause))
    });
    Ok(Json(c.await?))
}

/// Resumes automation for this contact.
#[utoipa::path(post, path = "/v1/contacts/{id}/resume", tag = "staff", params(("id" = String, Path), ("X-Staff-Id" = String, Header)),
    security(("tenant_key" = [])), responses((status = 200, body = Contact)))]
pub async fn resume_contact(
    TenantAuth(tenant, _): TenantAuth,
    Staff(who): Staff,
    State(staff): State<StaffActions>,
    Path(id): Path<String>,
) -> Result<Json<Contact>, ApiError> {
    Ok(Json(act(staff, move |s| s.pause_contact(&tenant.id, &id, &who, None)).await?))
}

#[derive(Serialize, ToSchema)]
pub struct Automation {
    /// The tenant-wide pause, if any (it may have expired: see `active`).
    pub pause: Option<Pause>,
    pub active: bool,
}

/// Whether automation is paused for the whole tenant.
#[utoipa::path(get, path = "/v1/automation", tag = "staff", security(("tenant_key" = [])), responses((status = 200, body = Automation)))]
pub async fn automation(
    TenantAuth(tenant, _): TenantAuth,
    State(control): State<Control>,
    State(clock): State<SharedClock>,
) -> Result<Json<Automation>, ApiError> {
    let pause = control.tenant_pause(&tenant.id)?;
    let paused = pause.as_ref().is_some_and(|p| p.active(clock.now_ms()));
    Ok(Json(Automation { pause, active: !paused }))
}

/// Pauses automation for the whole tenant (optionally until a time).
#[utoipa::path(post, path = "/v1/automation/pause", tag = "staff", params(("X-Staff-Id" = String, Header)), request_body = PauseRequest,
    security(("tenant_key" = [])), responses((status = 200, body = Automation)))]
pub async fn pause_tenant(
    TenantAuth(tenant, _): TenantAuth,
    Staff(who): Staff,
    State(staff): State<StaffActions>,
    body: axum::body::Bytes,
) -> Result<Json<Automation>, ApiError> {
    let req = parse_pause(&body)?;
    let pause = act(staff, move |s| {
        let pause = s.pause(&who, req.until, req.reason)?;
        s.pause_tenant(&tenant.id, &who, Some(&pause)).map(|()| pause)
    });
    let pause = pause.await?;
    Ok(Json(Automation { pause: Some(pause), active: false }))
}

/// Resumes automation for the whole tenant.
#[utoipa::path(post, path = "/v1/automation/resume", tag = "staff", params(("X-Staff-Id" = String, Header)), security(("tenant_key" = [])),
    responses((status = 200, body = Automation)))]
pub async fn resume_tenant(
    TenantAuth(tenant, _): TenantAuth,
    Staff(who): Staff,
    State(staff): State<StaffActions>,
) -> Result<Json<Automation>, ApiError> {
    act(staff, move |s| s.pause_tenant(&tenant.id, &who, None)).await?;
    Ok(Json(Automation { pause: None, active: true }))
}

#[derive(Serialize, ToSchema)]
pub struct AuditLog {
    pub entries: Vec<AuditEntry>,
}

/// Everything done to or about one conversation, oldest first.
#[utoipa::path(get, path = "/v1/conversations/{id}/audit", tag = "staff", params(("id" = String, Path)), security(("tenant_key" = [])),
    responses((status = 200, body = AuditLog), (status = 404, body = super::error::ErrorBody)))]
pub async fn conversation_audit(
    TenantAuth(tenant, _): TenantAuth,
    State(crm): State<Crm>,
    State(control): State<Control>,
    Path(id): Path<String>,
) -> Result<Json<AuditLog>, ApiError> {
    crm.conversation(&tenant.id, &id)?
        .ok_or_else(|| ApiError::not_found(format!("no conversation {id} in this tenant")))?;
    Ok(Json(AuditLog { entries: control.audit.of_conversation(&tenant.id, &id)? }))
}

#[derive(Deserialize, IntoParams)]
pub struct AuditQuery {
    /// Most recent entries, 1–1000 (default 100).
    limit: Option<usize>,
}

/// The tenant's audit log, newest first.
#[utoipa::path(get, path = "/v1/audit", tag = "staff", params(AuditQuery), security(("tenant_key" = [])), responses((status = 200, body = AuditLog)))]
pub async fn tenant_audit(
    TenantAuth(tenant, _): TenantAuth,
    State(control): State<Control>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<AuditLog>, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(AuditLog { entries: control.audit.recent(&tenant.id, limit)? }))
}

#[derive(Serialize, ToSchema)]
pub struct PendingFollowUp {
    pub pending: Option<Timer>,
}

/// The conversation's pending follow-up, if any.
#[utoipa::path(get, path = "/v1/conversations/{id}/follow-up", tag = "staff", params(("id" = String, Path)), security(("tenant_key" = [])),
    responses((status = 200, body = PendingFollowUp), (status = 404, body = super::error::ErrorBody)))]
pub async fn pending_follow_up(
    TenantAuth(tenant, _): TenantAuth,
    State(crm): State<Crm>,
    State(timers): State<Timers>,
    Path(id): Path<String>,
) -> Result<Json<PendingFollowUp>, ApiError> {
    crm.conversation(&tenant.id, &id)?
        .ok_or_else(|| ApiError::not_found(format!("no conversation {id} in this tenant")))?;
    Ok(Json(PendingFollowUp { pending: timers.pending(&tenant.id, &id)? }))
}

#[derive(Serialize, ToSchema)]
pub struct InboxItem {
    pub conversation: Conversation,
    pub contact_name: Option<String>,
    /// Absent for a contact known only by BSUID.
    pub contact_phone: Option<String>,
    /// The contact's WhatsApp username, if any.
    pub contact_username: Option<String>,
    /// Past its respond-within deadline.
    pub overdue: bool,
    /// Milliseconds left before the deadline (negative: overdue by).
    pub due_in_ms: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct Inbox {
    /// Most urgent first: priority, then the nearest deadline, then who waited longest.
    pub conversations: Vec<InboxItem>,
    pub overdue: usize,
}

/// Conversations waiting for a person, most urgent first.
#[utoipa::path(get, path = "/v1/inbox", tag = "staff", security(("tenant_key" = [])), responses((status = 200, body = Inbox)))]
pub async fn inbox(
    TenantAuth(tenant, _): TenantAuth,
    State(crm): State<Crm>,
    State(clock): State<SharedClock>,
) -> Result<Json<Inbox>, ApiError> {
    let now = clock.now_ms();
    let mut items = Vec::new();
    for c in crm.inbox(&tenant.id)? {
        let contact = crm.contact(&tenant.id, &c.contact_id)?;
        items.push(InboxItem {
            contact_name: contact.as_ref().and_then(|x| x.display_name().map(String::from)),
            contact_username: contact.as_ref().and_then(|x| x.username.clone()),
            contact_phone: contact.and_then(|x| x.phone),
            overdue: c.respond_by.is_some_and(|by| by < now),
            due_in_ms: c.respond_by.map(|by| by - now),
            conversation: c,
        });
    }
    items.sort_by(|a, b| crate::control::by_urgency(&a.conversation, &b.conversation));
    let overdue = items.iter().filter(|i| i.overdue).count();
    Ok(Json(Inbox { conversations: items, overdue }))
}
