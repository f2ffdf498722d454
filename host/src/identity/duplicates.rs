//! Duplicate contacts: suggestions with their evidence, merges that can be
//! undone, and "not a duplicate" marks that stop a pair being suggested.
//!
//! Candidates are scored from phone equivalence (two records of one line),
//! a shared email, and name similarity (Jaro–Winkler, `strsim`) within the
//! same company — never from similar-looking numbers.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::Millis;
use crate::crm::{Contact, Crm};
use crate::model::new_id;
use crate::store::{Batch, Result, Store, StoreError, Tree, keys};

const DISMISSED: Tree = Tree("identity.not_duplicates");
const MERGES: Tree = Tree("identity.merges");

/// Scores below this are not suggested.
const THRESHOLD: f64 = 0.5;
/// Names at least this similar (0…1) count as evidence.
const NAME_SIMILARITY: f64 = 0.88;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Candidate {
    pub a: Contact,
    pub b: Contact,
    /// 0…1.
    pub score: f64,
    pub evidence: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Merge {
    pub id: String,
    pub at: Millis,
    pub by: String,
    pub survivor: String,
    pub merged: String,
    /// Both records as they were before, for undo.
    pub survivor_before: Contact,
    pub merged_before: Contact,
    pub conversations: Vec<String>,
    pub deals: Vec<String>,
    pub undone_at: Option<Millis>,
    pub undone_by: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("no contact {0} in this tenant")]
    NoContact(String),
    #[error("a contact cannot be merged into itself")]
    Same,
    #[error("contact {0} was already merged into another")]
    AlreadyMerged(String),
    #[error("no merge {0} in this tenant")]
    NoMerge(String),
    #[error("this merge was already undone")]
    AlreadyUndone,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone)]
pub struct Duplicates {
    store: Store,
    crm: Crm,
}

fn pair_key(tenant: &str, a: &str, b: &str) -> Vec<u8> {
    let (x, y) = if a < b { (a, b) } else { (b, a) };
    keys::join(&[tenant.as_bytes(), x.as_bytes(), y.as_bytes()])
}

fn name_of(c: &Contact) -> Option<String> {
    c.display_name().map(|n| n.trim().to_lowercase()).filter(|n| !n.is_empty())
}

impl Duplicates {
    pub fn new(store: Store, crm: Crm) -> Self {
        Duplicates { store, crm }
    }

    /// Suggested duplicates, most likely first.
    pub fn candidates(&self, tenant: &str) -> Result<Vec<Candidate>> {
        let contacts: Vec<Contact> =
            self.crm.all_contacts(tenant)?.into_iter().filter(|c| c.merged_into.is_none()).collect();
        // Only compare within blocks that can produce evidence.
        let mut blocks: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, c) in contacts.iter().enumerate() {
            let lines: HashSet<String> =
                c.phone.iter().map(|p| crate::phone::match_key(p)).chain(sender_line(c)).collect();
            for line in lines {
                blocks.entry(format!("phone:{line}")).or_default().push(i);
            }
            if let Some(e) = &c.email {
                blocks.entry(format!("email:{}", e.to_lowercase())).or_default().push(i);
            }
            if let Some(co) = &c.company_id {
                blocks.entry(format!("company:{co}")).or_default().push(i);
            }
        }
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for members in blocks.values().filter(|m| m.len() > 1) {
            for (x, &i) in members.iter().enumerate() {
                for &j in &members[x + 1..] {
                    let (a, b) = (&contacts[i], &contacts[j]);
                    if !seen.insert(pair_key(tenant, &a.id, &b.id))
                        || self.store.contains(DISMISSED, &pair_key(tenant, &a.id, &b.id))?
                    {
                        continue;
                    }
                    if let Some(c) = score(a, b) {
                        out.push(c);
                    }
                }
            }
        }
        out.sort_by(|x, y| y.score.total_cmp(&x.score).then_with(|| x.a.id.cmp(&y.a.id)));
        Ok(out)
    }

    /// Marks a pair as two different people: never suggested again.
    pub fn dismiss(&self, tenant: &str, a: &str, b: &str) -> Result<()> {
        let mut batch = Batch::new();
        batch.put(DISMISSED, pair_key(tenant, a, b), []);
        self.store.commit(batch)
    }

    pub fn merge_record(&self, tenant: &str, id: &str) -> Result<Option<Merge>> {
        self.store.get_json(MERGES, &keys::join(&[tenant.as_bytes(), id.as_bytes()]))
    }

    /// Merges `merged` into `survivor`: conversations (with their messages),
    /// deals, signals, tags and stats move to the survivor; the merged
    /// record stays as a pointer to it, and its phone now finds the survivor.
    pub fn merge(
        &self,
        tenant: &str,
        survivor_id: &str,
        merged_id: &str,
        by: &str,
        now: Millis,
    ) -> std::result::Result<Merge, MergeError> {
        if survivor_id == merged_id {
            return Err(MergeError::Same);
        }
        let done = crate::store::optimistic(|| {
            let s0 = self.crm.contact(tenant, survivor_id)?.ok_or_else(|| MergeError::NoContact(survivor_id.into()))?;
            let m0 = self.crm.contact(tenant, merged_id)?.ok_or_else(|| MergeError::NoContact(merged_id.into()))?;
            for c in [&s0, &m0] {
                if c.merged_into.is_some() {
                    return Err(MergeError::AlreadyMerged(c.id.clone()));
                }
            }
            let mut batch = Batch::new();
            let (mut survivor, mut merged) = (s0.clone(), m0.clone());
            let conversations = self.move_records(&mut batch, tenant, &m0.id, &s0.id)?;
            let deals = self.move_deals(&mut batch, tenant, &m0.id, &s0.id)?;
            absorb(&mut survivor, &m0);
            survivor.updated_at = now;
            merged.merged_into = Some(survivor.id.clone());
            merged.updated_at = now;
            // The ids the survivor takes over are indexed already (to the
            // merged record) and are pointed at the survivor below: its
            // write must not index them a second time.
            let indexed = Contact { phone: survivor.phone.clone(), user_id: survivor.user_id.clone(), ..s0.clone() };
            self.crm.put_contact(&mut batch, tenant, &mut survivor, Some(&indexed))?;
            self.crm.put_contact(&mut batch, tenant, &mut merged, Some(&m0))?;
            self.crm.point_identities(&mut batch, tenant, &m0, &survivor.id);
            let record = Merge {
                id: new_id("mg"),
                at: now,
                by: by.to_string(),
                survivor: s0.id.clone(),
                merged: m0.id.clone(),
                survivor_before: s0,
                merged_before: m0,
                conversations,
                deals: deals.clone(),
                undone_at: None,
                undone_by: None,
            };
            batch.put_json(MERGES, keys::join(&[tenant.as_bytes(), record.id.as_bytes()]), &record)?;
            Ok::<_, MergeError>(crate::store::committed(self.crm.commit(batch))?.then_some(record))
        })?;
        done.ok_or(MergeError::Store(StoreError::Conflict))
    }

    /// Undoes a merge: both records return to what they were before it, and
    /// the conversations and deals that moved go back. Activity since the
    /// merge stays with the survivor.
    pub fn undo(&self, tenant: &str, id: &str, by: &str, now: Millis) -> std::result::Result<Merge, MergeError> {
        let mut record = self.merge_record(tenant, id)?.ok_or_else(|| MergeError::NoMerge(id.into()))?;
        if record.undone_at.is_some() {
            return Err(MergeError::AlreadyUndone);
        }
        let done = crate::store::optimistic(|| {
            let s_now = self
                .crm
                .contact(tenant, &record.survivor)?
                .ok_or_else(|| MergeError::NoContact(record.survivor.clone()))?;
            let m_now = self
                .crm
                .contact(tenant, &record.merged)?
                .ok_or_else(|| MergeError::NoContact(record.merged.clone()))?;
            let mut batch = Batch::new();
            for cid in &record.conversations {
                if let Some(c) = self.crm.conversation(tenant, cid)? {
                    self.move_conversation(&mut batch, tenant, &c, &record.merged)?;
                }
            }
            for did in &record.deals {
                if let Some(d) = self.crm.deal(tenant, did)? {
                    let mut back = d.clone();
                    back.contact_id = record.merged.clone();
                    self.crm.put_deal(&mut batch, tenant, &mut back, Some(&d))?;
                }
            }
            let mut survivor = record.survivor_before.clone();
            survivor.updated_at = now;
            let mut merged = record.merged_before.clone();
            merged.updated_at = now;
            self.crm.put_contact(&mut batch, tenant, &mut survivor, Some(&s_now))?;
            self.crm.put_contact(&mut batch, tenant, &mut merged, Some(&m_now))?;
            self.crm.point_identities(&mut batch, tenant, &merged, &merged.id);
            self.crm.point_identities(&mut batch, tenant, &survivor, &survivor.id);
            record.undone_at = Some(now);
            record.undone_by = Some(by.to_string());
            batch.put_json(MERGES, keys::join(&[tenant.as_bytes(), record.id.as_bytes()]), &record)?;
            Ok::<_, MergeError>(crate::store::committed(self.crm.commit(batch))?.then_some(record.clone()))
        })?;
        done.ok_or(MergeError::Store(StoreError::Conflict))
    }

    fn move_records(&self, batch: &mut Batch, tenant: &str, from: &str, to: &str) -> Result<Vec<String>> {
        let mut moved = Vec::new();
        for c in self.crm.conversations_of(tenant, from)? {
            self.move_conversation(batch, tenant, &c, to)?;
            moved.push(c.id);
        }
        Ok(moved)
    }

    fn move_conversation(&self, batch: &mut Batch, tenant: &str, c: &crate::crm::Conversation, to: &str) -> Result<()> {
        let mut moved = c.clone();
        moved.contact_id = to.to_string();
        self.crm.put_conversation(batch, tenant, &mut moved, Some(c))?;
        for mut m in self.crm.recent_messages(tenant, &c.id, usize::MAX)? {
            m.contact_id = to.to_string();
            self.crm.put_message(batch, tenant, &mut m)?;
        }
        Ok(())
    }

    fn move_deals(&self, batch: &mut Batch, tenant: &str, from: &str, to: &str) -> Result<Vec<String>> {
        let mut moved = Vec::new();
        for d in self.crm.deals_of(tenant, from)? {
            let mut m = d.clone();
            m.contact_id = to.to_string();
            self.crm.put_deal(batch, tenant, &mut m, Some(&d))?;
            moved.push(d.id);
        }
        Ok(moved)
    }
}

/// What the survivor takes from the merged record: missing fields (a
/// phone or BSUID it lacked too: one person's ids), tags, the newer value
/// of each signal, and the combined stats.
fn absorb(survivor: &mut Contact, merged: &Contact) {
    survivor.phone = survivor.phone.clone().or_else(|| merged.phone.clone());
    survivor.user_id = survivor.user_id.clone().or_else(|| merged.user_id.clone());
    survivor.name = survivor.name.clone().or_else(|| merged.name.clone());
    survivor.profile_name = survivor.profile_name.clone().or_else(|| merged.profile_name.clone());
    survivor.email = survivor.email.clone().or_else(|| merged.email.clone());
    survivor.company_id = survivor.company_id.clone().or_else(|| merged.company_id.clone());
    survivor.wa_id = survivor.wa_id.clone().or_else(|| merged.wa_id.clone());
    survivor.timezone = survivor.timezone.clone().or_else(|| merged.timezone.clone());
    survivor.username = survivor.username.clone().or_else(|| merged.username.clone());
    survivor.marketing_stopped_at = survivor.marketing_stopped_at.or(merged.marketing_stopped_at);
    survivor.identity_history.extend(merged.identity_history.iter().cloned());
    survivor.identity_history.sort_by_key(|change| change.at);
    survivor.opted_out |= merged.opted_out;
    for t in &merged.tags {
        if !survivor.tags.contains(t) {
            survivor.tags.push(t.clone());
        }
    }
    let mut signals: BTreeMap<_, _> = survivor.signals.clone();
    for (k, v) in &merged.signals {
        if signals.get(k).is_none_or(|s: &crate::crm::Signal| s.updated_at < v.updated_at) {
            signals.insert(k.clone(), v.clone());
        }
    }
    survivor.signals = signals;
    let (s, m) = (&mut survivor.stats, &merged.stats);
    s.inbound_messages += m.inbound_messages;
    s.outbound_messages += m.outbound_messages;
    s.conversations += m.conversations;
    s.first_inbound_at = [s.first_inbound_at, m.first_inbound_at].into_iter().flatten().min();
    s.last_inbound_at = s.last_inbound_at.max(m.last_inbound_at);
    s.last_outbound_at = s.last_outbound_at.max(m.last_outbound_at);
    for l in &m.reply_latencies_ms {
        s.record_latency(*l);
    }
}

/// The line WhatsApp last gave as the contact's `wa_id`, as a phone
/// match key. A message that named a person by BSUID and phone together
/// leaves the phone here even when another contact already held it.
fn sender_line(c: &Contact) -> Option<String> {
    let phone = crate::phone::normalize_wa_id(c.wa_id.as_deref()?).ok()?;
    Some(crate::phone::match_key(&phone.e164))
}

/// The evidence that `a` and `b` are one person, if it is enough.
fn score(a: &Contact, b: &Contact) -> Option<Candidate> {
    let mut score: f64 = 0.0;
    let mut evidence = Vec::new();
    if let (Some(x), Some(y)) = (&a.phone, &b.phone)
        && crate::phone::match_key(x) == crate::phone::match_key(y)
    {
        score = 1.0;
        evidence.push(format!("{x} and {y} are the same line"));
    }
    for (by_id, by_phone) in [(a, b), (b, a)] {
        if let (Some(user_id), Some(phone)) = (&by_id.user_id, &by_phone.phone)
            && sender_line(by_id).is_some_and(|line| line == crate::phone::match_key(phone))
            && by_id.phone.as_deref() != Some(phone)
        {
            score = 1.0;
            evidence.push(format!("WhatsApp sent {user_id} and {phone} together: one person"));
        }
    }
    if let (Some(x), Some(y)) = (&a.email, &b.email)
        && x.eq_ignore_ascii_case(y)
    {
        score += 0.6;
        evidence.push(format!("same email {x}"));
    }
    if let (Some(x), Some(y)) = (name_of(a), name_of(b)) {
        let similarity = strsim::jaro_winkler(&x, &y);
        let same_company = a.company_id.is_some() && a.company_id == b.company_id;
        if same_company && similarity >= NAME_SIMILARITY {
            score += 0.6 * similarity;
            evidence.push(format!("names {x:?} and {y:?} are {similarity:.2} similar, at the same company"));
        } else if similarity >= NAME_SIMILARITY && score > 0.0 {
            score += 0.2 * similarity;
            evidence.push(format!("names {x:?} and {y:?} are {similarity:.2} similar"));
        }
    }
    let score = score.min(1.0);
    (score >= THRESHOLD).then(|| Candidate { a: a.clone(), b: b.clone(), score, evidence })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: &str, phone: &str, name: &str, email: Option<&str>, company: Option<&str>) -> Contact {
        Contact {
            id: id.into(),
            phone: Some(phone.into()),
            name: Some(name.into()),
            email: email.map(String::from),
            company_id: company.map(String::from),
            ..Default::default()
        }
    }

    /// A message gave a BSUID and a phone together while another contact
    /// already held the phone: the two are suggested, with why.
    #[test]
    fn a_bsuid_sent_with_another_contacts_phone_is_evidence() {
        let by_phone = c("1", "+5511987654321", "Ana", None, None);
        let by_bsuid = Contact {
            id: "2".into(),
            user_id: Some("BR.13491208655302741918".into()),
            wa_id: Some("5511987654321".into()),
            ..Default::default()
        };
        let found = score(&by_phone, &by_bsuid).expect("one person");
        assert_eq!(found.score, 1.0);
        assert!(found.evidence[0].contains("BR.13491208655302741918"), "{:?}", found.evidence);
        let stranger = Contact { wa_id: Some("5511911112222".into()), ..by_bsuid };
        assert!(score(&by_phone, &stranger).is_none(), "another line is no evidence");
    }

    #[test]
    fn evidence_decides_and_look_alikes_do_not() {
        let ana = c("1", "+5511987654321", "Ana Souza", Some("ana@acme.com"), Some("acme"));
        assert!(
            score(&ana, &c("2", "+5511911111111", "Ana Sousa", None, Some("acme"))).is_some(),
            "similar name, same company"
        );
        assert!(
            score(&ana, &c("3", "+5511922222222", "Bruno Lima", Some("ANA@acme.com"), None)).is_some(),
            "same email"
        );
        assert!(
            score(&ana, &c("4", "+5511987654322", "Ana Souza", None, Some("other"))).is_none(),
            "look-alike phone, other company"
        );
        assert!(
            score(&ana, &c("5", "+5511933333333", "Ana Souza", None, None)).is_none(),
            "a common name alone is not enough"
        );
    }
}
