//! What staff do to automation: take over, release, reply in person,
//! override routing, resolve, pause and resume. Each is one atomic change
//! of the records with its audit entry (and, when it stops a pending
//! follow-up, that entry too), retried when the pipeline changed the same
//! records meanwhile. Blocking: async callers run it on the blocking pool.

use serde_json::json;

use super::{Actor, AuditAction, AuditEntry, Control};
use crate::clock::{Millis, SharedClock};
use crate::context::ServiceWindow;
use crate::crm::{Author, Contact, Conversation, ConversationStatus, Crm, Message, Override};
use crate::followup::{Pending, Timer, Timers};
use crate::model::{Assignee, Pause, Priority, Reply, Takeover, new_id};
use crate::outbound::Outbox;
use crate::outbound::outgoing::{self, Outgoing};
use crate::store::{self, Batch, StoreError};
use crate::templates::{Book, Templates};

#[derive(Debug, thiserror::Error)]
pub enum StaffError {
    #[error("no conversation {0} in this tenant")]
    NoConversation(String),
    #[error("no contact {0} in this tenant")]
    NoContact(String),
    #[error("no message {0} in this conversation")]
    NoMessage(String),
    #[error("the 24-hour customer-service window is closed: only an approved template may be sent")]
    WindowClosed,
    #[error(transparent)]
    Refused(#[from] super::Refusal),
    #[error("the contact opted out: nothing is sent to them until they opt in again")]
    OptedOut,
    #[error("`until` is in the past")]
    PauseInThePast,
    #[error("the {0} keeps changing; retry")]
    KeptChanging(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Result<T, E = StaffError> = std::result::Result<T, E>;

/// A routing override: who handles the conversation instead, and why.
pub struct Reassignment {
    pub assignee: Assignee,
    pub priority: Option<Priority>,
    pub reason: String,
}

#[derive(Clone)]
pub struct StaffActions {
    pub(super) crm: Crm,
    timers: Timers,
    pub(super) control: Control,
    pub(super) outbox: Outbox,
    pub(super) templates: Templates,
    clock: SharedClock,
}

/// What one conversation change may touch.
pub struct Change<'a> {
    pub conversation: &'a mut Conversation,
    pub contact: &'a mut Contact,
    /// The pending follow-up; set to `None` to cancel it.
    pub pending: &'a mut Option<Timer>,
    pub batch: &'a mut Batch,
    pub now: Millis,
}

fn staff(id: &str) -> Actor {
    Actor::Staff { id: id.to_string() }
}

impl StaffActions {
    pub fn new(
        crm: Crm,
        timers: Timers,
        control: Control,
        outbox: Outbox,
        templates: Templates,
        clock: SharedClock,
    ) -> StaffActions {
        StaffActions { crm, timers, control, outbox, templates, clock }
    }

    pub fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    /// Automation (bot replies, follow-ups) stops for the conversation at
    /// once, until release.
    pub fn take_over(&self, tenant: &str, id: &str, who: &str) -> Result<Conversation> {
        self.change(tenant, id, |c| {
            c.conversation.takeover = Some(Takeover { staff: who.to_string(), at: c.now });
            c.conversation.assignee = Some(Assignee::Agent(who.to_string()));
            *c.pending = None;
            Ok(AuditEntry::new(c.now, staff(who), AuditAction::Takeover, format!("{who} took over the conversation")))
        })
    }

    pub fn release(&self, tenant: &str, id: &str, who: &str) -> Result<Conversation> {
        self.change(tenant, id, |c| {
            c.conversation.takeover = None;
            let reason = format!("{who} handed the conversation back to automation");
            Ok(AuditEntry::new(c.now, staff(who), AuditAction::Release, reason))
        })
    }

    /// A reply in person: recorded with its author and queued for sending,
    /// quoting one of the conversation's messages if asked.
    pub fn reply(
        &self,
        tenant: &str,
        id: &str,
        who: &str,
        reply: &Reply,
        quoting: Option<&str>,
        phone_number_id: &str,
    ) -> Result<Message> {
        let message_id = new_id("msg");
        let book = self.book(tenant, reply)?;
        let reacting = match reply {
            Reply::Reaction { message_id, .. } => Some(message_id.as_str()),
            _ => None,
        };
        for wamid in quoting.into_iter().chain(reacting) {
            if self.crm.message(tenant, wamid)?.is_none_or(|m| m.conversation_id != id) {
                return Err(StaffError::NoMessage(wamid.to_string()));
            }
        }
        let mut queued = None;
        self.change(tenant, id, |c| {
            let reply = sendable(reply, &book, c.contact, c.now)?;
            let o = Outgoing {
                id: message_id.clone(),
                reply: &reply,
                author: Author::Human { staff: who.to_string() },
                reply_to: quoting.map(String::from),
                quoting: quoting.map(String::from),
                decision_id: None,
                phone_number_id,
                now: c.now,
            };
            let m = outgoing::queue(&self.crm, &self.outbox, c.batch, tenant, c.conversation, c.contact, o)?;
            c.conversation.needs_reply = false;
            c.conversation.respond_by = None;
            queued = Some(m);
            let entry = AuditEntry::new(c.now, staff(who), AuditAction::HumanReply, format!("{who} replied"));
            Ok(entry.with(json!({ "message": message_id })))
        })?;
        let message = queued.ok_or(StaffError::KeptChanging("conversation"))?;
        self.outbox.wake_sender();
        Ok(message)
    }

    /// The definition of the template `reply` sends, if it sends one.
    pub(super) fn book(&self, tenant: &str, reply: &Reply) -> Result<Book> {
        Ok(match reply {
            Reply::Template(t) => self.templates.book(tenant, [t])?,
            _ => Book::default(),
        })
    }

    /// Reassigns and/or reprioritises, recorded next to the plugin decision
    /// it replaces.
    pub fn reassign(&self, tenant: &str, id: &str, who: &str, r: &Reassignment) -> Result<Conversation> {
        self.change(tenant, id, |c| {
            let o = Override {
                id: new_id("ov"),
                conversation_id: c.conversation.id.clone(),
                replaces_decision: c.conversation.last_decision_id.clone(),
                staff: who.to_string(),
                at: c.now,
                assignee: Some(r.assignee.clone()),
                priority: r.priority,
                reason: r.reason.clone(),
            };
            self.crm.put_override(c.batch, tenant, &o)?;
            c.conversation.assignee = Some(r.assignee.clone());
            if let Some(p) = r.priority {
                c.conversation.priority = p;
            }
            let details = json!({ "override": o.id, "replaces_decision": o.replaces_decision, "assignee": o.assignee, "priority": o.priority });
            Ok(AuditEntry::new(c.now, staff(who), AuditAction::RoutingOverridden, &r.reason).with(details))
        })
    }

    /// Resolved: pending follow-ups are dropped, the takeover ends.
    pub fn resolve(&self, tenant: &str, id: &str, who: &str) -> Result<(Conversation, Contact)> {
        let mut contact = None;
        let conversation = self.change(tenant, id, |c| {
            let cv = &mut *c.conversation;
            cv.status = ConversationStatus::Resolved;
            cv.resolved_at = Some(c.now);
            cv.needs_reply = false;
            cv.respond_by = None;
            cv.takeover = None;
            *c.pending = None;
            contact = Some(c.contact.clone());
            let reason = format!("{who} resolved the conversation");
            Ok(AuditEntry::new(c.now, staff(who), AuditAction::ConversationResolved, reason))
        })?;
        Ok((conversation, contact.ok_or(StaffError::KeptChanging("conversation"))?))
    }

    /// A pause by `who` from now, checked.
    pub fn pause(&self, who: &str, until: Option<Millis>, reason: Option<String>) -> Result<Pause> {
        let now = self.now();
        if until.is_some_and(|u| u <= now) {
            return Err(StaffError::PauseInThePast);
        }
        Ok(Pause { by: who.to_string(), at: now, until, reason })
    }

    /// Pauses (`Some`) or resumes (`None`) automation for a conversation.
    pub fn pause_conversation(&self, tenant: &str, id: &str, who: &str, pause: Option<Pause>) -> Result<Conversation> {
        self.change(tenant, id, |c| {
            c.conversation.paused = pause.clone();
            Ok(pause_entry(c.now, who, pause.as_ref(), "conversation"))
        })
    }

    /// Pauses (`Some`) or resumes (`None`) automation for a contact.
    pub fn pause_contact(&self, tenant: &str, id: &str, who: &str, pause: Option<Pause>) -> Result<Contact> {
        let changed = store::optimistic(|| {
            let read = self.crm.contact(tenant, id)?.ok_or_else(|| StaffError::NoContact(id.into()))?;
            let mut contact = read.clone();
            contact.paused = pause.clone();
            let entry = pause_entry(self.now(), who, pause.as_ref(), "contact").about(None, Some(id));
            let mut batch = Batch::new();
            self.control.audit.record(&mut batch, tenant, &entry)?;
            self.crm.put_contact(&mut batch, tenant, &mut contact, Some(&read))?;
            Ok::<_, StaffError>(store::committed(self.crm.commit(batch))?.then_some(contact))
        })?;
        changed.ok_or(StaffError::KeptChanging("contact"))
    }

    /// Pauses (`Some`) or resumes (`None`) automation for the whole tenant.
    pub fn pause_tenant(&self, tenant: &str, who: &str, pause: Option<&Pause>) -> Result<()> {
        let mut batch = Batch::new();
        self.control.set_tenant_pause(&mut batch, tenant, pause)?;
        let entry = pause_entry(self.now(), who, pause, "tenant");
        self.control.audit.record(&mut batch, tenant, &entry)?;
        Ok(self.crm.commit(batch)?)
    }

    /// Changes a conversation (and maybe its contact and follow-up) with
    /// the audit entry `f` returns, atomically, retrying if the pipeline
    /// changed them meanwhile.
    fn change(
        &self,
        tenant: &str,
        id: &str,
        mut f: impl FnMut(Change<'_>) -> Result<AuditEntry>,
    ) -> Result<Conversation> {
        let changed = store::optimistic(|| {
            let read = self.crm.conversation(tenant, id)?.ok_or_else(|| StaffError::NoConversation(id.into()))?;
            let read_contact = self
                .crm
                .contact(tenant, &read.contact_id)?
                .ok_or_else(|| StaffError::NoContact(read.contact_id.clone()))?;
            let timer = self.timers.read_pending(tenant, id)?;
            let (mut conversation, mut contact, mut pending) =
                (read.clone(), read_contact.clone(), timer.timer.clone());
            let (now, mut batch) = (self.now(), Batch::new());
            let change = Change {
                conversation: &mut conversation,
                contact: &mut contact,
                pending: &mut pending,
                batch: &mut batch,
                now,
            };
            let entry = f(change)?.about(Some(id), Some(&contact.id));
            if pending != timer.timer {
                self.cancel_follow_up(&mut batch, tenant, &entry, &timer, pending.as_ref())?;
            }
            self.control.audit.record(&mut batch, tenant, &entry)?;
            if contact != read_contact {
                self.crm.put_contact(&mut batch, tenant, &mut contact, Some(&read_contact))?;
            }
            self.crm.put_conversation(&mut batch, tenant, &mut conversation, Some(&read))?;
            Ok::<_, StaffError>(store::committed(self.crm.commit(batch))?.then_some(conversation))
        })?;
        changed.ok_or(StaffError::KeptChanging("conversation"))
    }

    /// Replaces the pending follow-up, auditing the one cancelled.
    fn cancel_follow_up(
        &self,
        batch: &mut Batch,
        tenant: &str,
        cause: &AuditEntry,
        was: &Pending,
        now_pending: Option<&Timer>,
    ) -> Result<()> {
        if let Some(t) = &was.timer {
            let cancelled =
                AuditEntry::new(cause.at, cause.actor.clone(), AuditAction::FollowUpCancelled, &cause.reason)
                    .about(cause.conversation_id.as_deref(), cause.contact_id.as_deref())
                    .with(json!({ "timer": t.id, "was_due_at": t.follow_up.at }));
            self.control.audit.record(batch, tenant, &cancelled)?;
        }
        let conversation = cause.conversation_id.as_deref().unwrap_or_default();
        self.timers.replace(batch, tenant, conversation, was, now_pending)?;
        Ok(())
    }
}

/// `reply` as it may go to `contact` now: text inside the 24-hour window,
/// a template as WhatsApp will take it.
pub(super) fn sendable(reply: &Reply, book: &Book, contact: &Contact, now: Millis) -> Result<Reply> {
    match reply {
        Reply::Template(t) => Ok(Reply::Template(super::template_refusal(book, t, contact)?)),
        _ if !ServiceWindow::of(contact, now).open => Err(StaffError::WindowClosed),
        other => Ok(other.clone()),
    }
}

fn pause_entry(now: Millis, who: &str, pause: Option<&Pause>, scope: &str) -> AuditEntry {
    match pause {
        Some(p) => AuditEntry::new(
            now,
            staff(who),
            AuditAction::AutomationPaused,
            p.reason.clone().unwrap_or_else(|| "paused".into()),
        )
        .with(json!({ "scope": scope, "until": p.until })),
        None => {
            AuditEntry::new(now, staff(who), AuditAction::AutomationResumed, "resumed").with(json!({ "scope": scope }))
        }
    }
}

/// On the in-memory engine: each action's records and audit entries, as
/// the staff API documents them (`docs/staff-api.md`).
#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::{HOUR, SystemClock};
    use crate::model::{FollowUpAction, ScheduledFollowUp};
    use crate::store::Store;

    const T: &str = "acme";

    struct World {
        staff: StaffActions,
        crm: Crm,
        timers: Timers,
        control: Control,
    }

    /// A contact who wrote `wrote_ago` ms ago, in an open conversation with
    /// a follow-up pending.
    fn world(wrote_ago: Millis) -> World {
        let store = Store::in_memory();
        let sync = crate::sync::Outbox::new(store.clone());
        let crm = Crm::new(store.clone(), sync.clone());
        let (timers, control) = (Timers::new(store.clone()), Control::new(store.clone(), sync));
        let clock: SharedClock = Arc::new(SystemClock);
        let now = clock.now_ms();
        let mut contact = Contact { id: "ct_1".into(), phone: Some("+5511987654321".into()), ..Default::default() };
        contact.stats.last_inbound_at = Some(now - wrote_ago);
        let mut conversation = Conversation { id: "cv_1".into(), contact_id: "ct_1".into(), ..Default::default() };
        let timer = Timer {
            id: "fu_1".into(),
            tenant: T.into(),
            conversation_id: "cv_1".into(),
            contact_id: "ct_1".into(),
            wa_id: "5511987654321".into(),
            follow_up: ScheduledFollowUp {
                at: now + HOUR,
                action: FollowUpAction::SendText { body: "still there?".into() },
                attempt: 1,
            },
            scheduled_at: now,
            reason: "planned".into(),
            planned_by: "v1".into(),
        };
        let mut batch = Batch::new();
        crm.put_contact(&mut batch, T, &mut contact, None).unwrap();
        crm.put_conversation(&mut batch, T, &mut conversation, None).unwrap();
        timers.replace(&mut batch, T, "cv_1", &Pending::default(), Some(&timer)).unwrap();
        crm.commit(batch).unwrap();
        let graph = crate::outbound::GraphClient::new(&crate::config::OutboundConfig::default()).unwrap();
        let templates = Templates::new(store.clone(), graph);
        let staff =
            StaffActions::new(crm.clone(), timers.clone(), control.clone(), Outbox::new(store), templates, clock);
        World { staff, crm, timers, control }
    }

    fn actions(w: &World) -> Vec<AuditAction> {
        w.control.audit.of_conversation(T, "cv_1").unwrap().into_iter().map(|e| e.action).collect()
    }

    #[test]
    fn a_takeover_assigns_the_person_and_cancels_the_pending_follow_up() {
        let w = world(HOUR);
        let c = w.staff.take_over(T, "cv_1", "marta").unwrap();
        assert_eq!(c.takeover.as_ref().map(|t| t.staff.as_str()), Some("marta"));
        assert_eq!(c.assignee, Some(Assignee::Agent("marta".into())));
        assert_eq!(w.timers.pending(T, "cv_1").unwrap(), None);
        assert_eq!(actions(&w), [AuditAction::Takeover, AuditAction::FollowUpCancelled]);
        let released = w.staff.release(T, "cv_1", "marta").unwrap();
        assert_eq!(released.takeover, None);
    }

    /// Meta: free-form text only within 24 hours of the contact's last
    /// message; a template at any time.
    #[test]
    fn text_needs_the_window_and_a_template_does_not() {
        let w = world(25 * HOUR);
        let text = Reply::Text { body: "hello".into() };
        assert!(matches!(w.staff.reply(T, "cv_1", "marta", &text, None, "pn"), Err(StaffError::WindowClosed)));
        let template = Reply::Template(crate::model::Template::text("reopen", "pt_BR", vec![]));
        let m = w.staff.reply(T, "cv_1", "marta", &template, None, "pn").unwrap();
        assert_eq!(m.author, Author::Human { staff: "marta".into() });
        assert!(!w.crm.conversation(T, "cv_1").unwrap().unwrap().needs_reply);
        assert_eq!(actions(&w), [AuditAction::HumanReply]);
    }

    #[test]
    fn pauses_are_checked_and_audited_at_every_scope() {
        let w = world(HOUR);
        assert!(matches!(w.staff.pause("marta", Some(0), None), Err(StaffError::PauseInThePast)));
        let pause = w.staff.pause("marta", None, Some("holiday".into())).unwrap();
        let c = w.staff.pause_conversation(T, "cv_1", "marta", Some(pause.clone())).unwrap();
        assert_eq!(c.paused.as_ref().and_then(|p| p.reason.as_deref()), Some("holiday"));
        let contact = w.staff.pause_contact(T, "ct_1", "marta", Some(pause.clone())).unwrap();
        assert!(contact.paused.is_some());
        w.staff.pause_tenant(T, "marta", Some(&pause)).unwrap();
        assert!(w.control.tenant_pause(T).unwrap().is_some());
        w.staff.pause_tenant(T, "marta", None).unwrap();
        assert!(w.control.tenant_pause(T).unwrap().is_none());
        assert!(matches!(w.staff.pause_contact(T, "ct_404", "marta", None), Err(StaffError::NoContact(_))));
        assert!(matches!(w.staff.release(T, "cv_404", "marta"), Err(StaffError::NoConversation(_))));
    }
}
