//! Act: turn a routing decision into changes on the conversation and
//! messages to send. The host enforces what no plugin may override: nothing
//! automated while a human has taken over, automation is paused or the
//! contact opted out, and free-form text only inside the 24-hour window.

use crate::clock::Millis;
use crate::context::ServiceWindow;
use crate::control::storm::{Storm, StormRule};
use crate::control::{Blocked, Refusal, template_refusal};
use crate::crm::Conversation;
use crate::model::{Assignee, Handler, Reply, RoutingDecision, deadline};
use crate::templates::Book;

/// Tags a conversation keeps, at most.
const MAX_CONVERSATION_TAGS: usize = 32;

/// What acting on a decision produced.
#[derive(Debug, Default)]
pub struct Acts {
    /// Messages to queue, in order.
    pub sends: Vec<Reply>,
    /// What the host did, for the decision record and the audit log.
    pub notes: Vec<Note>,
}

/// One thing the host did with a decision.
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    Queued(Sending),
    Suppressed(Sending, Suppression),
    /// The router's handling was set aside: a person has taken over.
    RoutingSuppressed {
        staff: String,
    },
    Assigned(Assignee),
    NoReplyNeeded,
}

impl Note {
    /// Whether the host stopped something the plugin asked for (these are
    /// audited as `automation_suppressed`).
    pub fn is_suppression(&self) -> bool {
        matches!(self, Note::Suppressed(..) | Note::RoutingSuppressed { .. })
    }
}

/// Why the host did not send what a plugin asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Suppression {
    Blocked(Blocked),
    WindowClosed,
    Storm(StormRule),
    /// A template WhatsApp would not deliver to this contact.
    Refused(Refusal),
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Note::Queued(what) => write!(f, "{what} queued"),
            Note::Suppressed(what, Suppression::Blocked(b)) => write!(f, "{what} suppressed: {b}"),
            Note::Suppressed(what, Suppression::WindowClosed) => {
                write!(f, "{what} suppressed: the 24-hour window is closed and only templates may be sent")
            }
            Note::Suppressed(what, Suppression::Storm(rule)) => write!(f, "{what} suppressed: {rule}"),
            Note::Suppressed(what, Suppression::Refused(r)) => write!(f, "{what} suppressed: {r}"),
            Note::RoutingSuppressed { staff } => {
                write!(f, "routing suppressed: {staff} has taken over the conversation")
            }
            Note::Assigned(a) => write!(f, "assigned to {}", describe(a)),
            Note::NoReplyNeeded => f.write_str("no reply needed"),
        }
    }
}

/// What an automated send is, for the host's rules and its notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sending {
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

/// The host's rules an automated send passes: nothing while automation is
/// blocked, text only inside the window, templates only as WhatsApp will
/// take them.
struct Rules<'a> {
    blocked: Option<&'a Blocked>,
    window: &'a ServiceWindow,
    /// The definitions of the decision's templates.
    templates: &'a Book,
}

pub fn apply(
    decision: &RoutingDecision,
    conversation: &mut Conversation,
    blocked: Option<&Blocked>,
    window: &ServiceWindow,
    storm: &mut Storm<'_>,
    templates: &Book,
    now: Millis,
) -> Acts {
    let rules = Rules { blocked, window, templates };
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
        acts.notes.push(Note::RoutingSuppressed { staff: staff.clone() });
        return acts;
    }
    match &decision.handler {
        Handler::Bot { reply } => {
            if queue(&mut acts, reply, &rules, storm, conversation, Sending::BotReply) {
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
            acts.notes.push(Note::Assigned(assignee.clone()));
            if let Some(ack) = &decision.acknowledge {
                queue(&mut acts, ack, &rules, storm, conversation, Sending::Acknowledgement);
            }
        }
        Handler::Nobody => {
            conversation.respond_by = None;
            acts.notes.push(Note::NoReplyNeeded);
        }
    }
    acts
}

/// Queues `reply` unless a host rule forbids it; says which in the notes.
fn queue(
    acts: &mut Acts,
    reply: &Reply,
    rules: &Rules<'_>,
    storm: &mut Storm<'_>,
    conversation: &mut Conversation,
    what: Sending,
) -> bool {
    if let Some(b) = rules.blocked {
        acts.notes.push(Note::Suppressed(what, Suppression::Blocked(b.clone())));
        return false;
    }
    let reply = match reply {
        Reply::Template(t) => match template_refusal(rules.templates, t, storm.contact()) {
            Ok(checked) => Reply::Template(checked),
            Err(refused) => {
                acts.notes.push(Note::Suppressed(what, Suppression::Refused(refused)));
                return false;
            }
        },
        _ if !rules.window.open => {
            acts.notes.push(Note::Suppressed(what, Suppression::WindowClosed));
            return false;
        }
        other => other.clone(),
    };
    let allowed = match what {
        Sending::Acknowledgement => storm.allow_acknowledgement(conversation),
        Sending::BotReply => storm.allow(),
    };
    if let Err(rule) = allowed {
        acts.notes.push(Note::Suppressed(what, Suppression::Storm(rule)));
        return false;
    }
    acts.notes.push(Note::Queued(what));
    acts.sends.push(reply);
    true
}

fn describe(a: &Assignee) -> String {
    match a {
        Assignee::Agent(id) => format!("agent {id}"),
        Assignee::Team(id) => format!("team {id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StormLimits;
    use crate::crm::Contact;
    use crate::model::{Priority, Template};

    const NOW: Millis = 1_800_000_000_000;

    fn bot(reply: Reply) -> RoutingDecision {
        RoutingDecision {
            needs_reply: true,
            handler: Handler::Bot { reply },
            acknowledge: None,
            priority: Priority::Normal,
            respond_within_ms: Some(60_000),
            tags: vec!["t".into()],
            reason: "test".into(),
        }
    }

    fn text() -> Reply {
        Reply::Text { body: "hi".into() }
    }

    fn template() -> Reply {
        Reply::Template(Template::text("hello", "en", vec![]))
    }

    fn run(decision: &RoutingDecision, blocked: Option<&Blocked>, window_open: bool) -> (Acts, Conversation) {
        run_for(Contact::default(), decision, blocked, window_open)
    }

    fn run_for(
        mut contact: Contact,
        decision: &RoutingDecision,
        blocked: Option<&Blocked>,
        window_open: bool,
    ) -> (Acts, Conversation) {
        let mut conversation = Conversation::default();
        let mut storm = Storm::new(StormLimits::default(), &mut contact, NOW);
        let window = ServiceWindow { open: window_open, closes_at: None };
        let acts = apply(decision, &mut conversation, blocked, &window, &mut storm, &Book::default(), NOW);
        (acts, conversation)
    }

    /// Meta: outside the 24-hour customer service window only template
    /// messages may be sent; free-form text is refused.
    #[test]
    fn outside_the_window_text_is_suppressed_and_templates_go() {
        let (acts, c) = run(&bot(text()), None, false);
        assert!(acts.sends.is_empty());
        assert_eq!(acts.notes, vec![Note::Suppressed(Sending::BotReply, Suppression::WindowClosed)]);
        assert!(c.needs_reply, "nobody automated answered: a person must");
        assert_eq!(c.respond_by, Some(NOW + 60_000));

        let (acts, c) = run(&bot(template()), None, false);
        assert_eq!(acts.sends, vec![template()]);
        assert!(!c.needs_reply);
        assert_eq!(c.respond_by, None);
    }

    /// Meta does not deliver a marketing template to a user who stopped
    /// marketing messages (error 131050), nor an authentication template
    /// to a user it knows only by BSUID (131062): neither is queued.
    #[test]
    fn a_template_whatsapp_would_refuse_is_not_queued_and_a_person_is_asked() {
        use crate::model::TemplateCategory as C;
        let categorized = |category| Reply::Template(Template { category, ..Template::text("t", "en", vec![]) });
        let stopped = Contact { marketing_stopped_at: Some(NOW - 1), ..Contact::default() };
        let cases = [
            (stopped.clone(), Some(C::Marketing), Some(Refusal::MarketingStopped)),
            (stopped.clone(), Some(C::Utility), None),
            (Contact { phone: Some("+5511987654321".into()), ..stopped }, Some(C::Authentication), None),
            (Contact::default(), Some(C::Authentication), Some(Refusal::NeedsPhone)),
            (Contact::default(), None, None),
        ];
        for (contact, category, refused) in cases {
            let (acts, c) = run_for(contact, &bot(categorized(category)), None, false);
            match refused {
                Some(r) => {
                    assert!(acts.sends.is_empty(), "{category:?}");
                    assert_eq!(acts.notes, vec![Note::Suppressed(Sending::BotReply, Suppression::Refused(r))]);
                    assert!(c.needs_reply, "a person must answer instead");
                }
                None => assert_eq!(acts.sends, vec![categorized(category)], "{category:?}"),
            }
        }
    }

    #[test]
    fn a_takeover_keeps_the_person_in_charge_whatever_the_router_said() {
        let taken = Blocked::TakenOver("marta".into());
        let (acts, c) = run(&bot(text()), Some(&taken), true);
        assert!(acts.sends.is_empty());
        assert_eq!(c.assignee, Some(Assignee::Agent("marta".into())));
        assert!(acts.notes.iter().all(Note::is_suppression));
        assert!(acts.notes[0].to_string().contains("marta has taken over"));
    }

    #[test]
    fn opted_out_or_paused_means_nothing_automated() {
        for b in [Blocked::OptedOut, Blocked::ConversationPaused, Blocked::ContactPaused, Blocked::TenantPaused] {
            let (acts, _) = run(&bot(template()), Some(&b), true);
            assert!(acts.sends.is_empty(), "{b:?}");
            assert_eq!(acts.notes, vec![Note::Suppressed(Sending::BotReply, Suppression::Blocked(b.clone()))]);
        }
    }

    #[test]
    fn a_human_hand_off_assigns_and_acknowledges_once() {
        let mut d = bot(text());
        d.handler = Handler::Human { assignee: Assignee::Team("sales".into()) };
        d.acknowledge = Some(text());
        let mut conversation = Conversation::default();
        let mut contact = Contact::default();
        let window = ServiceWindow { open: true, closes_at: None };
        let mut storm = Storm::new(StormLimits::default(), &mut contact, NOW);
        let first = apply(&d, &mut conversation, None, &window, &mut storm, &Book::default(), NOW);
        assert_eq!(first.sends, vec![text()]);
        assert_eq!(conversation.assignee, Some(Assignee::Team("sales".into())));
        assert_eq!(conversation.tags, vec!["t".to_string()]);
        // The same conversation, the same day: not acknowledged again.
        let second = apply(&d, &mut conversation, None, &window, &mut storm, &Book::default(), NOW + 1_000);
        assert!(second.sends.is_empty());
        assert!(second.notes.iter().any(Note::is_suppression));
        assert_eq!(conversation.tags.len(), 1, "a tag is kept once");
    }
}
