//! The spam score's text classifier (issue #4, in progress).
//!
//! Pure like the rest of the pipeline: features are hashed from the
//! normalised text, so obfuscated spellings land on the same features as
//! plain ones, and the model is a set of per-feature counts that can be
//! stored per tenant, merged and updated one labelled comment at a time.

pub mod features;
pub mod model;
