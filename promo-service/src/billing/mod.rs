//! Billing's moving parts outside the request path: the card payment provider's API
//! ([`chargily`]), the invoice PDF ([`pdf`]) and the periodic job ([`job`]) that issues each
//! period's invoice at its start and moves subscriptions through the dunning states with their
//! e-mails. The settings are in `billing_config`, the rules in `domain::billing`, the SQL in
//! `repo::billing` and `repo::ledger`, the RPCs in `service::billing`.

pub mod chargily;
pub mod job;
pub mod pdf;
