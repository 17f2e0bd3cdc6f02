//! Key lifecycle: names, expiry, last use, per-key rates, and revocations
//! that reach every replica within a second.

use std::time::{Duration, Instant};

use moderato::grpc::pb::{self, ApiKeyRole};
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::backend_tests;
use crate::helpers::{
    Backend, TestApp, comment, spawn_app, spawn_app_on, timestamp_in, violated_field,
};

backend_tests!(
    keys_carry_a_name_an_expiry_a_rate_and_their_last_use,
    an_expired_key_authenticates_nothing,
    a_key_over_its_rate_gets_resource_exhausted_with_a_retry_delay,
    replicas_split_a_key_rate_between_them,
    a_revocation_applies_on_every_replica_within_a_second,
);

async fn create_key(app: &TestApp, request: pb::CreateApiKeyRequest) -> pb::CreateApiKeyResponse {
    app.admin(&app.admin_key)
        .await
        .create_api_key(request)
        .await
        .unwrap()
        .into_inner()
}

fn publisher(rate: Option<u32>) -> pb::CreateApiKeyRequest {
    pb::CreateApiKeyRequest {
        role: ApiKeyRole::Publisher as i32,
        name: "CMS".into(),
        requests_per_second: rate,
        ..Default::default()
    }
}

async fn submit(app: &TestApp, key: &str) -> Result<(), tonic::Status> {
    app.comments(key)
        .await
        .submit_comment(comment("a-1", "reader", "Merci pour cet article."))
        .await
        .map(|_| ())
}

async fn keys_carry_a_name_an_expiry_a_rate_and_their_last_use(backend: Backend) {
    let app = spawn_app(backend).await;
    let expire = timestamp_in(3600.0);
    let created = create_key(
        &app,
        pb::CreateApiKeyRequest {
            role: ApiKeyRole::Publisher as i32,
            name: "  CMS production ".into(),
            expire_time: Some(expire),
            requests_per_second: Some(50),
        },
    )
    .await;
    let info = created.api_key.unwrap();
    assert_eq!(info.name, "CMS production");
    assert_eq!(info.expire_time.as_ref().unwrap().seconds, expire.seconds);
    assert_eq!(info.requests_per_second, Some(50));
    assert_eq!(info.last_use_time, None);

    submit(&app, &created.key).await.unwrap();
    let mut admin = app.admin(&app.admin_key).await;
    let mut waited = Duration::ZERO;
    let listed = loop {
        let keys = admin
            .list_api_keys(pb::ListApiKeysRequest {})
            .await
            .unwrap()
            .into_inner()
            .api_keys;
        let listed = keys.into_iter().find(|k| k.key_id == info.key_id).unwrap();
        if listed.last_use_time.is_some() || waited > Duration::from_secs(5) {
            break listed;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    };
    assert!(listed.last_use_time.is_some(), "the use was never recorded");
    assert_eq!(
        (
            listed.name.as_str(),
            listed.requests_per_second,
            listed.key_prefix.len()
        ),
        ("CMS production", Some(50), info.key_prefix.len())
    );

    for (request, field) in [
        (
            pb::CreateApiKeyRequest {
                name: "n".repeat(101),
                ..publisher(None)
            },
            "name",
        ),
        (
            pb::CreateApiKeyRequest {
                expire_time: Some(timestamp_in(-60.0)),
                ..publisher(None)
            },
            "expire_time",
        ),
        (publisher(Some(0)), "requests_per_second"),
        (
            pb::CreateApiKeyRequest {
                role: 0,
                ..publisher(None)
            },
            "role",
        ),
    ] {
        let refused = admin.create_api_key(request).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        assert_eq!(violated_field(&refused), field);
    }
}

async fn an_expired_key_authenticates_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = create_key(
        &app,
        pb::CreateApiKeyRequest {
            expire_time: Some(timestamp_in(1.5)),
            ..publisher(None)
        },
    )
    .await;
    submit(&app, &created.key)
        .await
        .expect("valid until it expires");
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let refused = submit(&app, &created.key).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert!(
        refused.message().contains("expired"),
        "{}",
        refused.message()
    );
}

async fn a_key_over_its_rate_gets_resource_exhausted_with_a_retry_delay(backend: Backend) {
    let app = spawn_app(backend).await;
    let limited = create_key(&app, publisher(Some(2))).await.key;
    let other = create_key(&app, publisher(None)).await.key;
    let mut results = Vec::new();
    for _ in 0..6 {
        results.push(submit(&app, &limited).await);
    }
    let served = results.iter().filter(|r| r.is_ok()).count();
    // A burst of one second's worth, then refusals (the calls take far less
    // than the half second a token takes to come back).
    assert!((2..=3).contains(&served), "{served} of 6 served at 2/s");
    let refused = results.into_iter().find_map(Result::err).unwrap();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(refused.message().contains("2 requests per second"));
    let delay = refused
        .get_details_retry_info()
        .and_then(|r| r.retry_delay)
        .expect("a RetryInfo delay");
    assert!(
        delay > Duration::ZERO && delay <= Duration::from_millis(500),
        "{delay:?}"
    );
    // Other keys of the tenant have their own budget.
    submit(&app, &other).await.unwrap();
    // The budget comes back.
    tokio::time::sleep(delay + Duration::from_millis(20)).await;
    submit(&app, &limited).await.unwrap();
}

async fn replicas_split_a_key_rate_between_them(backend: Backend) {
    let first = spawn_app(backend).await;
    let second = spawn_app_on(tempfile::tempdir().unwrap(), first.database_url.clone()).await;
    let key = create_key(&first, publisher(Some(8))).await.key;
    // Both have announced themselves at start; after one more heartbeat
    // (every 2 s) each has counted the other.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut served = 0;
    for app in [&first, &second] {
        for _ in 0..8 {
            served += usize::from(submit(app, &key).await.is_ok());
        }
    }
    // Each replica grants half of 8/s (bursts of 4): 8 in all, not 16.
    assert!(
        (8..=10).contains(&served),
        "{served} of 16 served at 8/s over two replicas"
    );
    second.stop().await.unwrap();
}

async fn a_revocation_applies_on_every_replica_within_a_second(backend: Backend) {
    let first = spawn_app(backend).await;
    let second = spawn_app_on(tempfile::tempdir().unwrap(), first.database_url.clone()).await;
    let created = create_key(&first, publisher(None)).await;
    // The second replica has the key in its cache.
    submit(&second, &created.key).await.unwrap();
    first
        .admin(&first.admin_key)
        .await
        .revoke_api_key(pb::RevokeApiKeyRequest {
            key_id: created.api_key.unwrap().key_id,
        })
        .await
        .unwrap();
    let revoked_at = Instant::now();
    loop {
        match submit(&second, &created.key).await {
            Err(status) if status.code() == Code::Unauthenticated => break,
            Err(other) => panic!("{other:?}"),
            Ok(()) => {
                assert!(
                    revoked_at.elapsed() < Duration::from_secs(1),
                    "the other replica still honoured the key after 1 s"
                );
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
    }
}
