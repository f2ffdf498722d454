//! Message templates: the tenant's WhatsApp Business Account templates,
//! read from Meta (`sync`), kept current by the template webhooks
//! (`events`), created and deleted through the API, and the check every
//! template send passes before it is queued — whoever sends it: staff, a
//! router's reply, a follow-up.
//!
//! Until a tenant has synced, the host does not know its templates and
//! lets a send through for Meta to judge; once it has, a template it does
//! not know, one that is not `APPROVED` (paused, disabled, pending…) and
//! one whose values do not fill its variables are refused before any call
//! to Meta.

mod check;
pub mod definition;
mod events;
mod sync;

pub use check::Invalid;
pub use definition::TemplateDef;
pub use events::Edits;
pub use sync::{NewTemplate, SyncReport};

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::model::Template;
use crate::outbound::{GraphClient, SendError};
use crate::store::{Result, Store, StoreError, Tree, keys};
use definition::language_key;

/// `tenant ␟ name ␟ language key` → [`TemplateDef`].
const DEFS: Tree = Tree("templates.defs");
/// `tenant` → [`Synced`]: when the tenant's list was last read from Meta.
const SYNCED: Tree = Tree("templates.synced");

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Synced {
    at: Millis,
}

/// Why a template send is refused before it reaches Meta.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsendable {
    #[error(
        "the tenant's WhatsApp Business Account has no template {name} in {language} (sync templates if it was just made)"
    )]
    Unknown { name: String, language: String },
    #[error(
        "template {name} ({language}) is paused by Meta for its quality; it can be sent again once Meta unpauses it"
    )]
    Paused { name: String, language: String },
    #[error("template {name} ({language}) is {status}; only APPROVED templates can be sent")]
    NotApproved { name: String, language: String, status: String },
    #[error("template {name}, {invalid}")]
    Invalid { name: String, invalid: Invalid },
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("the tenant has no WhatsApp Business Account id (`waba_id`); the operator sets it on the tenant")]
    NoAccount,
    #[error("the tenant has no access token, so Meta cannot be asked")]
    NoToken,
    #[error("Meta answered with error {}: {}{}", .0.error.code, .0.error.title,
        .0.error.details.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Meta(SendError),
    #[error("{0}")]
    Invalid(String),
    #[error("no template {0} in this tenant")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone)]
pub struct Templates {
    store: Store,
    graph: GraphClient,
}

fn key(tenant: &str, name: &str, language: &str) -> Vec<u8> {
    keys::join(&[tenant.as_bytes(), name.as_bytes(), language_key(language).as_bytes()])
}

impl Templates {
    pub fn new(store: Store, graph: GraphClient) -> Templates {
        Templates { store, graph }
    }

    pub fn get(&self, tenant: &str, name: &str, language: &str) -> Result<Option<TemplateDef>> {
        self.store.get_json(DEFS, &key(tenant, name, language))
    }

    /// The tenant's templates, by name and language.
    pub fn list(&self, tenant: &str) -> Result<Vec<TemplateDef>> {
        self.store.scan_prefix(DEFS, &keys::tenant_prefix(tenant))?.values().collect()
    }

    /// When the tenant's templates were last read from Meta.
    pub fn synced_at(&self, tenant: &str) -> Result<Option<Millis>> {
        Ok(self.store.get_json::<Synced>(SYNCED, tenant.as_bytes())?.map(|s| s.at))
    }

    /// The definitions `sends` name, to check them against.
    pub fn book<'a>(&self, tenant: &str, sends: impl IntoIterator<Item = &'a Template>) -> Result<Book> {
        let mut defs = HashMap::new();
        for t in sends {
            if let Some(def) = self.get(tenant, &t.name, &t.language)? {
                defs.insert((t.name.clone(), language_key(&t.language)), def);
            }
        }
        Ok(Book { synced: self.synced_at(tenant)?.is_some(), defs })
    }
}

/// The definitions of the templates a decision, a follow-up or a person
/// is about to send.
#[derive(Debug, Default)]
pub struct Book {
    synced: bool,
    defs: HashMap<(String, String), TemplateDef>,
}

impl Book {
    /// `send` as it will go — with the category its definition gives, and
    /// the language written as Meta lists it (`pt_BR` for `pt-br`) — or
    /// why it may not.
    pub fn check(&self, send: &Template) -> std::result::Result<Template, Unsendable> {
        let (name, language) = (send.name.clone(), send.language.clone());
        let Some(def) = self.defs.get(&(send.name.clone(), language_key(&send.language))) else {
            return if self.synced { Err(Unsendable::Unknown { name, language }) } else { Ok(send.clone()) };
        };
        match def.status.as_str() {
            definition::APPROVED => {}
            "PAUSED" => return Err(Unsendable::Paused { name, language }),
            status => return Err(Unsendable::NotApproved { name, language, status: status.to_string() }),
        }
        if let Some(shape) = def.shape() {
            check::check(&shape, send).map_err(|invalid| Unsendable::Invalid { name, invalid })?;
        }
        Ok(Template { category: def.category.or(send.category), language: def.language.clone(), ..send.clone() })
    }
}
