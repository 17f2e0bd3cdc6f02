//! The run: `concurrency` workers over `connections` HTTP/2 connections,
//! until `total` calls or `duration`, optionally paced to `rps`. Requests are
//! encoded from JSON with the service descriptors (any unary method of
//! moderato or the echo service), sent as raw bytes, and only the status and
//! the latency of each answer are kept.

use std::str::FromStr as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf as _, BufMut as _, Bytes};
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::{MetadataKey, MetadataValue};
use tonic::transport::{Channel, Endpoint};

use super::report::{Recorder, Report};
use super::template::{CallContext, Template};

/// A resolved method: its HTTP/2 path and its request type.
#[derive(Debug, Clone)]
pub struct Target {
    pub path: String,
    pub input: MessageDescriptor,
}

/// Finds `package.Service.Method` (or `package.Service/Method`) in `pool`.
pub fn resolve(pool: &DescriptorPool, call: &str) -> Result<Target, String> {
    let (service, method) = call
        .rsplit_once('/')
        .or_else(|| call.rsplit_once('.'))
        .ok_or_else(|| format!("--call {call:?}: expected package.Service.Method"))?;
    let service_descriptor = pool
        .get_service_by_name(service)
        .ok_or_else(|| format!("--call {call:?}: no service {service:?}"))?;
    let method_descriptor = service_descriptor
        .methods()
        .find(|m| m.name() == method)
        .ok_or_else(|| format!("--call {call:?}: {service} has no method {method:?}"))?;
    if method_descriptor.is_client_streaming() || method_descriptor.is_server_streaming() {
        return Err(format!("--call {call:?}: only unary methods are supported"));
    }
    Ok(Target {
        path: format!("/{service}/{method}"),
        input: method_descriptor.input(),
    })
}

/// Encodes one request from its JSON form (protobuf JSON mapping: field
/// names or their lowerCamelCase forms, enums by name).
pub fn encode(input: &MessageDescriptor, json: &str) -> Result<Bytes, String> {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let message = DynamicMessage::deserialize(input.clone(), &mut deserializer)
        .map_err(|e| format!("data does not fit {}: {e}", input.full_name()))?;
    deserializer
        .end()
        .map_err(|e| format!("data: trailing characters: {e}"))?;
    Ok(Bytes::from(message.encode_to_vec()))
}

/// Passes already-encoded messages through; answers are read and dropped.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = ();
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = ();
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<()>, Self::Error> {
        src.advance(src.remaining());
        Ok(Some(()))
    }
}

/// When a run stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    /// After this many calls (`-n`).
    Total(u64),
    /// After this long (`-z`); calls in flight finish.
    Duration(Duration),
}

/// A load test, parsed.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub host: String,
    pub target: Target,
    /// One template per message; calls take them in turn (round robin).
    pub data: Vec<Template>,
    pub metadata: Vec<(MetadataKey<tonic::metadata::Ascii>, Template)>,
    pub concurrency: usize,
    pub connections: usize,
    pub stop: Stop,
    pub rps: Option<f64>,
    pub timeout: Duration,
    /// `None`: plaintext (`--insecure`).
    pub tls: Option<ClientTls>,
}

/// TLS as ghz's `--cacert`, `--cert`, `--key` and `--cname` set it up.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    /// PEM CA certificates to trust; the public web roots when `None`.
    pub ca: Option<Vec<u8>>,
    /// PEM certificate and key for mutual TLS.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    /// The name to verify the server's certificate against, when it is not
    /// the host's.
    pub server_name: Option<String>,
}

impl ClientTls {
    fn config(&self) -> tonic::transport::ClientTlsConfig {
        use tonic::transport::{Certificate, ClientTlsConfig, Identity};
        let mut config = ClientTlsConfig::new();
        config = match &self.ca {
            Some(ca) => config.ca_certificate(Certificate::from_pem(ca)),
            None => config.with_webpki_roots(),
        };
        if let Some((cert, key)) = &self.identity {
            config = config.identity(Identity::from_pem(cert, key));
        }
        if let Some(name) = &self.server_name {
            config = config.domain_name(name.clone());
        }
        config
    }
}

enum Payload {
    /// Every request is the same: encoded once.
    Constant(Vec<Bytes>),
    Templates(Vec<Template>),
}

/// Runs `plan` and reports.
pub async fn run(plan: Plan) -> Result<Report, String> {
    let scheme = if plan.tls.is_some() { "https" } else { "http" };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://{}", plan.host))
        .map_err(|e| format!("host {:?}: {e}", plan.host))?
        .tcp_nodelay(true);
    if let Some(tls) = &plan.tls {
        endpoint = endpoint
            .tls_config(tls.config())
            .map_err(|e| format!("TLS settings: {e}"))?;
    }
    let mut channels = Vec::with_capacity(plan.connections);
    for _ in 0..plan.connections.max(1) {
        channels.push(
            endpoint
                .connect()
                .await
                .map_err(|e| format!("connecting to {}: {e}", plan.host))?,
        );
    }
    let payload = if plan.data.iter().all(Template::is_constant) {
        let context = CallContext {
            request_number: 0,
            worker_id: 0,
            call_uuid: uuid::Uuid::nil(),
            unix_nanos: 0,
        };
        Payload::Constant(
            plan.data
                .iter()
                .map(|t| encode(&plan.target.input, &t.render(&context)))
                .collect::<Result<_, _>>()?,
        )
    } else {
        // Fail before the run on data that cannot be encoded.
        let context = CallContext {
            request_number: 0,
            worker_id: 0,
            call_uuid: uuid::Uuid::new_v4(),
            unix_nanos: 0,
        };
        for t in &plan.data {
            encode(&plan.target.input, &t.render(&context))?;
        }
        Payload::Templates(plan.data.clone())
    };
    let shared = Arc::new(Shared {
        next: AtomicU64::new(0),
        payload,
        path: PathAndQuery::from_str(&plan.target.path).map_err(|e| e.to_string())?,
        input: plan.target.input.clone(),
        metadata: plan.metadata.clone(),
        stop: plan.stop,
        rps: plan.rps,
        timeout: plan.timeout,
        started: Instant::now(),
    });
    let workers: Vec<_> = (0..plan.concurrency.max(1))
        .map(|worker| {
            let channel = channels[worker % channels.len()].clone();
            let shared = shared.clone();
            tokio::spawn(async move { shared.work(worker, channel).await })
        })
        .collect();
    let mut recorder = Recorder::default();
    for worker in workers {
        recorder.merge(&worker.await.map_err(|e| format!("worker failed: {e}"))?);
    }
    let elapsed = shared.started.elapsed();
    let end_reason = match plan.stop {
        Stop::Total(_) => "normal",
        Stop::Duration(_) => "timeout",
    };
    Ok(recorder.report(&plan.name, end_reason, elapsed))
}

struct Shared {
    next: AtomicU64,
    payload: Payload,
    path: PathAndQuery,
    input: MessageDescriptor,
    metadata: Vec<(MetadataKey<tonic::metadata::Ascii>, Template)>,
    stop: Stop,
    rps: Option<f64>,
    timeout: Duration,
    started: Instant,
}

impl Shared {
    async fn work(&self, worker: usize, channel: Channel) -> Recorder {
        let mut recorder = Recorder::default();
        let mut grpc = tonic::client::Grpc::new(channel);
        loop {
            let number = self.next.fetch_add(1, Ordering::Relaxed);
            match self.stop {
                Stop::Total(total) if number >= total => break,
                Stop::Duration(d) if self.started.elapsed() >= d => break,
                _ => {}
            }
            if let Some(rps) = self.rps {
                let due = self.started + Duration::from_secs_f64(number as f64 / rps);
                tokio::time::sleep_until(due.into()).await;
                if let Stop::Duration(d) = self.stop
                    && self.started.elapsed() >= d
                {
                    break;
                }
            }
            let context = CallContext {
                request_number: number,
                worker_id: worker,
                call_uuid: uuid::Uuid::new_v4(),
                unix_nanos: chrono::Utc::now()
                    .timestamp_nanos_opt()
                    .map_or(0, i128::from),
            };
            let started = Instant::now();
            let outcome = self.call(&mut grpc, number, &context).await;
            let latency = started.elapsed();
            match outcome {
                Ok(()) => recorder.record(latency, tonic::Code::Ok, ""),
                Err(status) => recorder.record(latency, status.code(), status.message()),
            }
        }
        recorder
    }

    async fn call(
        &self,
        grpc: &mut tonic::client::Grpc<Channel>,
        number: u64,
        context: &CallContext,
    ) -> Result<(), tonic::Status> {
        let body = match &self.payload {
            Payload::Constant(messages) => messages[(number as usize) % messages.len()].clone(),
            Payload::Templates(templates) => {
                let json = templates[(number as usize) % templates.len()].render(context);
                encode(&self.input, &json).map_err(tonic::Status::invalid_argument)?
            }
        };
        let mut request = tonic::Request::new(body);
        request.set_timeout(self.timeout);
        for (key, value) in &self.metadata {
            let value = MetadataValue::try_from(value.render(context))
                .map_err(|e| tonic::Status::invalid_argument(format!("metadata {key}: {e}")))?;
            request.metadata_mut().insert(key.clone(), value);
        }
        grpc.ready()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        grpc.unary(request, self.path.clone(), RawCodec)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> DescriptorPool {
        DescriptorPool::decode(crate::grpc::pb::BENCH_FILE_DESCRIPTOR_SET).unwrap()
    }

    #[test]
    fn calls_resolve_in_both_spellings() {
        let pool = pool();
        let a = resolve(&pool, "moderato.v1.CommentService.SubmitComment").unwrap();
        let b = resolve(&pool, "moderato.v1.CommentService/SubmitComment").unwrap();
        assert_eq!(a.path, "/moderato.v1.CommentService/SubmitComment");
        assert_eq!(a.path, b.path);
        assert_eq!(a.input.full_name(), "moderato.v1.SubmitCommentRequest");
        assert!(resolve(&pool, "moderato.bench.v1.EchoService.Echo").is_ok());
        assert!(
            resolve(&pool, "moderato.v1.Nope.Call")
                .unwrap_err()
                .contains("no service")
        );
        assert!(
            resolve(&pool, "moderato.v1.CommentService.Nope")
                .unwrap_err()
                .contains("no method")
        );
    }

    #[test]
    fn json_encodes_to_the_same_bytes_as_the_generated_types() {
        let pool = pool();
        let target = resolve(&pool, "moderato.v1.CommentService.SubmitComment").unwrap();
        let bytes = encode(
            &target.input,
            r#"{"article_id":"a1","authorId":"r1","body":"Très bien dit","language":"fr"}"#,
        )
        .unwrap();
        let typed = crate::grpc::pb::SubmitCommentRequest::decode(bytes).unwrap();
        assert_eq!(typed.article_id, "a1");
        assert_eq!(typed.author_id, "r1");
        assert_eq!(typed.body, "Très bien dit");
        let decide = resolve(&pool, "moderato.v1.ReviewService.DecideReview").unwrap();
        let bytes = encode(&decide.input, r#"{"decision":"REVIEW_DECISION_APPROVE"}"#).unwrap();
        assert_eq!(
            crate::grpc::pb::DecideReviewRequest::decode(bytes)
                .unwrap()
                .decision,
            1
        );
        assert!(
            encode(&target.input, r#"{"nope":1}"#)
                .unwrap_err()
                .contains("SubmitCommentRequest")
        );
        assert!(encode(&target.input, r#"{"body":"x"} trailing"#).is_err());
    }
}
