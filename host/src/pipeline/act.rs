//! Act: turn a routing decision into changes on the conversation and
//! messages to send. The host enforces what no plugin may override: no
//! automated message to a contact who opted out, and free-form text only
//! inside the 24-hour window.

use crate::clock::Millis;
use crate::context::ServiceWindow;
use crate::crm::{Contact, Conversation};
use crate::model::{Handler, Reply, RoutingDecision, deadline};

/// Tags a conversation keeps, at most.
const MAX_CONVERSATION_TAGS: usize = 32;

/// What acting on a decision produced.
#[derive(Debug, Default)]
pub struct Acts {
    /// Messages to queue, in order.
    pub sends: Vec<Reply>,
    /// What the host did, for the decision record.
    pub notes: Vec<String>,
}

pub fn apply(
    decision: &RoutingDecision,
    conversation: &mut Conversation,
    contact: &Contact,
    window: &ServiceWindow,
    now: Millis,
) -> Acts {
    let mut acts = Acts::default();
    conversation.needs_reply = decision.needs_reply;
    conversation.priority = decision.priority;
    for tag in &decision.tags {
        if !conversation.tags.contains(tag) && conversation.tags.len() < MAX_CONVERSATION_TAGS {
            conversation.tags.push(tag.clone());
        }
    }
    match &decision.handler {
        Handler::Bot { reply } => {
            if queue(&mut acts, reply, contact, window, "bot reply") {
                conversation.needs_reply = false;
            }
            conversation.respond_by = None;
        }
        Handler::Human { assignee } => {
            conversation.assignee = Some(assignee.clone());
            conversation.respond_by =
                if decision.needs_reply { deadline(now, decision.respond_within_ms) } else { None };
            acts.notes.push(format!("assigned to {}", describe(assignee)));
            if let Some(ack) = &decision.acknowledge {
                queue(&mut acts, ack, contact, window, "acknowledgement");
            }
        }
        Handler::Nobody => {
            conversation.respond_by = None;
            acts.notes.push("no reply needed".into());
        }
    }
    acts
}

/// Queues `reply` unless a host rule forbids it; says which in the notes.
fn queue(acts: &mut Acts, reply: &Reply, contact: &Contact, window: &ServiceWindow, what: &str) -> bool {
    if contact.opted_out {
        acts.notes.push(format!("{what} suppressed: the contact opted out of automated messages"));
        return false;
    }
    if matches!(reply, Reply::Text { .. }) && !window.open {
        acts.notes.push(format!("{what} suppressed: the 24-hour window is closed and only templates may be sent"));
        return false;
    }
    acts.notes.push(format!("{what} queued"));
    acts.sends.push(reply.clone());
    true
}

fn describe(a: &crate::model::Assignee) -> String {
    match a {
        crate::model::Assignee::Agent(id) => format!("agent {id}"),
        crate::model::Assignee::Team(id) => format!("team {id}"),
    }
}
