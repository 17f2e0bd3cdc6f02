//! The gRPC edge: generated code, wire ↔ domain conversion, authentication and
//! the one mapping from errors to `tonic::Status`.
//!
//! **Invariant:** protobuf types never leave this module. Requests are parsed
//! into domain types here (bad input is `INVALID_ARGUMENT` naming the field),
//! and results are converted back here.

mod admin_service;
mod admission;
mod auth;
mod comment_service;
mod convert;
pub mod echo;
mod review_service;
mod status;

use std::future::Future;
use std::time::Instant;

use tonic::{Response, Status};

pub use admin_service::AdminApi;
pub use admission::Gate;
pub use comment_service::CommentApi;
pub use convert::webhook_payload;
pub use review_service::ReviewApi;

/// Generated protobuf and gRPC code for `moderato.v1`.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("moderato.v1");

    /// The encoded descriptors of `moderato.v1`, served by reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/moderato_descriptor.bin"));

    /// `moderato.v1` plus the benchmark echo service: what the load
    /// generator needs to encode a request for any method from JSON.
    pub const BENCH_FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/bench_descriptor.bin"));
}

/// The transport settings every gRPC server of this crate uses (moderato
/// and the benchmark echo server), so their throughput compares.
pub fn server() -> tonic::transport::Server {
    tonic::transport::Server::builder()
}

/// Largest request accepted on the wire; bodies are further bounded by policy.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// Runs one RPC if the gate admits it, and records its status code and
/// latency (refused calls included).
async fn observe<T>(
    gate: &Gate,
    rpc: &'static str,
    call: impl Future<Output = Result<T, Status>>,
) -> Result<Response<T>, Status> {
    let start = Instant::now();
    let result = match gate.admit(rpc).await {
        Ok(_permit) => call.await,
        Err(refused) => Err(refused),
    };
    let code = match &result {
        Ok(_) => tonic::Code::Ok,
        Err(status) => status.code(),
    };
    crate::telemetry::record_rpc(rpc, code, start.elapsed());
    result.map(Response::new)
}
