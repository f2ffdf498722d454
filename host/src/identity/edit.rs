//! Contacts as staff and integrations create and change them through the
//! API. Here, not in the CRM records, because a contact's phone is who
//! they are: it is normalised as identity normalises a `wa_id`, must not
//! be another contact's, and an email on a company's domain links the
//! contact the way an import does.

use serde::Deserialize;
use utoipa::ToSchema;

use super::{Identity, link_company_by_email};
use crate::clock::Millis;
use crate::crm::{Contact, EditError, IdentityKind};
use crate::model::new_id;
use crate::phone::{Phone, normalize};
use crate::store::{Batch, StoreError, committed, optimistic};
use crate::tenants::Tenant;

type Result<T, E = EditError> = std::result::Result<T, E>;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContact {
    /// Any format; numbers without a country code use the tenant's region.
    /// A phone, a `user_id`, or both.
    pub phone: Option<String>,
    /// The person's business-scoped user id (`US.13491208655302741918`).
    pub user_id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub company_id: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ContactPatch {
    pub name: Option<String>,
    pub email: Option<String>,
    /// Link to a company (`""` unlinks).
    pub company_id: Option<String>,
    pub tags: Option<Vec<String>>,
    /// IANA timezone, e.g. `America/Bogota` (for quiet hours).
    pub timezone: Option<String>,
    /// A new phone, any format (must not belong to another contact).
    pub phone: Option<String>,
}

fn phone_of(written: &str, tenant: &Tenant) -> Result<Phone> {
    normalize(written, &tenant.default_region)
        .map_err(|e| EditError::Invalid { code: "invalid_phone", message: e.to_string() })
}

fn phone_taken(other: &Contact, e164: &str) -> EditError {
    EditError::Taken(format!("contact {} already has phone {e164}", other.id))
}

/// A new contact's phone and BSUID: at least one, each well formed.
fn identifiers(new: &NewContact, tenant: &Tenant) -> Result<(Option<Phone>, Option<String>)> {
    let phone = new.phone.as_deref().map(|p| phone_of(p, tenant)).transpose()?;
    let user_id = new.user_id.as_deref().map(str::trim).filter(|u| !u.is_empty());
    if let Some(u) = user_id.filter(|u| !crate::bsuid::is_bsuid(u)) {
        let message =
            format!("{u:?} is not a business-scoped user id (a country code, a dot, up to 128 letters and digits)");
        return Err(EditError::Invalid { code: "invalid_user_id", message });
    }
    if phone.is_none() && user_id.is_none() {
        let message = "a contact needs a phone or a user_id".to_string();
        return Err(EditError::Invalid { code: "missing_identity", message });
    }
    Ok((phone, user_id.map(String::from)))
}

impl Identity {
    /// A new contact; its phone stored in E.164 and unique in the tenant.
    pub fn create_contact(&self, tenant: &Tenant, new: NewContact, now: Millis) -> Result<Contact> {
        let (phone, user_id) = identifiers(&new, tenant)?;
        if let Some(p) = &phone
            && let Some(existing) = self.crm.contact_by_phone(&tenant.id, &p.e164)?
        {
            return Err(phone_taken(&existing, &p.e164));
        }
        if let Some(u) = &user_id
            && let Some(existing) = self.crm.contact_by_user_id(&tenant.id, u)?
        {
            return Err(EditError::Taken(format!("contact {} already has user_id {u}", existing.id)));
        }
        let country = phone.as_ref().and_then(|p| p.region.clone());
        let country = country.or_else(|| user_id.as_deref().and_then(crate::bsuid::region).map(String::from));
        if let Some(company) = &new.company_id {
            self.crm.existing_company(&tenant.id, company)?;
        }
        let mut contact = Contact {
            id: new_id("ct"),
            phone: phone.map(|p| p.e164),
            user_id,
            name: new.name.filter(|n| !n.trim().is_empty()),
            email: new.email.filter(|e| !e.trim().is_empty()),
            country,
            company_id: new.company_id,
            tags: new.tags,
            created_at: now,
            updated_at: now,
            ..Default::default()
        };
        link_company_by_email(&self.crm, &tenant.id, &mut contact)?;
        let mut batch = Batch::new();
        self.crm.put_contact(&mut batch, &tenant.id, &mut contact, None)?;
        self.crm.commit(batch).map_err(|e| match e {
            // Another request created a contact with this phone meanwhile.
            StoreError::Taken { .. } => EditError::Taken("a contact with this phone or user_id already exists".into()),
            other => other.into(),
        })?;
        Ok(contact)
    }

    /// Applies `patch` to the contact as stored, re-read and re-applied if
    /// the pipeline changed it first.
    pub fn update_contact(&self, tenant: &Tenant, id: &str, patch: ContactPatch, now: Millis) -> Result<Contact> {
        if let Some(tz) = patch.timezone.as_deref().filter(|t| t.parse::<chrono_tz::Tz>().is_err()) {
            let message = format!("{tz:?} is not an IANA timezone");
            return Err(EditError::Invalid { code: "invalid_timezone", message });
        }
        let phone = patch.phone.as_deref().map(|p| phone_of(p, tenant)).transpose()?;
        let changed = optimistic(|| {
            let read = self
                .crm
                .contact(&tenant.id, id)?
                .ok_or_else(|| EditError::NotFound(format!("no contact {id} in this tenant")))?;
            let mut c = read.clone();
            self.apply(&tenant.id, &mut c, &patch, phone.as_ref(), now)?;
            link_company_by_email(&self.crm, &tenant.id, &mut c)?;
            c.updated_at = now;
            let mut batch = Batch::new();
            self.crm.put_contact(&mut batch, &tenant.id, &mut c, Some(&read))?;
            Ok::<_, EditError>(committed(self.crm.commit(batch))?.then_some(c))
        })?;
        changed.ok_or(EditError::KeptChanging("contact"))
    }

    /// The patch's fields on `c`; a new phone must not be another contact's.
    fn apply(
        &self,
        tenant: &str,
        c: &mut Contact,
        patch: &ContactPatch,
        phone: Option<&Phone>,
        now: Millis,
    ) -> Result<()> {
        if let Some(v) = &patch.name {
            c.name = Some(v.trim().to_string()).filter(|v| !v.is_empty());
        }
        if let Some(v) = &patch.email {
            c.email = Some(v.trim().to_lowercase()).filter(|v| !v.is_empty());
        }
        match patch.company_id.as_deref() {
            Some("") => c.company_id = None,
            Some(v) => c.company_id = Some(self.crm.existing_company(tenant, v)?.id),
            None => {}
        }
        if let Some(v) = &patch.tags {
            c.tags = v.clone();
        }
        if let Some(v) = &patch.timezone {
            c.timezone = Some(v.clone());
        }
        if let Some(p) = phone {
            if let Some(other) = self.crm.contact_by_phone(tenant, &p.e164)?.filter(|o| o.id != c.id) {
                return Err(phone_taken(&other, &p.e164));
            }
            c.set_identity(IdentityKind::Phone, Some(p.e164.clone()), now, "staff");
            c.country = p.region.clone();
        }
        Ok(())
    }
}
