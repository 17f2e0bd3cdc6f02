//! The server secret, and the keyed hash of readers' IP addresses.
//!
//! An IP address is personal data; moderato needs only to tell two
//! comments from the same address apart from others (velocity, per-IP
//! rates, spotting a flood), never to read the address back. So it stores
//! `HMAC-SHA256(key, tenant ‖ address)`, truncated to 128 bits: the same
//! address gives the same value within a tenant, different values across
//! tenants (a tenant cannot correlate its readers with another's), and
//! without the key nobody can test guesses, which a plain hash of the 2^32
//! IPv4 addresses would allow in minutes.

use std::fmt;
use std::net::IpAddr;

use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use super::TenantId;

/// Marks stored values that are hashes (and which scheme made them).
pub const IP_HASH_PREFIX: &str = "h1:";

/// At least this many bytes of secret.
pub const MIN_SECRET_BYTES: usize = 32;

/// The operator's secret (`MODERATO_SECRET_KEY`, or the file generated
/// beside the admin key). Sub-keys are derived per purpose.
#[derive(Clone)]
pub struct ServerSecret(Vec<u8>);

impl ServerSecret {
    pub fn new(secret: &str) -> Result<Self, String> {
        let secret = secret.trim();
        if secret.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "the server secret must be at least {MIN_SECRET_BYTES} bytes"
            ));
        }
        Ok(ServerSecret(secret.as_bytes().to_vec()))
    }

    /// 256 random bits, base64: what a first start writes.
    pub fn generate() -> String {
        let bytes: [u8; 32] = rand::random();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    pub fn ip_hasher(&self) -> IpHasher {
        IpHasher(self.derive("moderato ip hash v1"))
    }

    /// Seals the secrets moderato must be able to read back (webhook
    /// signing secrets, external classifiers' API keys).
    pub fn sealer(&self) -> Sealer {
        Sealer(self.derive("moderato sealed secrets v1"))
    }
}

/// Marks sealed values (and which scheme sealed them).
pub const SEALED_PREFIX: &str = "s1:";

/// Encrypts secrets at rest (XChaCha20-Poly1305 under a key derived from
/// the server secret): a leaked database does not give them back, and a
/// sealed value only opens for the record it was sealed for (`context`,
/// e.g. tenant and webhook id, is authenticated with it), so values cannot
/// be swapped between rows.
#[derive(Clone)]
pub struct Sealer([u8; 32]);

impl Sealer {
    pub fn seal(&self, plaintext: &str, context: &[u8]) -> String {
        use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
        let cipher = chacha20poly1305::XChaCha20Poly1305::new((&self.0).into());
        let nonce: [u8; 24] = rand::random();
        let sealed = cipher
            .encrypt(
                (&nonce).into(),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: context,
                },
            )
            .expect("encryption of a short value cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!(
            "{SEALED_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out)
        )
    }

    /// `None` when `sealed` was not sealed by this key for this context.
    pub fn open(&self, sealed: &str, context: &[u8]) -> Option<String> {
        use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sealed.strip_prefix(SEALED_PREFIX)?)
            .ok()?;
        if bytes.len() < 24 {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(24);
        let cipher = chacha20poly1305::XChaCha20Poly1305::new((&self.0).into());
        let plaintext = cipher
            .decrypt(
                nonce.into(),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .ok()?;
        String::from_utf8(plaintext).ok()
    }
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer(***)")
    }
}

impl fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerSecret(***)")
    }
}

/// Hashes IP addresses as stored.
#[derive(Clone)]
pub struct IpHasher([u8; 32]);

impl IpHasher {
    /// The stored form of `ip` for `tenant`. IPv4-mapped IPv6 addresses hash
    /// as their IPv4 address, so one reader is one value.
    pub fn hash(&self, tenant: TenantId, ip: IpAddr) -> String {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        self.hash_text(tenant, &ip.to_string())
    }

    /// The same for a stored value that is not an address (written by an
    /// older release): hashed as it is, so it is gone all the same.
    pub fn hash_text(&self, tenant: TenantId, text: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(tenant.as_uuid().as_bytes());
        mac.update(text.as_bytes());
        let digest = mac.finalize().into_bytes();
        format!(
            "{IP_HASH_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
        )
    }
}

impl fmt::Debug for IpHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IpHasher(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher(secret: &str) -> IpHasher {
        ServerSecret::new(secret).unwrap().ip_hasher()
    }

    #[test]
    fn one_address_is_one_value_per_tenant_and_key() {
        let h = hasher(&"s".repeat(32));
        let (a, b) = (TenantId::generate(), TenantId::generate());
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:203.0.113.7".parse().unwrap();
        assert_eq!(h.hash(a, ip), h.hash(a, ip));
        assert_eq!(h.hash(a, ip), h.hash(a, mapped));
        assert_ne!(h.hash(a, ip), h.hash(b, ip), "tenants cannot correlate");
        assert_ne!(h.hash(a, ip), h.hash(a, "203.0.113.8".parse().unwrap()));
        assert_ne!(h.hash(a, ip), hasher(&"t".repeat(32)).hash(a, ip));
        let stored = h.hash(a, ip);
        assert!(stored.starts_with(IP_HASH_PREFIX) && !stored.contains("203"));
        assert_eq!(stored.len(), IP_HASH_PREFIX.len() + 22);
    }

    #[test]
    fn sealed_values_open_only_with_their_key_and_record() {
        let sealer = ServerSecret::new(&"s".repeat(32)).unwrap().sealer();
        let sealed = sealer.seal("whsec_secret-value", b"tenant/webhook-1");
        assert!(sealed.starts_with(SEALED_PREFIX) && !sealed.contains("secret-value"));
        assert_ne!(
            sealed,
            sealer.seal("whsec_secret-value", b"tenant/webhook-1"),
            "fresh nonce"
        );
        assert_eq!(
            sealer.open(&sealed, b"tenant/webhook-1").as_deref(),
            Some("whsec_secret-value")
        );
        assert_eq!(
            sealer.open(&sealed, b"tenant/webhook-2"),
            None,
            "another row's value"
        );
        let other = ServerSecret::new(&"t".repeat(32)).unwrap().sealer();
        assert_eq!(
            other.open(&sealed, b"tenant/webhook-1"),
            None,
            "another key"
        );
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(sealer.open(&tampered, b"tenant/webhook-1"), None);
        assert_eq!(sealer.open("plain", b""), None);
    }

    #[test]
    fn short_secrets_are_refused_and_secrets_never_print() {
        assert!(ServerSecret::new("short").is_err());
        let secret = ServerSecret::new(&ServerSecret::generate()).unwrap();
        assert_eq!(format!("{secret:?}"), "ServerSecret(***)");
    }
}
