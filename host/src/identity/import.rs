//! Bulk contact import: CSV or JSON, thousands of rows, in the background
//! with progress and a per-row error report.
//!
//! Phones are read in whatever format the old CRM used, with the tenant's
//! default region for numbers without a country code. A row whose phone is
//! already on file (in any of its forms) updates that contact instead of
//! creating a second one; empty fields never overwrite known ones.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::csv_file::CsvFormat;
use super::{IdentityError, link_company_by_email};
use crate::clock::{Millis, SharedClock};
use crate::crm::{Company, Contact, Crm};
use crate::model::new_id;
use crate::phone::{Phone, normalize};
use crate::store::{Batch, Store, StoreError, Tree, keys};
use crate::tenants::Tenant;

const IMPORTS: Tree = Tree("identity.imports");
/// Row errors kept in the report; the rest are counted.
const MAX_ERRORS: usize = 1000;

/// One row, as read from CSV columns or a JSON object.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(default)]
pub struct ImportRow {
    pub phone: String,
    pub name: Option<String>,
    pub email: Option<String>,
    /// Company name: found (ignoring case) or created.
    pub company: Option<String>,
    /// In CSV: separated by `;` or `|`.
    #[serde(deserialize_with = "tags")]
    pub tags: Vec<String>,
    /// The region the number is written in (ISO 3166-1 alpha-2, e.g.
    /// `IT`), for a list that mixes countries; the tenant's
    /// `default_region` when absent.
    #[serde(default, alias = "region")]
    pub country: Option<String>,
}

impl ImportRow {
    /// The region to read this row's number in, as libphonenumber names
    /// it (upper case).
    fn region(&self, tenant: &Tenant) -> Result<String, RowFailure> {
        match self.country.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
            None => Ok(tenant.default_region.clone()),
            Some(c) if c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()) => Ok(c.to_ascii_uppercase()),
            Some(c) => Err(RowFailure(format!("country {c:?} is not a two-letter ISO 3166 code such as BR or IT"))),
        }
    }
}

fn tags<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Tags {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Option::<Tags>::deserialize(d)? {
        Some(Tags::List(v)) => v,
        Some(Tags::Text(s)) => split_tags(&s),
        None => Vec::new(),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportStatus {
    Running,
    Done,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RowError {
    /// 1-based data row (CSV: not counting the header).
    pub row: usize,
    pub phone: String,
    pub error: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportJob {
    pub id: String,
    pub status: ImportStatus,
    pub total: usize,
    pub processed: usize,
    pub created: usize,
    pub updated: usize,
    pub failed: usize,
    /// The first 1,000 failed rows and why.
    pub errors: Vec<RowError>,
    /// The first 1,000 rows imported with a doubt: a number that reads as
    /// two valid ones (kept as libphonenumber reads it; the warning names
    /// both, for staff to check).
    #[serde(default)]
    pub warnings: Vec<RowError>,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    /// How a CSV file was read (delimiter, encoding); absent for JSON.
    #[serde(default)]
    pub format: Option<CsvFormat>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the CSV cannot be read: {0}")]
    Csv(String),
    #[error("the JSON is not a list of contacts: {0}")]
    Json(String),
    #[error("the file has no rows")]
    Empty,
    #[error(
        "the CSV needs a `phone` column (or telefone, celular, teléfono, whatsapp…; columns: phone, name, email, company, tags, country; read with {delimiter:?} between them)"
    )]
    NoPhoneColumn { delimiter: char },
}

/// Parses a CSV (header row; columns matched ignoring case; see
/// [`super::csv_file`] for delimiters and encodings) or a JSON list.
pub fn parse(body: &[u8], csv: bool) -> Result<(Vec<ImportRow>, Option<CsvFormat>), ImportError> {
    let (rows, format) = if csv {
        let (rows, format) = super::csv_file::read(body)?;
        (rows, Some(format))
    } else {
        (serde_json::from_slice(body).map_err(|e| ImportError::Json(e.to_string()))?, None)
    };
    if rows.is_empty() {
        return Err(ImportError::Empty);
    }
    Ok((rows, format))
}

/// Tags as written in one field: separated by `|` or `;`.
pub(super) fn split_tags(text: &str) -> Vec<String> {
    text.split(['|', ';']).map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect()
}

#[derive(Clone)]
pub struct Importer {
    store: Store,
    crm: Crm,
    clock: SharedClock,
}

impl Importer {
    pub fn new(store: Store, crm: Crm, clock: SharedClock) -> Self {
        Importer { store, crm, clock }
    }

    pub fn job(&self, tenant: &str, id: &str) -> Result<Option<ImportJob>, StoreError> {
        self.store.get_json(IMPORTS, &keys::join(&[tenant.as_bytes(), id.as_bytes()]))
    }

    fn save(&self, tenant: &str, job: &ImportJob) -> Result<(), StoreError> {
        let mut batch = Batch::new();
        batch.put_json(IMPORTS, keys::join(&[tenant.as_bytes(), job.id.as_bytes()]), job)?;
        self.store.commit(batch)
    }

    /// Records a new job for `rows` and returns it (to run with [`Importer::run`]).
    pub fn start(&self, tenant: &str, total: usize, format: Option<CsvFormat>) -> Result<ImportJob, StoreError> {
        let job = ImportJob {
            id: new_id("im"),
            status: ImportStatus::Running,
            total,
            processed: 0,
            created: 0,
            updated: 0,
            failed: 0,
            errors: Vec::new(),
            warnings: Vec::new(),
            started_at: self.clock.now_ms(),
            finished_at: None,
            format,
        };
        self.save(tenant, &job)?;
        Ok(job)
    }

    /// Applies the rows, saving progress every 100 rows. Blocking.
    pub fn run(&self, tenant: &Tenant, mut job: ImportJob, rows: Vec<ImportRow>) -> Result<ImportJob, StoreError> {
        for (i, row) in rows.into_iter().enumerate() {
            if let Ok(region) = row.region(tenant)
                && let Some(warning) = crate::phone::ambiguity(&row.phone, &region)
                && job.warnings.len() < MAX_ERRORS
            {
                job.warnings.push(RowError { row: i + 1, phone: row.phone.clone(), error: warning });
            }
            match self.apply(tenant, &row) {
                Ok(true) => job.created += 1,
                Ok(false) => job.updated += 1,
                Err(e) => {
                    job.failed += 1;
                    if job.errors.len() < MAX_ERRORS {
                        job.errors.push(RowError { row: i + 1, phone: row.phone.clone(), error: e.to_string() });
                    }
                }
            }
            job.processed += 1;
            if job.processed.is_multiple_of(100) {
                self.save(&tenant.id, &job)?;
            }
        }
        job.status = ImportStatus::Done;
        job.finished_at = Some(self.clock.now_ms());
        self.save(&tenant.id, &job)?;
        tracing::info!(tenant = %tenant.id, import = %job.id, created = job.created, updated = job.updated, failed = job.failed, "contact import finished");
        Ok(job)
    }

    /// One row; `Ok(true)` when a contact was created.
    fn apply(&self, tenant: &Tenant, row: &ImportRow) -> Result<bool, RowFailure> {
        // The phone column may hold a BSUID instead, for people known only by one.
        let written = row.phone.trim();
        let (phone, user_id) = match crate::bsuid::is_bsuid(written) {
            true => (None, Some(written.to_string())),
            false => (Some(normalize(written, &row.region(tenant)?)?), None),
        };
        let done = crate::store::optimistic(|| {
            let now = self.clock.now_ms();
            let (mut contact, existing) = self.find_or_new(&tenant.id, phone.as_ref(), user_id.as_deref(), now)?;
            let mut batch = Batch::new();
            if contact.name.is_none() {
                contact.name = row.name.clone().filter(|n| !n.trim().is_empty());
            }
            if contact.email.is_none() {
                contact.email = row.email.as_ref().map(|e| e.trim().to_lowercase()).filter(|e| e.contains('@'));
            }
            if let Some(email) = &row.email
                && !email.contains('@')
            {
                return Err(RowFailure(format!("{email:?} is not an email address")));
            }
            let tags: BTreeSet<String> = contact.tags.iter().chain(&row.tags).cloned().collect();
            contact.tags = tags.into_iter().collect();
            if contact.company_id.is_none()
                && let Some(name) = row.company.as_deref().map(str::trim).filter(|n| !n.is_empty())
            {
                let company = match self.crm.company_by_name(&tenant.id, name)? {
                    Some(c) => c,
                    None => {
                        let domain = contact.email.as_deref().and_then(super::company_domain);
                        let domain = match &domain {
                            Some(d) if self.crm.company_by_domain(&tenant.id, d)?.is_none() => domain,
                            _ => None,
                        };
                        let mut c =
                            Company { id: new_id("co"), name: name.to_string(), domain, created_at: now, version: 0 };
                        self.crm.put_company(&mut batch, &tenant.id, &mut c, None)?;
                        c
                    }
                };
                contact.company_id = Some(company.id);
            }
            link_company_by_email(&self.crm, &tenant.id, &mut contact)?;
            contact.updated_at = now;
            self.crm.put_contact(&mut batch, &tenant.id, &mut contact, existing.as_ref())?;
            Ok::<_, RowFailure>(crate::store::committed(self.crm.commit(batch))?.then_some(existing.is_none()))
        })?;
        done.ok_or_else(|| RowFailure("the contact kept changing while importing".into()))
    }
}

impl Importer {
    /// The contact a row names (by phone, else BSUID) as stored, or a new
    /// one; with what was read.
    fn find_or_new(
        &self,
        tenant: &str,
        phone: Option<&Phone>,
        user_id: Option<&str>,
        now: Millis,
    ) -> Result<(Contact, Option<Contact>), StoreError> {
        let existing = match (phone, user_id) {
            (Some(p), _) => self.crm.contact_by_phone(tenant, &p.e164)?,
            (None, Some(u)) => self.crm.contact_by_user_id(tenant, u)?,
            (None, None) => None,
        };
        let region = user_id.and_then(crate::bsuid::region).map(String::from);
        let contact = existing.clone().unwrap_or_else(|| Contact {
            id: new_id("ct"),
            phone: phone.map(|p| p.e164.clone()),
            user_id: user_id.map(String::from),
            country: phone.and_then(|p| p.region.clone()).or(region),
            created_at: now,
            ..Default::default()
        });
        Ok((contact, existing))
    }
}

#[derive(Debug)]
struct RowFailure(String);

impl std::fmt::Display for RowFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<IdentityError> for RowFailure {
    fn from(e: IdentityError) -> Self {
        RowFailure(e.to_string())
    }
}

impl From<crate::phone::InvalidPhone> for RowFailure {
    fn from(e: crate::phone::InvalidPhone) -> Self {
        RowFailure(e.to_string())
    }
}

impl From<StoreError> for RowFailure {
    fn from(e: StoreError) -> Self {
        RowFailure(e.to_string())
    }
}
