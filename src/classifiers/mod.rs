//! External classifiers in (issue #15): the request and response contracts
//! of the hosted services a tenant may ask for an opinion. The call, its
//! deadline, cache and circuit breaker are `moderation::classify`'s; what
//! the scores do is the pipeline's.

pub mod shapes;
