//! Webhooks out to publishers' systems (issue #15): what an endpoint is
//! sent, how it is signed (Standard Webhooks 1.0) and where moderato
//! refuses to send it (SSRF).
//!
//! A publisher's CMS registers an HTTPS endpoint and hears about decisions
//! without holding a gRPC stream open. The receiver verifies each delivery
//! with the endpoint's secret; the service never sends to an address inside
//! its own network unless the operator allows it, because the URL is
//! chosen by a tenant and the request leaves from the service's network.

pub mod client;
pub mod schedule;
pub mod signature;
pub mod ssrf;

pub use client::{DELIVERY_TIMEOUT, Outcome, Sender};
pub use signature::{SigningSecret, sign};
pub use ssrf::{AddressPolicy, SsrfError};
