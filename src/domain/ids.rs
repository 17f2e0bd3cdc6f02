use std::fmt;

use uuid::Uuid;

use super::FieldViolation;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered id (UUIDv7), so ids sort roughly by creation.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }

            /// Parses a request field holding this id.
            pub fn parse(field: &str, value: &str) -> Result<Self, FieldViolation> {
                if value.is_empty() {
                    return Err(FieldViolation::new(field, "is required"));
                }
                Uuid::try_parse(value)
                    .map(Self)
                    .map_err(|_| FieldViolation::new(field, "is not a valid id"))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
    };
}

uuid_id!(
    /// A publisher (tenant). Every row and every query is scoped by one.
    TenantId
);
uuid_id!(
    /// A stored comment.
    CommentId
);
uuid_id!(
    /// An item of the review queue.
    ReviewId
);
uuid_id!(
    /// An API key's public id (not the secret).
    KeyId
);
uuid_id!(
    /// A tenant's webhook endpoint.
    WebhookId
);
