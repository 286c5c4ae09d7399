//! Billing's moving parts outside the request path: its settings ([`config`]), the card payment
//! provider's API ([`chargily`]) and the periodic job ([`job`]) that issues each period's invoice at its start and moves subscriptions through
//! the dunning states with their e-mails. The rules are in `domain::billing`, the SQL in
//! `repo::billing` and `repo::ledger`, the RPCs in `service::billing`.

pub mod chargily;
pub mod config;
pub mod job;
pub mod pdf;
