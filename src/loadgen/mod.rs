//! `moderato-bench`: a load generator that speaks ghz's language.
//!
//! Operators load-test gRPC services with ghz, a Go program we cannot install
//! on every machine. This generator takes ghz's flags and template syntax and
//! writes ghz's report format, so the numbers measured here read the same as
//! the ones users get with ghz from `bench/ghz/`. It counts gRPC status codes,
//! not HTTP successes, and keeps latencies in an HDR histogram.

pub mod report;
pub mod run;
pub mod template;
