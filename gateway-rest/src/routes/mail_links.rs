//! What the visitor and the e-mail recipient reach without an account: joining the waitlist
//! (`POST /api/promo/waitlist`, rate-limited like signup, the same answer for every address),
//! and the two signed links of e-mails, each a small page: `/desabonnement` (one-click
//! unsubscribe, RFC 8058) and `/liste-attente/confirmer` (double opt-in). The page is French, or
//! Arabic (right to left) when the link carries `lang=ar` — promo-service writes it into the links
//! of e-mails sent in Arabic; it only chooses the words, the signed token says who. A GET only shows the
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
    /// The landing page's language: the confirmation e-mail and its pages are written in it
    /// (default French).
    #[serde(default)]
    #[schema(inline, value_type = Option<crate::routes::promo_public::SignupLang>)]
    lang: Option<String>,
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
            lang: input.lang.unwrap_or_default(),
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

/// The page's language: Arabic when the link says `lang=ar`, French otherwise (the default; an
/// unknown value is not an error, the page stays readable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    Fr,
    Ar,
}

impl Lang {
    fn of(uri: &Uri) -> Lang {
        let ar = uri
            .query()
            .is_some_and(|q| q.split('&').any(|kv| kv == "lang=ar"));
        if ar { Lang::Ar } else { Lang::Fr }
    }

    /// What promo-service is told (its refusals are written in it).
    fn code(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::Ar => "ar",
        }
    }

    /// The suffix that keeps the language in the form's action.
    fn query(self) -> &'static str {
        match self {
            Lang::Fr => "",
            Lang::Ar => "&lang=ar",
        }
    }

    /// `lang` and `dir` of the page's `<html>`.
    fn html_attrs(self) -> &'static str {
        match self {
            Lang::Fr => "lang=\"fr\"",
            Lang::Ar => "lang=\"ar\" dir=\"rtl\"",
        }
    }
}

/// The words of one kind of link's pages: the page with the button, and the page after it.
struct LinkWords {
    title: &'static str,
    text: &'static str,
    button: &'static str,
    done_title: &'static str,
}

/// The words of the pages, in both languages.
struct Words {
    unsubscribe: LinkWords,
    confirm: LinkWords,
    bad_link: &'static str,
    back: &'static str,
}

const FR: Words = Words {
    unsubscribe: LinkWords {
        title: "Se désinscrire des e-mails d'IAFactory",
        text: "Vous ne recevrez plus aucune campagne d'IAFactory à l'adresse de cet e-mail. \
               Les e-mails liés à un compte (connexion, factures) ne sont pas concernés.",
        button: "Me désinscrire",
        done_title: "Désinscription faite",
    },
    confirm: LinkWords {
        title: "Confirmer l'inscription sur la liste d'attente",
        text: "Confirmez pour être prévenu(e) par e-mail si des places de l'offre de lancement \
               reviennent. Vous pourrez vous désinscrire à tout moment.",
        button: "Confirmer mon inscription",
        done_title: "Inscription confirmée",
    },
    bad_link: "Ce lien n'est pas valide : vérifiez qu'il a été copié en entier depuis l'e-mail.",
    back: "Retour à la page d'IAFactory",
};

const AR: Words = Words {
    unsubscribe: LinkWords {
        title: "إلغاء الاشتراك في رسائل IAFactory",
        text: "لن يصل عنوانُ هذه الرسالة بعد الآن أيَّ حملة من IAFactory. \
               الرسائل المرتبطة بحساب (تسجيل الدخول، الفواتير) غير معنية.",
        button: "إلغاء اشتراكي",
        done_title: "تم إلغاء الاشتراك",
    },
    confirm: LinkWords {
        title: "تأكيد التسجيل في قائمة الانتظار",
        text: "أكّد لتصلك رسالة إذا عادت أماكن عرض الإطلاق. \
               يمكنك إلغاء الاشتراك في أي وقت.",
        button: "تأكيد تسجيلي",
        done_title: "تم تأكيد التسجيل",
    },
    bad_link: "هذا الرابط غير صالح: تحقّق من أنه نُسخ كاملًا من الرسالة.",
    back: "العودة إلى صفحة IAFactory",
};

/// The two signed links of our e-mails. Each has a page that says what its button does (a GET
/// changes nothing: mail scanners follow links) and the POST the button sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// A campaign e-mail's unsubscribe link (also the one-click POST of RFC 8058).
    Unsubscribe,
    /// The waitlist's double opt-in.
    ConfirmWaitlist,
}

impl Link {
    fn path(self) -> &'static str {
        match self {
            Link::Unsubscribe => "/desabonnement",
            Link::ConfirmWaitlist => "/liste-attente/confirmer",
        }
    }

    fn words(self, lang: Lang) -> &'static LinkWords {
        let w = lang.words();
        match self {
            Link::Unsubscribe => &w.unsubscribe,
            Link::ConfirmWaitlist => &w.confirm,
        }
    }

    /// The page of the link in the e-mail: the button, or why the link is not valid.
    fn page(self, uri: &Uri) -> Response {
        let lang = Lang::of(uri);
        let w = self.words(lang);
        match token_of(uri) {
            Some(token) => page(
                lang,
                StatusCode::OK,
                w.title,
                w.text,
                Some((
                    &format!("{}?jeton={token}{}", self.path(), lang.query()),
                    w.button,
                )),
            ),
            None => bad_link(lang, w.title),
        }
    }

    /// The button's POST: promo-service carries the signed token out; its answer is the page.
    async fn follow(
        self,
        state: &AppState,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Result<Response, ApiError> {
        let lang = Lang::of(uri);
        let w = self.words(lang);
        let Some(token) = token_of(uri) else {
            return Ok(bad_link(lang, w.title));
        };
        let mut req = backend::request(
            pb::MailTokenRequest {
                token,
                lang: lang.code().to_owned(),
            },
            headers,
            &[],
        )?;
        internal(state, &mut req)?;
        let mut client = state.campaigns_client();
        let answer = match self {
            Link::Unsubscribe => client.unsubscribe(req).await,
            Link::ConfirmWaitlist => client.confirm_waitlist(req).await,
        };
        match answer {
            Ok(answer) => Ok(page(
                lang,
                StatusCode::OK,
                w.done_title,
                &answer.into_inner().message,
                None,
            )),
            Err(status) => refused(lang, w.title, &status),
        }
    }
}

impl Lang {
    fn words(self) -> &'static Words {
        match self {
            Lang::Fr => &FR,
            Lang::Ar => &AR,
        }
    }
}

/// Text for HTML (the only dynamic parts are messages of our own and a checked token).
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The page in `lang`: a title, a message, and optionally the form whose button POSTs `action`.
fn page(
    lang: Lang,
    status: StatusCode,
    title: &str,
    message: &str,
    form: Option<(&str, &str)>,
) -> Response {
    let form = form.map_or(String::new(), |(action, button)| {
        // The unsubscribe button sends what a mail client's one-click POST sends (RFC 8058).
        let field = if action.starts_with(Link::Unsubscribe.path()) {
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
            "<!DOCTYPE html>\n<html {attrs}>\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{title} — IAFactory</title>\n\
             <link rel=\"stylesheet\" href=\"/api-packages/styles.css\">\n</head>\n<body>\n\
             <main class=\"section mail-page\">\n<div class=\"wrap wrap-narrow\">\n<h1>{title}</h1>\n\
             <p id=\"message\">{message}</p>\n{form}\n\
             <p><a href=\"/api-packages/{site}\">{back}</a></p>\n</div>\n</main>\n\
             </body>\n</html>\n",
            attrs = lang.html_attrs(),
            site = if lang == Lang::Ar { "?lang=ar" } else { "" },
            back = escape(lang.words().back),
            title = escape(title),
            message = escape(message),
        ),
    )
}

fn bad_link(lang: Lang, title: &str) -> Response {
    page(
        lang,
        StatusCode::BAD_REQUEST,
        title,
        lang.words().bad_link,
        None,
    )
}

/// A promo-service refusal of the token as the page; an outage stays a JSON 503.
fn refused(lang: Lang, title: &str, status: &tonic::Status) -> Result<Response, ApiError> {
    let e = ApiError::from_status(status);
    if e.status() == StatusCode::BAD_REQUEST {
        Ok(page(
            lang,
            StatusCode::BAD_REQUEST,
            title,
            e.message(),
            None,
        ))
    } else {
        Err(e)
    }
}

/// The unsubscribe page of a campaign e-mail: says what the button does; unsubscribes nobody.
#[utoipa::path(
    get,
    path = "/desabonnement",
    tag = "site",
    params(
        ("jeton" = String, Query, description = "The signed token of the e-mail's link."),
        ("lang" = Option<String>, Query, description = "`ar`: the page in Arabic (default French)."),
    ),
    responses(
        (status = 200, description = "HTML page with the button.", content_type = "text/html", body = String),
        (status = 400, description = "HTML page: the link is not valid.", content_type = "text/html", body = String),
    ),
)]
pub async fn unsubscribe_page(uri: Uri) -> Response {
    Link::Unsubscribe.page(&uri)
}

/// One-click unsubscribe (RFC 8058: the mail client POSTs `List-Unsubscribe=One-Click`; the
/// page's button sends the same). The body is not needed: the signed token says who.
#[utoipa::path(
    post,
    path = "/desabonnement",
    tag = "site",
    params(
        ("jeton" = String, Query, description = "The signed token of the e-mail's link."),
        ("lang" = Option<String>, Query, description = "`ar`: the page in Arabic (default French)."),
    ),
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
    Link::Unsubscribe.follow(&state, &uri, &headers).await
}

/// The confirmation page of the waitlist e-mail: says what the button does; confirms nothing.
#[utoipa::path(
    get,
    path = "/liste-attente/confirmer",
    tag = "site",
    params(
        ("jeton" = String, Query, description = "The signed token of the e-mail's link."),
        ("lang" = Option<String>, Query, description = "`ar`: the page in Arabic (default French)."),
    ),
    responses(
        (status = 200, description = "HTML page with the button.", content_type = "text/html", body = String),
        (status = 400, description = "HTML page: the link is not valid.", content_type = "text/html", body = String),
    ),
)]
pub async fn confirm_page(uri: Uri) -> Response {
    Link::ConfirmWaitlist.page(&uri)
}

/// Confirms the waitlist entry of the signed link (double opt-in).
#[utoipa::path(
    post,
    path = "/liste-attente/confirmer",
    tag = "site",
    params(
        ("jeton" = String, Query, description = "The signed token of the e-mail's link."),
        ("lang" = Option<String>, Query, description = "`ar`: the page in Arabic (default French)."),
    ),
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
    Link::ConfirmWaitlist.follow(&state, &uri, &headers).await
}
