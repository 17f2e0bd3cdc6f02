//! Load shedding and deadlines: past its bound a replica refuses (after a
//! short wait for a place, `grpc::admission::QUEUE_WAIT`),
//! and work whose caller is gone is not started. SQLite lets the test hold
//! the write lock from outside, which parks submissions deterministically.

use std::time::Duration;

use moderato::config::Settings;
use moderato::domain::Role;
use moderato::grpc::pb;
use sqlx::{Connection as _, Executor as _};
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::helpers::{Backend, TestApp, comment, database_url_for, spawn_app_configured};

async fn spawn_bounded(limit: usize) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let url = database_url_for(Backend::Sqlite, &dir).await;
    spawn_app_configured(dir, url, move |s: &mut Settings| {
        s.max_concurrent_calls = limit;
    })
    .await
}

/// Takes SQLite's write lock until the returned connection is dropped or
/// rolled back: every writing transaction of the server waits meanwhile.
async fn hold_write_lock(app: &TestApp) -> sqlx::SqliteConnection {
    let mut conn = sqlx::SqliteConnection::connect(&app.database_url)
        .await
        .unwrap();
    conn.execute("BEGIN IMMEDIATE").await.unwrap();
    conn
}

async fn count_comments(app: &TestApp) -> i64 {
    let mut conn = sqlx::SqliteConnection::connect(&app.database_url)
        .await
        .unwrap();
    sqlx::query_scalar("SELECT count(*) FROM comments")
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

fn keyed(client_id: &str, body: &str) -> pb::SubmitCommentRequest {
    pb::SubmitCommentRequest {
        client_comment_id: client_id.to_owned(),
        ..comment("a-1", "reader", body)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_past_the_concurrency_bound_are_refused_with_a_retry_delay() {
    let app = spawn_bounded(1).await;
    let key = app.key_for("default", Role::Publisher).await;
    let mut lock = hold_write_lock(&app).await;
    let parked = tokio::spawn({
        let mut client = app.comments(&key).await;
        async move { client.submit_comment(keyed("c-1", "Bonne analyse.")).await }
    });
    // The parked call holds the only place; any other call is refused.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut client = app.comments(&key).await;
    let refused = client
        .submit_comment(keyed("c-2", "Merci."))
        .await
        .expect_err("a second call was served while the first held the only place");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(refused.message().contains("limit of 1 concurrent calls"));
    let retry = refused
        .get_details_retry_info()
        .expect("a RetryInfo detail");
    assert!(retry.retry_delay.is_some_and(|d| d > Duration::ZERO));

    lock.execute("ROLLBACK").await.unwrap();
    parked.await.unwrap().expect("the admitted call completes");
    client
        .submit_comment(keyed("c-2", "Merci."))
        .await
        .expect("once the place is free, calls are admitted again");
    let (_, metrics) = app.http_get("/metrics").await;
    assert!(
        metrics.contains("moderato_rpc_shed_total{rpc=\"SubmitComment\"}"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submission_whose_deadline_passed_while_queued_is_not_written() {
    let app = spawn_bounded(0).await;
    let key = app.key_for("default", Role::Publisher).await;
    // Loads the tenant's rules and models (the first load may write).
    app.comments(&key)
        .await
        .submit_comment(keyed("warm-up", "Bonjour."))
        .await
        .unwrap();
    let mut lock = hold_write_lock(&app).await;
    // The first submission's batch is in the database, waiting for the lock;
    // the second queues behind it with a short deadline.
    let first = tokio::spawn({
        let mut client = app.comments(&key).await;
        async move {
            client
                .submit_comment(keyed("first", "Bonne analyse."))
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut client = app.comments(&key).await;
    let mut late = tonic::Request::new(keyed("late", "Merci pour l'article."));
    late.set_timeout(Duration::from_millis(200));
    let timed_out = client.submit_comment(late).await.unwrap_err();
    assert!(
        matches!(timed_out.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{timed_out:?}"
    );

    lock.execute("ROLLBACK").await.unwrap();
    first
        .await
        .unwrap()
        .expect("the first submission is stored");
    // Give the writer time to reach the late job (it would write it now).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        count_comments(&app).await,
        2,
        "the submission nobody waited for was written"
    );
    // The client retries with its idempotency key: stored once.
    let retried = client
        .submit_comment(keyed("late", "Merci pour l'article."))
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    let again = client
        .submit_comment(keyed("late", "Merci pour l'article."))
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap();
    assert_eq!(retried.comment_id, again.comment_id);
    assert_eq!(count_comments(&app).await, 3);
}
