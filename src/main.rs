use clap::Parser as _;

/// mimalloc: compiling large rule sets leaves glibc's allocator with long free
/// lists that slow every later allocation on the request path (measured in
/// BENCHMARKS.md); mimalloc does not degrade that way.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = moderato::cli::Cli::parse();
    moderato::telemetry::init_tracing(cli.common.log_format);
    match moderato::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "moderato failed");
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
