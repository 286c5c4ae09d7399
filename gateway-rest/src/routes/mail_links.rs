//! What the visitor and the e-mail recipient reach without an account: joining the waitlist
//! (`POST /api/promo/waitlist`, rate-limited like signup, the same answer for every address),
//! and the two signed links of e-mails, each a small French page: `/desabonnement` (one-click
//! unsubscribe, RFC 8058) and `/liste-attente/confirmer` (double opt-in). A GET only shows the
//! page and its button — link scanners of mail providers open links, and must not unsubscribe
//! or confirm anyone; the POST (the button, or the mail client's one-click
//! `List-Unsubscribe=One-Click`) acts. The token is checked by promo-service.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode, Uri};
use iafactory::ErrorCode;
use iafactory::proto::iafactory::promo::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::backend;
use crate::error::ApiError;
use crate::extract::read_json;
use crate::openapi::family;
use crate::respond::{html_page, json};
use crate::state::AppState;
use crate::web_session::private;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(join_waitlist))
        .routes(routes!(unsubscribe_page, unsubscribe))
        .routes(routes!(confirm_page, confirm))
}

/// The paths of the server-rendered pages (their 400 is an HTML page, not a JSON error).
pub const HTML_PAGES: [&str; 2] = ["/desabonnement", "/liste-attente/confirmer"];

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitlistRequest {
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// The visitor ticked the consent box (never pre-ticked); `false` is refused.
    consent: bool,
}

#[derive(Serialize, ToSchema)]
pub struct WaitlistAnswer {
    /// The same sentence whatever the address's state (no enumeration).
    message: String,
}

/// Asks to be told when places come back: a confirmation e-mail with a signed link is sent
/// (double opt-in); the answer is the same whether the address is new or known.
#[utoipa::path(
    post,
    path = "/api/promo/waitlist",
    tag = "promo",
    request_body = WaitlistRequest,
    responses(
        (status = 202, description = "Recorded (confirmation e-mail on its way if due).", body = WaitlistAnswer),
        family::PublicJson,
    ),
)]
pub async fn join_waitlist(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    state.check_rate(state.signup_limiter.as_ref(), peer, &headers)?;
    let input: WaitlistRequest = read_json(&headers, body, state.config.body_limit).await?;
    let mut req = backend::request(
        pb::JoinWaitlistRequest {
            email: input.email,
            consent: input.consent,
        },
        &headers,
        &[],
    )?;
    internal(&state, &mut req)?;
    let answer = state
        .campaigns_client()
        .join_waitlist(req)
        .await?
        .into_inner();
    Ok(private(json(
        StatusCode::ACCEPTED,
        &WaitlistAnswer {
            message: answer.message,
        },
    )))
}

fn internal<T>(state: &AppState, req: &mut tonic::Request<T>) -> Result<(), ApiError> {
    let Some(token) = &state.config.internal_token else {
        tracing::error!("INTERNAL_TOKEN is not set on gateway-rest: e-mail links cannot be served");
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            "Service momentanément indisponible.",
        ));
    };
    iafactory::grpc::set_bearer(req, token.expose());
    Ok(())
}

/// The `jeton` query parameter, when it has the shape of a token (base64url, a dot, hex).
fn token_of(uri: &Uri) -> Option<String> {
    let token = uri
        .query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix("jeton="))?;
    let ok = !token.is_empty()
        && token.len() <= 600
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    ok.then(|| token.to_owned())
}

/// Text for HTML (the only dynamic parts are messages of our own and a checked token).
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The page: a title, a message, and optionally the form whose button POSTs `action`.
fn page(status: StatusCode, title: &str, message: &str, form: Option<(&str, &str)>) -> Response {
    let form = form.map_or(String::new(), |(action, button)| {
        // The unsubscribe button sends what a mail client's one-click POST sends (RFC 8058).
        let field = if action.starts_with("/desabonnement") {
            "<input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">"
        } else {
            ""
        };
        format!(
            "<form method=\"post\" action=\"{}\">{field}\
             <button type=\"submit\" class=\"btn btn-primary btn-lg\">{}</button></form>",
            escape(action),
            escape(button)
        )
    });
    html_page(
        status,
        format!(
            "<!DOCTYPE html>\n<html lang=\"fr\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{title} — IAFactory</title>\n\
             <link rel=\"stylesheet\" href=\"/api-packages/styles.css\">\n</head>\n<body>\n\
             <main class=\"section mail-page\">\n<div class=\"wrap wrap-narrow\">\n<h1>{title}</h1>\n\
             <p id=\"message\">{message}</p>\n{form}\n\
             <p><a href=\"/api-packages/\">Retour à la page d'IAFactory</a></p>\n</div>\n</main>\n\
             </body>\n</html>\n",
            title = escape(title),
            message = escape(message),
        ),
    )
}

fn bad_link(title: &str) -> Response {
    page(
        StatusCode::BAD_REQUEST,
        title,
        "Ce lien n'est pas valide : vérifiez qu'il a été copié en entier depuis l'e-mail.",
        None,
    )
}

/// A promo-service refusal of the token as the page; an outage stays a JSON 503.
fn refused(title: &str, status: &tonic::Status) -> Result<Response, ApiError> {
    let e = ApiError::from_status(status);
    if e.status() == StatusCode::BAD_REQUEST {
        Ok(page(StatusCode::BAD_REQUEST, title, e.message(), None))
    } else {
        Err(e)
    }
}

const UNSUBSCRIBE_TITLE: &str = "Se désinscrire des e-mails d'IAFactory";

/// The unsubscribe page of a campaign e-mail: says what the button does; unsubscribes nobody.
#[utoipa::path(
    get,
    path = "/desabonnement",
    tag = "site",
    params(("jeton" = String, Query, description = "The signed token of the e-mail's link.")),
    responses(
        (status = 200, description = "HTML page with the button.", content_type = "text/html", body = String),
        (status = 400, description = "HTML page: the link is not valid.", content_type = "text/html", body = String),
    ),
)]
pub async fn unsubscribe_page(uri: Uri) -> Response {
    match token_of(&uri) {
        Some(token) => page(
            StatusCode::OK,
            UNSUBSCRIBE_TITLE,
            "Vous ne recevrez plus aucune campagne d'IAFactory à l'adresse de cet e-mail. \
             Les e-mails liés à un compte (connexion, factures) ne sont pas concernés.",
            Some((&format!("/desabonnement?jeton={token}"), "Me désinscrire")),
        ),
        None => bad_link(UNSUBSCRIBE_TITLE),
    }
}

/// One-click unsubscribe (RFC 8058: the mail client POSTs `List-Unsubscribe=One-Click`; the
/// page's button sends the same). The body is not needed: the signed token says who.
#[utoipa::path(
    post,
    path = "/desabonnement",
    tag = "site",
    params(("jeton" = String, Query, description = "The signed token of the e-mail's link.")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`List-Unsubscribe=One-Click` (RFC 8058); not read."),
    responses(
        (status = 200, description = "HTML page: unsubscribed.", content_type = "text/html", body = String),
        (status = 400, description = "HTML page: the link is not valid.", content_type = "text/html", body = String),
    ),
)]
pub async fn unsubscribe(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(token) = token_of(&uri) else {
        return Ok(bad_link(UNSUBSCRIBE_TITLE));
    };
    let mut req = backend::request(pb::MailTokenRequest { token }, &headers, &[])?;
    internal(&state, &mut req)?;
    match state.campaigns_client().unsubscribe(req).await {
        Ok(answer) => Ok(page(
            StatusCode::OK,
            "Désinscription faite",
            &answer.into_inner().message,
            None,
        )),
        Err(status) => refused(UNSUBSCRIBE_TITLE, &status),
    }
}

const CONFIRM_TITLE: &str = "Confirmer l'inscription sur la liste d'attente";

/// The confirmation page of the waitlist e-mail: says what the button does; confirms nothing.
#[utoipa::path(
    get,
    path = "/liste-attente/confirmer",
    tag = "site",
    params(("jeton" = String, Query, description = "The signed token of the e-mail's link.")),
    responses(
        (status = 200, description = "HTML page with the button.", content_type = "text/html", body = String),
        (status = 400, description = "HTML page: the link is not valid.", content_type = "text/html", body = String),
    ),
)]
pub async fn confirm_page(uri: Uri) -> Response {
    match token_of(&uri) {
        Some(token) => page(
            StatusCode::OK,
            CONFIRM_TITLE,
            "Confirmez pour être prévenu(e) par e-mail si des places de l'offre de lancement \
             reviennent. Vous pourrez vous désinscrire à tout moment.",
            Some((
                &format!("/liste-attente/confirmer?jeton={token}"),
                "Confirmer mon inscription",
            )),
        ),
        None => bad_link(CONFIRM_TITLE),
    }
}

/// Confirms the waitlist entry of the signed link (double opt-in).
#[utoipa::path(
    post,
    path = "/liste-attente/confirmer",
    tag = "site",
    params(("jeton" = String, Query, description = "The signed token of the e-mail's link.")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "The page's form; not read."),
    responses(
        (status = 200, description = "HTML page: confirmed.", content_type = "text/html", body = String),
        (status = 400, description = "HTML page: the link is not valid or expired.", content_type = "text/html", body = String),
    ),
)]
pub async fn confirm(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(token) = token_of(&uri) else {
        return Ok(bad_link(CONFIRM_TITLE));
    };
    let mut req = backend::request(pb::MailTokenRequest { token }, &headers, &[])?;
    internal(&state, &mut req)?;
    match state.campaigns_client().confirm_waitlist(req).await {
        Ok(answer) => Ok(page(
            StatusCode::OK,
            "Inscription confirmée",
            &answer.into_inner().message,
            None,
        )),
        Err(status) => refused(CONFIRM_TITLE, &status),
    }
}
