use tonic::Request;

use crate::domain::KeyHash;
use crate::moderation::Credentials;

/// Reads `authorization: Bearer <key>`. The key is hashed at once and never
/// kept or logged in clear.
pub(super) fn credentials<T>(request: &Request<T>) -> Credentials {
    let Some(value) = request.metadata().get("authorization") else {
        return Credentials::Missing;
    };
    let Ok(value) = value.to_str() else {
        return Credentials::Malformed;
    };
    let Some((scheme, key)) = value.trim().split_once(' ') else {
        return Credentials::Malformed;
    };
    let key = key.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || key.is_empty() {
        return Credentials::Malformed;
    }
    Credentials::Bearer(KeyHash::of(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> Request<()> {
        let mut request = Request::new(());
        request
            .metadata_mut()
            .insert("authorization", value.parse().unwrap());
        request
    }

    #[test]
    fn parses_bearer_keys() {
        assert!(matches!(
            credentials(&Request::new(())),
            Credentials::Missing
        ));
        assert!(matches!(
            credentials(&with("Basic abc")),
            Credentials::Malformed
        ));
        assert!(matches!(
            credentials(&with("Bearer ")),
            Credentials::Malformed
        ));
        assert!(matches!(
            credentials(&with("mdr_abc")),
            Credentials::Malformed
        ));
        match credentials(&with("bearer mdr_abc")) {
            Credentials::Bearer(hash) => assert_eq!(hash, KeyHash::of("mdr_abc")),
            _ => panic!("expected a bearer key"),
        }
    }
}
