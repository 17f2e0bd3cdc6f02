//! Compiles `proto/` with protox (pure Rust, no system `protoc`) and writes the
//! file descriptor set that server reflection serves.

use std::{env, fs, path::PathBuf};

use prost::Message as _;

const PROTOS: &[&str] = &[
    "proto/moderato/v1/comment.proto",
    "proto/moderato/v1/comment_service.proto",
    "proto/moderato/v1/review_service.proto",
    "proto/moderato/v1/admin_service.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(PROTOS, ["proto"])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out_dir.join("moderato_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
