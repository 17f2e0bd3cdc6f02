use clap::Parser as _;

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
