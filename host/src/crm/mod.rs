//! CRM records: contacts, companies, deals, conversations, messages and
//! routing decisions — the tenant's system of record.
//!
//! This module owns their trees. Other stages read through its methods and
//! write by adding to a [`Batch`] through its `put_*` methods, so the
//! pipeline can commit one event's whole effect atomically. Records that
//! several writers touch (contacts, conversations) are written with a guard
//! on the version that was read: a concurrent change makes the commit fail
//! with a conflict, and the writer retries on fresh data instead of
//! silently overwriting it.

mod companies;
mod edit;
pub mod model;

pub use edit::{CompanyPatch, DealPatch, EditError, NewCompany, NewDeal};
pub use model::*;

use crate::clock::Millis;
use crate::store::{Batch, Result, Store, Tree, keys};
use crate::sync::{EventKind, Outbox};

const CONTACTS: Tree = Tree("crm.contacts");
const CONTACT_PHONES: Tree = Tree("crm.contacts.by_phone");
const CONTACT_USER_IDS: Tree = Tree("crm.contacts.by_user_id");
const CONVERSATIONS: Tree = Tree("crm.conversations");
const CONVERSATIONS_BY_CONTACT: Tree = Tree("crm.conversations.by_contact");
const MESSAGES: Tree = Tree("crm.messages");
const MESSAGE_INDEX: Tree = Tree("crm.messages.by_id");
const DECISIONS: Tree = Tree("crm.decisions");
const PENDING_STATUSES: Tree = Tree("crm.messages.pending_statuses");
const INBOX: Tree = Tree("crm.inbox");
const OVERRIDES: Tree = Tree("crm.overrides");

#[derive(Clone)]
pub struct Crm {
    store: Store,
    /// Every change below also writes its event here, in the same batch.
    sync: Outbox,
}

pub(crate) fn key(tenant: &str, id: &str) -> Vec<u8> {
    keys::join(&[tenant.as_bytes(), id.as_bytes()])
}

impl Crm {
    pub fn new(store: Store, sync: Outbox) -> Self {
        Crm { store, sync }
    }

    fn emit<T: serde::Serialize>(
        &self,
        batch: &mut Batch,
        tenant: &str,
        contact: &str,
        kind: EventKind,
        at: i64,
        record: &T,
    ) -> Result<()> {
        self.sync.emit(batch, tenant, contact, kind, at, record)
    }

    // ---- contacts ----

    pub fn contact(&self, tenant: &str, id: &str) -> Result<Option<Contact>> {
        self.store.get_json(CONTACTS, &key(tenant, id))
    }

    /// The contact whose phone is `phone` (E.164) in any of its forms: the
    /// index is keyed by the line's match key.
    pub fn contact_by_phone(&self, tenant: &str, phone: &str) -> Result<Option<Contact>> {
        match self.store.get(CONTACT_PHONES, &key(tenant, &crate::phone::match_key(phone)))? {
            Some(id) => self.contact(tenant, &String::from_utf8_lossy(&id)),
            None => Ok(None),
        }
    }

    /// Contacts in creation order, optionally filtered: digits in `query`
    /// match the phone, anything else the name (case-insensitive).
    pub fn list_contacts(
        &self,
        tenant: &str,
        query: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Contact>> {
        let prefix = keys::tenant_prefix(tenant);
        let start = match after {
            Some(id) => key(tenant, id),
            None => prefix.clone(),
        };
        let matcher = query.map(ContactQuery::new);
        let mut out = Vec::new();
        for entry in self.store.after(CONTACTS, &start)? {
            let (k, v) = entry?;
            if !k.starts_with(&prefix) {
                break;
            }
            let contact: Contact = crate::store::decode(CONTACTS, &v)?;
            if contact.merged_into.is_none() && matcher.as_ref().is_none_or(|m| m.matches(&contact)) {
                out.push(contact);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Points the index entries of `ids`' phone and BSUID at another
    /// contact (a merge and its undo).
    pub fn point_identities(&self, batch: &mut Batch, tenant: &str, ids: &Contact, contact_id: &str) {
        if let Some(phone) = &ids.phone {
            batch.put(CONTACT_PHONES, key(tenant, &crate::phone::match_key(phone)), contact_id.as_bytes());
        }
        if let Some(user_id) = &ids.user_id {
            batch.put(CONTACT_USER_IDS, key(tenant, user_id), contact_id.as_bytes());
        }
    }

    /// Every contact of the tenant, merged ones included.
    pub fn all_contacts(&self, tenant: &str) -> Result<Vec<Contact>> {
        self.store.scan_prefix(CONTACTS, &keys::tenant_prefix(tenant))?.values().collect()
    }

    /// Adds `contact` to `batch`, guarded on the version of `previous` (what
    /// was read) and stamped with its next, and keeps the phone index
    /// unique.
    pub fn put_contact(
        &self,
        batch: &mut Batch,
        tenant: &str,
        contact: &mut Contact,
        previous: Option<&Contact>,
    ) -> Result<()> {
        let k = key(tenant, &contact.id);
        contact.version = batch.versioned(CONTACTS, &k, previous.map_or(0, |p| p.version));
        let phone_key = |c: &Contact| c.phone.as_deref().map(|p| key(tenant, &crate::phone::match_key(p)));
        let user_key = |c: &Contact| c.user_id.as_deref().map(|u| key(tenant, u));
        index_unique(batch, CONTACT_PHONES, phone_key(contact), previous.and_then(phone_key), &contact.id);
        index_unique(batch, CONTACT_USER_IDS, user_key(contact), previous.and_then(user_key), &contact.id);
        let kind = match previous {
            None => Some(EventKind::ContactCreated),
            Some(p) if p.merged_into.is_none() && contact.merged_into.is_some() => Some(EventKind::ContactMerged),
            // Interaction counters change with every message; those are
            // reported as messages, not as contact updates.
            Some(p) if differs_beyond_stats(p, contact) => Some(EventKind::ContactUpdated),
            Some(_) => None,
        };
        if let Some(kind) = kind {
            self.emit(batch, tenant, &contact.id, kind, contact.updated_at, contact)?;
        }
        batch.put_json(CONTACTS, k, contact)
    }

    /// The contact WhatsApp names by the BSUID `user_id`.
    pub fn contact_by_user_id(&self, tenant: &str, user_id: &str) -> Result<Option<Contact>> {
        match self.store.get(CONTACT_USER_IDS, &key(tenant, user_id))? {
            Some(id) => self.contact(tenant, &String::from_utf8_lossy(&id)),
            None => Ok(None),
        }
    }

    // ---- conversations ----

    pub fn conversation(&self, tenant: &str, id: &str) -> Result<Option<Conversation>> {
        self.store.get_json(CONVERSATIONS, &key(tenant, id))
    }

    /// The contact's most recently opened conversation.
    pub fn latest_conversation(&self, tenant: &str, contact_id: &str) -> Result<Option<Conversation>> {
        let prefix = keys::prefix(&[tenant.as_bytes(), contact_id.as_bytes()]);
        match self.store.scan_prefix(CONVERSATIONS_BY_CONTACT, &prefix)?.keys().next_back() {
            Some(k) => self.conversation(tenant, &String::from_utf8_lossy(keys::last_part(&k?))),
            None => Ok(None),
        }
    }

    pub fn conversations_of(&self, tenant: &str, contact_id: &str) -> Result<Vec<Conversation>> {
        let prefix = keys::prefix(&[tenant.as_bytes(), contact_id.as_bytes()]);
        let mut out = Vec::new();
        for k in self.store.scan_prefix(CONVERSATIONS_BY_CONTACT, &prefix)?.keys().rev() {
            out.extend(self.conversation(tenant, &String::from_utf8_lossy(keys::last_part(&k?)))?);
        }
        Ok(out)
    }

    pub fn put_conversation(
        &self,
        batch: &mut Batch,
        tenant: &str,
        conversation: &mut Conversation,
        previous: Option<&Conversation>,
    ) -> Result<()> {
        let k = key(tenant, &conversation.id);
        conversation.version = batch.versioned(CONVERSATIONS, &k, previous.map_or(0, |p| p.version));
        if previous.is_none_or(|p| p.contact_id != conversation.contact_id) {
            let by_contact =
                keys::join(&[tenant.as_bytes(), conversation.contact_id.as_bytes(), conversation.id.as_bytes()]);
            batch.put(CONVERSATIONS_BY_CONTACT, by_contact, []);
            if let Some(p) = previous.filter(|p| p.contact_id != conversation.contact_id) {
                batch.delete(
                    CONVERSATIONS_BY_CONTACT,
                    keys::join(&[tenant.as_bytes(), p.contact_id.as_bytes(), p.id.as_bytes()]),
                );
            }
        }
        let at = conversation.last_message_at.max(conversation.resolved_at.unwrap_or(0));
        let kind = match previous {
            None => Some(EventKind::ConversationOpened),
            Some(p)
                if p.status != ConversationStatus::Resolved && conversation.status == ConversationStatus::Resolved =>
            {
                Some(EventKind::ConversationResolved)
            }
            Some(p) if conversation.assignee.is_some() && p.assignee != conversation.assignee => {
                Some(EventKind::ConversationAssigned)
            }
            Some(_) => None,
        };
        if let Some(kind) = kind {
            self.emit(batch, tenant, &conversation.contact_id, kind, at, conversation)?;
        }
        // The inbox holds exactly the open conversations waiting for a person.
        if conversation.awaits_human() {
            batch.put(INBOX, k.clone(), []);
        } else if previous.is_some_and(Conversation::awaits_human) {
            batch.delete(INBOX, k.clone());
        }
        batch.put_json(CONVERSATIONS, k, conversation)
    }

    /// Open conversations waiting for a person.
    pub fn inbox(&self, tenant: &str) -> Result<Vec<Conversation>> {
        let mut out = Vec::new();
        for k in self.store.scan_prefix(INBOX, &keys::tenant_prefix(tenant))?.keys() {
            if let Some(c) = self.store.get_json::<Conversation>(CONVERSATIONS, &k?)? {
                out.push(c);
            }
        }
        Ok(out)
    }

    pub fn put_override(&self, batch: &mut Batch, tenant: &str, o: &Override) -> Result<()> {
        batch.put_json(OVERRIDES, keys::join(&[tenant.as_bytes(), o.conversation_id.as_bytes(), o.id.as_bytes()]), o)
    }

    pub fn overrides(&self, tenant: &str, conversation_id: &str) -> Result<Vec<Override>> {
        self.store
            .scan_prefix(OVERRIDES, &keys::prefix(&[tenant.as_bytes(), conversation_id.as_bytes()]))?
            .values()
            .collect()
    }

    // ---- messages ----

    /// A message by its id (`wamid` or the host's outbound id).
    pub fn message(&self, tenant: &str, id: &str) -> Result<Option<Message>> {
        match self.store.get(MESSAGE_INDEX, &key(tenant, id))? {
            Some(log_key) => self.store.get_json(MESSAGES, &log_key),
            None => Ok(None),
        }
    }

    pub fn message_exists(&self, tenant: &str, id: &str) -> Result<bool> {
        self.store.contains(MESSAGE_INDEX, &key(tenant, id))
    }

    /// Records `message` in its conversation's log. A new message gets the
    /// next log position; an update keeps its position.
    pub fn put_message(&self, batch: &mut Batch, tenant: &str, message: &mut Message) -> Result<()> {
        if message.log_seq == 0 {
            message.log_seq = self.store.generate_id()? + 1;
            self.emit(batch, tenant, &message.contact_id, EventKind::MessageLogged, message.at, message)?;
        }
        let log_key = keys::join(&[tenant.as_bytes(), message.conversation_id.as_bytes(), &keys::be(message.log_seq)]);
        batch.put(MESSAGE_INDEX, key(tenant, &message.id), log_key.clone());
        if let Some(wamid) = &message.wamid {
            batch.put(MESSAGE_INDEX, key(tenant, wamid), log_key.clone());
        }
        batch.put_json(MESSAGES, log_key, message)
    }

    /// Records a change its sender made to a logged message (an edit, a
    /// deletion), and tells the tenant's CRM.
    pub fn amend_message(&self, batch: &mut Batch, tenant: &str, message: &mut Message, at: Millis) -> Result<()> {
        self.put_message(batch, tenant, message)?;
        self.emit(batch, tenant, &message.contact_id, EventKind::MessageAmended, at, message)
    }

    /// A conversation's messages written at or after `since`, oldest first,
    /// read from the newest back: the scan stops after a run of older ones
    /// (a late delivery can put an older message after newer ones, so one
    /// is not enough), so it costs the exchange, not the conversation.
    pub fn messages_since(&self, tenant: &str, conversation_id: &str, since: Millis) -> Result<Vec<Message>> {
        const OLDER_RUN: usize = 20;
        let prefix = keys::prefix(&[tenant.as_bytes(), conversation_id.as_bytes()]);
        let (mut out, mut older) = (Vec::new(), 0);
        for m in self.store.scan_prefix(MESSAGES, &prefix)?.values::<Message>().rev() {
            let m = m?;
            if m.at >= since {
                older = 0;
                out.push(m);
            } else {
                older += 1;
                if older >= OLDER_RUN {
                    break;
                }
            }
        }
        out.reverse();
        Ok(out)
    }

    /// The last `n` messages of a conversation, oldest first.
    pub fn recent_messages(&self, tenant: &str, conversation_id: &str, n: usize) -> Result<Vec<Message>> {
        let prefix = keys::prefix(&[tenant.as_bytes(), conversation_id.as_bytes()]);
        let mut out =
            self.store.scan_prefix(MESSAGES, &prefix)?.values().rev().take(n).collect::<Result<Vec<Message>>>()?;
        out.reverse();
        Ok(out)
    }

    /// Keeps a status for a `wamid` we have not matched to a message yet
    /// (it can overtake the send response that tells us the `wamid`).
    pub fn put_pending_status(
        &self,
        batch: &mut Batch,
        tenant: &str,
        wamid: &str,
        status: &PendingStatus,
    ) -> Result<()> {
        let seq = self.store.generate_id()?;
        batch.put_json(PENDING_STATUSES, keys::join(&[tenant.as_bytes(), wamid.as_bytes(), &keys::be(seq)]), status)
    }

    /// Takes the statuses waiting for `wamid`, oldest first.
    pub fn take_pending_statuses(&self, batch: &mut Batch, tenant: &str, wamid: &str) -> Result<Vec<PendingStatus>> {
        let prefix = keys::prefix(&[tenant.as_bytes(), wamid.as_bytes()]);
        let mut out = Vec::new();
        for entry in self.store.scan_prefix(PENDING_STATUSES, &prefix)? {
            let (k, v) = entry?;
            out.push(crate::store::decode(PENDING_STATUSES, &v)?);
            batch.delete(PENDING_STATUSES, k);
        }
        Ok(out)
    }

    // ---- decisions ----

    pub fn put_decision(
        &self,
        batch: &mut Batch,
        tenant: &str,
        contact: &str,
        decision: &DecisionRecord,
    ) -> Result<()> {
        self.emit(batch, tenant, contact, EventKind::DecisionMade, decision.made_at, decision)?;
        let k = keys::join(&[tenant.as_bytes(), decision.conversation_id.as_bytes(), decision.id.as_bytes()]);
        batch.put_json(DECISIONS, k, decision)
    }

    pub fn decisions(&self, tenant: &str, conversation_id: &str) -> Result<Vec<DecisionRecord>> {
        let prefix = keys::prefix(&[tenant.as_bytes(), conversation_id.as_bytes()]);
        self.store.scan_prefix(DECISIONS, &prefix)?.values().collect()
    }

    /// Commits a batch built from this module's `put_*` methods.
    pub fn commit(&self, batch: Batch) -> Result<()> {
        self.store.commit(batch)
    }
}

/// Contact search: digits match anywhere in the phone, text in the name.
struct ContactQuery {
    digits: String,
    text: String,
}

impl ContactQuery {
    fn new(q: &str) -> Self {
        let digits: String = q.chars().filter(char::is_ascii_digit).collect();
        let is_phone = !digits.is_empty() && q.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c));
        ContactQuery {
            digits: if is_phone { digits } else { String::new() },
            text: if is_phone { String::new() } else { q.trim().to_lowercase() },
        }
    }

    fn matches(&self, c: &Contact) -> bool {
        if !self.digits.is_empty() {
            let has = |s: &Option<String>| s.as_deref().is_some_and(|s| s.contains(&self.digits));
            return has(&c.phone) || has(&c.wa_id) || has(&c.user_id);
        }
        [c.name.as_deref(), c.profile_name.as_deref(), c.email.as_deref(), c.username.as_deref(), c.user_id.as_deref()]
            .into_iter()
            .flatten()
            .any(|n| n.to_lowercase().contains(&self.text))
    }
}

/// Keeps a unique index entry pointing at `id` when its key changes: the
/// new key must be free (checked in the commit), the old one is let go.
fn index_unique(batch: &mut Batch, tree: Tree, now: Option<Vec<u8>>, before: Option<Vec<u8>>, id: &str) {
    if now == before {
        return;
    }
    if let Some(k) = now {
        batch.require_absent(tree, k.clone());
        batch.put(tree, k, id.as_bytes());
    }
    if let Some(k) = before {
        batch.delete(tree, k);
    }
}

/// Whether anything but interaction counters and timestamps changed.
fn differs_beyond_stats(a: &Contact, b: &Contact) -> bool {
    let strip =
        |c: &Contact| Contact { stats: ContactStats::default(), updated_at: 0, wa_id: None, version: 0, ..c.clone() };
    strip(a) != strip(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A contact as the release before versions wrote it (no `version`, no
    /// fields added since) can still be changed, and from then on a writer
    /// holding a stale copy is refused. Comparing the bytes read with the
    /// record re-encoded refused every such change: the re-encoding has
    /// the new fields and never matches.
    #[test]
    fn a_record_written_by_an_older_release_can_be_changed() {
        let store = Store::in_memory();
        let crm = Crm::new(store.clone(), Outbox::new(store.clone()));
        let old =
            br#"{"id":"ct_old","phone":"+5511987654321","name":"Ana","tags":["vip"],"created_at":1,"updated_at":1}"#;
        let mut batch = Batch::new();
        batch.put(CONTACTS, key("t", "ct_old"), old.to_vec());
        batch.put(CONTACT_PHONES, key("t", &crate::phone::match_key("+5511987654321")), b"ct_old".to_vec());
        store.commit(batch).unwrap();

        let read = crm.contact("t", "ct_old").unwrap().unwrap();
        let mut changed = Contact { name: Some("Ana Souza".into()), ..read.clone() };
        let mut batch = Batch::new();
        crm.put_contact(&mut batch, "t", &mut changed, Some(&read)).unwrap();
        crm.commit(batch).expect("the old record is changed");
        let now = crm.contact("t", "ct_old").unwrap().unwrap();
        assert_eq!((now.name.as_deref(), now.version), (Some("Ana Souza"), 1));

        let mut stale = Contact { name: Some("Stale".into()), ..read.clone() };
        let mut batch = Batch::new();
        crm.put_contact(&mut batch, "t", &mut stale, Some(&read)).unwrap();
        assert!(matches!(crm.commit(batch), Err(crate::store::StoreError::Conflict)));
        assert_eq!(crm.contact("t", "ct_old").unwrap().unwrap().name.as_deref(), Some("Ana Souza"));
    }
}
