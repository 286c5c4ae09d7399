//! Integration tests of llm-gateway, compiled as one binary: the real gateway over gRPC on
//! loopback, the real promo-service for keys and packages, local upstreams speaking each
//! provider's wire format, SQLite files and PostgreSQL databases.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support outside #[test] functions: a failed step stops the test"
)]

mod budget;
mod crash;
mod embed;
mod fidelity;
mod grpcurl;
mod helpers;
// `crate::on_both_backends!` in every test file.
pub(crate) use iafactory_testkit::on_both_backends;
mod internal_auth;
mod keys_usage;
mod log_faults;
mod native;
mod process;
mod providers;
mod quotas;
mod request_log;
mod routing;
