//! Moderato: a comment moderation service.
//!
//! Requests flow one way: [`grpc`] parses wire messages into [`domain`] types and
//! authenticates the caller, a [`moderation`] use case runs the pure
//! [`pipeline`] and talks to [`storage`], and the answer goes back out through
//! [`grpc`]. See `ARCHITECTURE.md` for the map and the invariants.

pub mod classifiers;
pub mod cli;
pub mod config;
pub mod console;
pub mod domain;
pub mod evaluation;
pub mod grpc;
pub mod http;
pub mod loadgen;
pub mod moderation;
pub mod pipeline;
pub mod startup;
pub mod storage;
pub mod telemetry;
pub mod tls;
pub mod webhooks;
