//! The routes, one room per resource, each with its own `router()`. A room's router carries its
//! handlers and, through utoipa-axum, their OpenAPI operations: [`api`] merges them into the one
//! router and the one document.

pub mod admin_calls;
pub mod admin_calls_export;
pub mod admin_catalogue;
pub mod admin_customers;
pub mod admin_dashboard;
pub mod admin_operators;
pub mod admin_pages;
pub mod admin_session;
pub mod admin_token;
pub mod billing_admin;
pub mod billing_chargily;
pub mod billing_customer;
pub mod billing_dto;
pub mod campaigns_admin;
pub mod compte;
pub mod compte_calls;
pub mod events;
pub mod live;
pub mod mail_links;
pub mod openai;
pub mod ops;
pub mod platform;
pub mod promo_admin;
pub mod promo_public;
pub mod site;
pub mod site_info;

use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::openapi::ApiDoc;
use crate::state::AppState;

/// Every route with its documentation (paths as axum spells them; see
/// [`crate::openapi::finish`] for the served document).
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(promo_public::router())
        .merge(live::router())
        .merge(promo_admin::router())
        .merge(openai::router())
        .merge(platform::router())
        .merge(ops::router())
        .merge(site::router())
        .merge(site_info::router())
        .merge(compte::router())
        .merge(compte_calls::router())
        .merge(billing_customer::router())
        .merge(billing_admin::router())
        .merge(billing_chargily::router())
        .merge(events::router())
        .merge(admin_session::router())
        .merge(admin_dashboard::router())
        .merge(admin_customers::router())
        .merge(admin_calls::router())
        .merge(admin_calls_export::router())
        .merge(admin_catalogue::router())
        .merge(admin_operators::router())
        .merge(admin_pages::router())
        .merge(campaigns_admin::router())
        .merge(mail_links::router())
}
