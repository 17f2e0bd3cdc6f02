//! The benchmark echo service: the bare tonic stack with moderato's
//! transport settings (`grpc::server`), so `moderato-bench --echo-server`
//! measures the ceiling any gRPC service reaches on the machine.

use std::sync::Arc;

use tokio::net::TcpListener;
use tonic::{Request, Response, Status};

/// Generated code for `moderato.bench.v1`.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("moderato.bench.v1");
}

use crate::tls::{Incoming, ReloadingConfig};
use pb::echo_service_server::{EchoService, EchoServiceServer};

struct Echo;

#[tonic::async_trait]
impl EchoService for Echo {
    async fn echo(
        &self,
        request: Request<pb::EchoRequest>,
    ) -> Result<Response<pb::EchoResponse>, Status> {
        Ok(Response::new(pb::EchoResponse {
            message: request.into_inner().message,
        }))
    }
}

/// Serves the echo service on `listener` (over TLS with `tls`, as moderato
/// would be) until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<ReloadingConfig>>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    super::server()
        .add_service(EchoServiceServer::new(Echo))
        .serve_with_incoming_shutdown(Incoming::new(listener, tls).into_stream(), shutdown)
        .await
}
