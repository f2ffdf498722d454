//! Act: turn a routing decision into changes on the conversation and
//! messages to send. The host enforces what no plugin may override: nothing
//! automated while a human has taken over, automation is paused or the
//! contact opted out, and free-form text only inside the 24-hour window.

use crate::clock::Millis;
use crate::context::ServiceWindow;
use crate::control::Blocked;
use crate::control::storm::Storm;
use crate::crm::Conversation;
use crate::model::{Assignee, Handler, Reply, RoutingDecision, deadline};

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

/// What an automated send is, for the host's rules and its notes.
#[derive(Clone, Copy)]
enum Sending {
    BotReply,
    Acknowledgement,
}

impl std::fmt::Display for Sending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Sending::BotReply => "bot reply",
            Sending::Acknowledgement => "acknowledgement",
        })
    }
}

pub fn apply(
    decision: &RoutingDecision,
    conversation: &mut Conversation,
    blocked: Option<&Blocked>,
    window: &ServiceWindow,
    storm: &mut Storm<'_>,
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
    // A person who took over stays in charge, whatever the router says.
    if let Some(Blocked::TakenOver(staff)) = blocked {
        conversation.assignee = Some(Assignee::Agent(staff.clone()));
        conversation.needs_reply = true;
        conversation.respond_by = deadline(now, decision.respond_within_ms);
        acts.notes.push(format!("routing suppressed: {staff} has taken over the conversation"));
        return acts;
    }
    match &decision.handler {
        Handler::Bot { reply } => {
            if queue(&mut acts, reply, blocked, window, storm, conversation, Sending::BotReply) {
                conversation.needs_reply = false;
                conversation.respond_by = None;
            } else {
                // Nobody automated may answer: a person must.
                conversation.respond_by = deadline(now, decision.respond_within_ms);
            }
        }
        Handler::Human { assignee } => {
            conversation.assignee = Some(assignee.clone());
            conversation.respond_by =
                if decision.needs_reply { deadline(now, decision.respond_within_ms) } else { None };
            acts.notes.push(format!("assigned to {}", describe(assignee)));
            if let Some(ack) = &decision.acknowledge {
                queue(&mut acts, ack, blocked, window, storm, conversation, Sending::Acknowledgement);
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
fn queue(
    acts: &mut Acts,
    reply: &Reply,
    blocked: Option<&Blocked>,
    window: &ServiceWindow,
    storm: &mut Storm<'_>,
    conversation: &mut Conversation,
    what: Sending,
) -> bool {
    if let Some(b) = blocked {
        acts.notes.push(format!("{what} suppressed: {b}"));
        return false;
    }
    if matches!(reply, Reply::Text { .. }) && !window.open {
        acts.notes.push(format!("{what} suppressed: the 24-hour window is closed and only templates may be sent"));
        return false;
    }
    let allowed = match what {
        Sending::Acknowledgement => storm.allow_acknowledgement(conversation),
        Sending::BotReply => storm.allow(),
    };
    if let Err(rule) = allowed {
        acts.notes.push(format!("{what} suppressed: {rule}"));
        return false;
    }
    acts.notes.push(format!("{what} queued"));
    acts.sends.push(reply.clone());
    true
}

fn describe(a: &Assignee) -> String {
    match a {
        Assignee::Agent(id) => format!("agent {id}"),
        Assignee::Team(id) => format!("team {id}"),
    }
}
