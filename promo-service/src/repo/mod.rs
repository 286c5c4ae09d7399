//! All SQL of the promo service but the outbox's and idempotency's (each in its own room), one
//! file per group of tables. Handlers call these functions with validated domain values; the
//! signup transaction, which writes across groups, is in `signups`.

mod codes;
mod emails;
mod keys;
mod packages;
mod signups;
mod stats;

pub use codes::{CodeRow, code_counts, create_code, find_code, list_codes, update_code};
pub use emails::{EmailRewrite, recanonicalise_emails};
pub use keys::{KeyOwner, find_live_key, revoke_keys};
pub use packages::{PackageRow, find_package, list_packages};
pub use signups::{PlannedRedemption, SignupOutcome, SignupPlan, SignupRow, list_signups, signup};
pub use stats::{Gauges, StatsRows, gauges, stats, summary};

/// A count or an amount read from a `BIGINT` column; never negative as written.
fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn u32_of(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}
