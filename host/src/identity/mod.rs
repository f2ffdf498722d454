//! Identity: who wrote? A WhatsApp `wa_id` becomes an E.164 phone number
//! and then exactly one contact: the existing one when we have it (however
//! its number was written when it was stored), a new one otherwise.
//!
//! Numbers are parsed with `phonenumber` (Google's libphonenumber
//! metadata), never by hand, so national forms, `00` prefixes, spaces and
//! punctuation all reach the same E.164 key.

mod csv_file;
pub mod duplicates;
mod edit;
pub mod import;

pub use edit::{ContactPatch, NewContact};

use std::hash::{Hash, Hasher};

use crate::clock::Millis;
use crate::crm::{Company, Contact, Crm, Deal, DealStatus, IdentityKind};
use crate::model::new_id;
use crate::phone::{Phone, normalize_wa_id};
use crate::store::StoreError;
use crate::tenants::Tenant;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(transparent)]
    InvalidPhone(#[from] crate::phone::InvalidPhone),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The contact behind a message, with what it is linked to.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The contact as it should be stored after this message.
    pub contact: Contact,
    /// The contact as it was read (None: created now).
    pub previous: Option<Contact>,
    pub company: Option<Company>,
    /// The contact's most recent open deal.
    pub deal: Option<Deal>,
}

#[derive(Clone)]
pub struct Identity {
    crm: Crm,
}

impl Identity {
    pub fn new(crm: Crm) -> Self {
        Identity { crm }
    }

    /// Finds or creates the contact `sender` names: by BSUID first (the
    /// id Meta keeps for the person), then by phone. Nothing is written:
    /// the caller stores [`Resolved::contact`] with the rest of the event.
    pub fn resolve(&self, tenant: &Tenant, sender: &Sender, now: Millis) -> Result<Resolved, IdentityError> {
        let phone = sender.wa_id.map(normalize_wa_id).transpose()?;
        let by_user = match sender.user_id {
            Some(u) => self.crm.contact_by_user_id(&tenant.id, u)?,
            None => None,
        };
        let by_phone = match &phone {
            Some(p) => self.find(tenant, p)?,
            None => None,
        };
        let (mut contact, previous) = match by_user.or_else(|| by_phone.clone()) {
            Some(existing) => (existing.clone(), Some(existing)),
            None => (new_contact(phone.as_ref(), sender.user_id, now), None),
        };
        learn(&mut contact, sender, phone.as_ref(), by_phone.as_ref(), now);
        let company = match &contact.company_id {
            Some(id) => self.crm.company(&tenant.id, id)?,
            None => None,
        };
        let deal = self.crm.deals_of(&tenant.id, &contact.id)?.into_iter().find(|d| d.status == DealStatus::Open);
        Ok(Resolved { contact, previous, company, deal })
    }

    /// The stored contact for `phone`, whatever form it was stored in: the
    /// phone index is keyed by [`match_key`](crate::phone::match_key), which every writing of the
    /// same line shares.
    pub fn find(&self, tenant: &Tenant, phone: &Phone) -> Result<Option<Contact>, IdentityError> {
        Ok(self.crm.contact_by_phone(&tenant.id, &phone.e164)?)
    }
}

/// Who a message is from, as Meta named them.
#[derive(Debug, Default, Clone, Copy)]
pub struct Sender<'a> {
    /// The phone number as WhatsApp sends it (digits), if given.
    pub wa_id: Option<&'a str>,
    /// The business-scoped user id, if given.
    pub user_id: Option<&'a str>,
    pub username: Option<&'a str>,
    pub profile_name: Option<&'a str>,
}

fn new_contact(phone: Option<&Phone>, user_id: Option<&str>, now: Millis) -> Contact {
    let region = phone.and_then(|p| p.region.clone());
    Contact {
        id: new_id("ct"),
        country: region.or_else(|| user_id.and_then(crate::bsuid::region).map(String::from)),
        created_at: now,
        updated_at: now,
        ..Default::default()
    }
}

/// What a message teaches about its sender. Ids that arrive together are
/// one person: a phone joins a contact known by BSUID (unless another
/// contact holds it — duplicates then suggests the two), a BSUID joins a
/// contact known by phone, and a changed BSUID or username replaces the
/// old one, which the history keeps.
fn learn(contact: &mut Contact, sender: &Sender, phone: Option<&Phone>, holder: Option<&Contact>, now: Millis) {
    if let Some(wa_id) = sender.wa_id {
        contact.wa_id = Some(wa_id.to_string());
    }
    if let Some(p) = phone
        && contact.phone.is_none()
        && holder.is_none_or(|h| h.id == contact.id)
        && !contact.moved_from(IdentityKind::Phone, &p.e164)
    {
        contact.set_identity(IdentityKind::Phone, Some(p.e164.clone()), now, "message");
        contact.country = contact.country.take().or_else(|| p.region.clone());
    }
    // A late message from an id the person has moved away from does not
    // take them back to it.
    if let Some(u) = sender.user_id.filter(|u| !contact.moved_from(IdentityKind::UserId, u)) {
        contact.set_identity(IdentityKind::UserId, Some(u.to_string()), now, "message");
    }
    if let Some(name) = sender.username.map(str::trim).filter(|n| !n.is_empty()) {
        contact.set_identity(IdentityKind::Username, Some(name.to_string()), now, "message");
    }
    if let Some(name) = sender.profile_name.map(str::trim).filter(|n| !n.is_empty()) {
        contact.profile_name = Some(name.to_string());
    }
}

/// Domains of free email providers: an address there says nothing about
/// the company a contact works for.
const FREE_MAIL: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "hotmail.com",
    "hotmail.com.br",
    "outlook.com",
    "outlook.com.br",
    "live.com",
    "msn.com",
    "yahoo.com",
    "yahoo.com.br",
    "yahoo.com.mx",
    "yahoo.es",
    "ymail.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "aol.com",
    "proton.me",
    "protonmail.com",
    "gmx.com",
    "gmx.de",
    "mail.com",
    "yandex.ru",
    "mail.ru",
    "qq.com",
    "163.com",
    "uol.com.br",
    "bol.com.br",
    "terra.com.br",
    "ig.com.br",
    "web.de",
    "free.fr",
    "orange.fr",
    "libero.it",
    "zoho.com",
];

/// The domain of an email address when it can identify a company.
pub fn company_domain(email: &str) -> Option<String> {
    let domain = email.trim().rsplit_once('@')?.1.to_lowercase();
    (!domain.is_empty() && !FREE_MAIL.contains(&domain.as_str())).then_some(domain)
}

/// Links a contact without a company to the company owning its email's
/// domain, if there is one.
pub fn link_company_by_email(crm: &Crm, tenant: &str, contact: &mut Contact) -> Result<(), StoreError> {
    if contact.company_id.is_some() {
        return Ok(());
    }
    if let Some(domain) = contact.email.as_deref().and_then(company_domain) {
        contact.company_id = crm.company_by_domain(tenant, &domain)?.map(|c| c.id);
    }
    Ok(())
}

/// Which pipeline worker handles a contact: every event about one person
/// goes to the same worker, so they are applied in order. `address` is
/// the contact's `wa_id` (or phone), or its BSUID when it has no phone.
pub fn shard_key(tenant: &str, address: &str) -> u64 {
    let canonical = if crate::bsuid::is_bsuid(address) {
        address.to_string()
    } else {
        let digits: String = address.chars().filter(char::is_ascii_digit).collect();
        normalize_wa_id(&digits).map(|p| p.match_key()).unwrap_or(digits)
    };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    tenant.hash(&mut h);
    canonical.hash(&mut h);
    h.finish()
}
