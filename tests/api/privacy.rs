//! Readers' IP addresses are stored as keyed hashes, never as given.

use moderato::grpc::pb;
use sqlx::{Connection as _, Executor as _};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, comment, database_url_for, spawn_app_on};

backend_tests!(
    submitted_addresses_are_stored_as_keyed_hashes,
    addresses_stored_by_an_older_release_are_hashed_at_start,
);

const ADDRESSES: [&str; 2] = ["203.0.113.77", "2001:db8::77"];

async fn stored_addresses(url: &str) -> Vec<Option<String>> {
    let sql = "SELECT author_ip FROM comments ORDER BY create_time, comment_id";
    if url.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        let stored = sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap();
        // Closed, not dropped: a dropped connection closes on its worker
        // thread later, removing the WAL while the caller lists the files.
        conn.close().await.unwrap();
        stored
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap()
    }
}

async fn submit_from(app: &TestApp, author: &str, ip: &str) {
    app.comments(&app.admin_key)
        .await
        .submit_comment(pb::SubmitCommentRequest {
            author_ip: ip.to_owned(),
            ..comment(
                "a-1",
                author,
                &format!("Un avis de {author} sur le budget."),
            )
        })
        .await
        .unwrap();
}

async fn submitted_addresses_are_stored_as_keyed_hashes(backend: Backend) {
    let database = tempfile::tempdir().unwrap();
    let url = database_url_for(backend, &database).await;
    let app = spawn_app_on(tempfile::tempdir().unwrap(), url.clone()).await;
    submit_from(&app, "r1", ADDRESSES[0]).await;
    submit_from(&app, "r2", ADDRESSES[1]).await;
    submit_from(&app, "r3", ADDRESSES[0]).await;
    submit_from(&app, "r4", "").await;
    app.stop().await.unwrap();

    let stored = stored_addresses(&url).await;
    assert_eq!(stored.len(), 4);
    for value in stored.iter().flatten() {
        assert!(value.starts_with("h1:"), "{value}");
        assert!(ADDRESSES.iter().all(|ip| !value.contains(ip)));
    }
    // One address, one value: velocity and per-address rates still work.
    assert_eq!(stored[0], stored[2]);
    assert_ne!(stored[0], stored[1]);
    assert_eq!(stored[3], None);

    if backend == Backend::Sqlite {
        // Not in the database file, its WAL, or anywhere in its directory.
        for entry in std::fs::read_dir(database.path()).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            for ip in ADDRESSES {
                assert!(
                    !bytes.windows(ip.len()).any(|w| w == ip.as_bytes()),
                    "{ip} found in {}",
                    path.display()
                );
            }
        }
    }
}

async fn addresses_stored_by_an_older_release_are_hashed_at_start(backend: Backend) {
    let database = tempfile::tempdir().unwrap();
    let url = database_url_for(backend, &database).await;
    let before = spawn_app_on(tempfile::tempdir().unwrap(), url.clone()).await;
    submit_from(&before, "r1", ADDRESSES[0]).await;
    submit_from(&before, "r2", "").await;
    before.stop().await.unwrap();
    // What a release before the keyed hash wrote.
    let sql = "UPDATE comments SET author_ip = '198.51.100.9' WHERE author_id = 'r1'";
    if url.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        conn.execute(sql).await.unwrap();
    } else {
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        conn.execute(sql).await.unwrap();
    }

    let after = spawn_app_on(tempfile::tempdir().unwrap(), url.clone()).await;
    let stored = stored_addresses(&url).await;
    assert!(
        stored[0].as_deref().is_some_and(|v| v.starts_with("h1:")),
        "{stored:?}"
    );
    assert_eq!(stored[1], None);
    after.stop().await.unwrap();
}
