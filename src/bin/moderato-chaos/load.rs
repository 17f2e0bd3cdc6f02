//! The clients: publishers submitting, moderators claiming and deciding, a
//! decision-stream consumer, and probes of every replica. Each behaves as a
//! careful production client does: a deadline on every call, and a retry
//! of the same request (same `client_comment_id`, same decision) on another
//! replica when an answer does not come.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use moderato::grpc::pb;
use moderato::grpc::pb::comment_service_client::CommentServiceClient;
use moderato::grpc::pb::review_service_client::ReviewServiceClient;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request};

use crate::ledger::{DecisionAck, DecisionUnconfirmed, Event, Probe, Ready, Shared, now_ms, ts_ms};

/// What every client task shares.
pub struct Ctx {
    pub shared: Shared,
    pub channels: Vec<Channel>,
    pub http: Vec<std::net::SocketAddr>,
    pub publisher: String,
    pub moderator: String,
    pub deadline: Duration,
    pub lease_seconds: i32,
    pub stop_submitting: AtomicBool,
    pub stop_moderating: AtomicBool,
    pub stop_probing: AtomicBool,
    /// Submissions waiting for an answer right now (how many were in flight
    /// when a replica was killed).
    pub in_flight: AtomicUsize,
}

pub fn channel(addr: std::net::SocketAddr) -> anyhow::Result<Channel> {
    Ok(Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(Duration::from_millis(500))
        .connect_lazy())
}

impl Ctx {
    fn request<T>(&self, message: T, key: &str, deadline: Option<Duration>) -> Request<T> {
        let mut request = Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {key}").parse().unwrap());
        if let Some(deadline) = deadline {
            request.set_timeout(deadline);
        }
        request
    }

    fn comments(&self, replica: usize) -> CommentServiceClient<Channel> {
        CommentServiceClient::new(self.channels[replica % self.channels.len()].clone())
    }

    fn reviews(&self, replica: usize) -> ReviewServiceClient<Channel> {
        ReviewServiceClient::new(self.channels[replica % self.channels.len()].clone())
    }

    /// Sends `client_id`'s request until it is acknowledged or `until` is
    /// set; every answer is written down.
    pub async fn submit_until_acked(
        &self,
        client_id: &str,
        mut replica: usize,
        until: Option<&AtomicBool>,
    ) -> bool {
        let Some(request) = self.shared.with(|l| {
            let submission = l.submissions.get_mut(client_id)?;
            submission.attempts += 1;
            submission.request.clone()
        }) else {
            return true;
        };
        loop {
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            let answer = self
                .comments(replica)
                .submit_comment(self.request(request.clone(), &self.publisher, Some(self.deadline)))
                .await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            match answer {
                Ok(response) => {
                    let comment = response.into_inner().comment.unwrap_or_default();
                    self.shared.code("SubmitComment", Code::Ok);
                    self.shared.with(|l| l.acknowledge(client_id, comment));
                    return true;
                }
                Err(status) => {
                    self.shared.code("SubmitComment", status.code());
                    if matches!(
                        status.code(),
                        Code::InvalidArgument | Code::NotFound | Code::PermissionDenied
                    ) {
                        self.shared.with(|l| {
                            l.unexpected.push(format!(
                                "SubmitComment {client_id}: {:?} {}",
                                status.code(),
                                status.message()
                            ))
                        });
                        return false;
                    }
                }
            }
            if until.is_some_and(|flag| flag.load(Ordering::SeqCst)) {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            replica += 1;
            self.shared.with(|l| {
                if let Some(s) = l.submissions.get_mut(client_id) {
                    s.attempts += 1
                }
            });
        }
    }
}

impl Ctx {
    /// One claim by `moderator-final` with a minute's lease, recorded
    /// like any other: the ids of the items granted.
    pub async fn claim_for_audit(&self) -> Result<Vec<String>, tonic::Status> {
        let items = self
            .reviews(0)
            .claim_reviews(self.request(
                pb::ClaimReviewsRequest {
                    max_items: 100,
                    lease_seconds: 60,
                    moderator_id: "moderator-final".to_owned(),
                    ..Default::default()
                },
                &self.moderator,
                Some(self.deadline),
            ))
            .await?
            .into_inner()
            .items;
        self.shared
            .with(|l| l.record_claims(&items, "moderator-final", 60));
        Ok(items.into_iter().map(|item| item.review_id).collect())
    }
}

/// Bodies from the ghz mix (bench/ghz/submit_comment.json): published,
/// held and refused comments in French and English.
const BODIES: [(&str, &str, &str); 8] = [
    (
        "budget-2027",
        "fr",
        "Très bonne analyse du budget, merci. Reste à voir si les députés tiendront parole sur la dette.",
    ),
    (
        "budget-2027",
        "fr",
        "Le prix du riz a encore augmenté de 12 % à Abidjan et Bouaké, le gouvernement doit s'expliquer.",
    ),
    (
        "cocoa-prices",
        "en",
        "Farmers still get a fraction of the world price. Where does the difference go?",
    ),
    (
        "cocoa-prices",
        "fr",
        "Gagnez 300 000 FCFA par semaine depuis chez vous, écrivez-moi sur WhatsApp au +225 07 00 11 22 33",
    ),
    (
        "can-2027",
        "en",
        "Check out my channel for the best football edits!!! https://bit.ly/x7Yq2",
    ),
    (
        "can-2027",
        "fr",
        "Franchement, ce sélectionneur est un vrai c0nn4rd, il faut le virer.",
    ),
    (
        "elections",
        "fr",
        "La coopération régionale et la convergence monétaire avancent, mais trop lentement à mon avis.",
    ),
    (
        "elections",
        "en",
        "The electoral commission should publish results by polling station, as the law requires.",
    ),
];

pub fn new_submission(ctx: &Ctx, client_id: &str, n: u64) {
    let (article, language, body) = BODIES[(n as usize) % BODIES.len()];
    let request = pb::SubmitCommentRequest {
        article_id: article.to_owned(),
        author_id: format!("author-{client_id}"),
        body: format!("{body} ({n})"),
        client_comment_id: client_id.to_owned(),
        language: language.to_owned(),
        ..Default::default()
    };
    ctx.shared.with(|l| {
        l.submissions.insert(
            client_id.to_owned(),
            crate::ledger::Submission {
                request: Some(request),
                attempts: 0,
                acks: Vec::new(),
            },
        )
    });
}

pub async fn submitter(ctx: Arc<Ctx>, worker: usize, think: Duration) {
    let mut n = 0u64;
    while !ctx.stop_submitting.load(Ordering::SeqCst) {
        n += 1;
        let client_id = format!("chaos-{worker}-{n}");
        new_submission(&ctx, &client_id, n + worker as u64);
        ctx.submit_until_acked(&client_id, worker, Some(&ctx.stop_submitting))
            .await;
        tokio::time::sleep(think).await;
    }
}

/// Claims a few items, decides most of them and abandons one in ten (its
/// lease must expire and hand it to someone else).
pub async fn moderator(ctx: Arc<Ctx>, k: usize) {
    let name = format!("moderator-{k}");
    let mut replica = k;
    let mut round = 0u64;
    while !ctx.stop_moderating.load(Ordering::SeqCst) {
        let answer = ctx
            .reviews(replica)
            .claim_reviews(ctx.request(
                pb::ClaimReviewsRequest {
                    max_items: 4,
                    lease_seconds: ctx.lease_seconds,
                    moderator_id: name.clone(),
                    ..Default::default()
                },
                &ctx.moderator,
                Some(ctx.deadline),
            ))
            .await;
        let items = match answer {
            Ok(response) => {
                ctx.shared.code("ClaimReviews", Code::Ok);
                response.into_inner().items
            }
            Err(status) => {
                ctx.shared.code("ClaimReviews", status.code());
                replica += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if items.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        ctx.shared
            .with(|l| l.record_claims(&items, &name, i64::from(ctx.lease_seconds)));
        for item in items {
            round += 1;
            if round.is_multiple_of(10) {
                continue;
            }
            let approve = !round.is_multiple_of(3);
            decide(&ctx, &name, &item, approve, &mut replica).await;
        }
    }
}

async fn decide(ctx: &Ctx, name: &str, item: &pb::ReviewItem, approve: bool, replica: &mut usize) {
    let expire = ts_ms(item.lease_expire_time.as_ref()).unwrap_or(0);
    let request = pb::DecideReviewRequest {
        review_id: item.review_id.clone(),
        decision: if approve {
            pb::ReviewDecision::Approve
        } else {
            pb::ReviewDecision::Reject
        } as i32,
        moderator_id: name.to_owned(),
        expected_version: item.comment.as_ref().map_or(0, |c| c.version),
        note: "chaos".to_owned(),
        ..Default::default()
    };
    loop {
        let answer = ctx
            .reviews(*replica)
            .decide_review(ctx.request(request.clone(), &ctx.moderator, Some(ctx.deadline)))
            .await;
        match answer {
            Ok(response) => {
                ctx.shared.code("DecideReview", Code::Ok);
                let comment = response.into_inner().comment.unwrap_or_default();
                ctx.shared.with(|l| {
                    l.decisions.push(DecisionAck {
                        review_id: item.review_id.clone(),
                        comment_id: comment.comment_id,
                        moderator: name.to_owned(),
                        approve,
                        status: comment.status,
                        version: comment.version,
                        at_ms: now_ms(),
                    })
                });
                return;
            }
            Err(status) => {
                ctx.shared.code("DecideReview", status.code());
                let retry = matches!(
                    status.code(),
                    Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown
                );
                // Past the lease the claim is gone: a retry would be refused.
                if !retry || now_ms() > expire {
                    ctx.shared.with(|l| {
                        l.unconfirmed.push(DecisionUnconfirmed {
                            review_id: item.review_id.clone(),
                            moderator: name.to_owned(),
                            approve,
                        })
                    });
                    return;
                }
            }
        }
        *replica += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Follows `WatchDecisions` from the start, reconnecting (to the next
/// replica) with the last sequence received whenever the stream breaks.
pub async fn watcher(ctx: Arc<Ctx>) {
    let mut replica = 0usize;
    let mut last = 0i64;
    loop {
        ctx.shared.with(|l| l.stream_connects += 1);
        let answer = ctx
            .comments(replica)
            .watch_decisions(ctx.request(
                pb::WatchDecisionsRequest {
                    after_sequence: last,
                },
                &ctx.publisher,
                None,
            ))
            .await;
        if let Ok(response) = answer {
            let mut stream = response.into_inner();
            while let Ok(Some(event)) = stream.message().await {
                last = event.sequence;
                ctx.shared.with(|l| {
                    l.events.push(Event {
                        sequence: event.sequence,
                        comment_id: event.comment_id,
                        status: event.status,
                        version: event.version,
                    })
                });
            }
        }
        replica += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every 100 ms, a submission to each replica with a one-second deadline:
/// when calls succeed again after a fault, to the nearest tenth of a second.
pub async fn prober(ctx: Arc<Ctx>, replica: usize) {
    let mut n = 0u64;
    while !ctx.stop_probing.load(Ordering::SeqCst) {
        n += 1;
        let client_id = format!("probe-{replica}-{n}");
        new_submission(&ctx, &client_id, n);
        let request = ctx.shared.with(|l| {
            let s = l.submissions.get_mut(&client_id).unwrap();
            s.attempts += 1;
            s.request.clone().unwrap()
        });
        let answer = ctx
            .comments(replica)
            .submit_comment(ctx.request(request, &ctx.publisher, Some(Duration::from_secs(1))))
            .await;
        let ok = answer.is_ok();
        ctx.shared.with(|l| {
            if let Ok(response) = answer {
                l.acknowledge(
                    &client_id,
                    response.into_inner().comment.unwrap_or_default(),
                );
            }
            l.probes.push(Probe {
                replica,
                at_ms: now_ms(),
                ok,
            })
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `/readyz` of each replica every 100 ms.
pub async fn ready_poller(ctx: Arc<Ctx>, replica: usize) {
    while !ctx.stop_probing.load(Ordering::SeqCst) {
        let status = tokio::time::timeout(Duration::from_secs(1), readyz(ctx.http[replica]))
            .await
            .ok()
            .flatten();
        ctx.shared.with(|l| {
            l.ready.push(Ready {
                replica,
                at_ms: now_ms(),
                status,
            })
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn readyz(addr: std::net::SocketAddr) -> Option<u16> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    stream
        .write_all(b"GET /readyz HTTP/1.1\r\nHost: moderato\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}
