//! Webhooks: signatures checked by the Standard Webhooks reference
//! library (`standardwebhooks` on PyPI, installed by `./scripts/test`).

use std::io::Write as _;
use std::process::{Command, Stdio};

use moderato::webhooks::{SigningSecret, sign};

use crate::helpers::tool;

/// Runs the reference verifier on one delivery; its answer (the parsed
/// payload's type, or the error it raised).
fn reference_verify(
    secrets: &[&str],
    id: &str,
    timestamp: i64,
    signature: &str,
    body: &str,
) -> String {
    let script = r#"
import json, sys
from standardwebhooks.webhooks import Webhook
request = json.load(sys.stdin)
answers = []
for secret in request["secrets"]:
    try:
        payload = Webhook(secret).verify(request["body"], request["headers"])
        answers.append("ok:" + payload["type"])
    except Exception as error:
        answers.append("refused:" + type(error).__name__)
print(" ".join(answers))
"#;
    let mut child = Command::new(tool("TEST_PYTHON", "python3"))
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python runs");
    let request = serde_json::json!({
        "secrets": secrets,
        "body": body,
        "headers": {
            "webhook-id": id,
            "webhook-timestamp": timestamp.to_string(),
            "webhook-signature": signature,
        },
    });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the verifier failed to run");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn the_reference_library_verifies_our_signatures_and_refuses_tampering() {
    let old = SigningSecret::generate();
    let new = SigningSecret::generate();
    let stranger = SigningSecret::generate();
    let body = r#"{"type":"comment.approved","timestamp":"2026-12-02T05:00:00Z","data":{"comment":{"body":"Très bonne analyse — merci 👍"}}}"#;
    let now = chrono::Utc::now().timestamp();
    let id = "evt_01JDX3R2K5";

    // During a rotation both secrets sign; a receiver holding either verifies.
    let signature = sign(&[&new, &old], id, now, body.as_bytes());
    let secrets = [new.expose(), old.expose(), stranger.expose()];
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_eq!(
        reference_verify(&secrets, id, now, &signature, body),
        "ok:comment.approved ok:comment.approved refused:WebhookVerificationError"
    );

    // A changed body, id or timestamp, or an old delivery, is refused.
    let one = [secrets[0]];
    let tampered = body.replace("merci", "merde");
    assert_eq!(
        reference_verify(&one, id, now, &signature, &tampered),
        "refused:WebhookVerificationError"
    );
    assert_eq!(
        reference_verify(&one, "evt_other", now, &signature, body),
        "refused:WebhookVerificationError"
    );
    assert_eq!(
        reference_verify(&one, id, now + 1, &signature, body),
        "refused:WebhookVerificationError"
    );
    let stale = now - 3_600;
    let signed_stale = sign(&[&new], id, stale, body.as_bytes());
    assert_eq!(
        reference_verify(&one, id, stale, &signed_stale, body),
        "refused:WebhookVerificationError"
    );
}
