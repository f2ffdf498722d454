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
use crate::crm::{Company, Contact, ContactStats, Crm, Deal, DealStatus};
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

    /// Finds or creates the contact for `wa_id`. Nothing is written: the
    /// caller stores [`Resolved::contact`] with the rest of the event.
    pub fn resolve(
        &self,
        tenant: &Tenant,
        wa_id: &str,
        profile_name: Option<&str>,
        now: Millis,
    ) -> Result<Resolved, IdentityError> {
        let phone = normalize_wa_id(wa_id)?;
        let (mut contact, previous) = match self.find(tenant, &phone)? {
            Some(existing) => (existing.clone(), Some(existing)),
            None => (
                Contact {
                    id: new_id("ct"),
                    phone: phone.e164.clone(),
                    wa_id: Some(wa_id.to_string()),
                    name: None,
                    profile_name: None,
                    email: None,
                    country: phone.region.clone(),
                    company_id: None,
                    tags: Vec::new(),
                    opted_out: false,
                    signals: Default::default(),
                    stats: ContactStats::default(),
                    created_at: now,
                    updated_at: now,
                    ..Default::default()
                },
                None,
            ),
        };
        contact.wa_id = Some(wa_id.to_string());
        if let Some(name) = profile_name.filter(|n| !n.trim().is_empty()) {
            contact.profile_name = Some(name.trim().to_string());
        }
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
/// goes to the same worker, so they are applied in order.
pub fn shard_key(tenant: &str, wa_id: &str) -> u64 {
    let digits: String = wa_id.chars().filter(char::is_ascii_digit).collect();
    let canonical = normalize_wa_id(&digits).map(|p| p.match_key()).unwrap_or(digits);
    let mut h = std::collections::hash_map::DefaultHasher::new();
    tenant.hash(&mut h);
    canonical.hash(&mut h);
    h.finish()
}
