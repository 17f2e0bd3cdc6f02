//! Smoke runs of the load generator (`moderato-bench`): the counts add up and
//! gRPC status codes, not HTTP successes, are what it counts. No throughput
//! assertion: speed lives in `bench/run` and BENCHMARKS.md.

use std::time::Duration;

use moderato::domain::Role;
use moderato::loadgen::run::{Plan, Stop, resolve, run};
use moderato::loadgen::template::Template;

use crate::backend_tests;
use crate::helpers::{Backend, spawn_app};

backend_tests!(a_submit_run_counts_every_call);

async fn bench(args: &[&str]) -> serde_json::Value {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_moderato-bench"))
        .args(args)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

async fn a_submit_run_counts_every_call(backend: Backend) {
    let app = spawn_app(backend).await;
    let publisher = app.key_for("default", Role::Publisher).await;
    let host = app.grpc_addr.to_string();
    let metadata = format!(r#"{{"authorization":"Bearer {publisher}"}}"#);
    let data = r#"[
        {"article_id":"a{{randomInt 1 4}}","author_id":"r{{.RequestNumber}}","body":"Le budget {{.RequestNumber}} doit être voté","client_comment_id":"c-{{.RequestNumber}}"},
        {"article_id":"a1","author_id":"s{{.RequestNumber}}","body":"Abonnez-vous à ma chaîne https://bit.ly/x{{.RequestNumber}}","client_comment_id":"c-{{.RequestNumber}}"}
    ]"#;
    let report = bench(&[
        "--insecure",
        "--call",
        "moderato.v1.CommentService.SubmitComment",
        "-d",
        data,
        "-m",
        &metadata,
        "-c",
        "10",
        "--connections",
        "2",
        "-n",
        "300",
        "-O",
        "json",
        &host,
    ])
    .await;
    assert_eq!(report["count"], 300);
    assert_eq!(report["statusCodeDistribution"]["OK"], 300, "{report}");
    assert_eq!(report["errorDistribution"], serde_json::json!({}));
    assert_eq!(report["endReason"], "normal");
    let buckets: u64 = report["histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(buckets, 300);
    assert!(report["fastest"].as_u64().unwrap() <= report["average"].as_u64().unwrap());
    assert!(report["average"].as_u64().unwrap() <= report["slowest"].as_u64().unwrap());

    // Every call stored one comment (distinct client ids).
    let tenant = app
        .store
        .find_tenant(&moderato::domain::TenantName::parse("default").unwrap())
        .await
        .unwrap()
        .unwrap();
    let created = app
        .store
        .list_audit_events(tenant, &moderato::storage::AuditQuery::all())
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "comment.created")
        .count();
    assert_eq!(created, 300);

    // A wrong key is an error status, counted as such.
    let refused = bench(&[
        "--insecure",
        "--call",
        "moderato.v1.CommentService/GetComment",
        "-d",
        r#"{"comment_id":"{{newUUID}}"}"#,
        "-m",
        r#"{"authorization":"Bearer mdr_not_a_key"}"#,
        "-n",
        "20",
        "-c",
        "4",
        "-O",
        "json",
        &host,
    ])
    .await;
    assert_eq!(refused["count"], 20);
    assert_eq!(refused["statusCodeDistribution"]["Unauthenticated"], 20);
    assert_eq!(
        refused["errorDistribution"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>(),
        20
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_echo_baseline_runs_for_a_duration() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(moderato::grpc::echo::serve(listener, None, async {
        let _ = stopped.await;
    }));
    let pool = prost_reflect::DescriptorPool::decode(moderato::grpc::pb::BENCH_FILE_DESCRIPTOR_SET)
        .unwrap();
    let report = run(Plan {
        name: "echo".into(),
        host: addr.to_string(),
        target: resolve(&pool, "moderato.bench.v1.EchoService.Echo").unwrap(),
        data: vec![Template::parse(r#"{"message":"bonjour"}"#).unwrap()],
        metadata: Vec::new(),
        concurrency: 4,
        connections: 1,
        stop: Stop::Duration(Duration::from_millis(300)),
        rps: Some(500.0),
        timeout: Duration::from_secs(5),
        tls: None,
    })
    .await
    .unwrap();
    assert_eq!(report.end_reason, "timeout");
    assert!(report.count > 0);
    assert_eq!(report.status_code_distribution["OK"], report.count);
    // Paced at 500/s for 0.3 s: about 150 calls, never far more.
    assert!(report.count <= 160, "{}", report.count);
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

/// Every ghz config we ship names a real method and carries data that
/// encodes for it once its templates are rendered.
#[test]
fn the_shipped_ghz_configs_are_valid() {
    use moderato::loadgen::run::encode;
    use moderato::loadgen::template::CallContext;
    let pool = prost_reflect::DescriptorPool::decode(moderato::grpc::pb::BENCH_FILE_DESCRIPTOR_SET)
        .unwrap();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/ghz");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let target = resolve(&pool, config["call"].as_str().unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(config["insecure"], true, "{}", path.display());
        assert!(
            config["m"]["authorization"]
                .as_str()
                .unwrap()
                .starts_with("Bearer ")
        );
        let messages = match &config["d"] {
            serde_json::Value::Array(items) => items.clone(),
            one => vec![one.clone()],
        };
        for message in messages {
            let rendered = Template::parse(&message.to_string())
                .unwrap()
                .render(&CallContext {
                    request_number: 7,
                    worker_id: 0,
                    call_uuid: uuid::Uuid::new_v4(),
                    unix_nanos: 0,
                });
            encode(&target.input, &rendered).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        seen += 1;
    }
    assert!(seen >= 5);
}
