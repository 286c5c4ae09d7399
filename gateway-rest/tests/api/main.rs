#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support outside #[test] functions: a failed step stops the test"
)]
//! End-to-end suite of gateway-rest: real promo-service, real gateway, real HTTP.

mod admin;
mod billing;
mod cache;
mod calls;
mod clients;
mod compte;
mod concurrency;
mod crowd;
mod helpers;
mod hostile;
mod llm;
mod openai;
mod ops;
mod process;
mod promo;
mod ratelimit;
mod schemathesis;
mod sse;
