//! LLM gateway: providers, routing, streaming, usage and quotas (see issue 3).

pub mod auth;
pub mod catalog;
pub mod error;
pub mod providers;
pub mod quota;
pub mod router;
pub mod sse;
pub mod store;
pub mod usage;
