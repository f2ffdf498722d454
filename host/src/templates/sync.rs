//! Reading the tenant's templates from Meta, and creating and deleting
//! them there: `GET`, `POST` and `DELETE /{waba-id}/message_templates`.
//! Calls to Meta are async; the store's part of each runs on the blocking
//! pool.

use std::collections::{HashMap, HashSet};

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::definition::TemplateDef;
use super::{DEFS, SYNCED, Synced, TemplateError, Templates, key};
use crate::clock::Millis;
use crate::model::TemplateCategory;
use crate::store::{Batch, keys};
use crate::tenants::Tenant;

/// The fields asked of Meta for each template.
const FIELDS: &str = "id,name,language,status,category,components,parameter_format,quality_score,rejected_reason";
/// Templates asked for per page.
const PAGE_SIZE: &str = "100";
/// A bound on pages read in one sync (a cursor Meta repeated would loop).
const MAX_PAGES: usize = 500;

/// What a sync found.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SyncReport {
    /// Pages read from Meta.
    pub pages: usize,
    /// Templates the account has (one per name and language).
    pub templates: usize,
    pub added: usize,
    pub changed: usize,
    /// Kept templates the account no longer has.
    pub removed: usize,
    pub synced_at: Millis,
}

/// A template to submit for Meta's review.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTemplate {
    /// Lower-case letters, digits and `_`, at most 512.
    pub name: String,
    pub language: String,
    pub category: TemplateCategory,
    /// Meta's components (`HEADER`, `BODY`, `FOOTER`, `BUTTONS`), as its
    /// "Create templates" reference writes them.
    #[schema(value_type = Vec<Object>)]
    pub components: Value,
    /// `POSITIONAL` (default) or `NAMED`.
    pub parameter_format: Option<String>,
    /// Lets Meta file it under another category instead of rejecting it.
    pub allow_category_change: Option<bool>,
}

impl NewTemplate {
    fn check(&self) -> Result<(), TemplateError> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 512
            && self.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !name_ok {
            return Err(TemplateError::Invalid("`name`: lower-case letters, digits and _, at most 512".into()));
        }
        if self.language.trim().len() < 2 {
            return Err(TemplateError::Invalid("`language`: a language code such as pt_BR".into()));
        }
        let has_body = self.components.as_array().is_some_and(|cs| {
            cs.iter().any(|c| c.get("type").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case("BODY")))
        });
        if !has_body {
            return Err(TemplateError::Invalid("`components`: a list with a BODY component".into()));
        }
        Ok(())
    }
}

fn account(tenant: &Tenant) -> Result<(&str, &str), TemplateError> {
    let waba = tenant.waba_id.as_deref().ok_or(TemplateError::NoAccount)?;
    let token = tenant.access_token.as_deref().ok_or(TemplateError::NoToken)?;
    Ok((waba, token))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, TemplateError> + Send + 'static,
) -> Result<T, TemplateError> {
    tokio::task::spawn_blocking(f).await.map_err(|_| TemplateError::Store(crate::store::StoreError::Closed))?
}

impl Templates {
    /// Reads every template of the tenant's account from Meta, page by
    /// page, and keeps exactly those.
    pub async fn sync(&self, tenant: &Tenant, now: Millis) -> Result<SyncReport, TemplateError> {
        let (defs, pages) = self.fetch(tenant, now).await?;
        tracing::info!(tenant = %tenant.id, pages, templates = defs.len(), "templates read from Meta");
        let (me, id) = (self.clone(), tenant.id.clone());
        blocking(move || me.replace(&id, defs, pages, now)).await
    }

    async fn fetch(&self, tenant: &Tenant, now: Millis) -> Result<(Vec<TemplateDef>, usize), TemplateError> {
        let (waba, token) = account(tenant)?;
        let path = format!("{waba}/message_templates");
        let (mut defs, mut pages, mut after) = (Vec::new(), 0, None::<String>);
        loop {
            let mut query = vec![("fields", FIELDS), ("limit", PAGE_SIZE)];
            if let Some(cursor) = &after {
                query.push(("after", cursor));
            }
            let page = self.graph.call(Method::GET, &path, token, &query, None).await.map_err(TemplateError::Meta)?;
            pages += 1;
            for v in page.get("data").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
                match TemplateDef::from_graph(v, now) {
                    Some(def) => defs.push(def),
                    None => {
                        tracing::warn!(tenant = %tenant.id, template = %v, "a listed template lacks its id, name, language or status; skipped")
                    }
                }
            }
            // Meta gives `paging.next` while more pages follow.
            let cursor = page.pointer("/paging/cursors/after").and_then(Value::as_str);
            match (page.pointer("/paging/next"), cursor) {
                (Some(Value::String(_)), Some(c)) if pages < MAX_PAGES && after.as_deref() != Some(c) => {
                    after = Some(c.to_string());
                }
                _ => return Ok((defs, pages)),
            }
        }
    }

    /// Makes the tenant's kept templates exactly `defs`.
    fn replace(
        &self,
        tenant: &str,
        defs: Vec<TemplateDef>,
        pages: usize,
        now: Millis,
    ) -> Result<SyncReport, TemplateError> {
        let mut kept: HashMap<Vec<u8>, TemplateDef> = HashMap::new();
        for entry in self.store.scan_prefix(DEFS, &keys::tenant_prefix(tenant))? {
            let (k, v) = entry?;
            kept.insert(k, crate::store::decode(DEFS, &v)?);
        }
        let mut report = SyncReport { pages, templates: defs.len(), added: 0, changed: 0, removed: 0, synced_at: now };
        let (mut batch, mut seen) = (Batch::new(), HashSet::new());
        for mut def in defs {
            let k = key(tenant, &def.name, &def.language);
            match kept.get(&k) {
                Some(old) => {
                    def.last_event = old.last_event.clone();
                    def.reason = def.reason.or(old.reason.clone());
                    let same = TemplateDef { updated_at: old.updated_at, ..def.clone() } == *old;
                    if same {
                        seen.insert(k);
                        continue;
                    }
                    report.changed += 1;
                }
                None => report.added += 1,
            }
            batch.put_json(DEFS, k.clone(), &def)?;
            seen.insert(k);
        }
        for k in kept.keys().filter(|k| !seen.contains(*k)) {
            batch.delete(DEFS, k.clone());
            report.removed += 1;
        }
        batch.put_json(SYNCED, tenant.as_bytes(), &Synced { at: now })?;
        self.store.commit(batch)?;
        Ok(report)
    }

    /// Submits a template for Meta's review and keeps it with the status
    /// Meta gave (usually `PENDING`; a webhook says when that changes).
    pub async fn create(&self, tenant: &Tenant, new: NewTemplate, now: Millis) -> Result<TemplateDef, TemplateError> {
        new.check()?;
        let (waba, token) = account(tenant)?;
        let category = serde_json::to_value(new.category).unwrap_or_default();
        let mut body = json!({
            "name": new.name,
            "language": new.language,
            "category": category.as_str().unwrap_or_default().to_ascii_uppercase(),
            "components": new.components,
        });
        if let Some(f) = &new.parameter_format {
            body["parameter_format"] = json!(f.to_ascii_uppercase());
        }
        if let Some(allow) = new.allow_category_change {
            body["allow_category_change"] = json!(allow);
        }
        let path = format!("{waba}/message_templates");
        let answer =
            self.graph.call(Method::POST, &path, token, &[], Some(&body)).await.map_err(TemplateError::Meta)?;
        let mut listed = body;
        listed["id"] = answer.get("id").cloned().unwrap_or_default();
        listed["status"] = answer.get("status").cloned().unwrap_or(json!("PENDING"));
        if let Some(c) = answer.get("category") {
            listed["category"] = c.clone();
        }
        let def = TemplateDef::from_graph(&listed, now)
            .ok_or_else(|| TemplateError::Invalid(format!("Meta's answer named no template id: {answer}")))?;
        let (me, id, kept) = (self.clone(), tenant.id.clone(), def.clone());
        blocking(move || {
            let mut batch = Batch::new();
            batch.put_json(DEFS, key(&id, &kept.name, &kept.language), &kept)?;
            Ok(me.store.commit(batch)?)
        })
        .await?;
        Ok(def)
    }

    /// Deletes a template at Meta — in every language, or in one — and
    /// forgets it. Returns how many were deleted.
    pub async fn delete(&self, tenant: &Tenant, name: &str, language: Option<&str>) -> Result<usize, TemplateError> {
        let (waba, token) = account(tenant)?;
        let (me, id, n) = (self.clone(), tenant.id.clone(), name.to_string());
        let all = blocking(move || Ok(me.list(&id)?)).await?;
        let doomed: Vec<TemplateDef> = all
            .into_iter()
            .filter(|d| {
                d.name == name && language.is_none_or(|l| super::language_key(l) == super::language_key(&d.language))
            })
            .collect();
        if doomed.is_empty() {
            return Err(TemplateError::NotFound(match language {
                Some(l) => format!("{n} ({l})"),
                None => n,
            }));
        }
        let mut query = vec![("name", name)];
        if language.is_some() {
            // One language: Meta deletes by the template's id.
            query.push(("hsm_id", doomed[0].id.as_str()));
        }
        let path = format!("{waba}/message_templates");
        self.graph.call(Method::DELETE, &path, token, &query, None).await.map_err(TemplateError::Meta)?;
        let (me, id, count) = (self.clone(), tenant.id.clone(), doomed.len());
        blocking(move || {
            let mut batch = Batch::new();
            for d in &doomed {
                batch.delete(DEFS, key(&id, &d.name, &d.language));
            }
            Ok(me.store.commit(batch)?)
        })
        .await?;
        Ok(count)
    }
}
