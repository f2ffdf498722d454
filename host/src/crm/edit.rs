//! Records as staff and integrations change them through the API:
//! companies and deals — what may be sent, what makes one valid, and the
//! guarded write (re-read and re-applied if something changed it first).
//! Contacts are identity's (a phone is who someone is): see
//! `identity::edit`.

use serde::Deserialize;
use utoipa::ToSchema;

use super::{Company, Crm, Deal, DealStatus};
use crate::clock::Millis;
use crate::model::new_id;
use crate::store::{Batch, StoreError, committed, optimistic};

/// Why a change to a record was refused.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error(transparent)]
    Store(StoreError),
    /// A record the change names does not exist in the tenant.
    #[error("{0}")]
    NotFound(String),
    /// What was sent cannot make a valid record; `code` is for machines.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// A value that must be unique (a phone, a domain) belongs to another.
    #[error("{0}")]
    Taken(String),
    /// Still in use, e.g. a company with linked contacts.
    #[error("{0}")]
    InUse(String),
    /// Changed by someone else on every one of the attempts.
    #[error("the {0} keeps changing; retry")]
    KeptChanging(&'static str),
}

impl From<StoreError> for EditError {
    fn from(e: StoreError) -> Self {
        EditError::Store(e)
    }
}

pub type Result<T, E = EditError> = std::result::Result<T, E>;

fn invalid(code: &'static str, message: &str) -> EditError {
    EditError::Invalid { code, message: message.to_string() }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCompany {
    pub name: String,
    /// Email domain, e.g. `acme.com`: contacts with emails there link to it.
    pub domain: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompanyPatch {
    pub name: Option<String>,
    /// `""` removes the domain.
    pub domain: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDeal {
    pub contact_id: String,
    pub name: String,
    /// The tenant's stage name, e.g. `lead`, `proposal`, `negotiation`.
    pub stage: String,
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
    /// The agent who owns the deal.
    pub owner: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DealPatch {
    pub name: Option<String>,
    pub stage: Option<String>,
    pub status: Option<DealStatus>,
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
    pub owner: Option<String>,
}

fn domain_of(d: Option<&str>) -> Option<String> {
    d.map(|d| d.trim().trim_start_matches('@').to_lowercase()).filter(|d| !d.is_empty())
}

/// A trimmed, non-empty text, if `v` is one.
fn text(v: Option<&str>) -> Option<String> {
    v.map(str::trim).filter(|v| !v.is_empty()).map(String::from)
}

impl DealPatch {
    fn apply(&self, d: &mut Deal) {
        if let Some(v) = text(self.name.as_deref()) {
            d.name = v;
        }
        if let Some(v) = text(self.stage.as_deref()) {
            d.stage = v;
        }
        if let Some(v) = self.status {
            d.status = v;
        }
        if self.amount_minor.is_some() {
            d.amount_minor = self.amount_minor;
        }
        if self.currency.is_some() {
            d.currency.clone_from(&self.currency);
        }
        if self.owner.is_some() {
            d.owner.clone_from(&self.owner);
        }
    }
}

fn domain_taken(e: StoreError) -> EditError {
    match e {
        StoreError::Taken { .. } => EditError::Taken("another company already has this domain".into()),
        other => other.into(),
    }
}

impl Crm {
    pub fn create_company(&self, tenant: &str, new: NewCompany, now: Millis) -> Result<Company> {
        let name = text(Some(&new.name)).ok_or_else(|| invalid("invalid_company", "name must not be empty"))?;
        let mut company =
            Company { id: new_id("co"), name, domain: domain_of(new.domain.as_deref()), created_at: now, version: 0 };
        let mut batch = Batch::new();
        self.put_company(&mut batch, tenant, &mut company, None)?;
        self.commit(batch).map_err(domain_taken)?;
        Ok(company)
    }

    pub fn existing_company(&self, tenant: &str, id: &str) -> Result<Company> {
        self.company(tenant, id)?.ok_or_else(|| EditError::NotFound(format!("no company {id} in this tenant")))
    }

    pub fn update_company(&self, tenant: &str, id: &str, patch: CompanyPatch) -> Result<Company> {
        let changed = optimistic(|| {
            let read = self.existing_company(tenant, id)?;
            let mut c = read.clone();
            if let Some(n) = text(patch.name.as_deref()) {
                c.name = n;
            }
            if patch.domain.is_some() {
                c.domain = domain_of(patch.domain.as_deref());
            }
            let mut batch = Batch::new();
            self.put_company(&mut batch, tenant, &mut c, Some(&read))?;
            match self.commit(batch) {
                Err(e @ StoreError::Taken { .. }) => Err(domain_taken(e)),
                other => Ok(committed(other)?.then_some(c)),
            }
        })?;
        changed.ok_or(EditError::KeptChanging("company"))
    }

    /// Deletes a company that no contact is linked to.
    pub fn remove_company(&self, tenant: &str, id: &str) -> Result<()> {
        let c = self.existing_company(tenant, id)?;
        let linked = self.contacts_of_company(tenant, id)?.len();
        if linked > 0 {
            return Err(EditError::InUse(format!("{linked} contacts are linked to this company; unlink them first")));
        }
        let mut batch = Batch::new();
        self.delete_company(&mut batch, tenant, &c);
        Ok(self.commit(batch)?)
    }

    /// An open deal for a contact, linked to the contact's company.
    pub fn create_deal(&self, tenant: &str, new: NewDeal, now: Millis) -> Result<Deal> {
        let contact = self
            .contact(tenant, &new.contact_id)?
            .ok_or_else(|| EditError::NotFound(format!("no contact {} in this tenant", new.contact_id)))?;
        let (Some(name), Some(stage)) = (text(Some(&new.name)), text(Some(&new.stage))) else {
            return Err(invalid("invalid_deal", "name and stage must not be empty"));
        };
        let mut deal = Deal {
            id: new_id("dl"),
            contact_id: contact.id,
            company_id: contact.company_id,
            name,
            stage,
            status: DealStatus::Open,
            amount_minor: new.amount_minor,
            currency: new.currency,
            owner: new.owner,
            created_at: now,
            updated_at: now,
            version: 0,
        };
        let mut batch = Batch::new();
        self.put_deal(&mut batch, tenant, &mut deal, None)?;
        self.commit(batch)?;
        Ok(deal)
    }

    pub fn existing_deal(&self, tenant: &str, id: &str) -> Result<Deal> {
        self.deal(tenant, id)?.ok_or_else(|| EditError::NotFound(format!("no deal {id} in this tenant")))
    }

    pub fn update_deal(&self, tenant: &str, id: &str, patch: DealPatch, now: Millis) -> Result<Deal> {
        let changed = optimistic(|| {
            let read = self.existing_deal(tenant, id)?;
            let mut d = read.clone();
            patch.apply(&mut d);
            d.updated_at = now;
            let mut batch = Batch::new();
            self.put_deal(&mut batch, tenant, &mut d, Some(&read))?;
            Ok::<_, EditError>(committed(self.commit(batch))?.then_some(d))
        })?;
        changed.ok_or(EditError::KeptChanging("deal"))
    }

    pub fn remove_deal(&self, tenant: &str, id: &str) -> Result<()> {
        let d = self.existing_deal(tenant, id)?;
        let mut batch = Batch::new();
        self.delete_deal(&mut batch, tenant, &d);
        Ok(self.commit(batch)?)
    }
}
