//! The request and response shapes of the two classifier contracts, as
//! pure functions (tested without a network).
//!
//! Perspective (`comments:analyze`): the text, the attributes asked for,
//! `doNotStore` (moderato asks the service not to keep readers' text),
//! `languages` when the comment's language is known; the key in the
//! `x-goog-api-key` header (never in the URL, which is logged by proxies).
//! Answer: `attributeScores.<ATTRIBUTE>.summaryScore.value`.
//!
//! OpenAI moderation (`/v1/moderations`): `{"input": text}`, the key as a
//! bearer token. Answer: `results[0].category_scores.<category>`.

use crate::domain::{ClassifierKind, PERSPECTIVE_ATTRIBUTES};

/// The JSON body asking for an opinion on `text`.
pub fn request_body(kind: ClassifierKind, text: &str, language: Option<&str>) -> Vec<u8> {
    let body = match kind {
        ClassifierKind::Perspective => {
            let attributes: serde_json::Map<String, serde_json::Value> = PERSPECTIVE_ATTRIBUTES
                .iter()
                .map(|a| ((*a).to_owned(), serde_json::json!({})))
                .collect();
            let mut body = serde_json::json!({
                "comment": { "text": text },
                "requestedAttributes": attributes,
                "doNotStore": true,
            });
            if let Some(language) = language {
                // Perspective takes the primary subtag (`fr`, not `fr-SN`).
                let primary = language.split('-').next().unwrap_or(language);
                body["languages"] = serde_json::json!([primary.to_ascii_lowercase()]);
            }
            body
        }
        ClassifierKind::OpenAiModeration => serde_json::json!({ "input": text }),
    };
    serde_json::to_vec(&body).expect("a JSON value serialises")
}

/// The header carrying the API key (none when the key is empty).
pub fn auth_header(kind: ClassifierKind, api_key: &str) -> Option<(&'static str, String)> {
    if api_key.is_empty() {
        return None;
    }
    Some(match kind {
        ClassifierKind::Perspective => ("x-goog-api-key", api_key.to_owned()),
        ClassifierKind::OpenAiModeration => ("authorization", format!("Bearer {api_key}")),
    })
}

/// The attribute scores in an answer, each clamped to [0, 1]; an error
/// saying what is wrong with an answer that does not have the shape.
pub fn parse_response(kind: ClassifierKind, body: &[u8]) -> Result<Vec<(String, f64)>, String> {
    let json: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| "the answer is not JSON".to_owned())?;
    let scores: Vec<(String, f64)> = match kind {
        ClassifierKind::Perspective => json
            .get("attributeScores")
            .and_then(|a| a.as_object())
            .ok_or("the answer has no attributeScores")?
            .iter()
            .filter_map(|(attribute, score)| {
                let value = score.pointer("/summaryScore/value")?.as_f64()?;
                Some((attribute.clone(), value))
            })
            .collect(),
        ClassifierKind::OpenAiModeration => json
            .pointer("/results/0/category_scores")
            .and_then(|s| s.as_object())
            .ok_or("the answer has no results[0].category_scores")?
            .iter()
            .filter_map(|(category, value)| Some((category.clone(), value.as_f64()?)))
            .collect(),
    };
    if scores.is_empty() {
        return Err("the answer has no scores".into());
    }
    Ok(scores
        .into_iter()
        .filter(|(_, v)| v.is_finite())
        .map(|(a, v)| (a, v.clamp(0.0, 1.0)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perspective_requests_every_attribute_without_storing_the_text() {
        let body = request_body(ClassifierKind::Perspective, "Très bien dit", Some("fr-SN"));
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["comment"]["text"], "Très bien dit");
        assert_eq!(json["doNotStore"], true);
        assert_eq!(json["languages"], serde_json::json!(["fr"]));
        for attribute in PERSPECTIVE_ATTRIBUTES {
            assert!(
                json["requestedAttributes"].get(attribute).is_some(),
                "{attribute}"
            );
        }
        let unknown = request_body(ClassifierKind::Perspective, "x", None);
        let json: serde_json::Value = serde_json::from_slice(&unknown).unwrap();
        assert!(json.get("languages").is_none(), "detected by the service");
        assert_eq!(
            auth_header(ClassifierKind::Perspective, "k1"),
            Some(("x-goog-api-key", "k1".into()))
        );
        assert_eq!(auth_header(ClassifierKind::Perspective, ""), None);
    }

    #[test]
    fn perspective_answers_give_the_summary_scores() {
        let answer = br#"{"attributeScores":{
            "TOXICITY":{"spanScores":[{"begin":0,"end":5,"score":{"value":0.9,"type":"PROBABILITY"}}],
                        "summaryScore":{"value":0.91,"type":"PROBABILITY"}},
            "THREAT":{"summaryScore":{"value":1.2,"type":"PROBABILITY"}},
            "INSULT":{"summaryScore":{"type":"PROBABILITY"}}},
            "languages":["fr"],"detectedLanguages":["fr"]}"#;
        let mut scores = parse_response(ClassifierKind::Perspective, answer).unwrap();
        scores.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            scores,
            [("THREAT".to_owned(), 1.0), ("TOXICITY".to_owned(), 0.91)],
            "clamped; an attribute without a value is left out"
        );
        for bad in [
            &b"not json"[..],
            br#"{"error":{"code":429}}"#,
            br#"{"attributeScores":{}}"#,
        ] {
            assert!(parse_response(ClassifierKind::Perspective, bad).is_err());
        }
    }

    #[test]
    fn openai_moderation_round_trip() {
        let body = request_body(
            ClassifierKind::OpenAiModeration,
            "Je vais te trouver",
            Some("fr"),
        );
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
            serde_json::json!({"input": "Je vais te trouver"})
        );
        assert_eq!(
            auth_header(ClassifierKind::OpenAiModeration, "sk-1"),
            Some(("authorization", "Bearer sk-1".into()))
        );
        let answer = br#"{"id":"modr-1","model":"omni-moderation-latest","results":[{
            "flagged":true,
            "categories":{"harassment":true,"harassment/threatening":true},
            "category_scores":{"harassment":0.72,"harassment/threatening":0.88,"sexual":0.001},
            "category_applied_input_types":{"harassment":["text"]}}]}"#;
        let mut scores = parse_response(ClassifierKind::OpenAiModeration, answer).unwrap();
        scores.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            scores,
            [
                ("harassment".to_owned(), 0.72),
                ("harassment/threatening".to_owned(), 0.88),
                ("sexual".to_owned(), 0.001)
            ]
        );
        assert!(parse_response(ClassifierKind::OpenAiModeration, br#"{"results":[]}"#).is_err());
    }
}
