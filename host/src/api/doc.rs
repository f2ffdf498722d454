//! The OpenAPI document, generated from the handlers' annotations.
//!
//! Errors every operation can meet are added here, once, from what the
//! operation is (secured, has a path parameter, takes a body), so the
//! document cannot forget one: `401` without valid credentials, `404` for
//! an unknown id, `400`/`413`/`415`/`422` for a bad request, `503` while
//! storage is unavailable.

use utoipa::openapi::path::Operation;
use utoipa::openapi::{Content, Ref, Response};
use utoipa::{Modify, OpenApi};

use super::error;

/// What the document says beyond its operations, which the routes add
/// (see `api::routes`).
#[derive(OpenApi)]
#[openapi(
    info(title = "Switchboard API", description = "Multi-tenant WhatsApp CRM automation host. Tenant endpoints take `Authorization: Bearer <tenant API key>`."),
    components(schemas(error::ErrorBody, error::ErrorDetail)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

/// Adds the errors every operation can meet, once the routes have added
/// the operations.
pub(super) fn complete(doc: &mut utoipa::openapi::OpenApi) {
    StandardErrors.modify(doc);
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        for name in ["tenant_key", "admin_token"] {
            components.add_security_scheme(
                name,
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

struct StandardErrors;

impl utoipa::Modify for StandardErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for op in operations.into_iter().flatten() {
                add_standard_errors(path, op);
            }
        }
    }
}

fn add_standard_errors(path: &str, op: &mut Operation) {
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let admin = secured && serde_json::to_string(&op.security).is_ok_and(|s| s.contains("admin_token"));
    let takes_body = op.request_body.is_some();
    // Query, path and header parameters are parsed and checked too.
    let takes_parameters = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let mut add = |code: &str, why: &str| {
        op.responses.responses.entry(code.to_string()).or_insert_with(|| error_response(why).into());
    };
    if takes_body || takes_parameters {
        add("400", "the request is malformed (the message says which part)");
    }
    if secured {
        add("401", "missing or invalid credentials");
    }
    if admin {
        add("403", "the operator API is disabled: no admin token is configured");
    }
    if path.contains('{') {
        add("404", "no such record (or not this tenant's)");
    }
    if takes_body {
        add("413", "the body is too large");
        add("415", "the body is not of the documented content type");
        add("422", "the body does not match the documented schema");
    }
    add("503", "storage is unavailable; retry later");
}

fn error_response(description: &str) -> Response {
    Response::builder()
        .description(description)
        .content("application/json", Content::new(Some(Ref::from_schema_name("ErrorBody"))))
        .build()
}
