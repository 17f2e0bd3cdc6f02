//! ghz's template language, the part load tests use: `{{.RequestNumber}}`,
//! `{{.TimestampUnix}}`, `{{.TimestampUnixMilli}}`, `{{.TimestampUnixNano}}`,
//! `{{.UUID}}`, `{{.WorkerID}}`, and the functions `{{newUUID}}`,
//! `{{randomString N}}` and `{{randomInt MIN MAX}}`. Anything else is an error
//! when the template is parsed, not a surprise in the middle of a run.

use rand::Rng as _;

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    RequestNumber,
    TimestampUnix,
    TimestampUnixMilli,
    TimestampUnixNano,
    /// One UUID per request (the same wherever it appears in that request).
    CallUuid,
    WorkerId,
    /// A fresh UUID at every occurrence.
    NewUuid,
    RandomString(usize),
    RandomInt(i64, i64),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

/// What a template can refer to for one request.
#[derive(Debug, Clone, Copy)]
pub struct CallContext {
    /// 0-based, as in ghz.
    pub request_number: u64,
    pub worker_id: usize,
    pub call_uuid: uuid::Uuid,
    pub unix_nanos: i128,
}

impl Template {
    pub fn parse(source: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or_else(|| {
                format!("unclosed {{{{ at byte {}", source.len() - rest.len() + open)
            })?;
            parts.push(action(after[..close].trim())?);
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    /// `true` when rendering never changes the text.
    pub fn is_constant(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Text(_)))
    }

    pub fn render(&self, context: &CallContext) -> String {
        let mut out = String::new();
        let mut rng = rand::rng();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::RequestNumber => out.push_str(&context.request_number.to_string()),
                Part::TimestampUnix => {
                    out.push_str(&(context.unix_nanos / 1_000_000_000).to_string())
                }
                Part::TimestampUnixMilli => {
                    out.push_str(&(context.unix_nanos / 1_000_000).to_string())
                }
                Part::TimestampUnixNano => out.push_str(&context.unix_nanos.to_string()),
                Part::CallUuid => out.push_str(&context.call_uuid.to_string()),
                Part::WorkerId => out.push_str(&context.worker_id.to_string()),
                Part::NewUuid => out.push_str(&uuid::Uuid::new_v4().to_string()),
                Part::RandomString(n) => {
                    const ALPHABET: &[u8] =
                        b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
                    out.extend(
                        (0..*n).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char),
                    );
                }
                Part::RandomInt(min, max) => {
                    out.push_str(&rng.random_range(*min..*max).to_string())
                }
            }
        }
        out
    }
}

fn action(action: &str) -> Result<Part, String> {
    let words: Vec<&str> = action.split_whitespace().collect();
    let number = |s: &str| -> Result<i64, String> {
        s.parse::<i64>()
            .map_err(|_| format!("{{{{{action}}}}}: {s:?} is not a number"))
    };
    match words.as_slice() {
        [".RequestNumber"] => Ok(Part::RequestNumber),
        [".TimestampUnix"] => Ok(Part::TimestampUnix),
        [".TimestampUnixMilli"] => Ok(Part::TimestampUnixMilli),
        [".TimestampUnixNano"] => Ok(Part::TimestampUnixNano),
        [".UUID"] => Ok(Part::CallUuid),
        [".WorkerID"] => Ok(Part::WorkerId),
        ["newUUID"] => Ok(Part::NewUuid),
        ["randomString", n] => {
            let n = number(n)?;
            if !(0..=1_000_000).contains(&n) {
                return Err(format!("{{{{{action}}}}}: length must be in 0..=1000000"));
            }
            Ok(Part::RandomString(n as usize))
        }
        ["randomInt", min, max] => {
            let (min, max) = (number(min)?, number(max)?);
            if min >= max {
                return Err(format!("{{{{{action}}}}}: MIN must be below MAX"));
            }
            Ok(Part::RandomInt(min, max))
        }
        _ => Err(format!(
            "unsupported template action {{{{{action}}}}}; supported: .RequestNumber, \
             .TimestampUnix, .TimestampUnixMilli, .TimestampUnixNano, .UUID, .WorkerID, \
             newUUID, randomString N, randomInt MIN MAX"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(n: u64) -> CallContext {
        CallContext {
            request_number: n,
            worker_id: 3,
            call_uuid: uuid::Uuid::nil(),
            unix_nanos: 1_795_000_000_123_456_789,
        }
    }

    #[test]
    fn variables_render_per_request() {
        let t = Template::parse(r#"{"client_comment_id":"c-{{.RequestNumber}}","author_id":"w{{ .WorkerID }}","at":{{.TimestampUnix}}}"#).unwrap();
        assert!(!t.is_constant());
        assert_eq!(
            t.render(&context(41)),
            r#"{"client_comment_id":"c-41","author_id":"w3","at":1795000000}"#
        );
        let t =
            Template::parse("{{.UUID}}/{{.UUID}} {{.TimestampUnixMilli}} {{.TimestampUnixNano}}")
                .unwrap();
        assert_eq!(
            t.render(&context(0)),
            "00000000-0000-0000-0000-000000000000/00000000-0000-0000-0000-000000000000 1795000000123 1795000000123456789"
        );
    }

    #[test]
    fn functions_give_fresh_values_in_range() {
        let t = Template::parse("{{newUUID}} {{randomString 12}} {{randomInt 5 7}}").unwrap();
        let a = t.render(&context(0));
        let b = t.render(&context(0));
        assert_ne!(a, b, "fresh values every time");
        let fields: Vec<&str> = a.split(' ').collect();
        assert!(uuid::Uuid::parse_str(fields[0]).is_ok());
        assert_eq!(fields[1].len(), 12);
        assert!(["5", "6"].contains(&fields[2]));
    }

    #[test]
    fn plain_text_is_constant_and_mistakes_are_reported() {
        let t = Template::parse(r#"{"body":"pas de modèle ici"}"#).unwrap();
        assert!(t.is_constant());
        assert_eq!(t.render(&context(9)), r#"{"body":"pas de modèle ici"}"#);
        assert!(
            Template::parse("{{.Nope}}")
                .unwrap_err()
                .contains("unsupported")
        );
        assert!(
            Template::parse("{{randomInt 9 1}}")
                .unwrap_err()
                .contains("below")
        );
        assert!(
            Template::parse("abc {{.RequestNumber")
                .unwrap_err()
                .contains("unclosed")
        );
        assert!(
            Template::parse("{{randomString x}}")
                .unwrap_err()
                .contains("not a number")
        );
    }
}
