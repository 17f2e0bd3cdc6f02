use base64::Engine as _;
use serde::{Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

use super::FieldViolation;

/// How many items a page holds: 0 means the default, more than the maximum is
/// coerced down (AIP-158), negative is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(u32);

impl PageSize {
    pub fn parse(field: &str, value: i32, default: u32, max: u32) -> Result<Self, FieldViolation> {
        match value {
            v if v < 0 => Err(FieldViolation::new(field, "must not be negative")),
            0 => Ok(PageSize(default)),
            v => Ok(PageSize((v as u32).min(max))),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// Opaque continuation tokens. A token carries the position after the last item
/// and a fingerprint of the filters it was made for, so a token reused with other
/// filters is refused instead of silently returning a wrong page.
pub struct PageToken;

#[derive(Serialize, serde::Deserialize)]
struct Envelope<C> {
    s: String,
    c: C,
}

impl PageToken {
    pub fn encode<C: Serialize>(scope: &str, cursor: &C) -> String {
        let envelope = Envelope {
            s: fingerprint(scope),
            c: cursor,
        };
        let json = serde_json::to_vec(&envelope).expect("cursor serialises");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    /// `Ok(None)` for an empty token (the first page).
    pub fn decode<C: DeserializeOwned>(
        field: &str,
        token: &str,
        scope: &str,
    ) -> Result<Option<C>, FieldViolation> {
        if token.is_empty() {
            return Ok(None);
        }
        let invalid = || FieldViolation::new(field, "is not a token returned by this call");
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| invalid())?;
        let envelope: Envelope<C> = serde_json::from_slice(&json).map_err(|_| invalid())?;
        if envelope.s != fingerprint(scope) {
            return Err(FieldViolation::new(
                field,
                "was issued for different filters; start again without a token",
            ));
        }
        Ok(Some(envelope.c))
    }
}

fn fingerprint(scope: &str) -> String {
    let digest = Sha256::digest(scope.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_defaults_and_coerces() {
        assert_eq!(PageSize::parse("p", 0, 50, 500).unwrap().get(), 50);
        assert_eq!(PageSize::parse("p", 7, 50, 500).unwrap().get(), 7);
        assert_eq!(PageSize::parse("p", 10_000, 50, 500).unwrap().get(), 500);
        assert!(PageSize::parse("p", -1, 50, 500).is_err());
    }

    #[test]
    fn tokens_round_trip_and_are_bound_to_their_filters() {
        let token = PageToken::encode("comments|a1", &(42_i64, "x".to_owned()));
        let back: Option<(i64, String)> = PageToken::decode("t", &token, "comments|a1").unwrap();
        assert_eq!(back, Some((42, "x".to_owned())));
        let err = PageToken::decode::<(i64, String)>("t", &token, "comments|a2").unwrap_err();
        assert_eq!(err.field, "t");
        assert!(PageToken::decode::<(i64, String)>("t", "not-base64!", "s").is_err());
        assert!(
            PageToken::decode::<(i64, String)>("t", "", "s")
                .unwrap()
                .is_none()
        );
    }
}
