//! `moderato-bench`: load tests with ghz's flags and report format (see
//! `moderato::loadgen`), and `--echo-server` to measure the bare gRPC stack.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use moderato::loadgen::run::{ClientTls, Plan, Stop, resolve, run};
use moderato::loadgen::template::Template;
use moderato::tls::{Protocol, ReloadingConfig, TlsFiles};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "moderato-bench",
    version,
    about = "gRPC load generator with ghz's flags and JSON report, for moderato"
)]
struct Args {
    /// Fully-qualified method: package.Service.Method (or package.Service/Method).
    #[arg(long)]
    call: Option<String>,
    /// Request data as JSON; an array gives one message per call in turn.
    /// ghz templates: {{.RequestNumber}}, {{.UUID}}, {{newUUID}}, {{randomString N}}, …
    #[arg(short = 'd', long)]
    data: Option<String>,
    /// Read the request data from a file instead.
    #[arg(short = 'D', long = "data-file")]
    data_file: Option<PathBuf>,
    /// Request metadata as a JSON object of strings (templates allowed).
    #[arg(short = 'm', long)]
    metadata: Option<String>,
    /// Number of request workers [default: 50].
    #[arg(short = 'c', long)]
    concurrency: Option<usize>,
    /// Number of connections the workers share [default: 1].
    #[arg(long)]
    connections: Option<usize>,
    /// Number of requests to run, ignored with --duration [default: 200].
    #[arg(short = 'n', long)]
    total: Option<u64>,
    /// Run for this long, e.g. 30s, 1m, 500ms (ends with reason "timeout").
    #[arg(short = 'z', long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Requests per second across all workers; 0 for no limit [default: 0].
    #[arg(short = 'r', long)]
    rps: Option<f64>,
    /// Timeout of each call [default: 20s].
    #[arg(short = 't', long, value_parser = parse_duration)]
    timeout: Option<Duration>,
    /// Plaintext connection (without it, TLS).
    #[arg(long)]
    insecure: bool,
    /// PEM CA certificates to trust for TLS (default: the public web roots).
    #[arg(long)]
    cacert: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (with --key).
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// PEM private key of --cert.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Server name to verify the certificate against, when it is not the host's.
    #[arg(long)]
    cname: Option<String>,
    /// Output format: summary or json [default: summary].
    #[arg(short = 'O', long = "format")]
    format: Option<String>,
    /// Write the report to this file instead of stdout.
    #[arg(short = 'o', long)]
    output: Option<PathBuf>,
    /// A name for the run, kept in the report.
    #[arg(long)]
    name: Option<String>,
    /// A ghz JSON config file (`call`, `host`, `insecure`, `cacert`, `cert`,
    /// `key`, `cname`, `n`/`total`,
    /// `c`/`concurrency`, `connections`, `z`/`duration`, `r`/`rps`,
    /// `t`/`timeout`, `d`/`data`, `m`/`metadata`, `name`, `format`, `output`);
    /// command-line flags override it, as with ghz.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Serve the bare echo service (moderato.bench.v1.EchoService) on this
    /// address until interrupted, instead of running a load test.
    #[arg(long)]
    echo_server: Option<SocketAddr>,
    /// With --echo-server: serve TLS with this PEM certificate (and --tls-key),
    /// to measure the TLS baseline.
    #[arg(long, requires_all = ["tls_key", "echo_server"])]
    tls_cert: Option<PathBuf>,
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// host:port of the server to test.
    host: Option<String>,
}

/// Go's duration syntax, as ghz takes it: `300ms`, `30s`, `1m30s`, `2h`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let mut total = 0.0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("{text:?}: a unit is required (ms, s, m, h)"))?;
        let value: f64 = rest[..digits]
            .parse()
            .map_err(|_| format!("{text:?}: not a duration"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            unit => return Err(format!("{text:?}: unknown unit {unit:?}")),
        };
        total += value * seconds;
        rest = &rest[unit_len..];
    }
    Ok(Duration::from_secs_f64(total))
}

/// Fills every option the command line left unset from a ghz config.
fn apply_config(args: &mut Args, path: &std::path::Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let config: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a JSON object", path.display()))?;
    let get = |keys: &[&str]| keys.iter().find_map(|k| config.get(*k));
    let string = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    let duration = |v: &serde_json::Value| -> anyhow::Result<Option<Duration>> {
        match v {
            serde_json::Value::String(s) => {
                Ok(Some(parse_duration(s).map_err(anyhow::Error::msg)?))
            }
            // ghz writes durations as nanoseconds in reports.
            serde_json::Value::Number(n) => Ok(n.as_u64().map(Duration::from_nanos)),
            _ => Ok(None),
        }
    };
    if args.call.is_none() {
        args.call = get(&["call"]).and_then(string);
    }
    if args.host.is_none() {
        args.host = get(&["host"]).and_then(string);
    }
    // TLS flags on the command line override the config's `insecure`.
    let tls_on_command_line = args.cacert.is_some() || args.cert.is_some() || args.cname.is_some();
    if !tls_on_command_line {
        args.insecure |= get(&["insecure"])
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
    }
    if args.cacert.is_none() {
        args.cacert = get(&["cacert"]).and_then(string).map(PathBuf::from);
    }
    if args.cert.is_none() && args.key.is_none() {
        args.cert = get(&["cert"]).and_then(string).map(PathBuf::from);
        args.key = get(&["key"]).and_then(string).map(PathBuf::from);
    }
    if args.cname.is_none() {
        args.cname = get(&["cname"]).and_then(string);
    }
    if args.total.is_none() {
        args.total = get(&["n", "total"]).and_then(|v| v.as_u64());
    }
    if args.concurrency.is_none() {
        args.concurrency = get(&["c", "concurrency"])
            .and_then(|v| v.as_u64())
            .map(|v| v as usize);
    }
    if args.connections.is_none() {
        args.connections = get(&["connections"])
            .and_then(|v| v.as_u64())
            .map(|v| v as usize);
    }
    if args.duration.is_none()
        && let Some(v) = get(&["z", "duration"])
    {
        args.duration = duration(v)?;
    }
    if args.timeout.is_none()
        && let Some(v) = get(&["t", "timeout"])
    {
        args.timeout = duration(v)?;
    }
    if args.rps.is_none() {
        args.rps = get(&["r", "rps"]).and_then(|v| v.as_f64());
    }
    if args.data.is_none() && args.data_file.is_none() {
        args.data = get(&["d", "data"]).map(|v| v.to_string());
    }
    if args.metadata.is_none() {
        args.metadata = get(&["m", "metadata"]).map(|v| v.to_string());
    }
    if args.name.is_none() {
        args.name = get(&["name"]).and_then(string);
    }
    if args.format.is_none() {
        args.format = get(&["format", "O"]).and_then(string);
    }
    if args.output.is_none() {
        args.output = get(&["output", "o"]).and_then(string).map(PathBuf::from);
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if let Some(path) = args.config.clone() {
        apply_config(&mut args, &path)?;
    }
    if let Some(addr) = args.echo_server {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        eprintln!("echo server listening on {}", listener.local_addr()?);
        let tls = match (args.tls_cert, args.tls_key) {
            (Some(cert), Some(key)) => Some(std::sync::Arc::new(ReloadingConfig::load(
                TlsFiles {
                    cert,
                    key,
                    client_ca: None,
                },
                Protocol::Grpc,
                false,
            )?)),
            _ => None,
        };
        moderato::grpc::echo::serve(listener, tls, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
        return Ok(());
    }
    let (Some(call), Some(host)) = (args.call.as_deref(), args.host.as_deref()) else {
        bail!("--call and a host:port are required (or --echo-server ADDR)");
    };
    let tls = if args.insecure {
        if args.cacert.is_some() || args.cert.is_some() {
            bail!("--insecure is plaintext: drop it to use --cacert, --cert and --key");
        }
        None
    } else {
        let read = |path: &PathBuf| {
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))
        };
        Some(ClientTls {
            ca: args.cacert.as_ref().map(read).transpose()?,
            identity: match (&args.cert, &args.key) {
                (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
                (None, None) => None,
                _ => bail!("--cert and --key go together"),
            },
            server_name: args.cname.clone(),
        })
    };
    let pool =
        prost_reflect::DescriptorPool::decode(moderato::grpc::pb::BENCH_FILE_DESCRIPTOR_SET)?;
    let target = resolve(&pool, call).map_err(anyhow::Error::msg)?;
    let data = match (&args.data, &args.data_file) {
        (Some(_), Some(_)) => bail!("give --data or --data-file, not both"),
        (Some(d), None) => d.clone(),
        (None, Some(path)) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        (None, None) => "{}".to_owned(),
    };
    let data = match serde_json::from_str::<serde_json::Value>(&data) {
        Ok(serde_json::Value::Array(messages)) => {
            if messages.is_empty() {
                bail!("--data: the array is empty");
            }
            messages.iter().map(|m| m.to_string()).collect()
        }
        // Templates may make the text invalid JSON until rendered
        // (`"n": {{.RequestNumber}}`): take it as one message.
        _ => vec![data],
    };
    let data = data
        .iter()
        .map(|d| Template::parse(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("--data: {e}"))?;
    let metadata = match &args.metadata {
        None => Vec::new(),
        Some(m) => serde_json::from_str::<std::collections::BTreeMap<String, String>>(m)
            .context("--metadata must be a JSON object of strings")?
            .into_iter()
            .map(|(k, v)| {
                let key =
                    tonic::metadata::MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes())
                        .with_context(|| format!("--metadata: bad key {k:?}"))?;
                let value =
                    Template::parse(&v).map_err(|e| anyhow::anyhow!("--metadata {k}: {e}"))?;
                Ok((key, value))
            })
            .collect::<anyhow::Result<Vec<_>>>()?,
    };
    let format = args.format.as_deref().unwrap_or("summary");
    if !["summary", "json"].contains(&format) {
        bail!("-O {format:?}: supported formats are summary and json");
    }
    let plan = Plan {
        name: args.name.clone().unwrap_or_default(),
        host: host.to_owned(),
        target,
        data,
        metadata,
        concurrency: args.concurrency.unwrap_or(50),
        connections: args.connections.unwrap_or(1),
        stop: match args.duration {
            Some(d) => Stop::Duration(d),
            None => Stop::Total(args.total.unwrap_or(200)),
        },
        rps: args.rps.filter(|r| *r > 0.0),
        timeout: args.timeout.unwrap_or(Duration::from_secs(20)),
        tls,
    };
    let report = run(plan).await.map_err(anyhow::Error::msg)?;
    let text = if format == "json" {
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        report.summary()
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => print!("{text}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("3x").is_err());
    }
}
