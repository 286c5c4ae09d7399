//! Shared contracts and plumbing of the IAFactory API platform.
//!
//! The root package owns `proto/` (compiled by `build.rs`) so every service and the REST shim use
//! the same generated types, plus the few pieces every service needs the same way: the error code
//! table (one mapping to gRPC and HTTP), telemetry, shutdown, gRPC serving with health and
//! reflection, and the SQLite/PostgreSQL storage handle.

pub mod db;
pub mod error;
pub mod grpc;
pub mod healthcheck;
pub mod lifecycle;
pub mod metrics;
pub mod net;
pub mod secret;
pub mod shutdown;
pub mod telemetry;
pub mod webhook;

/// Generated protobuf messages, clients and servers.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/iafactory_protos.rs"));

    /// Encoded `FileDescriptorSet` of every contract, served by gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/iafactory_descriptor.bin"));
}

pub use error::{ErrorCode, ServiceError};
