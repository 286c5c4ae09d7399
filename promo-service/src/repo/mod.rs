//! All SQL of the promo service but the outbox's, idempotency's and the audit log's (each in
//! its own room), one file per group of tables. Handlers call these functions with validated
//! domain values; the signup transaction, which writes across groups, is in `signups`; sign-in
//! and sessions in `sessions`; the subscription in force and its changes in `subscriptions`;
//! notices written once in `notices`; invoices, payments and credit notes in `billing`, their
//! append-only record in `ledger`; operators and their sessions in `operators`; the console's
//! counts, snapshots, spend and customer list in `console`; the launch campaign's contacts and
//! suppression list in `contacts`, campaigns in `campaigns`, the waitlist in `waitlist`.

pub mod billing;
pub mod campaigns;
mod codes;
pub mod console;
pub mod contacts;
mod emails;
mod keys;
pub mod ledger;
mod notices;
pub mod operators;
mod packages;
mod sessions;
mod signups;
mod stats;
mod subscriptions;
pub mod waitlist;

pub use codes::{CodeRow, code_counts, create_code, find_code, list_codes, update_code};
pub use emails::{EmailRewrite, recanonicalise_emails};
pub use keys::{
    KeyOwner, KeyRow, NewKey, create_key, find_live_key, list_keys, revoke_key,
    revoke_key_by_operator, revoke_keys, rotate_key, set_suspended,
};
pub use ledger::reconcile;
pub use notices::{EndingDiscount, customer_for_notice, ending_discounts, write_notice};
pub use packages::{PackageChange, PackageRow, find_package, list_packages, update_package};
pub use sessions::{
    LinkRequest, OpenedSession, consume_link, purge_expired, request_link, session_customer,
    session_refused, sign_out,
};
pub use signups::{PlannedRedemption, SignupOutcome, SignupPlan, SignupRow, list_signups, signup};
pub use stats::{Gauges, StatsRows, gauges, stats, summary};
pub use subscriptions::{
    SubscriptionRow, apply_due_changes, change_package, find_subscription, set_cancellation,
};

/// A count or an amount read from a `BIGINT` column; never negative as written.
fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn u32_of(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}
