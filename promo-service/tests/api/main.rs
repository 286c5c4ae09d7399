//! promo-service integration suite: the real service over real gRPC on loopback, against a real
//! SQLite file and a real PostgreSQL database. One binary, so the harness compiles once.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::collapsible_if,
    reason = "test support outside #[test] functions: a failed step stops the test"
)]

mod helpers;
// `crate::on_both_backends!` in every test file.
pub(crate) use iafactory_testkit::on_both_backends;

mod account;
mod admin;
mod backup;
mod billing;
mod billing_changes;
mod campaign_faults;
mod concurrency;
mod contacts;
mod email_identity;
mod faults;
mod grpcurl;
mod hostile;
mod idempotency;
mod live;
mod mail;
mod metrics;
mod operator_accounts;
mod operators;
mod process;
mod signup;
mod validate;
