//! End-to-end tests through the generated gRPC clients against a real server,
//! each on a fresh SQLite database and a fresh Postgres database.

mod admin;
mod audit;
mod auth;
mod authors;
mod bench;
mod classifiers;
mod comments;
mod console;
mod decisions;
mod erasure;
mod every_rpc;
mod helpers;
mod keys;
mod limits;
mod logs;
mod operations;
mod overload;
mod privacy;
mod rates;
mod reports;
mod retention;
mod review;
mod rules;
mod spam;
mod storage;
mod tls;
mod toxicity;
mod webhooks;
