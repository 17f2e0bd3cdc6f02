use std::fmt;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::{FieldViolation, KeyId, TenantId};

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Publisher,
    Moderator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Publisher => "publisher",
            Role::Moderator => "moderator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(field: &str, value: &str) -> Result<Self, FieldViolation> {
        match value {
            "publisher" => Ok(Role::Publisher),
            "moderator" => Ok(Role::Moderator),
            "admin" => Ok(Role::Admin),
            _ => Err(FieldViolation::new(
                field,
                "must be one of publisher, moderator, admin",
            )),
        }
    }

    fn allows(self, permission: Permission) -> bool {
        match self {
            Role::Admin => true,
            Role::Publisher => matches!(
                permission,
                Permission::SubmitComments
                    | Permission::ReadComments
                    | Permission::LabelComments
                    | Permission::ReportComments
            ),
            Role::Moderator => matches!(
                permission,
                Permission::ReadComments
                    | Permission::ReadAnyStatus
                    | Permission::Review
                    | Permission::LabelComments
                    | Permission::ReadAudit
            ),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The things an RPC may need the caller to be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    SubmitComments,
    /// Get a comment, list approved comments.
    ReadComments,
    /// List comments that are held or rejected.
    ReadAnyStatus,
    Review,
    /// Teach the spam and toxicity models (`MarkSpam`, `MarkHam`, `MarkToxic`, `MarkNotToxic`).
    LabelComments,
    /// Read the audit trail (`ListAuditEvents`).
    ReadAudit,
    /// File readers' reports (`ReportComment`).
    ReportComments,
    Administer,
}

/// An authenticated caller: the tenant it acts for and its role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub tenant_id: TenantId,
    pub key_id: KeyId,
    pub role: Role,
    /// After this instant the key authenticates nothing.
    pub expire_time: Option<DateTime<Utc>>,
    /// The key's own rate; `None` takes the server's default.
    pub requests_per_second: Option<u32>,
}

impl Principal {
    pub fn can(&self, permission: Permission) -> bool {
        self.role.allows(permission)
    }

    pub fn expired_at(&self, now: DateTime<Utc>) -> bool {
        self.expire_time.is_some_and(|at| at <= now)
    }

    /// The caller as named in the audit trail.
    pub fn actor(&self) -> Actor {
        Actor(format!("key:{}", self.key_id))
    }
}

/// Who did something, as written to the audit trail and `claimed_by`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(String);

impl Actor {
    pub fn system() -> Self {
        Actor("system".to_owned())
    }

    pub fn operator() -> Self {
        Actor("operator:cli".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<super::ModeratorId> for Actor {
    fn from(id: super::ModeratorId) -> Self {
        Actor(id.into_inner())
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Prefix of every key, so leaked keys are easy to recognise and grep for.
const KEY_PREFIX: &str = "mdr_";

/// A freshly generated API key. The plain text leaves the process once, to the
/// caller who created it; only its hash is stored.
pub struct ApiKeySecret {
    plain: String,
}

impl ApiKeySecret {
    /// 256 random bits from the OS generator.
    pub fn generate() -> Self {
        let bytes: [u8; 32] = rand::random();
        let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        Self {
            plain: format!("{KEY_PREFIX}{body}"),
        }
    }

    pub fn expose(&self) -> &str {
        &self.plain
    }

    pub fn hash(&self) -> KeyHash {
        KeyHash::of(&self.plain)
    }

    /// A few leading characters to tell keys apart in listings.
    pub fn display_prefix(&self) -> String {
        self.plain.chars().take(KEY_PREFIX.len() + 6).collect()
    }
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeySecret(***)")
    }
}

/// SHA-256 of a key. Keys carry 256 random bits, so a fast unsalted hash is
/// enough: there is nothing to brute-force, and lookups stay one index probe.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyHash([u8; 32]);

impl KeyHash {
    pub fn of(presented: &str) -> Self {
        KeyHash(Sha256::digest(presented.as_bytes()).into())
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        KeyHash(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyHash(***)")
    }
}

/// An API key's metadata, never the key.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyInfo {
    pub key_id: KeyId,
    pub role: Role,
    pub key_prefix: String,
    pub create_time: DateTime<Utc>,
    pub revoke_time: Option<DateTime<Utc>>,
    pub name: String,
    pub expire_time: Option<DateTime<Utc>>,
    /// Updated at most once a minute.
    pub last_use_time: Option<DateTime<Utc>>,
    pub requests_per_second: Option<u32>,
}

/// What a new key is: parsed from `CreateApiKey` or the CLI.
#[derive(Debug, Clone, PartialEq)]
pub struct KeySpec {
    pub role: Role,
    pub name: String,
    pub expire_time: Option<DateTime<Utc>>,
    pub requests_per_second: Option<u32>,
}

impl KeySpec {
    pub const MAX_NAME_CHARS: usize = 100;
    pub const MAX_REQUESTS_PER_SECOND: u32 = 1_000_000;

    /// A key with a role only: no name, no expiry, the server's rate.
    pub fn role(role: Role) -> Self {
        KeySpec {
            role,
            name: String::new(),
            expire_time: None,
            requests_per_second: None,
        }
    }

    pub fn parse(
        role: Role,
        name: &str,
        expire_time: Option<DateTime<Utc>>,
        requests_per_second: Option<u32>,
        now: DateTime<Utc>,
    ) -> Result<Self, FieldViolation> {
        let name = name.trim();
        if name.chars().count() > Self::MAX_NAME_CHARS {
            return Err(FieldViolation::new(
                "name",
                format!("is longer than {} characters", Self::MAX_NAME_CHARS),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(FieldViolation::new(
                "name",
                "must not contain control characters",
            ));
        }
        if let Some(at) = expire_time
            && at <= now
        {
            return Err(FieldViolation::new("expire_time", "must be in the future"));
        }
        if let Some(rate) = requests_per_second
            && !(1..=Self::MAX_REQUESTS_PER_SECOND).contains(&rate)
        {
            return Err(FieldViolation::new(
                "requests_per_second",
                format!(
                    "must be between 1 and {} (leave it unset for the server's default)",
                    Self::MAX_REQUESTS_PER_SECOND
                ),
            ));
        }
        Ok(KeySpec {
            role,
            name: name.to_owned(),
            expire_time,
            requests_per_second,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_distinct_and_hash_consistently() {
        let a = ApiKeySecret::generate();
        let b = ApiKeySecret::generate();
        assert_ne!(a.expose(), b.expose());
        assert!(a.expose().starts_with("mdr_"));
        assert!(a.expose().len() >= 4 + 43);
        assert_eq!(a.hash(), KeyHash::of(a.expose()));
        assert_ne!(a.hash(), b.hash());
        assert!(!format!("{a:?}").contains(&a.expose()[4..]));
    }

    #[test]
    fn a_key_spec_refuses_what_it_cannot_honour() {
        let now = Utc::now();
        let field = |r: Result<KeySpec, FieldViolation>| r.unwrap_err().field;
        assert_eq!(
            field(KeySpec::parse(
                Role::Admin,
                &"n".repeat(101),
                None,
                None,
                now
            )),
            "name"
        );
        assert_eq!(
            field(KeySpec::parse(Role::Admin, "a\u{7}b", None, None, now)),
            "name"
        );
        assert_eq!(
            field(KeySpec::parse(Role::Admin, "", Some(now), None, now)),
            "expire_time"
        );
        assert_eq!(
            field(KeySpec::parse(Role::Admin, "", None, Some(0), now)),
            "requests_per_second"
        );
        let spec = KeySpec::parse(
            Role::Publisher,
            "  CMS production ",
            Some(now + chrono::Duration::days(90)),
            Some(50),
            now,
        )
        .unwrap();
        assert_eq!(spec.name, "CMS production");
        let principal = Principal {
            tenant_id: TenantId::generate(),
            key_id: KeyId::generate(),
            role: Role::Publisher,
            expire_time: spec.expire_time,
            requests_per_second: spec.requests_per_second,
        };
        assert!(!principal.expired_at(now));
        assert!(principal.expired_at(now + chrono::Duration::days(90)));
    }

    #[test]
    fn roles_grant_what_the_api_promises() {
        use Permission::*;
        assert!(Role::Publisher.allows(SubmitComments));
        assert!(Role::Publisher.allows(ReadComments));
        assert!(!Role::Publisher.allows(ReadAnyStatus));
        assert!(!Role::Publisher.allows(Review));
        assert!(!Role::Publisher.allows(Administer));
        assert!(!Role::Moderator.allows(SubmitComments));
        assert!(Role::Moderator.allows(Review));
        assert!(Role::Moderator.allows(ReadAnyStatus));
        assert!(!Role::Moderator.allows(Administer));
        for p in [
            SubmitComments,
            ReadComments,
            ReadAnyStatus,
            Review,
            Administer,
        ] {
            assert!(Role::Admin.allows(p));
        }
    }
}
