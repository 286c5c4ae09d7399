//! What every operation of the OpenAPI 3.1 document (`/openapi.json`) shares. The operations
//! themselves are generated: each room's handlers carry `#[utoipa::path]`, its DTOs derive
//! `ToSchema`, and utoipa-axum builds the router and the document from the same `routes!` lists,
//! so a route cannot be served undocumented. Here: the document's header and security schemes,
//! the error answers, and [`finish`], which adds what the edge middleware gives every route.
//!
//! Kept true by tests: the served document lists exactly the served routes, each answering
//! (`tests/api/ops.rs`), and schemathesis checks answers against these schemas.

use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, OpenApi as Document, Ref, RefOr, Required, Response, ResponseBuilder,
};
use utoipa::{Modify, OpenApi};

use crate::error::Flavor;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "IAFactory API",
        description = "Landing page JSON (/api/promo), the OpenAI-compatible API (/v1) and operations. \
            Errors: {\"error\":{\"code\",\"message\"}} with a stable code; /v1 errors add OpenAI's `type`."
    ),
    components(schemas(crate::error::Error, crate::error::OpenAiError)),
    modifiers(&SecuritySchemes),
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        for (name, description) in [
            ("adminToken", "The operator's ADMIN_TOKEN."),
            ("apiKey", "The customer's API key (iaf_…)."),
        ] {
            let mut scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build();
            scheme.description = Some(description.to_owned());
            components.add_security_scheme(name, SecurityScheme::Http(scheme));
        }
        let mut session = utoipa::openapi::security::ApiKeyValue::new("iaf_session");
        session.description = Some(
            "The customer's session cookie, set by POST /api/compte/session (HttpOnly, \
             SameSite=Strict). State-changing calls also need the X-CSRF-Token header."
                .to_owned(),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Cookie(session)),
        );
        let mut operator = utoipa::openapi::security::ApiKeyValue::new("iaf_operator");
        operator.description = Some(
            "The operator's console session cookie, set by POST /api/admin/session (HttpOnly, \
             SameSite=Strict). State-changing calls also need the X-CSRF-Token header."
                .to_owned(),
        );
        components.add_security_scheme(
            "operatorSession",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Cookie(operator)),
        );
    }
}

/// The description of an error status, the same on every route.
fn error_description(status: u16) -> &'static str {
    match status {
        400 => "Invalid input (malformed JSON, wrong types, missing fields, invalid values).",
        401 => "Missing or invalid credentials.",
        402 => "The subscription is suspended for an unpaid invoice; the message says how to pay.",
        403 => "Not allowed.",
        404 => "Unknown resource.",
        409 => "Conflicts with the current state.",
        413 => "Request body too large.",
        415 => "The body is not JSON.",
        429 => "Rate limit or quota reached; see Retry-After.",
        499 => "The client went away.",
        502 => "Every upstream provider failed.",
        503 => "A backend is down or overloaded; see Retry-After.",
        504 => "Took too long.",
        _ => "Error.",
    }
}

/// An error answer: the status's description and the flavor's body schema.
pub(crate) fn error_response(status: u16, flavor: Flavor) -> Response {
    let schema = match flavor {
        Flavor::Rest => "Error",
        Flavor::OpenAi => "OpenAiError",
    };
    ResponseBuilder::new()
        .description(error_description(status))
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(schema)))
                .build(),
        )
        .build()
}

/// Declares one error answer type per status and flavor, for `#[utoipa::path]` annotations:
/// `(status = 404, response = inline(rest::NotFound))`.
macro_rules! error_answers {
    ($($name:ident = $status:literal,)*) => {
        /// Error answers of `/api` and the operational routes (`{"error":{"code","message"}}`).
        pub mod rest {
            $(
                pub struct $name;
                impl<'s> utoipa::ToResponse<'s> for $name {
                    fn response() -> (&'s str, utoipa::openapi::RefOr<utoipa::openapi::Response>) {
                        (stringify!($name), super::error_response($status, crate::error::Flavor::Rest).into())
                    }
                }
            )*
        }
        /// Error answers of `/v1` (OpenAI's shape, with `type`).
        pub mod openai {
            $(
                pub struct $name;
                impl<'s> utoipa::ToResponse<'s> for $name {
                    fn response() -> (&'s str, utoipa::openapi::RefOr<utoipa::openapi::Response>) {
                        (stringify!($name), super::error_response($status, crate::error::Flavor::OpenAi).into())
                    }
                }
            )*
        }
    };
}

error_answers! {
    BadRequest = 400,
    Unauthorized = 401,
    PaymentRequired = 402,
    Forbidden = 403,
    NotFound = 404,
    Conflict = 409,
    PayloadTooLarge = 413,
    UnsupportedMediaType = 415,
    TooManyRequests = 429,
    BadGateway = 502,
}

/// Declares the error answers a family of routes shares, for `#[utoipa::path]` annotations next
/// to each route's own rows: `responses((status = 200, …), family::AdminJson, (status = 404,
/// response = inline(rest::NotFound)))`. Each row is the one `rest::…` (or `openai::…`, for a
/// family of the `OpenAi` flavor) gives its status.
macro_rules! families {
    ($($(#[$doc:meta])* $name:ident = $flavor:ident [$($status:literal),+],)*) => {
        /// Error answers shared by a family of routes.
        pub mod family {
            use std::collections::BTreeMap;

            use utoipa::openapi::{RefOr, Response};

            $(
                $(#[$doc])*
                pub struct $name;
                impl utoipa::IntoResponses for $name {
                    fn responses() -> BTreeMap<String, RefOr<Response>> {
                        [$($status),+]
                            .into_iter()
                            .map(|status: u16| {
                                let response =
                                    super::error_response(status, crate::error::Flavor::$flavor);
                                (status.to_string(), RefOr::T(response))
                            })
                            .collect()
                    }
                }
            )*
        }
    };
}

families! {
    /// A call with the admin token: a malformed request (400), no or a refused token (401).
    AdminToken = Rest [400, 401],
    /// The same with a JSON body: also too large (413), not JSON (415).
    AdminJson = Rest [400, 401, 413, 415],
    /// A call in a browser session: malformed (400), no session (401), cross-site or not the
    /// role's (403).
    Session = Rest [400, 401, 403],
    /// The same with a JSON body (also signing in): too large (413), not JSON (415).
    SessionJson = Rest [400, 401, 403, 413, 415],
    /// A public form's JSON body: invalid (400), too large (413), not JSON (415), too many from
    /// one address (429).
    PublicJson = Rest [400, 413, 415, 429],
    /// A file of a page folder: a malformed path (400), no such file (404).
    PageFile = Rest [400, 404],
    /// A model call of `/v1` (chat completions, embeddings), in OpenAI's error shape: invalid
    /// (400), no or unknown key (401), package limit or unpaid (402), suspended (403), unknown
    /// model (404), too large (413), not JSON (415), rate limit (429), every provider failed (502).
    ModelCall = OpenAi [400, 401, 402, 403, 404, 413, 415, 429, 502],
}

/// Statuses any route may answer: the edge's time limit and shedding, backend outages.
const ALWAYS: &[u16] = &[503, 504];

/// Completes the generated document with what the edge middleware gives every route: the
/// `x-request-id` header, the 503/504 answers, and operation ids derived from method and path
/// (stable when a handler is renamed). Axum's catch-all `{*name}` becomes OpenAPI's `{name}`.
pub fn finish(mut doc: Document) -> Document {
    let paths = std::mem::take(&mut doc.paths.paths);
    for (template, mut item) in paths {
        let path = template.replace("{*", "{");
        let flavor = Flavor::of_path(&path);
        for (method, operation) in operations(&mut item) {
            operation.operation_id = Some(format!(
                "{method}_{}",
                path.trim_matches('/')
                    .replace(['/', '{', '}', '.', '-'], "_")
            ));
            operation
                .parameters
                .get_or_insert_with(Vec::new)
                .push(request_id_parameter());
            for &status in ALWAYS {
                operation
                    .responses
                    .responses
                    .entry(status.to_string())
                    .or_insert_with(|| RefOr::T(error_response(status, flavor)));
            }
        }
        doc.paths.paths.insert(path, item);
    }
    doc
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("get", &mut item.get),
        ("put", &mut item.put),
        ("post", &mut item.post),
        ("delete", &mut item.delete),
        ("options", &mut item.options),
        ("head", &mut item.head),
        ("patch", &mut item.patch),
        ("trace", &mut item.trace),
    ]
    .into_iter()
    .filter_map(|(method, op)| op.as_mut().map(|op| (method, op)))
}

fn request_id_parameter() -> Parameter {
    ParameterBuilder::new()
        .name("x-request-id")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Correlation id, echoed back (generated when absent or not plain).",
        ))
        .schema(Some(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String),
        ))
        .build()
}
