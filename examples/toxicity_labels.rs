//! The label curve of issue #11, through the API: how much a tenant's
//! toxicity model gains from its moderators' labels.
//!
//! A labelled file (`text,label`, 1 = toxic; `forum_fr.csv` of
//! `../shared/datasets/french-toxic/`) is shuffled (fixed seed) and split in
//! halves. For each number of labels n, a fresh tenant on an in-process
//! server (SQLite, port 0) receives the first n comments of the first half
//! as `SubmitComment` calls, each followed by `MarkToxic` or `MarkNotToxic`
//! as a moderator would; then every comment of the second half goes through
//! `TestRules`, and the toxicity scores and decisions are measured.
//!
//! ```sh
//! # A seed that never saw the file (bench/toxicity-eval builds one):
//! MODERATO_TOXICITY_SEED=without_forum.model \
//!   cargo run --release --example toxicity_labels -- forum_fr.csv 0 100 300 700
//! ```
//!
//! Prints one line per n: AUC, recall at 5 % and 2 % of clean comments
//! flagged (on the score), and what the pipeline decided at the defaults.

use std::time::Instant;

use moderato::config::Settings;
use moderato::domain::{Role, TenantName};
use moderato::grpc::pb;
use moderato::grpc::pb::admin_service_client::AdminServiceClient;
use moderato::grpc::pb::comment_service_client::CommentServiceClient;
use moderato::startup::Application;
use moderato::storage::DbOptions;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

#[derive(Clone)]
struct Bearer(MetadataValue<Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

type Authed = InterceptedService<Channel, Bearer>;

fn read(path: &str) -> anyhow::Result<Vec<(String, bool)>> {
    let mut reader = csv::Reader::from_path(path)?;
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record?;
        let text = record[0].replace('\u{feff}', "");
        if text.trim().is_empty() || text.chars().count() > 5_000 {
            continue;
        }
        rows.push((text, &record[1] == "1"));
    }
    Ok(rows)
}

/// Fisher–Yates with a fixed LCG, so every run splits the file the same way.
fn shuffle<T>(rows: &mut [T]) {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for i in (1..rows.len()).rev() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        rows.swap(i, (state >> 33) as usize % (i + 1));
    }
}

struct Measured {
    auc: f64,
    recall_5: f64,
    recall_2: f64,
    toxic_held: f64,
    clean_held: f64,
}

fn measure(scored: &[(f64, bool, bool)]) -> Measured {
    let pos: Vec<f64> = scored.iter().filter(|s| s.1).map(|s| s.0).collect();
    let mut neg: Vec<f64> = scored.iter().filter(|s| !s.1).map(|s| s.0).collect();
    neg.sort_by(|a, b| b.total_cmp(a));
    let recall_at = |fpr: f64| {
        let k = (fpr * neg.len() as f64) as usize;
        let t = neg.get(k).copied().unwrap_or(0.0);
        pos.iter().filter(|p| **p > t).count() as f64 / pos.len() as f64
    };
    let mut auc = 0.0;
    for p in &pos {
        for n in &neg {
            auc += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    let held = |label: bool| {
        let of: Vec<_> = scored.iter().filter(|s| s.1 == label).collect();
        of.iter().filter(|s| s.2).count() as f64 / of.len() as f64
    };
    Measured {
        auc: auc / (pos.len() * neg.len()) as f64,
        recall_5: recall_at(0.05),
        recall_2: recall_at(0.02),
        toxic_held: held(true),
        clean_held: held(false),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: toxicity_labels FILE.csv [N…]"))?;
    let mut counts: Vec<usize> = args.map(|a| a.parse()).collect::<Result<_, _>>()?;
    if counts.is_empty() {
        counts = vec![0, 100, 300, 700];
    }
    let mut rows = read(&path)?;
    shuffle(&mut rows);
    let half = rows.len() / 2;
    let (first, second) = rows.split_at(half);

    let dir = tempfile::tempdir()?;
    let settings = Settings {
        grpc_addr: "127.0.0.1:0".parse()?,
        http_addr: "127.0.0.1:0".parse()?,
        database_url: format!("sqlite://{}/labels.db", dir.path().display()),
        db: DbOptions::default(),
        admin_key_file: dir.path().join("admin.key"),
        tls: None,
        http_tls: false,
        max_concurrent_calls: moderato::config::DEFAULT_MAX_CONCURRENT_CALLS,
        key_requests_per_second: 0,
        secret_key: None,
        secret_key_file: dir.path().join("secret.key"),
        webhooks: Default::default(),
    };
    let app = Application::build(settings).await?;
    let addr = app.grpc_addr();
    let store = app.store();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;

    println!(
        "{} rows: {} to label from ({} toxic), {} measured ({} toxic)",
        rows.len(),
        first.len(),
        first.iter().filter(|r| r.1).count(),
        second.len(),
        second.iter().filter(|r| r.1).count()
    );
    println!(
        "{:<8} {:>6} {:>8} {:>8} {:>11} {:>11} {:>8}",
        "labels", "AUC", "rec@5%", "rec@2%", "toxic held", "clean held", "secs"
    );
    for (run, n) in counts.into_iter().enumerate() {
        let n = n.min(first.len());
        let started = Instant::now();
        let tenant = TenantName::parse(&format!("labels-{run}-{n}"))?;
        let key = moderato::moderation::create_tenant_key(
            store.as_ref(),
            &tenant,
            moderato::domain::KeySpec::role(Role::Admin),
        )
        .await?
        .secret
        .expose()
        .to_owned();
        let bearer = Bearer(format!("Bearer {key}").parse()?);
        let mut comments: CommentServiceClient<Authed> =
            CommentServiceClient::with_interceptor(channel.clone(), bearer.clone());
        let mut admin: AdminServiceClient<Authed> =
            AdminServiceClient::with_interceptor(channel.clone(), bearer);
        for (i, (text, toxic)) in first[..n].iter().enumerate() {
            let stored = comments
                .submit_comment(pb::SubmitCommentRequest {
                    article_id: "forum".into(),
                    author_id: format!("reader-{i}"),
                    body: text.clone(),
                    ..Default::default()
                })
                .await?
                .into_inner()
                .comment
                .ok_or_else(|| anyhow::anyhow!("no comment in the reply"))?;
            if *toxic {
                comments
                    .mark_toxic(pb::MarkToxicRequest {
                        comment_id: stored.comment_id,
                        category: pb::ToxicityCategory::Insult as i32,
                    })
                    .await?;
            } else {
                comments
                    .mark_not_toxic(pb::MarkNotToxicRequest {
                        comment_id: stored.comment_id,
                    })
                    .await?;
            }
        }
        let mut scored = Vec::with_capacity(second.len());
        for (text, toxic) in second {
            let dry = admin
                .test_rules(pb::TestRulesRequest { body: text.clone() })
                .await?
                .into_inner();
            let held = dry.status != pb::CommentStatus::Approved as i32;
            scored.push((dry.toxicity_score, *toxic, held));
        }
        let m = measure(&scored);
        println!(
            "{:<8} {:>6.3} {:>7.1}% {:>7.1}% {:>10.1}% {:>10.1}% {:>8.1}",
            n,
            m.auc,
            100.0 * m.recall_5,
            100.0 * m.recall_2,
            100.0 * m.toxic_held,
            100.0 * m.clean_held,
            started.elapsed().as_secs_f64()
        );
    }
    let _ = stop.send(());
    server.await??;
    Ok(())
}
