//! External classifiers: local servers that implement the Perspective and
//! OpenAI moderation contracts (answering, slow, failing), on both backends.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use moderato::grpc::pb;
use tonic::Code;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, submit_on, violated_field};

backend_tests!(
    a_classifier_s_scores_become_reasons_and_meet_the_tenant_s_thresholds,
    a_slow_or_failing_classifier_never_breaks_a_submission,
    classifier_settings_are_validated,
);

/// What the classifier server was asked: route and comment text.
type Calls = Arc<Mutex<Vec<(String, String)>>>;

/// Serves `/perspective` and `/openai` (each checks its key and shape and
/// scores a marker word high), `/slow` (answers after 2 s) and `/fail`
/// (500).
async fn classifier_server() -> (std::net::SocketAddr, Calls) {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    let calls: Calls = Default::default();
    let record = calls.clone();
    let app = axum::Router::new().fallback(
        move |uri: axum::http::Uri, headers: HeaderMap, body: String| {
            let record = record.clone();
            async move {
                let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let path = uri.path().to_owned();
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                match path.as_str() {
                    "/perspective" => {
                        let text = json["comment"]["text"].as_str().unwrap_or_default().to_owned();
                        record.lock().unwrap().push((path, text.clone()));
                        if header("x-goog-api-key") != "k-test" || json["doNotStore"] != true {
                            return StatusCode::FORBIDDEN.into_response();
                        }
                        let threat = if text.contains("menace-test") { 0.98 } else { 0.04 };
                        axum::Json(serde_json::json!({
                            "attributeScores": {
                                "TOXICITY": {"summaryScore": {"value": 0.1, "type": "PROBABILITY"}},
                                "THREAT": {"summaryScore": {"value": threat, "type": "PROBABILITY"}},
                                "INSULT": {"summaryScore": {"value": 0.02, "type": "PROBABILITY"}},
                            },
                            "languages": ["fr"],
                        }))
                        .into_response()
                    }
                    "/openai" => {
                        let text = json["input"].as_str().unwrap_or_default().to_owned();
                        record.lock().unwrap().push((path, text.clone()));
                        if header("authorization") != "Bearer sk-test" {
                            return StatusCode::UNAUTHORIZED.into_response();
                        }
                        let harassment = if text.contains("harcelement-test") { 0.8 } else { 0.01 };
                        axum::Json(serde_json::json!({
                            "id": "modr-1",
                            "model": "omni-moderation-latest",
                            "results": [{
                                "flagged": harassment > 0.5,
                                "categories": {"harassment": harassment > 0.5},
                                "category_scores": {"harassment": harassment, "self-harm": 0.0},
                            }],
                        }))
                        .into_response()
                    }
                    "/slow" => {
                        record.lock().unwrap().push((path, String::new()));
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        StatusCode::OK.into_response()
                    }
                    _ => {
                        record.lock().unwrap().push((path, String::new()));
                        StatusCode::INTERNAL_SERVER_ERROR.into_response()
                    }
                }
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, calls)
}

/// A server allowed to call loopback classifiers.
async fn spawn(backend: Backend) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let url = crate::helpers::database_url_for(backend, &dir).await;
    crate::helpers::spawn_app_configured(dir, url, |s| s.webhooks.allow_private = true).await
}

fn classifier(
    kind: pb::ExternalClassifierKind,
    url: String,
    api_key: &str,
    timeout_ms: u32,
) -> pb::UpdateTenantSettingsRequest {
    pb::UpdateTenantSettingsRequest {
        external_classifier: Some(pb::ExternalClassifier {
            kind: kind as i32,
            url,
            api_key: api_key.into(),
            timeout_ms,
            api_key_set: false,
        }),
        ..Default::default()
    }
}

fn reason<'a>(c: &'a pb::Comment, code: &str) -> Option<&'a pb::Reason> {
    c.reasons.iter().find(|r| r.code == code)
}

async fn a_classifier_s_scores_become_reasons_and_meet_the_tenant_s_thresholds(backend: Backend) {
    let app = spawn(backend).await;
    let (addr, calls) = classifier_server().await;
    let mut admin = app.admin(&app.admin_key).await;
    let settings = admin
        .update_tenant_settings(classifier(
            pb::ExternalClassifierKind::Perspective,
            format!("http://{addr}/perspective"),
            "k-test",
            0,
        ))
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap();
    let shown = settings.external_classifier.unwrap();
    assert_eq!(shown.api_key, "", "never returned");
    assert!(shown.api_key_set);
    assert_eq!(shown.timeout_ms, 300, "the default");
    let tenant = app.default_tenant().await;
    let stored = app
        .store
        .tenant_settings(tenant)
        .await
        .unwrap()
        .unwrap()
        .external_classifier
        .unwrap();
    assert!(
        stored.sealed_api_key.starts_with("s1:") && !stored.sealed_api_key.contains("k-test"),
        "stored sealed"
    );

    // A calm comment: the scores are explained, nothing changes.
    let key = app.admin_key.clone();
    let calm = submit_on(&app, &key, "a1", "alice", "Une analyse calme et utile.").await;
    assert_eq!(calm.status, pb::CommentStatus::Approved as i32);
    let threat = reason(&calm, "external.threat").expect("explained");
    assert_eq!(threat.score, Some(0.04));
    assert!(
        threat.message.contains("counted as threat"),
        "{}",
        threat.message
    );
    assert!(reason(&calm, "external.toxicity").is_some());
    // The classifier's threat score meets the tenant's reject threshold
    // (0.97) for threats although moderato's own model sees nothing.
    let flagged = submit_on(&app, &key, "a1", "bob", "Je dis menace-test, rien de plus.").await;
    assert_eq!(
        flagged.status,
        pb::CommentStatus::Rejected as i32,
        "{:?}",
        flagged.reasons
    );
    assert_eq!(
        reason(&flagged, "external.threat").unwrap().score,
        Some(0.98)
    );
    assert!(
        reason(&flagged, "toxicity.threat").is_some(),
        "{:?}",
        flagged.reasons
    );
    // The same text again: answered from the cache.
    let before = calls.lock().unwrap().len();
    let again = submit_on(&app, &key, "a2", "carol", "Une analyse calme et utile.").await;
    assert!(reason(&again, "external.threat").is_some());
    assert_eq!(calls.lock().unwrap().len(), before, "cached by text");

    // The OpenAI moderation shape; a category above the review threshold holds.
    admin
        .update_tenant_settings(classifier(
            pb::ExternalClassifierKind::OpenaiModeration,
            format!("http://{addr}/openai"),
            "sk-test",
            500,
        ))
        .await
        .unwrap();
    let held = submit_on(&app, &key, "a1", "dan", "Encore du harcelement-test ici.").await;
    assert_eq!(
        held.status,
        pb::CommentStatus::PendingReview as i32,
        "{:?}",
        held.reasons
    );
    assert_eq!(
        reason(&held, "external.harassment").unwrap().score,
        Some(0.8)
    );
    assert!(reason(&held, "toxicity.insult").is_some());
    assert!(
        reason(&held, "external.self_harm").is_some(),
        "explained, mapped to nothing"
    );
    // An update without a key keeps the stored one.
    admin
        .update_tenant_settings(classifier(
            pb::ExternalClassifierKind::OpenaiModeration,
            format!("http://{addr}/openai"),
            "",
            400,
        ))
        .await
        .unwrap();
    let kept = submit_on(&app, &key, "a1", "erin", "Un avis différent.").await;
    assert!(
        reason(&kept, "external.harassment").is_some(),
        "{:?}",
        kept.reasons
    );
    assert!(reason(&kept, "external.unavailable").is_none());

    // Removed: no opinion asked.
    let removed = admin
        .update_tenant_settings(pb::UpdateTenantSettingsRequest {
            remove_external_classifier: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap();
    assert!(removed.external_classifier.is_none());
    let before = calls.lock().unwrap().len();
    let plain = submit_on(&app, &key, "a1", "fred", "Sans avis extérieur.").await;
    assert!(
        plain
            .reasons
            .iter()
            .all(|r| !r.code.starts_with("external."))
    );
    assert_eq!(calls.lock().unwrap().len(), before);

    // The trail shows the changes, never the key.
    let trail = app
        .store
        .list_audit_events(
            tenant,
            &moderato::storage::AuditQuery {
                action: Some("tenant.settings_updated".into()),
                ..moderato::storage::AuditQuery::all()
            },
        )
        .await
        .unwrap();
    assert_eq!(trail.len(), 4);
    let text = serde_json::to_string(&trail.iter().map(|e| &e.detail).collect::<Vec<_>>()).unwrap();
    assert!(text.contains("openai_moderation") && text.contains("/perspective"));
    assert!(!text.contains("k-test") && !text.contains("sk-test"));
    app.stop().await.unwrap();
}

async fn a_slow_or_failing_classifier_never_breaks_a_submission(backend: Backend) {
    let app = spawn(backend).await;
    let (addr, calls) = classifier_server().await;
    let mut admin = app.admin(&app.admin_key).await;
    let key = app.admin_key.clone();
    admin
        .update_tenant_settings(classifier(
            pb::ExternalClassifierKind::Perspective,
            format!("http://{addr}/slow"),
            "k-test",
            100,
        ))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let slow = submit_on(&app, &key, "a1", "alice", "Un avis posé.").await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "not waiting for the 2 s answer"
    );
    assert_eq!(
        slow.status,
        pb::CommentStatus::Approved as i32,
        "the in-process verdict"
    );
    let why = reason(&slow, "external.unavailable").expect("said so");
    assert!(why.message.contains("100 ms"), "{}", why.message);

    // A failing classifier: five failures in a row open the circuit, and
    // the next submissions do not call it at all.
    admin
        .update_tenant_settings(classifier(
            pb::ExternalClassifierKind::Perspective,
            format!("http://{addr}/fail"),
            "k-test",
            300,
        ))
        .await
        .unwrap();
    let texts = [
        "La réforme des retraites mérite un vrai débat.",
        "Le budget de la santé reste trop faible cette année.",
        "Merci pour ce reportage sur le port de Dakar.",
        "Les élections locales approchent, restons vigilants.",
        "Bonne analyse de la situation économique régionale.",
        "Je partage cet article avec mes collègues enseignants.",
        "La coopération entre nos pays progresse lentement.",
        "Un point de vue nuancé, c'est rare et précieux.",
    ];
    for (i, text) in texts.iter().enumerate() {
        let c = submit_on(&app, &key, "a1", &format!("lecteur-{i}"), text).await;
        assert_eq!(
            c.status,
            pb::CommentStatus::Approved as i32,
            "{:?}",
            c.reasons
        );
        let why = &reason(&c, "external.unavailable").expect("said so").message;
        if i < 5 {
            assert!(why.contains("answered 500"), "{i}: {why}");
        } else {
            assert!(why.contains("skipped"), "{i}: {why}");
        }
    }
    let failing = calls
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| p == "/fail")
        .count();
    assert_eq!(failing, 5, "the open circuit stopped the calls");
    // Another classifier has a circuit of its own.
    admin
        .update_tenant_settings(classifier(
            pb::ExternalClassifierKind::Perspective,
            format!("http://{addr}/perspective"),
            "k-test",
            300,
        ))
        .await
        .unwrap();
    let fine = submit_on(&app, &key, "a1", "carol", "De retour.").await;
    assert!(
        reason(&fine, "external.threat").is_some(),
        "{:?}",
        fine.reasons
    );
    let (_, metrics) = app.http_get("/metrics").await;
    for outcome in ["ok", "timeout", "error", "circuit_open"] {
        assert!(
            metrics.contains(&format!(
                "moderato_external_classifier_calls_total{{outcome=\"{outcome}\"}}"
            )),
            "{outcome}"
        );
    }
    app.stop().await.unwrap();
}

async fn classifier_settings_are_validated(backend: Backend) {
    let app = spawn(backend).await;
    let mut admin = app.admin(&app.admin_key).await;
    let ok = || pb::ExternalClassifier {
        kind: pb::ExternalClassifierKind::Perspective as i32,
        url: "https://commentanalyzer.googleapis.com/v1alpha1/comments:analyze".into(),
        api_key: "k".into(),
        timeout_ms: 300,
        api_key_set: false,
    };
    for (change, field) in [
        (
            pb::ExternalClassifier { kind: 0, ..ok() },
            "external_classifier.kind",
        ),
        (
            pb::ExternalClassifier {
                url: "ftp://x.example/".into(),
                ..ok()
            },
            "external_classifier.url",
        ),
        (
            pb::ExternalClassifier {
                timeout_ms: 60_000,
                ..ok()
            },
            "external_classifier.timeout_ms",
        ),
        (
            pb::ExternalClassifier {
                api_key: "a\nb".into(),
                ..ok()
            },
            "external_classifier.api_key",
        ),
    ] {
        let err = admin
            .update_tenant_settings(pb::UpdateTenantSettingsRequest {
                external_classifier: Some(change),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(violated_field(&err), field);
    }
    let err = admin
        .update_tenant_settings(pb::UpdateTenantSettingsRequest {
            external_classifier: Some(ok()),
            remove_external_classifier: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_field(&err), "remove_external_classifier");
    let settings = admin
        .get_tenant_settings(pb::GetTenantSettingsRequest {})
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap();
    assert!(settings.external_classifier.is_none(), "nothing was stored");
}
