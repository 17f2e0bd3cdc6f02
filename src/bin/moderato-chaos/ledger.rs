//! What the clients saw, written down as they saw it: the only evidence a
//! verdict can be checked against. The server's own records are compared
//! with this at the end, never the other way round.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use moderato::grpc::pb;

/// Milliseconds since the epoch: client times and the server's timestamps
/// (same machine, same clock) on one scale.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn ts_ms(ts: Option<&prost_types::Timestamp>) -> Option<i64> {
    ts.map(|ts| ts.seconds * 1000 + i64::from(ts.nanos) / 1_000_000)
}

/// Ids compared without their dashes or case: the API and the two backends
/// spell UUIDs differently.
pub fn norm(id: &str) -> String {
    id.chars()
        .filter(|c| *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// One acknowledged `SubmitComment`: the comment as the reply described it.
#[derive(Debug, Clone)]
pub struct Ack {
    pub comment_id: String,
    pub status: i32,
    pub version: i64,
}

#[derive(Debug, Default)]
pub struct Submission {
    /// Kept until acknowledged, for the retries.
    pub request: Option<pb::SubmitCommentRequest>,
    pub attempts: u32,
    pub acks: Vec<Ack>,
}

/// A claim the server granted, as the reply gave it.
#[derive(Debug, Clone)]
pub struct Claim {
    pub review_id: String,
    pub moderator: String,
    pub lease_seconds: i64,
    pub lease_expire_ms: i64,
}

/// A decision the server acknowledged.
#[derive(Debug, Clone)]
pub struct DecisionAck {
    pub review_id: String,
    pub comment_id: String,
    pub moderator: String,
    pub approve: bool,
    pub status: i32,
    pub version: i64,
    pub at_ms: i64,
}

/// A decision sent but never acknowledged (its replies were lost or
/// refused): it may or may not have been applied.
#[derive(Debug, Clone)]
pub struct DecisionUnconfirmed {
    pub review_id: String,
    pub moderator: String,
    pub approve: bool,
}

#[derive(Debug, Clone)]
pub struct Event {
    pub sequence: i64,
    pub comment_id: String,
    pub status: i32,
    pub version: i64,
}

/// A probe call's outcome: `at_ms` is when the answer came.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    pub replica: usize,
    pub at_ms: i64,
    pub ok: bool,
}

/// A `/readyz` sample: the HTTP status, `None` when nothing answered.
#[derive(Debug, Clone, Copy)]
pub struct Ready {
    pub replica: usize,
    pub at_ms: i64,
    pub status: Option<u16>,
}

#[derive(Default)]
pub struct Ledger {
    pub submissions: HashMap<String, Submission>,
    pub claims: Vec<Claim>,
    pub decisions: Vec<DecisionAck>,
    pub unconfirmed: Vec<DecisionUnconfirmed>,
    pub events: Vec<Event>,
    pub stream_connects: u32,
    pub probes: Vec<Probe>,
    pub ready: Vec<Ready>,
    /// (phase, rpc, code) → calls: which answers clients got in each fault.
    pub codes: BTreeMap<(String, &'static str, String), u64>,
    /// Answers no correct server gives under faults (INVALID_ARGUMENT to a
    /// valid request…), with the message.
    pub unexpected: Vec<String>,
}

impl Ledger {
    /// `client_id` was acknowledged as `comment`: its request is no longer needed.
    pub fn acknowledge(&mut self, client_id: &str, comment: pb::Comment) {
        let submission = self.submissions.get_mut(client_id).unwrap();
        submission.request = None;
        submission.acks.push(Ack {
            comment_id: comment.comment_id,
            status: comment.status,
            version: comment.version,
        });
    }

    /// The claims a `ClaimReviews` answer granted to `moderator`.
    pub fn record_claims(&mut self, items: &[pb::ReviewItem], moderator: &str, lease_seconds: i64) {
        for item in items {
            self.claims.push(Claim {
                review_id: item.review_id.clone(),
                moderator: moderator.to_owned(),
                lease_seconds,
                lease_expire_ms: ts_ms(item.lease_expire_time.as_ref()).unwrap_or(0),
            });
        }
    }
}

pub struct Shared {
    ledger: Mutex<Ledger>,
    phase: Mutex<String>,
}

impl Shared {
    pub fn new() -> Shared {
        Shared {
            ledger: Mutex::new(Ledger::default()),
            phase: Mutex::new("calm".to_owned()),
        }
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut Ledger) -> T) -> T {
        f(&mut self.ledger.lock().unwrap())
    }

    pub fn set_phase(&self, phase: &str) {
        *self.phase.lock().unwrap() = phase.to_owned();
    }

    pub fn code(&self, rpc: &'static str, code: tonic::Code) {
        let phase = self.phase.lock().unwrap().clone();
        self.with(|l| {
            *l.codes
                .entry((phase, rpc, format!("{code:?}")))
                .or_default() += 1
        });
    }

    pub fn into_ledger(self) -> Ledger {
        self.ledger.into_inner().unwrap()
    }
}
