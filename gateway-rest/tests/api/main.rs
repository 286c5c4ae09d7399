#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support outside #[test] functions: a failed step stops the test"
)]
//! End-to-end suite of gateway-rest: real promo-service, real gateway, real HTTP.

mod admin;
mod admin_accounts;
mod billing;
mod cache;
mod calls;
mod calls_export;
mod campaigns;
mod clients;
mod compte;
mod concurrency;
mod crowd;
mod helpers;
pub(crate) use iafactory_testkit::on_both_backends;
mod hostile;
mod llm;
mod mail_lang;
mod openai;
mod ops;
mod process;
mod promo;
mod ratelimit;
mod schemathesis;
mod site;
mod sse;
