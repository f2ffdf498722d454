//! The staff API: take over, reply, override routing, pause, resolve; the
//! audit log and the inbox. Tenant key auth; the staff member is named per
//! call in the `X-Staff-Id` header and recorded as the actor.

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, ApiJson, AppState, TenantAuth};
use crate::clock::Millis;
use crate::control::{Actor, AuditEntry, Pause, Takeover};
use crate::crm::{Author, Contact, Conversation, ConversationStatus, Message, Override};
use crate::followup::Timer;
use crate::model::{Assignee, Priority, Reply, Template, new_id};
use crate::pipeline::outgoing::{self, Outgoing};
use crate::store::{Batch, StoreError};
use crate::tenants::Tenant;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/conversations/{id}/takeover", post(takeover))
        .route("/v1/conversations/{id}/release", post(release))
        .route("/v1/conversations/{id}/messages", post(reply))
        .route("/v1/conversations/{id}/assignment", post(reassign))
        .route("/v1/conversations/{id}/resolve", post(resolve))
        .route("/v1/conversations/{id}/pause", post(pause_conversation))
        .route("/v1/conversations/{id}/resume", post(resume_conversation))
        .route("/v1/conversations/{id}/audit", get(conversation_audit))
        .route("/v1/conversations/{id}/follow-up", get(pending_follow_up))
        .route("/v1/contacts/{id}/pause", post(pause_contact))
        .route("/v1/contacts/{id}/resume", post(resume_contact))
        .route("/v1/automation", get(automation))
        .route("/v1/automation/pause", post(pause_tenant))
        .route("/v1/automation/resume", post(resume_tenant))
        .route("/v1/audit", get(tenant_audit))
        .route("/v1/inbox", get(inbox))
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

/// Changes a conversation (and maybe its contact and follow-up) with the
/// audit entry, atomically, retrying if the pipeline changed it meanwhile.
fn change<F>(state: &AppState, tenant: &Tenant, id: &str, mut f: F) -> Result<Conversation, ApiError>
where
    F: FnMut(&mut Conversation, &mut Contact, &mut Option<Timer>, &mut Batch, Millis) -> Result<AuditEntry, ApiError>,
{
    let s = state.stages();
    for _ in 0..20 {
        let read = s
            .crm
            .conversation(&tenant.id, id)?
            .ok_or_else(|| ApiError::not_found(format!("no conversation {id} in this tenant")))?;
        let read_contact = s
            .crm
            .contact(&tenant.id, &read.contact_id)?
            .ok_or_else(|| ApiError::not_found("the conversation has no contact"))?;
        let timer = s.timers.pending(&tenant.id, id)?;
        let (mut conversation, mut contact, mut pending) = (read.clone(), read_contact.clone(), timer.clone());
        let now = s.clock.now_ms();
        let mut batch = Batch::new();
        let entry = f(&mut conversation, &mut contact, &mut pending, &mut batch, now)?;
        if pending != timer {
            if let Some(t) = &timer {
                let cancelled = AuditEntry::new(now, entry.actor.clone(), "follow_up_cancelled", &entry.reason)
                    .about(Some(id), Some(&contact.id))
                    .with(json!({ "timer": t.id, "was_due_at": t.follow_up.at }));
                s.control.audit.record(&mut batch, &tenant.id, &cancelled)?;
            }
            s.timers.replace(&mut batch, &tenant.id, id, timer.as_ref(), pending.as_ref())?;
        }
        s.control.audit.record(&mut batch, &tenant.id, &entry.about(Some(id), Some(&contact.id)))?;
        if contact != read_contact {
            s.crm.put_contact(&mut batch, &tenant.id, &contact, Some(&read_contact))?;
        }
        s.crm.put_conversation(&mut batch, &tenant.id, &conversation, Some(&read))?;
        match s.crm.commit(batch) {
            Ok(()) => return Ok(conversation),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict("the conversation keeps changing; retry"))
}

fn staff(id: &str) -> Actor {
    Actor::Staff { id: id.to_string() }
}

/// A staff member takes over: automation (bot replies, follow-ups) stops
/// for this conversation at once, until release.
#[utoipa::path(post, path = "/v1/conversations/{id}/takeover", tag = "staff", params(("id" = String, Path), ("X-Staff-Id" = String, Header)),
    security(("tenant_key" = [])), responses((status = 200, body = Conversation), (status = 404, body = super::error::ErrorBody)))]
pub async fn takeover(
    TenantAuth(tenant, _): TenantAuth,
    Staff(who): Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Conversation>, ApiError> {
    let c = change(&state, &tenant, &id, |c, _, pending, _, now| {
        c.takeover = Some(Takeover { staff: who.clone(), at: now });
        c.assignee = Some(Assignee::Agent(who.clone()));
        *pending = None;
        Ok(AuditEntry::new(now, staff(&who), "takeover", format!("{who} took over the conversation")))
    })?;
    Ok(Json(c))
}

/// Hands the conversation back to automation.
#[utoipa::path(post, path = "/v1/conversations/{id}/release", tag = "staff", params(("id" = String, Path), ("X-Staff-Id" = String, Header)),
    security(("tenant_key" = [])), responses((status = 200, body = Conversation), (status = 404, body = super::error::ErrorBody)))]
pub async fn release(
    TenantAuth(tenant, _): TenantAuth,
    Staff(who): Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Conversation>, ApiError> {
    let c = change(&state, &tenant, &id, |c, _, _, _, now| {
        c.takeover = None;
        Ok(AuditEntry::new(now, staff(&who), "release", format!("{who} handed the conversation back to automation")))
    })?;
    Ok(Json(c))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffReply {
    /// Free-form text (only inside the 24-hour window)…
    pub text: Option<String>,
    /// …or an approved template (any time).
    pub template: Option<Template>,
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
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<StaffReply>,
) -> Result<(StatusCode, Json<Queued>), ApiError> {
    let reply = match (body.text, body.template) {
        (Some(text), None) if !text.trim().is_empty() && text.chars().count() <= 4096 => Reply::Text { body: text },
        (None, Some(t)) if !t.name.is_empty() && !t.language.is_empty() => Reply::Template(t),
        _ => {
            return Err(ApiError::bad_request(
                "invalid_reply",
                "send either `text` (1–4096 characters) or a `template`",
            ));
        }
    };
    let s = state.stages();
    let phone_number_id = tenant.phone_number_ids.first().cloned().unwrap_or_default();
    let message_id = new_id("msg");
    let mut queued = None;
    change(&state, &tenant, &id, |c, contact, _, batch, now| {
        if matches!(reply, Reply::Text { .. }) && !crate::context::ServiceWindow::of(contact, now).open {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "window_closed",
                "the 24-hour customer-service window is closed: only an approved template may be sent",
            ));
        }
        let o = Outgoing {
            id: message_id.clone(),
            reply: &reply,
            author: Author::Human { staff: who.clone() },
            reply_to: None,
            decision_id: None,
            phone_number_id: &phone_number_id,
            now,
        };
        let m = outgoing::queue(&s.crm, &s.outbox, batch, &tenant.id, c, contact, o)?;
        c.needs_reply = false;
        c.respond_by = None;
        queued = Some(m);
        Ok(AuditEntry::new(now, staff(&who), "human_reply", format!("{who} replied"))
            .with(json!({ "message": message_id })))
    })?;
    s.outbound_wake.notify_one();
    let message = queued.ok_or_else(|| ApiError::unavailable("the reply was not recorded"))?;
    Ok((StatusCode::ACCEPTED, Json(Queued { message })))
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
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Reassign>,
) -> Result<Json<Conversation>, ApiError> {
    if body.reason.trim().is_empty() {
        return Err(ApiError::bad_request("invalid_override", "say why in `reason`"));
    }
    let s = state.stages();
    let c = change(&state, &tenant, &id, |c, _, _, batch, now| {
        let o = Override {
            id: new_id("ov"),
            conversation_id: c.id.clone(),
            replaces_decision: c.last_decision_id.clone(),
            staff: who.clone(),
            at: now,
            assignee: Some(body.assignee.clone()),
            priority: body.priority,
            reason: body.reason.clone(),
        };
        s.crm.put_override(batch, &tenant.id, &o)?;
        c.assignee = Some(body.assignee.clone());
        if let Some(p) = body.priority {
            c.priority = p;
        }
        Ok(AuditEntry::new(now, staff(&who), "routing_overridden", &body.reason)
            .with(json!({ "override": o.id, "replaces_decision": o.replaces_decision, "assignee": o.assignee, "priority": o.priority })))
    })?;
    Ok(Json(c))
}

/// Marks the conversation resolved; pending follow-ups are dropped.
#[utoipa::path(post, path = "/v1/conversations/{id}/resolve", tag = "staff", params(("id" = String, Path), ("X-Staff-Id" = String, Header)),
    security(("tenant_key" = [])), responses((status = 200, body = Conversation), (status = 404, body = super::error::ErrorBody)))]
pub async fn resolve(
    TenantAuth(tenant, _): TenantAuth,
    Staff(who): Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Conversation>, ApiError> {
    let c = change(&state, &tenant, &id, |c, _, pending, _, now| {
        c.status = ConversationStatus::Resolved;
        c.resolved_at = Some(now);
        c.needs_reply = false;
        c.respond_by = None;
        c.takeover = None;
        *pending = None;
        Ok(AuditEntry::new(now, staff(&who), "conversation_resolved", format!("{who} resolved the conversation")))
    })?;
    // The exchange closes: the contact's worker measures it (feedback).
    let s = state.stages();
    if let Some(contact) = s.crm.contact(&tenant.id, &c.contact_id)? {
        let closed = crate::pipeline::learn::ExchangeClosed {
            tenant: tenant.id.clone(),
            conversation_id: c.id.clone(),
            wa_id: contact.wa_id.unwrap_or_else(|| contact.phone.trim_start_matches('+').to_string()),
            closed_by: crate::model::CloseReason::Resolved,
            at: s.clock.now_ms(),
        };
        let pipeline = state.pipeline.clone();
        tokio::task::spawn_blocking(move || {
            pipeline.submit(vec![crate::pipeline::Event::ExchangeClosed(closed)], Batch::new())
        })
        .await
        .map_err(|_| ApiError::unavailable("stopped"))??;
    }
    Ok(Json(c))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    /// Resume on its own at this time (ms since the epoch); default: until resumed.
    pub until: Option<Millis>,
    pub reason: Option<String>,
}

fn parse_pause(body: &axum::body::Bytes) -> Result<PauseRequest, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(PauseRequest::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request("invalid_body", e.to_string()))
}

fn pause_of(who: &str, req: PauseRequest, now: Millis) -> Result<Pause, ApiError> {
    if req.until.is_some_and(|u| u <= now) {
        return Err(ApiError::bad_request("invalid_pause", "`until` is in the past"));
    }
    Ok(Pause { by: who.to_string(), at: now, until: req.until, reason: req.reason })
}

/// Pauses automation for this conversation (optionally until a time).
#[utoipa::path(post, path = "/v1/conversations/{id}/pause", tag = "staff", params(("id" = String, Path), ("X-Staff-Id" = String, Header)),
    request_body = PauseRequest, security(("tenant_key" = [])), responses((status = 200, body = Conversation)))]
pub async fn pause_conversation(
    TenantAuth(tenant, _): TenantAuth,
    Staff(who): Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Conversation>, ApiError> {
    let req = parse_pause(&body)?;
    let pause = pause_of(&who, req, state.stages().clock.now_ms())?;
    let c = change(&state, &tenant, &id, |c, _, _, _, now| {
        c.paused = Some(pause.clone());
        Ok(AuditEntry::new(
            now,
            staff(&who),
            "automation_paused",
            pause.reason.clone().unwrap_or_else(|| "paused".into()),
        )
        .with(json!({ "scope": "conversation", "until": pause.until })))
    })?;
    Ok(Json(c))
}

/// Resumes automation for this conversation.
#[utoipa::path(post, path = "/v1/conversations/{id}/resume", tag = "staff", params(("id" = String, Path), ("X-Staff-Id" = String, Header)),
    security(("tenant_key" = [])), responses((status = 200, body = Conversation)))]
pub async fn resume_conversation(
    TenantAuth(tenant, _): TenantAuth,
    Staff(who): Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Conversation>, ApiError> {
    let c = change(&state, &tenant, &id, |c, _, _, _, now| {
        c.paused = None;
        Ok(AuditEntry::new(now, staff(&who), "automation_resumed", "resumed").with(json!({ "scope": "conversation" })))
    })?;
    Ok(Json(c))
}

/// Changes a contact with an audit entry, retrying on conflict.
fn change_contact(
    state: &AppState,
    tenant: &Tenant,
    id: &str,
    f: impl Fn(&mut Contact, Millis) -> AuditEntry,
) -> Result<Contact, ApiError> {
    let s = state.stages();
    for _ in 0..20 {
        let read = s
            .crm
            .contact(&tenant.id, id)?
            .ok_or_else(|| ApiError::not_found(format!("no contact {id} in this tenant")))?;
        let mut contact = read.clone();
        let now = s.clock.now_ms();
        let entry = f(&mut contact, now).about(None, Some(id));
        let mut batch = Batch::new();
        s.control.audit.record(&mut batch, &tenant.id, &entry)?;
        s.crm.put_contact(&mut batch, &tenant.id, &contact, Some(&read))?;
        match s.crm.commit(batch) {
            Ok(()) => return Ok(contact),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict("the contact keeps changing; retry"))
}

/// Pauses automation for everything about this contact.
#[utoipa::path(post, path = "/v1/contacts/{id}/pause", tag = "staff", params(("id" = String, Path), ("X-Staff-Id" = String, Header)),
    request_body = PauseRequest, security(("tenant_key" = [])), responses((status = 200, body = Contact)))]
pub async fn pause_contact(
    TenantAuth(tenant, _): TenantAuth,
    Staff(who): Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Contact>, ApiError> {
    let pause = pause_of(&who, parse_pause(&body)?, state.stages().clock.now_ms())?;
    let c = change_contact(&state, &tenant, &id, |c, now| {
        c.paused = Some(pause.clone());
        AuditEntry::new(now, staff(&who), "automation_paused", pause.reason.clone().unwrap_or_else(|| "paused".into()))
            .with(json!({ "scope": "contact", "until": pause.until }))
    })?;
    Ok(Json(c))
}

/// Resumes automation for this contact.
#[utoipa::path(post, path = "/v1/contacts/{id}/resume", tag = "staff", params(("id" = String, Path), ("X-Staff-Id" = String, Header)),
    security(("tenant_key" = [])), responses((status = 200, body = Contact)))]
pub async fn resume_contact(
    TenantAuth(tenant, _): TenantAuth,
    Staff(who): Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Contact>, ApiError> {
    let c = change_contact(&state, &tenant, &id, |c, now| {
        c.paused = None;
        AuditEntry::new(now, staff(&who), "automation_resumed", "resumed").with(json!({ "scope": "contact" }))
    })?;
    Ok(Json(c))
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
    State(state): State<AppState>,
) -> Result<Json<Automation>, ApiError> {
    let s = state.stages();
    let pause = s.control.tenant_pause(&tenant.id)?;
    let paused = pause.as_ref().is_some_and(|p| p.active(s.clock.now_ms()));
    Ok(Json(Automation { pause, active: !paused }))
}

fn set_tenant_pause(
    state: &AppState,
    tenant: &Tenant,
    who: &str,
    pause: Option<Pause>,
) -> Result<Automation, ApiError> {
    let s = state.stages();
    let now = s.clock.now_ms();
    let mut batch = Batch::new();
    s.control.set_tenant_pause(&mut batch, &tenant.id, pause.as_ref())?;
    let (action, reason) = match &pause {
        Some(p) => ("automation_paused", p.reason.clone().unwrap_or_else(|| "paused".into())),
        None => ("automation_resumed", "resumed".to_string()),
    };
    let until = pause.as_ref().and_then(|p| p.until);
    s.control.audit.record(
        &mut batch,
        &tenant.id,
        &AuditEntry::new(now, staff(who), action, reason).with(json!({ "scope": "tenant", "until": until })),
    )?;
    s.crm.commit(batch)?;
    Ok(Automation { active: pause.is_none(), pause })
}

/// Pauses automation for the whole tenant (optionally until a time).
#[utoipa::path(post, path = "/v1/automation/pause", tag = "staff", params(("X-Staff-Id" = String, Header)), request_body = PauseRequest,
    security(("tenant_key" = [])), responses((status = 200, body = Automation)))]
pub async fn pause_tenant(
    TenantAuth(tenant, _): TenantAuth,
    Staff(who): Staff,
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Json<Automation>, ApiError> {
    let pause = pause_of(&who, parse_pause(&body)?, state.stages().clock.now_ms())?;
    Ok(Json(set_tenant_pause(&state, &tenant, &who, Some(pause))?))
}

/// Resumes automation for the whole tenant.
#[utoipa::path(post, path = "/v1/automation/resume", tag = "staff", params(("X-Staff-Id" = String, Header)), security(("tenant_key" = [])),
    responses((status = 200, body = Automation)))]
pub async fn resume_tenant(
    TenantAuth(tenant, _): TenantAuth,
    Staff(who): Staff,
    State(state): State<AppState>,
) -> Result<Json<Automation>, ApiError> {
    Ok(Json(set_tenant_pause(&state, &tenant, &who, None)?))
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
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<AuditLog>, ApiError> {
    let s = state.stages();
    s.crm
        .conversation(&tenant.id, &id)?
        .ok_or_else(|| ApiError::not_found(format!("no conversation {id} in this tenant")))?;
    Ok(Json(AuditLog { entries: s.control.audit.of_conversation(&tenant.id, &id)? }))
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
    State(state): State<AppState>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<AuditLog>, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(AuditLog { entries: state.stages().control.audit.recent(&tenant.id, limit)? }))
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
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<PendingFollowUp>, ApiError> {
    let s = state.stages();
    s.crm
        .conversation(&tenant.id, &id)?
        .ok_or_else(|| ApiError::not_found(format!("no conversation {id} in this tenant")))?;
    Ok(Json(PendingFollowUp { pending: s.timers.pending(&tenant.id, &id)? }))
}

#[derive(Serialize, ToSchema)]
pub struct InboxItem {
    pub conversation: Conversation,
    pub contact_name: Option<String>,
    pub contact_phone: String,
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
pub async fn inbox(TenantAuth(tenant, _): TenantAuth, State(state): State<AppState>) -> Result<Json<Inbox>, ApiError> {
    let s = state.stages();
    let now = s.clock.now_ms();
    let mut items = Vec::new();
    for c in s.crm.inbox(&tenant.id)? {
        let contact = s.crm.contact(&tenant.id, &c.contact_id)?;
        items.push(InboxItem {
            contact_name: contact.as_ref().and_then(|x| x.display_name().map(String::from)),
            contact_phone: contact.map(|x| x.phone).unwrap_or_default(),
            overdue: c.respond_by.is_some_and(|by| by < now),
            due_in_ms: c.respond_by.map(|by| by - now),
            conversation: c,
        });
    }
    items.sort_by(|a, b| {
        let (x, y) = (&a.conversation, &b.conversation);
        y.priority
            .cmp(&x.priority)
            .then_with(|| x.respond_by.unwrap_or(i64::MAX).cmp(&y.respond_by.unwrap_or(i64::MAX)))
            .then_with(|| x.last_inbound_at.unwrap_or(i64::MAX).cmp(&y.last_inbound_at.unwrap_or(i64::MAX)))
    });
    let overdue = items.iter().filter(|i| i.overdue).count();
    Ok(Json(Inbox { conversations: items, overdue }))
}
