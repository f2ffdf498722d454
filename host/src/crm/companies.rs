//! Companies and deals.

use super::{Company, Contact, Crm, Deal, key};
use crate::store::{Batch, Result, Tree, keys};

const COMPANIES: Tree = Tree("crm.companies");
const COMPANIES_BY_DOMAIN: Tree = Tree("crm.companies.by_domain");
const DEALS: Tree = Tree("crm.deals");
const DEALS_BY_CONTACT: Tree = Tree("crm.deals.by_contact");

impl Crm {
    pub fn company(&self, tenant: &str, id: &str) -> Result<Option<Company>> {
        self.store.get_json(COMPANIES, &key(tenant, id))
    }

    pub fn companies(&self, tenant: &str) -> Result<Vec<Company>> {
        self.store.scan_prefix(COMPANIES, &keys::tenant_prefix(tenant))?.values().collect()
    }

    /// The company that owns an email domain.
    pub fn company_by_domain(&self, tenant: &str, domain: &str) -> Result<Option<Company>> {
        match self.store.get(COMPANIES_BY_DOMAIN, &key(tenant, &domain.to_lowercase()))? {
            Some(id) => self.company(tenant, &String::from_utf8_lossy(&id)),
            None => Ok(None),
        }
    }

    /// A company by name, ignoring case and surrounding spaces.
    pub fn company_by_name(&self, tenant: &str, name: &str) -> Result<Option<Company>> {
        let wanted = name.trim().to_lowercase();
        Ok(self.companies(tenant)?.into_iter().find(|c| c.name.trim().to_lowercase() == wanted))
    }

    pub fn put_company(
        &self,
        batch: &mut Batch,
        tenant: &str,
        company: &mut Company,
        previous: Option<&Company>,
    ) -> Result<()> {
        let old = previous.and_then(|p| p.domain.clone());
        if old != company.domain {
            if let Some(d) = &old {
                batch.delete(COMPANIES_BY_DOMAIN, key(tenant, d));
            }
            if let Some(d) = &company.domain {
                let k = key(tenant, d);
                batch.require_absent(COMPANIES_BY_DOMAIN, k.clone());
                batch.put(COMPANIES_BY_DOMAIN, k, company.id.as_bytes());
            }
        }
        let k = key(tenant, &company.id);
        company.version = batch.versioned(COMPANIES, &k, previous.map_or(0, |p| p.version));
        batch.put_json(COMPANIES, k, company)
    }

    pub fn delete_company(&self, batch: &mut Batch, tenant: &str, company: &Company) {
        if let Some(d) = &company.domain {
            batch.delete(COMPANIES_BY_DOMAIN, key(tenant, d));
        }
        batch.delete_versioned(COMPANIES, &key(tenant, &company.id));
    }

    /// Contacts linked to `company`.
    pub fn contacts_of_company(&self, tenant: &str, company: &str) -> Result<Vec<Contact>> {
        Ok(self.all_contacts(tenant)?.into_iter().filter(|c| c.company_id.as_deref() == Some(company)).collect())
    }

    pub fn deal(&self, tenant: &str, id: &str) -> Result<Option<Deal>> {
        self.store.get_json(DEALS, &key(tenant, id))
    }

    pub fn deals(&self, tenant: &str) -> Result<Vec<Deal>> {
        self.store.scan_prefix(DEALS, &keys::tenant_prefix(tenant))?.values().collect()
    }

    pub fn put_deal(&self, batch: &mut Batch, tenant: &str, deal: &mut Deal, previous: Option<&Deal>) -> Result<()> {
        if let Some(p) = previous.filter(|p| p.contact_id != deal.contact_id) {
            batch.delete(DEALS_BY_CONTACT, keys::join(&[tenant.as_bytes(), p.contact_id.as_bytes(), p.id.as_bytes()]));
        }
        batch.put(
            DEALS_BY_CONTACT,
            keys::join(&[tenant.as_bytes(), deal.contact_id.as_bytes(), deal.id.as_bytes()]),
            [],
        );
        let k = key(tenant, &deal.id);
        deal.version = batch.versioned(DEALS, &k, previous.map_or(0, |p| p.version));
        batch.put_json(DEALS, k, deal)
    }

    pub fn delete_deal(&self, batch: &mut Batch, tenant: &str, deal: &Deal) {
        batch
            .delete(DEALS_BY_CONTACT, keys::join(&[tenant.as_bytes(), deal.contact_id.as_bytes(), deal.id.as_bytes()]));
        batch.delete_versioned(DEALS, &key(tenant, &deal.id));
    }

    /// The contact's deals, newest first.
    pub fn deals_of(&self, tenant: &str, contact_id: &str) -> Result<Vec<Deal>> {
        let prefix = keys::prefix(&[tenant.as_bytes(), contact_id.as_bytes()]);
        let mut deals = Vec::new();
        for k in self.store.scan_prefix(DEALS_BY_CONTACT, &prefix)?.keys().rev() {
            let id = String::from_utf8_lossy(keys::last_part(&k?)).into_owned();
            deals.extend(self.deal(tenant, &id)?);
        }
        Ok(deals)
    }
}
