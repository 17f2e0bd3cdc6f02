//! The `moderato` command line: `serve` (the default), `migrate`, `keys`,
//! `rules`, `train`, `eval`.
//! Every flag has an environment variable; every command that opens the
//! database migrates it first.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

use crate::config::{DEFAULT_DATABASE_URL, Settings, default_admin_key_file};
use crate::domain::{KeyId, KeySpec, ModelKind, Role, RuleFile, TenantName};
use crate::startup::Application;
use crate::storage::{self, DbOptions};
use crate::telemetry::LogFormat;
use crate::tls::TlsFiles;

#[derive(Debug, Parser)]
#[command(
    name = "moderato",
    version,
    about = "Comment moderation over gRPC: rule filters, spam score and a human review queue",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Database: `sqlite://PATH` (embedded, created if missing) or `postgres://…`.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true)]
    pub database_url: String,
    /// Largest number of database connections.
    #[arg(
        long,
        env = "MODERATO_DB_MAX_CONNECTIONS",
        default_value_t = 16,
        global = true
    )]
    pub db_max_connections: u32,
    /// Log format on stderr. `RUST_LOG` sets the level (default `info`).
    #[arg(
        long,
        env = "MODERATO_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve gRPC and HTTP (the default when no command is given).
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Manage API keys (the operator's way to create tenants).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Import or export a tenant's rules as a TOML file.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Train a tenant's spam or toxicity model on a labelled file;
    /// successive imports accumulate, and running servers pick the result
    /// up within a second.
    Train {
        #[command(flatten)]
        file: LabelledFile,
        /// Which model: `spam` (labels spam/ham, 1/0) or `toxicity` (labels
        /// 1/0, toxic/not_toxic, or a category name such as `insult`).
        #[arg(long, value_enum, default_value_t = ModelArg::Spam)]
        model: ModelArg,
    },
    /// Train the toxicity model new tenants start from on labelled files
    /// (`text,label`, 1 = toxic) and write it, quantised, to `--out`
    /// (`seed/toxicity.model` is the one compiled into the binary).
    ToxicitySeed {
        /// A labelled file; repeat for several.
        #[arg(long, required = true)]
        csv: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        /// Passes over the examples.
        #[arg(long, default_value_t = crate::pipeline::spam::model::EPOCHS)]
        epochs: usize,
        /// L2 regularisation per step.
        #[arg(long, default_value_t = crate::pipeline::spam::model::L2)]
        l2: f64,
        /// Repeat the examples of smaller files so every file weighs as
        /// much as the largest in training.
        #[arg(long)]
        balance: bool,
    },
    /// Run a functional hate-speech suite (`tests/functional/hate.toml`)
    /// through a tenant's pipeline and print the share right per
    /// functionality (nothing is stored).
    EvalSuite {
        #[arg(long)]
        tenant: String,
        #[arg(long, default_value = "tests/functional/hate.toml")]
        suite: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Also print every case decided wrongly, with its functionality and
        /// reason codes (to stderr).
        #[arg(long)]
        show_errors: bool,
    },
    /// Measure a tenant's decisions on a labelled file (nothing is stored).
    Eval {
        #[command(flatten)]
        file: LabelledFile,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Also print every ham held or rejected and every spam approved,
        /// with its score and reason codes (to stderr).
        #[arg(long)]
        show_errors: bool,
        #[command(flatten)]
        options: EvalOptions,
    },
}

/// What-if settings for `moderato eval`; the tenant's own by default.
#[derive(Debug, Args)]
pub struct EvalOptions {
    /// Evaluate with this review threshold instead of the tenant's.
    #[arg(long)]
    pub review_threshold: Option<f64>,
    /// Evaluate with this reject threshold instead of the tenant's.
    #[arg(long)]
    pub reject_threshold: Option<f64>,
    /// Leave the tenant's rules out: measure the spam score alone.
    #[arg(long)]
    pub without_rules: bool,
    /// Also write every example's label, status and score to this CSV file
    /// (`label,status,score`), for curves at any operating point.
    #[arg(long)]
    pub scores: Option<PathBuf>,
    /// Which score the labels are about: `spam` (labels spam/ham) or
    /// `toxicity` (labels 1 = toxic); the threshold options then set every
    /// toxicity category's threshold, and the curve is on the toxicity score.
    #[arg(long, value_enum, default_value_t = ModelArg::Spam)]
    pub model: ModelArg,
}

/// The two trained scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelArg {
    Spam,
    Toxicity,
}

impl From<ModelArg> for ModelKind {
    fn from(value: ModelArg) -> Self {
        match value {
            ModelArg::Spam => ModelKind::Spam,
            ModelArg::Toxicity => ModelKind::Toxicity,
        }
    }
}

/// A labelled CSV (or TSV) file: `spam`/`ham` (or a toxicity category),
/// `1`/`0`, `true`/`false` labels.
#[derive(Debug, Args)]
pub struct LabelledFile {
    #[arg(long)]
    pub tenant: String,
    /// The file (`-` for stdin).
    #[arg(long)]
    pub csv: PathBuf,
    /// Column holding the text: a header name, or a 1-based position with --no-header.
    #[arg(long, default_value = "text")]
    pub text_column: String,
    /// Column holding the label: a header name, or a 1-based position with --no-header.
    #[arg(long, default_value = "label")]
    pub label_column: String,
    /// Field delimiter; `\t` for tab-separated files (read without quoting).
    #[arg(long, default_value = ",")]
    pub delimiter: String,
    /// The file has no header line.
    #[arg(long)]
    pub no_header: bool,
}

impl LabelledFile {
    /// The labelled texts (`true`: spam, or toxic); blank texts are skipped
    /// (and counted).
    fn read(&self, kind: ModelKind) -> anyhow::Result<(Vec<(String, bool)>, usize)> {
        let input: Box<dyn std::io::Read> = if self.csv.as_os_str() == "-" {
            Box::new(std::io::stdin())
        } else {
            Box::new(
                std::fs::File::open(&self.csv)
                    .with_context(|| format!("opening {}", self.csv.display()))?,
            )
        };
        self.read_from(input, kind)
    }

    /// The same from any reader (the fuzz harness feeds it bytes).
    pub fn read_from(
        &self,
        input: Box<dyn std::io::Read>,
        kind: ModelKind,
    ) -> anyhow::Result<(Vec<(String, bool)>, usize)> {
        let delimiter = match self.delimiter.as_str() {
            "\\t" | "tab" => b'\t',
            d if d.len() == 1 => d.as_bytes()[0],
            d => anyhow::bail!("--delimiter must be one character or \\t, not {d:?}"),
        };
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .quoting(delimiter != b'\t')
            .has_headers(!self.no_header)
            .flexible(true)
            .from_reader(input);
        let column = |name: &str, headers: Option<&csv::StringRecord>| -> anyhow::Result<usize> {
            match headers {
                Some(headers) => headers
                    .iter()
                    .position(|h| h.trim() == name)
                    .with_context(|| {
                        format!(
                            "no column {name:?}; the columns are {:?}",
                            headers.iter().collect::<Vec<_>>()
                        )
                    }),
                None => name
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .map(|n| n - 1)
                    .with_context(|| {
                        format!("with --no-header, columns are positions from 1, not {name:?}")
                    }),
            }
        };
        let headers = if self.no_header {
            None
        } else {
            Some(reader.headers()?.clone())
        };
        let text_at = column(&self.text_column, headers.as_ref())?;
        let label_at = column(&self.label_column, headers.as_ref())?;
        let mut examples = Vec::new();
        let mut blank = 0;
        for (i, record) in reader.records().enumerate() {
            let line = i + if self.no_header { 1 } else { 2 };
            let record = record.with_context(|| format!("reading record {line}"))?;
            let (Some(text), Some(label)) = (record.get(text_at), record.get(label_at)) else {
                anyhow::bail!("record {line} has {} fields", record.len());
            };
            let parsed = match kind {
                ModelKind::Spam => crate::pipeline::spam::parse_label(label),
                ModelKind::Toxicity => crate::pipeline::toxicity::model::parse_label(label),
            };
            let label = parsed.with_context(|| match kind {
                ModelKind::Spam => format!(
                    "record {line}: label {label:?} is not spam/ham, 1/0, true/false or yes/no"
                ),
                ModelKind::Toxicity => format!(
                    "record {line}: label {label:?} is not 1/0, toxic/not_toxic, true/false, \
                     yes/no or a toxicity category"
                ),
            })?;
            // Exports often carry byte-order marks inside fields.
            let text = text.replace('\u{feff}', "");
            if text.trim().is_empty() {
                blank += 1;
                continue;
            }
            examples.push((text, label));
        }
        anyhow::ensure!(
            !examples.is_empty(),
            "no labelled text in {}",
            self.csv.display()
        );
        Ok((examples, blank))
    }
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Add or update every rule of FILE (`-` for stdin); with --replace, also
    /// delete the tenant's rules that FILE does not list. All or nothing.
    Import {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        replace: bool,
        file: PathBuf,
    },
    /// Write the tenant's rules to FILE (stdout when omitted or `-`).
    Export {
        #[arg(long)]
        tenant: String,
        file: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// gRPC listen address.
    #[arg(long, env = "MODERATO_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    pub grpc_addr: SocketAddr,
    /// HTTP listen address for the moderator console (/console), /healthz, /readyz and /metrics.
    #[arg(long, env = "MODERATO_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,
    /// Where the first start against an empty database writes the `default`
    /// tenant's admin key (mode 0600). Default: beside the SQLite file, else `data/admin.key`.
    #[arg(long, env = "MODERATO_ADMIN_KEY_FILE")]
    pub admin_key_file: Option<PathBuf>,
    /// TLS on the gRPC port: the PEM certificate chain, leaf first (with
    /// --tls-key). Replaced files are picked up within a second.
    #[arg(long, env = "MODERATO_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "MODERATO_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Mutual TLS: clients must present a certificate signed by a CA in this
    /// PEM file.
    #[arg(long, env = "MODERATO_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Serve the HTTP port over TLS too, with --tls-cert and --tls-key (no
    /// client certificate is asked for there).
    #[arg(long, env = "MODERATO_HTTP_TLS", requires = "tls_cert")]
    pub http_tls: bool,
    /// Calls this replica works on at once; more are refused at once with
    /// UNAVAILABLE and a retry delay (0: no bound).
    #[arg(long, env = "MODERATO_MAX_CONCURRENT_CALLS", default_value_t = crate::config::DEFAULT_MAX_CONCURRENT_CALLS)]
    pub max_concurrent_calls: usize,
    /// Requests per second of an API key that has no rate of its own (keys
    /// create --requests-per-second, CreateApiKey), shared by the live
    /// replicas; past it calls get RESOURCE_EXHAUSTED with a retry delay
    /// (0: no limit).
    #[arg(long, env = "MODERATO_KEY_REQUESTS_PER_SECOND", default_value_t = 0)]
    pub key_requests_per_second: u32,
    /// Where the server secret is kept when MODERATO_SECRET_KEY is unset
    /// (created with mode 0600 on first start). Default: beside the admin key.
    #[arg(long, env = "MODERATO_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// Deliver webhooks to loopback, private, link-local and cloud metadata
    /// addresses too (refused by default: a tenant chooses the URL, the
    /// request leaves from this network). For tests and private deployments.
    #[arg(long, env = "MODERATO_WEBHOOK_ALLOW_PRIVATE")]
    pub webhook_allow_private: bool,
    /// How long a replica's hold on a webhook endpoint lasts without
    /// renewal: how long deliveries to it pause when the replica dies.
    #[arg(long, env = "MODERATO_WEBHOOK_LEASE_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(3..=3600))]
    pub webhook_lease_seconds: u64,
    /// Multiplies the webhook retry delays (5 s, 5 min, 30 min…); below 1
    /// only for tests.
    #[arg(long, env = "MODERATO_WEBHOOK_BACKOFF_SCALE", default_value_t = 1.0)]
    pub webhook_backoff_scale: f64,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an API key, creating the tenant if needed; prints only the key.
    Create {
        /// Tenant name (a-z, 0-9, '-', '_').
        #[arg(long)]
        tenant: String,
        /// publisher, moderator or admin.
        #[arg(long)]
        role: String,
        /// What the key is for, shown in listings.
        #[arg(long, default_value = "")]
        name: String,
        /// Days until the key stops working (default: never).
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// The key's own rate (default: the server's --key-requests-per-second).
        #[arg(long)]
        requests_per_second: Option<u32>,
    },
    /// List a tenant's keys (never the keys themselves).
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Revoke a key by its id.
    Revoke {
        #[arg(long)]
        tenant: String,
        key_id: String,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let db = DbOptions {
        max_connections: cli.common.db_max_connections,
        ..DbOptions::default()
    };
    let database_url = cli.common.database_url;
    match cli.command {
        None => serve(cli.serve, database_url, db).await,
        Some(Command::Serve(args)) => serve(args, database_url, db).await,
        Some(Command::Migrate) => {
            let store = storage::connect(&database_url, &db).await?;
            store.close().await;
            tracing::info!("migrations applied");
            Ok(())
        }
        Some(Command::Keys(command)) => keys(command, &database_url).await,
        Some(Command::Rules(command)) => rules(command, &database_url).await,
        Some(Command::Train { file, model }) => train(file, model.into(), &database_url).await,
        Some(Command::ToxicitySeed {
            csv,
            out,
            epochs,
            l2,
            balance,
        }) => toxicity_seed(
            &csv,
            &out,
            &crate::pipeline::spam::model::FitOptions { epochs, l2 },
            balance,
        ),
        Some(Command::EvalSuite {
            tenant,
            suite,
            json,
            show_errors,
        }) => eval_suite(&tenant, &suite, json, show_errors, &database_url).await,
        Some(Command::Eval {
            file,
            json,
            show_errors,
            options,
        }) => eval(file, json, show_errors, options, &database_url).await,
    }
}

async fn serve(args: ServeArgs, database_url: String, db: DbOptions) -> anyhow::Result<()> {
    let admin_key_file = args
        .admin_key_file
        .unwrap_or_else(|| default_admin_key_file(&database_url));
    let settings = Settings {
        grpc_addr: args.grpc_addr,
        http_addr: args.http_addr,
        database_url,
        db,
        tls: match (args.tls_cert, args.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert,
                key,
                client_ca: args.tls_client_ca,
            }),
            _ => None,
        },
        http_tls: args.http_tls,
        max_concurrent_calls: args.max_concurrent_calls,
        key_requests_per_second: args.key_requests_per_second,
        // Read from the environment only: a flag would show in `ps`.
        secret_key: std::env::var("MODERATO_SECRET_KEY")
            .ok()
            .filter(|s| !s.is_empty()),
        secret_key_file: args
            .secret_key_file
            .unwrap_or_else(|| crate::config::default_secret_key_file(&admin_key_file)),
        admin_key_file,
        webhooks: crate::config::WebhookSettings {
            allow_private: args.webhook_allow_private,
            lease: std::time::Duration::from_secs(args.webhook_lease_seconds),
            backoff_scale: args.webhook_backoff_scale.clamp(0.0, 1.0),
        },
    };
    // Installed first: a SIGTERM from here on stops the server gracefully
    // (one that arrives while it starts, as soon as it serves).
    let shutdown = shutdown_signal();
    let app = Application::build(settings).await?;
    app.run_until_stopped(shutdown).await
}

/// Opens the store for a short-lived command: few connections, and patience
/// if a running server holds SQLite's write lock.
async fn open_for_command(
    database_url: &str,
) -> anyhow::Result<std::sync::Arc<dyn storage::Store>> {
    let db = DbOptions {
        max_connections: 2,
        acquire_timeout: Duration::from_secs(10),
    };
    storage::connect(database_url, &db).await
}

async fn rules(command: RulesCommand, database_url: &str) -> anyhow::Result<()> {
    let store = open_for_command(database_url).await?;
    let result = async {
        match command {
            RulesCommand::Import {
                tenant,
                replace,
                file,
            } => {
                let tenant = TenantName::parse(&tenant)?;
                let tenant_id = find_tenant(store.as_ref(), &tenant).await?;
                let text = if file.as_os_str() == "-" {
                    std::io::read_to_string(std::io::stdin())?
                } else {
                    std::fs::read_to_string(&file)
                        .with_context(|| format!("reading {}", file.display()))?
                };
                let parsed = RuleFile::from_toml(&text)?;
                let written =
                    crate::moderation::import_rules(store.as_ref(), tenant_id, parsed, replace)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                eprintln!("imported {} rules into {}", written.len(), tenant.as_str());
                Ok(())
            }
            RulesCommand::Export { tenant, file } => {
                let tenant = TenantName::parse(&tenant)?;
                let tenant_id = find_tenant(store.as_ref(), &tenant).await?;
                let text = crate::moderation::export_rules(store.as_ref(), tenant_id)
                    .await?
                    .to_toml();
                match file {
                    Some(path) if path.as_os_str() != "-" => std::fs::write(&path, text)
                        .with_context(|| format!("writing {}", path.display()))?,
                    _ => print!("{text}"),
                }
                Ok(())
            }
        }
    }
    .await;
    store.close().await;
    result
}

/// Opens the store for a command, finds `tenant`, runs `work`, and closes the
/// store whatever `work` returned.
async fn for_tenant<T>(
    database_url: &str,
    tenant: &str,
    work: impl AsyncFnOnce(
        &dyn storage::Store,
        &TenantName,
        crate::domain::TenantId,
    ) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let store = open_for_command(database_url).await?;
    let result = async {
        let tenant = TenantName::parse(tenant)?;
        let tenant_id = find_tenant(store.as_ref(), &tenant).await?;
        work(store.as_ref(), &tenant, tenant_id).await
    }
    .await;
    store.close().await;
    result
}

async fn train(file: LabelledFile, kind: ModelKind, database_url: &str) -> anyhow::Result<()> {
    let (examples, blank) = file.read(kind)?;
    if kind == ModelKind::Toxicity {
        crate::pipeline::toxicity::model::init().map_err(|e| anyhow::anyhow!(e))?;
    }
    let (positive, negative) = match kind {
        ModelKind::Spam => ("spam", "ham"),
        ModelKind::Toxicity => ("toxic", "clean"),
    };
    for_tenant(
        database_url,
        &file.tenant,
        async |store, tenant, tenant_id| {
            let report = crate::moderation::train(store, tenant_id, kind, examples).await?;
            eprintln!(
                "trained {}'s {} model on {} {positive} and {} {negative} ({} blank skipped): \
             {} weights changed, model version {}",
                tenant.as_str(),
                kind.as_str(),
                report.positive_examples,
                report.negative_examples,
                blank,
                report.features_changed,
                report.version
            );
            Ok(())
        },
    )
    .await
}

fn toxicity_seed(
    files: &[PathBuf],
    out: &std::path::Path,
    options: &crate::pipeline::spam::model::FitOptions,
    balance: bool,
) -> anyhow::Result<()> {
    let mut per_file = Vec::new();
    for path in files {
        let file = LabelledFile {
            tenant: String::new(),
            csv: path.clone(),
            text_column: "text".into(),
            label_column: "label".into(),
            delimiter: ",".into(),
            no_header: false,
        };
        let (read, blank) = file.read(ModelKind::Toxicity)?;
        eprintln!(
            "{}: {} examples ({} toxic, {blank} blank skipped)",
            path.display(),
            read.len(),
            read.iter().filter(|e| e.1).count()
        );
        per_file.push(read);
    }
    let largest = per_file.iter().map(Vec::len).max().unwrap_or(0);
    let mut examples = Vec::new();
    for read in per_file {
        let copies = if balance && !read.is_empty() {
            (largest as f64 / read.len() as f64).round().max(1.0) as usize
        } else {
            1
        };
        for _ in 0..copies {
            examples.extend(read.iter().cloned());
        }
    }
    // The team's neutral and counter-speech sentences about groups, so the
    // words around a group name are learnt as clean too (debiasing).
    let neutral = crate::pipeline::toxicity::model::NEUTRAL_CSV;
    let mut reader = csv::Reader::from_reader(neutral.as_bytes());
    for record in reader.records() {
        let record = record.context("seed/toxicity-neutral.csv")?;
        examples.push((record[0].to_owned(), &record[1] == "1"));
    }
    let features: Vec<_> = examples
        .iter()
        .map(|(text, toxic)| (crate::pipeline::toxicity::training_features(text), *toxic))
        .collect();
    let mut model = crate::pipeline::spam::Model::default();
    model.fit_with(&features, options);
    let bytes = crate::pipeline::toxicity::model::encode(&model);
    std::fs::write(out, &bytes).with_context(|| format!("writing {}", out.display()))?;
    eprintln!(
        "trained on {} examples: {} bytes written to {}",
        features.len(),
        bytes.len(),
        out.display()
    );
    Ok(())
}

async fn eval_suite(
    tenant: &str,
    suite: &std::path::Path,
    json: bool,
    show_errors: bool,
    database_url: &str,
) -> anyhow::Result<()> {
    use crate::evaluation::suite::{SuiteReport, expand, wrong_cases};
    crate::pipeline::toxicity::model::init().map_err(|e| anyhow::anyhow!(e))?;
    let text =
        std::fs::read_to_string(suite).with_context(|| format!("reading {}", suite.display()))?;
    let cases = expand(&text).map_err(|e| anyhow::anyhow!("{}: {e}", suite.display()))?;
    for_tenant(database_url, tenant, async |store, _, tenant_id| {
        let settings = store
            .tenant_settings(tenant_id)
            .await?
            .context("the tenant has no settings")?;
        let bodies = cases
            .iter()
            .map(|c| crate::domain::CommentBody::parse("text", c.text.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|v| anyhow::anyhow!("a case: {}", v.reason))?;
        let verdicts =
            crate::moderation::evaluate(store, tenant_id, &settings, true, bodies).await?;
        let flagged: Vec<bool> = verdicts
            .iter()
            .map(|v| v.status != crate::domain::CommentStatus::Approved)
            .collect();
        if show_errors {
            for line in wrong_cases(&cases, &verdicts) {
                eprintln!("{line}");
            }
        }
        let report = SuiteReport::compute(&cases, &flagged);
        if json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", report.to_text());
        }
        Ok(())
    })
    .await
}

async fn eval(
    file: LabelledFile,
    json: bool,
    show_errors: bool,
    options: EvalOptions,
    database_url: &str,
) -> anyhow::Result<()> {
    let (examples, blank) = file.read(options.model.into())?;
    crate::pipeline::toxicity::model::init().map_err(|e| anyhow::anyhow!(e))?;
    for_tenant(database_url, &file.tenant, async |store, _, tenant_id| {
        let stored = store
            .tenant_settings(tenant_id)
            .await?
            .context("the tenant has no settings")?;
        let toxicity = options.model == ModelArg::Toxicity;
        let mut settings = if toxicity {
            stored
        } else {
            stored
                .apply(&crate::domain::TenantSettingsPatch {
                    review_threshold: options.review_threshold,
                    reject_threshold: options.reject_threshold,
                    ..Default::default()
                })
                .map_err(|v| anyhow::anyhow!("--{}: {}", v.field.replace('_', "-"), v.reason))?
        };
        if toxicity {
            if let Some(t) = options.review_threshold {
                settings.toxicity.review = [t; 5];
            }
            if let Some(t) = options.reject_threshold {
                settings.toxicity.reject = [t; 5];
            }
        }
        let mut bodies = Vec::with_capacity(examples.len());
        let mut labels = Vec::with_capacity(examples.len());
        for (i, (text, label)) in examples.into_iter().enumerate() {
            let body = crate::domain::CommentBody::parse("text", text)
                .with_context(|| format!("labelled text number {}", i + 1))?;
            bodies.push(body);
            labels.push(label);
        }
        let texts: Vec<String> = if show_errors {
            bodies.iter().map(|b| b.as_str().to_owned()).collect()
        } else {
            Vec::new()
        };
        let verdicts = crate::moderation::evaluate(
            store,
            tenant_id,
            &settings,
            !options.without_rules,
            bodies,
        )
        .await?;
        if show_errors {
            for ((verdict, spam), text) in verdicts.iter().zip(&labels).zip(&texts) {
                let wrong = match verdict.status {
                    crate::domain::CommentStatus::Approved => *spam,
                    _ => !*spam,
                };
                if wrong {
                    let codes: Vec<&str> =
                        verdict.reasons.iter().map(|r| r.code.as_str()).collect();
                    eprintln!(
                        "{} -> {} {:.2} [{}] {}",
                        if *spam { "spam" } else { "ham" },
                        verdict.status.as_str(),
                        verdict.spam_score,
                        codes.join(","),
                        text.replace('\n', " ")
                    );
                }
            }
        }
        let outcomes: Vec<_> = verdicts
            .iter()
            .zip(labels)
            .map(|(v, spam)| crate::evaluation::Outcome {
                spam,
                status: v.status,
                score: if toxicity {
                    v.toxicity_score
                } else {
                    v.spam_score
                },
            })
            .collect();
        if let Some(path) = &options.scores {
            let mut out = String::from("label,status,score\n");
            for o in &outcomes {
                out += &format!("{},{},{}\n", u8::from(o.spam), o.status.as_str(), o.score);
            }
            std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))?;
        }
        let (review, reject) = if toxicity {
            (settings.toxicity.review[0], settings.toxicity.reject[0])
        } else {
            (settings.review_threshold, settings.reject_threshold)
        };
        let report = crate::evaluation::Report::compute(&outcomes, review, reject);
        if json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", report.to_text());
            if blank > 0 {
                println!("({blank} blank texts skipped)");
            }
        }
        Ok(())
    })
    .await
}

async fn keys(command: KeysCommand, database_url: &str) -> anyhow::Result<()> {
    let store = open_for_command(database_url).await?;
    let result = async {
        match command {
            KeysCommand::Create {
                tenant,
                role,
                name,
                expires_in_days,
                requests_per_second,
            } => {
                let tenant = TenantName::parse(&tenant)?;
                let now = chrono::Utc::now();
                let spec = KeySpec::parse(
                    Role::parse("role", &role)?,
                    &name,
                    expires_in_days.map(|days| now + chrono::Duration::days(i64::from(days))),
                    requests_per_second,
                    now,
                )?;
                let created =
                    crate::moderation::create_tenant_key(store.as_ref(), &tenant, spec).await?;
                println!("{}", created.secret.expose());
                Ok(())
            }
            KeysCommand::List { tenant } => {
                let tenant = TenantName::parse(&tenant)?;
                let tenant_id = find_tenant(store.as_ref(), &tenant).await?;
                for key in store.list_api_keys(tenant_id).await? {
                    let now = chrono::Utc::now();
                    let state = match (key.revoke_time, key.expire_time) {
                        (Some(t), _) => format!("revoked {}", t.to_rfc3339()),
                        (None, Some(t)) if t <= now => format!("expired {}", t.to_rfc3339()),
                        (None, Some(t)) => format!("active until {}", t.to_rfc3339()),
                        (None, None) => "active".to_owned(),
                    };
                    let last_use = key.last_use_time.map_or_else(
                        || "never used".to_owned(),
                        |t| format!("used {}", t.to_rfc3339()),
                    );
                    println!(
                        "{}\t{}\t{}…\t{}\t{}\t{}\t{}",
                        key.key_id,
                        key.role,
                        key.key_prefix,
                        key.create_time.to_rfc3339(),
                        state,
                        last_use,
                        key.name,
                    );
                }
                Ok(())
            }
            KeysCommand::Revoke { tenant, key_id } => {
                let tenant = TenantName::parse(&tenant)?;
                let tenant_id = find_tenant(store.as_ref(), &tenant).await?;
                let key_id = KeyId::parse("key_id", &key_id)?;
                store
                    .revoke_api_key(
                        tenant_id,
                        key_id,
                        &crate::domain::Actor::operator(),
                        chrono::Utc::now(),
                    )
                    .await?
                    .context("no such key for this tenant")?;
                println!("revoked {key_id}");
                Ok(())
            }
        }
    }
    .await;
    store.close().await;
    result
}

async fn find_tenant(
    store: &dyn storage::Store,
    tenant: &TenantName,
) -> anyhow::Result<crate::domain::TenantId> {
    store
        .find_tenant(tenant)
        .await?
        .with_context(|| format!("no tenant named {}", tenant.as_str()))
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled: the server logs that it is
/// serving before it polls the future, and a SIGTERM sent in between (a
/// supervisor reacting to that line) must still stop it gracefully rather
/// than kill it.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(terminate), Ok(interrupt)) => Some((terminate, interrupt)),
            (Err(err), _) | (_, Err(err)) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM and SIGINT");
                None
            }
        }
    };
    async move {
        #[cfg(unix)]
        match signals {
            Some((mut terminate, mut interrupt)) => {
                tokio::select! {
                    _ = terminate.recv() => {},
                    _ = interrupt.recv() => {},
                }
            }
            None => std::future::pending::<()>().await,
        }
        #[cfg(not(unix))]
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
        tracing::info!("shutdown signal received; finishing in-flight calls");
    }
}
