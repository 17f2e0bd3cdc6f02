//! The moderator console's page and its JSON calls, over HTTP on the
//! server's HTTP port (issue #13). The browser tests come on top of these.

use std::path::Path;

use moderato::domain::Role;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, HttpResponse, TestApp, comment, http_request, spawn_app};

backend_tests!(
    the_console_is_served_from_the_binary_with_a_strict_policy,
    console_calls_need_a_reviewer_key,
    the_console_lists_claims_and_decides_held_comments,
    console_decisions_are_never_applied_twice,
    console_input_is_validated_with_the_field_named,
    the_queue_moves_stream_to_the_console_and_resume_after_a_cursor,
    the_console_shows_authors_and_trails_and_sets_standings,
    admins_list_and_test_rules_and_change_settings_in_the_console,
    ten_thousand_held_items_page_through_without_gaps,
);

async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> HttpResponse {
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth.as_str()));
    }
    let body = body.map(|b| b.to_string());
    http_request(app.http_addr, method, path, &headers, body.as_deref()).await
}

/// Tenant `default` in pre-moderation with the given comments held; a
/// moderator key.
async fn held(app: &TestApp, bodies: &[&str]) -> String {
    app.premoderate().await;
    let publisher = app.key_for("default", Role::Publisher).await;
    let mut client = app.comments(&publisher).await;
    for (i, body) in bodies.iter().enumerate() {
        client
            .submit_comment(comment("budget-2027", &format!("reader-{i}"), body))
            .await
            .unwrap();
    }
    app.key_for("default", Role::Moderator).await
}

async fn the_console_is_served_from_the_binary_with_a_strict_policy(backend: Backend) {
    let app = spawn_app(backend).await;
    let page = call(&app, "GET", "/console", None, None).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(
        page.header("content-security-policy"),
        Some(moderato::console::CONTENT_SECURITY_POLICY)
    );
    assert!(
        moderato::console::CONTENT_SECURITY_POLICY.contains("script-src 'self'")
            && !moderato::console::CONTENT_SECURITY_POLICY.contains("unsafe"),
        "scripts from the binary only, nothing inline"
    );
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert!(page.body.contains(r#"src="/console/console.js""#));
    assert!(
        !page.body.contains("http://") && !page.body.contains("https://"),
        "nothing is loaded from elsewhere"
    );
    assert!(page.header("set-cookie").is_none(), "no cookie, ever");

    let script = call(&app, "GET", "/console/console.js", None, None).await;
    assert_eq!(script.status, 200);
    assert_eq!(
        script.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(
        !script.body.contains("innerHTML"),
        "comment text goes through textContent"
    );
    let style = call(&app, "GET", "/console/console.css", None, None).await;
    assert_eq!(style.status, 200);
    assert_eq!(
        call(&app, "GET", "/console/missing.js", None, None)
            .await
            .status,
        404
    );
}

async fn console_calls_need_a_reviewer_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let none = call(&app, "GET", "/console/api/session", None, None).await;
    assert_eq!(none.status, 401);
    assert_eq!(none.json()["error"]["code"], "unauthenticated");
    assert!(none.header("content-security-policy").is_some());

    let unknown = call(
        &app,
        "GET",
        "/console/api/session",
        Some("mdr_not-a-key"),
        None,
    )
    .await;
    assert_eq!(unknown.status, 401);

    let publisher = app.key_for("default", Role::Publisher).await;
    let forbidden = call(&app, "GET", "/console/api/queue", Some(&publisher), None).await;
    assert_eq!(forbidden.status, 403);
    assert_eq!(forbidden.json()["error"]["code"], "forbidden");

    let moderator = app.key_for("default", Role::Moderator).await;
    let session = call(&app, "GET", "/console/api/session", Some(&moderator), None).await;
    assert_eq!(session.status, 200, "{}", session.body);
    assert_eq!(session.json()["role"], "moderator");
    let admin = call(
        &app,
        "GET",
        "/console/api/session",
        Some(&app.admin_key),
        None,
    )
    .await;
    assert_eq!(admin.json()["role"], "admin");

    // Another tenant's moderator sees none of this tenant's queue.
    held(&app, &["Un commentaire à relire"]).await;
    let other = app.key_for("other", Role::Moderator).await;
    let queue = call(&app, "GET", "/console/api/queue", Some(&other), None).await;
    assert_eq!(queue.json()["items"], json!([]));
}

async fn the_console_lists_claims_and_decides_held_comments(backend: Backend) {
    let app = spawn_app(backend).await;
    let moderator = held(
        &app,
        &[
            "Quel con ce ministre, il ment sur la dette 😡",
            "La coopération régionale avance, mais lentement.",
        ],
    )
    .await;
    let queue = call(
        &app,
        "GET",
        "/console/api/queue?order=oldest",
        Some(&moderator),
        None,
    )
    .await;
    assert_eq!(queue.status, 200, "{}", queue.body);
    let items = queue.json()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2);
    assert_eq!(queue.json()["total"], 2);
    assert_eq!(queue.json()["total_capped"], false);
    let elsewhere = call(
        &app,
        "GET",
        "/console/api/queue?article_id=other",
        Some(&moderator),
        None,
    )
    .await;
    assert_eq!(elsewhere.json()["total"], 0, "counted with the filters");
    let first = &items[0]["comment"];
    assert_eq!(
        first["text"],
        "Quel con ce ministre, il ment sur la dette 😡"
    );
    // Spans are byte offsets into `text`: the insult is bytes 5..8.
    let spans: Vec<(u64, u64)> = first["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| Some((r["span"]["start"].as_u64()?, r["span"]["end"].as_u64()?)))
        .collect();
    let text = first["text"].as_str().unwrap();
    assert!(
        spans
            .iter()
            .any(|&(s, e)| &text[s as usize..e as usize] == "con"),
        "{spans:?}"
    );

    let claimed = call(
        &app,
        "POST",
        "/console/api/claims",
        Some(&moderator),
        Some(json!({ "max_items": 1, "order": "oldest", "moderator_id": "awa" })),
    )
    .await;
    assert_eq!(claimed.status, 200, "{}", claimed.body);
    let item = claimed.json()["items"][0].clone();
    assert_eq!(
        item["claimed_by"], "awa",
        "signed with the moderator's name"
    );
    assert_eq!(item["comment"]["text"], first["text"]);

    let decided = call(
        &app,
        "POST",
        "/console/api/decisions",
        Some(&moderator),
        Some(json!({
            "review_id": item["review_id"],
            "decision": "reject",
            "reason_code": "toxicity.insult",
            "note": "insulte",
            "expected_version": item["comment"]["version"],
            "moderator_id": "awa",
        })),
    )
    .await;
    assert_eq!(decided.status, 200, "{}", decided.body);
    assert_eq!(decided.json()["comment"]["status"], "rejected");

    let left = call(&app, "GET", "/console/api/queue", Some(&moderator), None).await;
    let left = left.json()["items"].as_array().unwrap().clone();
    assert_eq!(left.len(), 1, "the decided item left the queue");
    assert_eq!(
        left[0]["comment"]["text"],
        "La coopération régionale avance, mais lentement."
    );

    // The rejected comment is reopened: only at the version it has, once.
    let rejected = decided.json()["comment"].clone();
    let reopen_path = format!(
        "/console/api/comments/{}/reopen",
        rejected["comment_id"].as_str().unwrap()
    );
    let reopen = |version: i64| {
        let (app, moderator, path) = (&app, moderator.clone(), reopen_path.clone());
        async move {
            call(
                app,
                "POST",
                &path,
                Some(&moderator),
                Some(json!({ "expected_version": version, "note": "à revoir" })),
            )
            .await
        }
    };
    let version = rejected["version"].as_i64().unwrap();
    let stale = reopen(version + 7).await;
    assert_eq!(stale.status, 409);
    assert_eq!(stale.json()["error"]["code"], "stale");
    let reopened = reopen(version).await;
    assert_eq!(reopened.status, 200, "{}", reopened.body);
    assert_eq!(reopened.json()["comment"]["status"], "pending_review");
    let twice = reopen(0).await;
    assert_eq!(twice.status, 409);
    assert_eq!(twice.json()["error"]["code"], "in_queue");
    let queue = call(&app, "GET", "/console/api/queue", Some(&moderator), None).await;
    assert_eq!(queue.json()["items"].as_array().unwrap().len(), 2);
}

async fn console_decisions_are_never_applied_twice(backend: Backend) {
    let app = spawn_app(backend).await;
    let moderator = held(&app, &["Premier avis", "Second avis sur le budget"]).await;
    let claim = |max: u32| {
        let (app, moderator) = (&app, moderator.clone());
        async move {
            call(
                app,
                "POST",
                "/console/api/claims",
                Some(&moderator),
                Some(json!({ "max_items": max, "order": "oldest" })),
            )
            .await
            .json()["items"]
                .as_array()
                .unwrap()
                .clone()
        }
    };
    let items = claim(2).await;
    let decide = |item: &Value, version: i64| {
        let (app, moderator, review_id) = (&app, moderator.clone(), item["review_id"].clone());
        async move {
            call(
                app,
                "POST",
                "/console/api/decisions",
                Some(&moderator),
                Some(json!({ "review_id": review_id, "decision": "approve", "expected_version": version })),
            )
            .await
        }
    };
    let version = items[0]["comment"]["version"].as_i64().unwrap();
    assert_eq!(decide(&items[0], version).await.status, 200);
    let again = decide(&items[0], version).await;
    assert_eq!(again.status, 409);
    assert_eq!(again.json()["error"]["code"], "already_decided");

    let stale = decide(&items[1], version + 1).await;
    assert_eq!(stale.status, 409);
    assert_eq!(stale.json()["error"]["code"], "stale");
    assert_eq!(stale.json()["error"]["current_version"], version);
    let queue = call(&app, "GET", "/console/api/queue", Some(&moderator), None).await;
    assert_eq!(
        queue.json()["items"].as_array().unwrap().len(),
        1,
        "a stale decision changes nothing"
    );
}

async fn console_input_is_validated_with_the_field_named(backend: Backend) {
    let app = spawn_app(backend).await;
    let moderator = held(&app, &["Un avis"]).await;
    let field = |response: HttpResponse| {
        assert_eq!(response.status, 400, "{}", response.body);
        let error = response.json()["error"].clone();
        assert_eq!(error["code"], "invalid_argument");
        error["field"].as_str().unwrap_or("").to_owned()
    };
    let queue = |query: &str| {
        let (app, moderator) = (&app, moderator.clone());
        let path = format!("/console/api/queue?{query}");
        async move { call(app, "GET", &path, Some(&moderator), None).await }
    };
    assert_eq!(field(queue("order=sideways").await), "order");
    assert_eq!(field(queue("min_spam_score=2").await), "min_spam_score");
    assert_eq!(field(queue("page_size=-1").await), "page_size");
    assert_eq!(field(queue("page_token=garbage").await), "page_token");
    let post = |path: &'static str, body: Value| {
        let (app, moderator) = (&app, moderator.clone());
        async move { call(app, "POST", path, Some(&moderator), Some(body)).await }
    };
    assert_eq!(
        field(post("/console/api/claims", json!({ "max_items": 1000 })).await),
        "max_items"
    );
    assert_eq!(
        field(
            post(
                "/console/api/decisions",
                json!({ "review_id": "x", "decision": "approve" })
            )
            .await
        ),
        "review_id"
    );
    let review_id = uuid::Uuid::now_v7().to_string();
    assert_eq!(
        field(
            post(
                "/console/api/decisions",
                json!({ "review_id": review_id, "decision": "maybe" })
            )
            .await
        ),
        "decision"
    );
    assert_eq!(
        field(
            post(
                "/console/api/decisions",
                json!({ "review_id": review_id, "decision": "reject", "reason_code": "Not A Code" })
            )
            .await
        ),
        "reason_code"
    );
    let missing = post(
        "/console/api/decisions",
        json!({ "review_id": review_id, "decision": "approve" }),
    )
    .await;
    assert_eq!(missing.status, 404);
    let malformed = http_request(
        app.http_addr,
        "POST",
        "/console/api/decisions",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &format!("Bearer {moderator}")),
        ],
        Some("{not json"),
    )
    .await;
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.json()["error"]["code"], "invalid_argument");
}

async fn the_console_shows_authors_and_trails_and_sets_standings(backend: Backend) {
    let app = spawn_app(backend).await;
    let moderator = held(&app, &["Un avis sur la dette publique"]).await;
    let author = call(
        &app,
        "GET",
        "/console/api/authors/reader-0",
        Some(&moderator),
        None,
    )
    .await;
    assert_eq!(author.status, 200, "{}", author.body);
    let author = author.json();
    assert_eq!(author["pending_review"], 1);
    assert_eq!(author["in_force"]["standing"], "normal");
    assert_eq!(author["recent"][0]["text"], "Un avis sur la dette publique");
    assert_eq!(
        call(
            &app,
            "GET",
            "/console/api/authors/nobody",
            Some(&moderator),
            None
        )
        .await
        .status,
        404
    );

    let set = |body: Value| {
        let (app, moderator) = (&app, moderator.clone());
        async move {
            call(
                app,
                "POST",
                "/console/api/authors/reader-0/standing",
                Some(&moderator),
                Some(body),
            )
            .await
        }
    };
    let refused = set(json!({ "standing": "exiled", "reason": "x" })).await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.json()["error"]["field"], "standing");
    let no_reason = set(json!({ "standing": "banned", "reason": " " })).await;
    assert_eq!(no_reason.json()["error"]["field"], "reason");
    let bad_time = set(json!({ "standing": "suspended", "until": "demain", "reason": "x" })).await;
    assert_eq!(bad_time.json()["error"]["field"], "until");
    let until = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let suspended = set(json!({
        "standing": "suspended", "until": until, "reason": "insultes répétées", "moderator_id": "awa"
    }))
    .await;
    assert_eq!(suspended.status, 200, "{}", suspended.body);
    let suspended = suspended.json();
    assert_eq!(suspended["in_force"]["standing"], "suspended");
    assert_eq!(suspended["last_set"]["set_by"], "awa");
    assert_eq!(suspended["last_set"]["reason"], "insultes répétées");

    let comment_id = author["recent"][0]["comment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let trail = call(
        &app,
        "GET",
        &format!("/console/api/comments/{comment_id}/trail"),
        Some(&moderator),
        None,
    )
    .await;
    assert_eq!(trail.status, 200, "{}", trail.body);
    let actions: Vec<Value> = trail.json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].clone())
        .collect();
    assert_eq!(actions, [json!("comment.created")]);
    let invalid = call(
        &app,
        "GET",
        "/console/api/comments/nope/trail",
        Some(&moderator),
        None,
    )
    .await;
    assert_eq!(invalid.status, 400);
    assert_eq!(invalid.json()["error"]["field"], "comment_id");
}

async fn admins_list_and_test_rules_and_change_settings_in_the_console(backend: Backend) {
    let app = spawn_app(backend).await;
    let moderator = app.key_for("default", Role::Moderator).await;
    let admin = app.admin_key.clone();
    for path in ["/console/api/rules", "/console/api/settings"] {
        let refused = call(&app, "GET", path, Some(&moderator), None).await;
        assert_eq!(refused.status, 403, "{path}: admins only");
    }
    let rules = call(&app, "GET", "/console/api/rules", Some(&admin), None).await;
    assert_eq!(rules.status, 200, "{}", rules.body);
    let rules = rules.json();
    assert!(
        !rules["rules"].as_array().unwrap().is_empty(),
        "the default rules: {rules}"
    );
    assert!(rules["rules"][0]["rule"]["id"].is_string());

    let tested = call(
        &app,
        "POST",
        "/console/api/rules/test",
        Some(&admin),
        Some(json!({ "body": "😡 Quel con ce type" })),
    )
    .await;
    assert_eq!(tested.status, 200, "{}", tested.body);
    let tested = tested.json();
    let text = tested["text"].as_str().unwrap();
    let words: Vec<&str> = tested["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["code"] == "rule.words")
        .filter_map(|r| {
            let (s, e) = (r["span"]["start"].as_u64()?, r["span"]["end"].as_u64()?);
            text.get(s as usize..e as usize)
        })
        .collect();
    assert_eq!(words, ["con"]);
    let empty = call(
        &app,
        "POST",
        "/console/api/rules/test",
        Some(&admin),
        Some(json!({ "body": "" })),
    )
    .await;
    assert_eq!(empty.json()["error"]["field"], "body");

    let settings = call(&app, "GET", "/console/api/settings", Some(&admin), None).await;
    assert_eq!(settings.json()["moderation_mode"], "post");
    let crossed = call(
        &app,
        "POST",
        "/console/api/settings",
        Some(&admin),
        Some(json!({ "review_threshold": 0.9, "reject_threshold": 0.5 })),
    )
    .await;
    assert_eq!(crossed.status, 400, "{}", crossed.body);
    let bad_mode = call(
        &app,
        "POST",
        "/console/api/settings",
        Some(&admin),
        Some(json!({ "moderation_mode": "later" })),
    )
    .await;
    assert_eq!(bad_mode.json()["error"]["field"], "moderation_mode");
    let changed = call(
        &app,
        "POST",
        "/console/api/settings",
        Some(&admin),
        Some(json!({ "moderation_mode": "pre", "review_threshold": 0.4 })),
    )
    .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    let again = call(&app, "GET", "/console/api/settings", Some(&admin), None)
        .await
        .json();
    assert_eq!(again["moderation_mode"], "pre");
    assert_eq!(again["review_threshold"], 0.4);
    assert_eq!(again["toxicity"].as_array().unwrap().len(), 5);
    let limits = call(
        &app,
        "POST",
        "/console/api/settings",
        Some(&admin),
        Some(json!({
            "max_comments_per_author_per_minute": 5,
            "max_comments_per_ip_per_minute": 30,
            "retain_rejected_bodies_days": 30,
            "retain_bodies_days": 0,
        })),
    )
    .await;
    assert_eq!(limits.status, 200, "{}", limits.body);
    let limits = limits.json();
    assert_eq!(
        (
            limits["max_comments_per_author_per_minute"].clone(),
            limits["max_comments_per_ip_per_minute"].clone(),
            limits["retain_rejected_bodies_days"].clone(),
            limits["moderation_mode"].clone(),
        ),
        (json!(5), json!(30), json!(30), json!("pre"))
    );
    let too_many = call(
        &app,
        "POST",
        "/console/api/settings",
        Some(&admin),
        Some(json!({ "max_comments_per_author_per_minute": 51 })),
    )
    .await;
    assert_eq!(
        too_many.json()["error"]["field"],
        "max_comments_per_author_per_minute"
    );

    let threat = call(
        &app,
        "POST",
        "/console/api/settings",
        Some(&admin),
        Some(json!({ "toxicity": [{ "category": "threat", "review": 0.3, "reject": 0.8 }] })),
    )
    .await;
    assert_eq!(threat.status, 200, "{}", threat.body);
    let categories = threat.json()["toxicity"].clone();
    let threat = categories
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["category"] == "threat")
        .unwrap()
        .clone();
    assert_eq!(
        (threat["review"].clone(), threat["reject"].clone()),
        (json!(0.3), json!(0.8))
    );
    let unknown = call(
        &app,
        "POST",
        "/console/api/settings",
        Some(&admin),
        Some(json!({ "toxicity": [{ "category": "rudeness", "review": 0.3, "reject": 0.8 }] })),
    )
    .await;
    assert_eq!(unknown.json()["error"]["field"], "toxicity[0].category");
}

/// Keyset pages: 10,000 held items in 20 pages of 500, each item once,
/// the count exact.
async fn ten_thousand_held_items_page_through_without_gaps(backend: Backend) {
    use moderato::domain::{Actor, CommentStatus};

    use crate::storage::{new_comment, now, record_of, verdict};
    let app = spawn_app(backend).await;
    let tenant = app.default_tenant().await;
    let (held, actor) = (verdict(CommentStatus::PendingReview, 0), Actor::system());
    let comments: Vec<_> = (0..10_000)
        .map(|i| new_comment("a1", &format!("Avis numéro {i}"), None))
        .collect();
    for chunk in comments.chunks(500) {
        let batch: Vec<_> = chunk
            .iter()
            .map(|c| (tenant, record_of(c, &held, &actor, now())))
            .collect();
        for outcome in app.store.insert_comments(&batch).await {
            outcome.unwrap();
        }
    }
    let moderator = app.key_for("default", Role::Moderator).await;
    let mut seen = std::collections::HashSet::new();
    let (mut token, mut pages) = (String::new(), 0);
    loop {
        let token_param: String = token
            .chars()
            .map(|c| match c {
                '+' => "%2B".to_owned(),
                '/' => "%2F".to_owned(),
                '=' => "%3D".to_owned(),
                c => c.to_string(),
            })
            .collect();
        let page = call(
            &app,
            "GET",
            &format!("/console/api/queue?page_size=500&page_token={token_param}"),
            Some(&moderator),
            None,
        )
        .await;
        assert_eq!(page.status, 200, "{}", page.body);
        let page = page.json();
        assert_eq!(
            (page["total"].clone(), page["total_capped"].clone()),
            (json!(10_000), json!(false))
        );
        for item in page["items"].as_array().unwrap() {
            assert!(
                seen.insert(item["review_id"].as_str().unwrap().to_owned()),
                "an item twice"
            );
        }
        pages += 1;
        token = page["next_page_token"].as_str().unwrap().to_owned();
        if token.is_empty() {
            break;
        }
    }
    assert_eq!((seen.len(), pages), (10_000, 20));
}

/// An open server-sent-events response, read as it arrives.
struct EventStream {
    stream: tokio::net::TcpStream,
    seen: String,
    /// Where the next `until` starts looking.
    cursor: usize,
}

impl EventStream {
    async fn open(app: &TestApp, key: &str, query: &str) -> EventStream {
        use tokio::io::AsyncWriteExt as _;
        let mut stream = tokio::net::TcpStream::connect(app.http_addr).await.unwrap();
        let request = format!(
            "GET /console/api/queue/events{query} HTTP/1.1\r\nHost: test\r\n\
             Authorization: Bearer {key}\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut events = EventStream {
            stream,
            seen: String::new(),
            cursor: 0,
        };
        events.until("\r\n\r\n").await;
        assert!(events.seen.starts_with("HTTP/1.1 200"), "{}", events.seen);
        assert!(events.seen.contains("content-type: text/event-stream"));
        // The first events may have come with the headers.
        events.cursor = events.seen.find("\r\n\r\n").unwrap() + 4;
        events
    }

    /// Reads until `needle` has arrived (at most 10 s); returns what came
    /// since the last call.
    async fn until(&mut self, needle: &str) -> String {
        use tokio::io::AsyncReadExt as _;
        let start = self.cursor;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while !self.seen[start..].contains(needle) {
            let mut buffer = [0u8; 4096];
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut buffer))
                .await
                .unwrap_or_else(|_| panic!("no {needle:?} in {:?}", &self.seen[start..]))
                .unwrap();
            assert!(n > 0, "the stream ended: {}", self.seen);
            self.seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
        self.cursor = self.seen.len();
        self.seen[start..].to_owned()
    }
}

async fn the_queue_moves_stream_to_the_console_and_resume_after_a_cursor(backend: Backend) {
    let app = spawn_app(backend).await;
    // One comment held before the stream opens: "from now on" skips it.
    let moderator = held(&app, &["Un avis déjà là"]).await;
    // Numbering runs after the commit: "from now on" starts after the last
    // numbered event, so wait until the held comment's event has its number.
    let tenant = app.default_tenant().await;
    for _ in 0..250 {
        if app.store.last_decision_sequence(tenant).await.unwrap() >= 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut events = EventStream::open(&app, &moderator, "").await;
    let publisher = app.key_for("default", Role::Publisher).await;
    let comment_id = app
        .comments(&publisher)
        .await
        .submit_comment(comment(
            "budget-2027",
            "kofi",
            "Un nouvel avis sur la dette",
        ))
        .await
        .unwrap()
        .into_inner()
        .comment
        .unwrap()
        .comment_id;
    let entered = events.until(&comment_id).await;
    assert!(entered.contains(r#""move":"entered""#), "{entered}");
    assert!(
        !events.seen.contains("Un avis"),
        "no comment text in the stream"
    );
    let sequence: i64 = entered
        .split("id: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("an id line in {entered}"));
    assert_eq!(sequence, 2, "the comment held before is not replayed");

    let claimed = call(
        &app,
        "POST",
        "/console/api/claims",
        Some(&moderator),
        Some(json!({ "max_items": 2, "order": "newest" })),
    )
    .await
    .json();
    let item = claimed["items"][0].clone();
    assert_eq!(item["comment"]["comment_id"], comment_id.as_str());
    let decided = call(
        &app,
        "POST",
        "/console/api/decisions",
        Some(&moderator),
        Some(json!({ "review_id": item["review_id"], "decision": "approve" })),
    )
    .await;
    assert_eq!(decided.status, 200);
    let left = events.until(r#""move":"left""#).await;
    assert!(left.contains(&comment_id), "{left}");

    // Resuming after the first event delivers the later one again, once.
    let mut resumed =
        EventStream::open(&app, &moderator, &format!("?after_sequence={sequence}")).await;
    let again = resumed.until(r#""move":"left""#).await;
    assert!(
        again.contains(&comment_id) && !again.contains(r#""move":"entered""#),
        "{again}"
    );

    let refused = call(
        &app,
        "GET",
        "/console/api/queue/events?after_sequence=-1",
        Some(&moderator),
        None,
    )
    .await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.json()["error"]["field"], "after_sequence");
}

/// The console in Chromium, driven by Playwright (`tests/browser`): sign
/// in, highlighted spans (accents and emoji, where UTF-8 and UTF-16 offsets
/// differ), approve, reject and bulk reject by keyboard, an item decided in
/// a second browser context leaving the first one's list and its stale
/// decision reported, English remembered, no cookie, axe-core, phone width.
/// One backend: the page does not know which one runs. Screenshots go to
/// `target/browser-artifacts`. Needs Node, `npm ci --prefix tests/browser`
/// and Chromium (`./scripts/test` installs them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_works_in_a_real_browser() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "run `npm ci --prefix tests/browser` first (./scripts/test does)"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "no Chromium at {chromium}: install Debian's `chromium` (./scripts/test does) or set CHROMIUM"
    );
    let app = spawn_app(Backend::Sqlite).await;
    let comments = [
        ("Quel con ce ministre, il ment sur la dette", vec!["con"]),
        ("😡 Franchement, quel con ce député !", vec!["con"]),
        ("La coopération régionale avance, mais lentement.", vec![]),
        (
            "Le prix du riz a encore augmenté à Abidjan et Bouaké.",
            vec![],
        ),
        ("Très bonne analyse du budget, merci.", vec![]),
        (
            "Les électeurs méritent des résultats par bureau de vote.",
            vec![],
        ),
    ];
    let bodies: Vec<&str> = comments.iter().map(|(text, _)| *text).collect();
    let moderator = held(&app, &bodies).await;
    let expected = serde_json::Value::Array(
        comments
            .iter()
            .map(|(text, marks)| json!({ "text": text, "marks": marks }))
            .collect(),
    );
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-artifacts");
    let output = tokio::process::Command::new("node")
        .arg("console.test.mjs")
        .current_dir(&dir)
        .env("BASE_URL", format!("http://{}", app.http_addr))
        .env("MODERATOR_KEY", &moderator)
        .env("ADMIN_KEY", &app.admin_key)
        .env("EXPECTED", expected.to_string())
        .env("ARTIFACTS", &artifacts)
        .env("CHROMIUM", &chromium)
        .output()
        .await
        .expect("node runs");
    assert!(
        output.status.success(),
        "browser test failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
