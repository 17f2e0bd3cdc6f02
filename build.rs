//! Compiles `proto/` with protox (pure Rust, no system `protoc`) and writes two
//! file descriptor sets: the API's, which server reflection serves, and the
//! API's plus the benchmark echo service's, which `moderato-bench` uses to
//! turn JSON into requests for any method.

use std::{env, fs, path::PathBuf};

use prost::Message as _;

const PROTOS: &[&str] = &[
    "proto/moderato/v1/comment.proto",
    "proto/moderato/v1/comment_service.proto",
    "proto/moderato/v1/review_service.proto",
    "proto/moderato/v1/admin_service.proto",
];
const BENCH_PROTOS: &[&str] = &["proto/moderato/bench/v1/echo_service.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    // `sqlx::migrate!` embeds `migrations/` at compile time but cannot tell
    // cargo it read them: without this a new migration file alone would not
    // rebuild the crate, and the binary would run without it.
    println!("cargo:rerun-if-changed=migrations");
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let api = protox::compile(PROTOS, ["proto"])?;
    fs::write(out_dir.join("moderato_descriptor.bin"), api.encode_to_vec())?;
    let fds = protox::compile(PROTOS.iter().chain(BENCH_PROTOS), ["proto"])?;
    fs::write(out_dir.join("bench_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
