//! `moderato-chaos`: faults under load, and a client-side ledger that shows
//! whether anything acknowledged was lost (issue #16; RELIABILITY.md has the
//! figures and `bench/chaos` runs it on both backends).
//!
//! Why a separate process and not a test of the library: the faults are of
//! processes (a database stopped or frozen, a replica killed mid-commit, a
//! disk filling up), and the only honest witness is a client outside all of
//! them. The harness starts everything it breaks, on loopback, and stops it
//! when it ends.

mod cluster;
mod ledger;
mod load;
mod verify;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};
use serde::Serialize;

use cluster::{Postgres, Replica, SmallVolume};
use ledger::{Shared, now_ms};
use load::Ctx;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum Backend {
    Postgres,
    Sqlite,
}

#[derive(Debug, Parser)]
#[command(
    name = "moderato-chaos",
    about = "Fault injection under load with a client-side ledger (RELIABILITY.md)"
)]
struct Args {
    #[arg(long, value_enum)]
    backend: Backend,
    /// The moderato binary to run (default: beside this one).
    #[arg(long)]
    moderato: Option<PathBuf>,
    /// How many times each fault is injected.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Seconds of steady load before the first fault and after each recovery.
    #[arg(long, default_value_t = 3.0)]
    calm: f64,
    /// Publishers submitting at once (each waits `--think-ms` between comments).
    #[arg(long, default_value_t = 32)]
    submitters: usize,
    #[arg(long, default_value_t = 20)]
    think_ms: u64,
    /// Moderators claiming and deciding at once.
    #[arg(long, default_value_t = 4)]
    moderators: usize,
    /// Each client call's deadline, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    deadline_ms: u64,
    /// The moderators' lease, in seconds.
    #[arg(long, default_value_t = 4)]
    lease_seconds: i32,
    /// Each replica's pool (`--db-max-connections`): fewer than the callers.
    #[arg(long, default_value_t = 8)]
    pool: u32,
    /// Where PostgreSQL's initdb and pg_ctl are (default: found).
    #[arg(long)]
    pg_bin: Option<PathBuf>,
    /// Write the report (JSON) here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Keep the work directory (logs, database) for a look afterwards.
    #[arg(long)]
    keep: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// `pg_ctl stop -m fast`, down for the outage, started again.
    DbRestartFast,
    /// `pg_ctl stop -m immediate`: every Postgres process quits at once,
    /// crash recovery at the next start.
    DbRestartImmediate,
    /// SIGSTOP to every Postgres process, past the clients' deadlines.
    DbPause,
    /// SIGKILL to a replica under load (mid group commit), then a restart.
    ReplicaKill,
    /// The comments table locked against writes (Postgres) or the write
    /// lock held (SQLite): every statement slow, more callers than
    /// connections.
    PoolExhaustion,
    /// The SQLite volume filled to the last byte, then freed.
    DiskFull,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::DbRestartFast => "db-restart-fast",
            Fault::DbRestartImmediate => "db-restart-immediate",
            Fault::DbPause => "db-pause",
            Fault::ReplicaKill => "replica-kill",
            Fault::PoolExhaustion => "pool-exhaustion",
            Fault::DiskFull => "disk-full",
        }
    }

    /// Faults of the database itself: calls must succeed again within 5 s
    /// of its return, and `/readyz` must have shown the outage.
    fn of_the_database(self) -> bool {
        matches!(
            self,
            Fault::DbRestartFast | Fault::DbRestartImmediate | Fault::DbPause
        )
    }
}

/// One injection, as it happened.
#[derive(Debug, Serialize)]
struct FaultRun {
    fault: &'static str,
    #[serde(skip)]
    kind: Fault,
    round: u32,
    /// From the fault's start to its end (the database back, the replica
    /// restarted, the lock or the disk freed).
    outage_ms: i64,
    /// From the fault's end to the first successful call on every affected
    /// replica.
    recovery_ms: Option<i64>,
    /// Whether every affected replica's `/readyz` was not 200 during the fault.
    readyz_tracked: bool,
    /// From the fault's end to `/readyz` 200 on every affected replica.
    readyz_ready_after_ms: Option<i64>,
    /// Submissions waiting for an answer when the fault started.
    in_flight_at_start: usize,
    /// Replica kill: calls the other replicas served during the outage.
    survivor_successes: Option<usize>,
    #[serde(skip)]
    start_ms: i64,
    #[serde(skip)]
    end_ms: i64,
    #[serde(skip)]
    affected: Vec<usize>,
}

#[derive(Debug, Serialize)]
struct Summary {
    fault: &'static str,
    injected: usize,
    recovery_median_ms: Option<i64>,
    recovery_max_ms: Option<i64>,
    /// Answers clients got while this fault ran (and until it was
    /// recovered from), per RPC.
    codes: BTreeMap<String, BTreeMap<String, u64>>,
}

#[derive(Debug, Serialize)]
struct Report {
    backend: Backend,
    rounds: u32,
    seconds: f64,
    replicas: usize,
    faults: Vec<FaultRun>,
    summary: Vec<Summary>,
    calm_codes: BTreeMap<String, BTreeMap<String, u64>>,
    findings: verify::Findings,
    /// Promises of the issue that did not hold, in words; empty on a pass.
    failures: Vec<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            eprintln!("moderato-chaos: {err:#}");
            ExitCode::from(2)
        }
    }
}

struct Setup {
    url: String,
    postgres: Option<Postgres>,
    volume: Option<SmallVolume>,
    sqlite_path: Option<PathBuf>,
    replicas: Vec<Replica>,
}

fn work_dir() -> anyhow::Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .subsec_nanos();
    let dir = std::env::temp_dir().join(format!("moderato-chaos-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    Ok(dir)
}

fn moderato_binary(args: &Args) -> anyhow::Result<PathBuf> {
    let path = match &args.moderato {
        Some(path) => path.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no directory")?
            .join("moderato"),
    };
    if !path.is_file() {
        bail!("no moderato binary at {} (--moderato)", path.display());
    }
    Ok(path)
}

fn create_key(binary: &Path, env: &[(String, String)], role: &str) -> anyhow::Result<String> {
    let output = std::process::Command::new(binary)
        .args(["keys", "create", "--tenant", "default", "--role", role])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()?;
    if !output.status.success() {
        bail!(
            "moderato keys create: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?.trim().to_owned())
}

async fn wait_ready(replica: &Replica, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if load::readyz(replica.http).await == Some(200) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!(
        "{} not ready within {within:?} (log: {})",
        replica.name,
        replica.log_path().display()
    )
}

async fn run(args: Args) -> anyhow::Result<bool> {
    let started = Instant::now();
    let binary = moderato_binary(&args)?;
    let work = work_dir()?;
    eprintln!(
        "moderato-chaos: {:?}, work directory {}",
        args.backend,
        work.display()
    );
    let result = run_in(&args, &binary, &work, started).await;
    if args.keep || !matches!(result, Ok(true)) {
        eprintln!(
            "moderato-chaos: logs and database kept in {}",
            work.display()
        );
    } else {
        let _ = std::fs::remove_dir_all(&work);
    }
    result
}

async fn run_in(args: &Args, binary: &Path, work: &Path, started: Instant) -> anyhow::Result<bool> {
    let mut setup = Setup {
        url: String::new(),
        postgres: None,
        volume: None,
        sqlite_path: None,
        replicas: Vec::new(),
    };
    let replica_count = match args.backend {
        Backend::Postgres => {
            let pg = tokio::task::block_in_place(|| Postgres::init(work, args.pg_bin.clone()))?;
            setup.url = pg.url();
            setup.postgres = Some(pg);
            2
        }
        Backend::Sqlite => {
            // 512 MiB: room for a long run's database (tmpfs takes memory
            // only for what is written), filled at once by the fault.
            let volume = SmallVolume::mount(&work.join("disk"), 512)?;
            let path = volume.path.join("moderato.db");
            setup.url = format!("sqlite://{}", path.display());
            setup.sqlite_path = Some(path);
            setup.volume = Some(volume);
            // SQLite serves from one process: the kill takes the service down.
            1
        }
    };
    let secret: String = (0..64)
        .map(|_| char::from(b"0123456789abcdef"[rand::random_range(0..16)]))
        .collect();
    let env = vec![
        ("DATABASE_URL".to_owned(), setup.url.clone()),
        ("MODERATO_SECRET_KEY".to_owned(), secret),
        (
            "MODERATO_ADMIN_KEY_FILE".to_owned(),
            work.join("admin.key").display().to_string(),
        ),
        ("RUST_LOG".to_owned(), "warn".to_owned()),
    ];
    let publisher = create_key(binary, &env, "publisher")?;
    let moderator = create_key(binary, &env, "moderator")?;
    for i in 0..replica_count {
        let mut replica = Replica::new(
            &format!("replica-{i}"),
            binary,
            env.clone(),
            vec!["--db-max-connections".to_owned(), args.pool.to_string()],
            work,
        )?;
        replica.spawn()?;
        setup.replicas.push(replica);
    }
    for replica in &setup.replicas {
        wait_ready(replica, Duration::from_secs(60)).await?;
    }

    let ctx = Arc::new(Ctx {
        shared: Shared::new(),
        channels: setup
            .replicas
            .iter()
            .map(|r| load::channel(r.grpc))
            .collect::<anyhow::Result<_>>()?,
        http: setup.replicas.iter().map(|r| r.http).collect(),
        publisher,
        moderator,
        deadline: Duration::from_millis(args.deadline_ms),
        lease_seconds: args.lease_seconds,
        stop_submitting: AtomicBool::new(false),
        stop_moderating: AtomicBool::new(false),
        stop_probing: AtomicBool::new(false),
        in_flight: AtomicUsize::new(0),
    });
    let think = Duration::from_millis(args.think_ms);
    let submitters: Vec<_> = (0..args.submitters)
        .map(|w| {
            let ctx = ctx.clone();
            tokio::spawn(async move {
                tokio::time::sleep(think * (w as u32 % 10) / 10).await;
                load::submitter(ctx, w, think).await
            })
        })
        .collect();
    let moderators: Vec<_> = (0..args.moderators)
        .map(|k| tokio::spawn(load::moderator(ctx.clone(), k)))
        .collect();
    let watcher = tokio::spawn(load::watcher(ctx.clone()));
    let probes: Vec<_> = (0..replica_count)
        .flat_map(|i| {
            [
                tokio::spawn(load::prober(ctx.clone(), i)),
                tokio::spawn(load::ready_poller(ctx.clone(), i)),
            ]
        })
        .collect();

    let calm = Duration::from_secs_f64(args.calm);
    tokio::time::sleep(calm).await;
    let faults: &[Fault] = match args.backend {
        Backend::Postgres => &[
            Fault::DbRestartFast,
            Fault::DbRestartImmediate,
            Fault::DbPause,
            Fault::ReplicaKill,
            Fault::PoolExhaustion,
        ],
        Backend::Sqlite => &[Fault::ReplicaKill, Fault::PoolExhaustion, Fault::DiskFull],
    };
    let mut runs = Vec::new();
    let mut failures = Vec::new();
    for round in 1..=args.rounds {
        for &fault in faults {
            for replica in &mut setup.replicas {
                if let Some(status) = replica.exited() {
                    failures.push(format!("{} exited by itself ({status})", replica.name));
                    replica.spawn()?;
                }
            }
            eprintln!("moderato-chaos: {} (round {round})", fault.name());
            ctx.shared.set_phase(fault.name());
            let run = inject(fault, round, args, &mut setup, &ctx).await?;
            // The fault's codes run until every affected replica serves again.
            let recovered = wait_recovered(&ctx, &run, Duration::from_secs(30)).await;
            if !recovered {
                failures.push(format!(
                    "{} round {round}: calls did not succeed again within 30 s",
                    fault.name()
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            ctx.shared.set_phase("calm");
            runs.push(run);
            tokio::time::sleep(calm).await;
        }
    }

    // Wind down: submissions end, the unacknowledged are retried until
    // acknowledged (the same client_comment_id), then everything is read.
    eprintln!("moderato-chaos: settling");
    ctx.stop_submitting.store(true, Ordering::SeqCst);
    for task in submitters {
        task.await?;
    }
    ctx.stop_probing.store(true, Ordering::SeqCst);
    for task in probes {
        task.await?;
    }
    let acknowledged_before = ctx.shared.with(|l| {
        l.submissions
            .values()
            .filter(|s| !s.acks.is_empty())
            .count()
    });
    let pending: Vec<String> = ctx.shared.with(|l| {
        l.submissions
            .iter()
            .filter(|(_, s)| s.acks.is_empty())
            .map(|(id, _)| id.clone())
            .collect()
    });
    let settle_until = Arc::new(AtomicBool::new(false));
    let settling: Vec<_> = pending
        .into_iter()
        .enumerate()
        .map(|(i, id)| {
            let ctx = ctx.clone();
            let until = settle_until.clone();
            tokio::spawn(async move { ctx.submit_until_acked(&id, i, Some(&until)).await })
        })
        .collect();
    let settle_timer = {
        let until = settle_until.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            until.store(true, Ordering::SeqCst);
        })
    };
    for task in settling {
        task.await?;
    }
    settle_timer.abort();
    ctx.stop_moderating.store(true, Ordering::SeqCst);
    for task in moderators {
        task.await?;
    }

    // Every lease must end: past the longest one, a new moderator claims
    // every open item.
    tokio::time::sleep(Duration::from_secs(args.lease_seconds as u64 + 1)).await;
    let final_claimed = claim_everything(&ctx).await;

    // The stream must reach the log's last number.
    let last_sequence = last_sequence(&setup).await?;
    let caught_up = Instant::now() + Duration::from_secs(30);
    while ctx
        .shared
        .with(|l| l.events.last().map_or(0, |e| e.sequence))
        < last_sequence
        && Instant::now() < caught_up
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    watcher.abort();
    for replica in &mut setup.replicas {
        if let Some(status) = replica.exited() {
            failures.push(format!("{} exited by itself ({status})", replica.name));
        }
        replica.stop(Duration::from_secs(20))?;
    }

    let stored = match (&setup.sqlite_path, &setup.postgres) {
        (Some(path), _) => verify::read_sqlite(path).await?,
        (None, Some(pg)) => verify::read_postgres(&pg.url()).await?,
        _ => unreachable!(),
    };
    let ctx = Arc::try_unwrap(ctx)
        .ok()
        .context("a client task still runs")?;
    let ledger = ctx.shared.into_ledger();
    let mut findings = verify::check(&ledger, &stored, acknowledged_before);
    let open: Vec<&str> = stored
        .reviews
        .iter()
        .filter(|r| r.state == "open")
        .map(|r| r.review_id.as_str())
        .collect();
    let outliving = open
        .iter()
        .filter(|id| !final_claimed.contains(**id))
        .count();
    if outliving > 0 {
        findings.lease_violations += outliving;
        failures.push(format!(
            "{outliving} open review items could not be claimed once every lease had ended"
        ));
    }

    for run in &mut runs {
        measure(run, &ledger, replica_count);
    }
    for run in &runs {
        let name = format!("{} round {}", run.fault, run.round);
        match run.recovery_ms {
            Some(ms) if run.kind.of_the_database() && ms > 5000 => {
                failures.push(format!("{name}: calls succeeded again only after {ms} ms"))
            }
            None => failures.push(format!("{name}: no successful call after the fault")),
            _ => {}
        }
        if run.kind.of_the_database() {
            if !run.readyz_tracked {
                failures.push(format!("{name}: /readyz answered 200 during the outage"));
            }
            if run.readyz_ready_after_ms.is_none_or(|ms| ms > 5000) {
                failures.push(format!("{name}: /readyz not ready within 5 s after it"));
            }
        }
        if run.survivor_successes == Some(0) {
            failures.push(format!(
                "{name}: the other replica served nothing meanwhile"
            ));
        }
    }
    if !findings.clean() {
        failures.push("the ledger and the database disagree (see findings)".to_owned());
    }

    let report = Report {
        backend: args.backend,
        rounds: args.rounds,
        seconds: started.elapsed().as_secs_f64(),
        replicas: replica_count,
        summary: summarize(faults, &runs, &ledger),
        calm_codes: codes_of(&ledger, "calm"),
        faults: runs,
        findings,
        failures,
    };
    print_report(&report);
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(path) = &args.report {
        std::fs::write(path, &json)?;
    }
    if args.keep || !report.failures.is_empty() {
        // The tmpfs goes with the run: keep a copy of the database to look at.
        if let Some(path) = &setup.sqlite_path {
            for suffix in ["", "-wal", "-shm"] {
                let from = PathBuf::from(format!("{}{suffix}", path.display()));
                let _ = std::fs::copy(&from, work.join(format!("moderato.db{suffix}")));
            }
        }
    }
    drop(setup);
    Ok(report.failures.is_empty())
}

async fn inject(
    fault: Fault,
    round: u32,
    args: &Args,
    setup: &mut Setup,
    ctx: &Ctx,
) -> anyhow::Result<FaultRun> {
    let deadline = Duration::from_millis(args.deadline_ms);
    let start_ms = now_ms();
    let in_flight_at_start = ctx.in_flight.load(Ordering::SeqCst);
    let all: Vec<usize> = (0..setup.replicas.len()).collect();
    let mut affected = all.clone();
    match fault {
        Fault::DbRestartFast | Fault::DbRestartImmediate => {
            let pg = setup.postgres.as_mut().context("no Postgres")?;
            let mode = if fault == Fault::DbRestartFast {
                "fast"
            } else {
                "immediate"
            };
            tokio::task::block_in_place(|| pg.stop(mode))?;
            tokio::time::sleep(Duration::from_secs(1)).await;
            tokio::task::block_in_place(|| pg.start())?;
        }
        Fault::DbPause => {
            let pg = setup.postgres.as_ref().context("no Postgres")?;
            let pids = pg.pids()?;
            cluster::signal("STOP", &pids)?;
            tokio::time::sleep(deadline * 2 + Duration::from_secs(1)).await;
            let mut children = pids.clone();
            let postmaster = children.remove(0);
            cluster::signal("CONT", &children)?;
            cluster::signal("CONT", &[postmaster])?;
        }
        Fault::ReplicaKill => {
            let i = (round as usize - 1) % setup.replicas.len();
            affected = vec![i];
            setup.replicas[i].kill()?;
            tokio::time::sleep(Duration::from_millis(500)).await;
            setup.replicas[i].spawn()?;
        }
        Fault::PoolExhaustion => {
            // Longer than the pool's acquire timeout (3 s) and SQLite's busy
            // timeout (5 s): callers wait, then are refused.
            let hold = Duration::from_secs(6);
            match (&setup.postgres, &setup.sqlite_path) {
                (Some(pg), _) => {
                    use sqlx::Connection as _;
                    let mut conn = sqlx::PgConnection::connect(&pg.url()).await?;
                    sqlx::raw_sql("BEGIN; LOCK TABLE comments IN EXCLUSIVE MODE")
                        .execute(&mut conn)
                        .await?;
                    tokio::time::sleep(hold).await;
                    sqlx::raw_sql("COMMIT").execute(&mut conn).await?;
                    conn.close().await?;
                }
                (None, Some(path)) => {
                    use sqlx::Connection as _;
                    let options = sqlx::sqlite::SqliteConnectOptions::new()
                        .filename(path)
                        .busy_timeout(Duration::from_secs(30));
                    let mut conn = sqlx::SqliteConnection::connect_with(&options).await?;
                    sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut conn).await?;
                    tokio::time::sleep(hold).await;
                    sqlx::raw_sql("COMMIT").execute(&mut conn).await?;
                    conn.close().await?;
                }
                _ => unreachable!(),
            }
        }
        Fault::DiskFull => {
            let volume = setup.volume.as_ref().context("no volume")?;
            let (filler, _) = volume.fill()?;
            tokio::time::sleep(Duration::from_secs(4)).await;
            std::fs::remove_file(filler)?;
        }
    }
    let end_ms = now_ms();
    Ok(FaultRun {
        fault: fault.name(),
        kind: fault,
        round,
        outage_ms: end_ms - start_ms,
        recovery_ms: None,
        readyz_tracked: false,
        readyz_ready_after_ms: None,
        in_flight_at_start,
        survivor_successes: None,
        start_ms,
        end_ms,
        affected,
    })
}

/// Waits until each affected replica has answered a probe after the fault.
async fn wait_recovered(ctx: &Ctx, run: &FaultRun, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let done = ctx.shared.with(|l| {
            run.affected.iter().all(|&r| {
                l.probes
                    .iter()
                    .any(|p| p.replica == r && p.ok && p.at_ms >= run.end_ms)
            })
        });
        if done {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Recovery and readiness of one fault, from the probes and samples.
fn measure(run: &mut FaultRun, ledger: &ledger::Ledger, replicas: usize) {
    let mut recovery = Some(0i64);
    let mut ready_after = Some(0i64);
    let mut tracked = true;
    for &r in &run.affected {
        let first_ok = ledger
            .probes
            .iter()
            .filter(|p| p.replica == r && p.ok && p.at_ms >= run.end_ms)
            .map(|p| p.at_ms - run.end_ms)
            .min();
        recovery = recovery.zip(first_ok).map(|(a, b)| a.max(b));
        let first_ready = ledger
            .ready
            .iter()
            .filter(|s| s.replica == r && s.status == Some(200) && s.at_ms >= run.end_ms)
            .map(|s| s.at_ms - run.end_ms)
            .min();
        ready_after = ready_after.zip(first_ready).map(|(a, b)| a.max(b));
        // Not ready at some point of the fault (samples answered during it).
        tracked &= ledger.ready.iter().any(|s| {
            s.replica == r
                && s.at_ms > run.start_ms
                && s.at_ms <= run.end_ms + 500
                && s.status != Some(200)
        });
    }
    run.recovery_ms = recovery;
    run.readyz_ready_after_ms = ready_after;
    run.readyz_tracked = tracked;
    if run.kind == Fault::ReplicaKill && replicas > 1 {
        let until = run.end_ms + run.recovery_ms.unwrap_or(0);
        run.survivor_successes = Some(
            ledger
                .probes
                .iter()
                .filter(|p| {
                    !run.affected.contains(&p.replica)
                        && p.ok
                        && p.at_ms > run.start_ms
                        && p.at_ms < until
                })
                .count(),
        );
    }
}

fn codes_of(ledger: &ledger::Ledger, phase: &str) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for ((p, rpc, code), n) in &ledger.codes {
        if p == phase {
            *out.entry((*rpc).to_owned())
                .or_default()
                .entry(code.clone())
                .or_default() += n;
        }
    }
    out
}

fn summarize(faults: &[Fault], runs: &[FaultRun], ledger: &ledger::Ledger) -> Vec<Summary> {
    faults
        .iter()
        .map(|fault| {
            let mut recoveries: Vec<i64> = runs
                .iter()
                .filter(|r| r.kind == *fault)
                .filter_map(|r| r.recovery_ms)
                .collect();
            recoveries.sort_unstable();
            Summary {
                fault: fault.name(),
                injected: runs.iter().filter(|r| r.kind == *fault).count(),
                recovery_median_ms: recoveries.get(recoveries.len() / 2).copied(),
                recovery_max_ms: recoveries.last().copied(),
                codes: codes_of(ledger, fault.name()),
            }
        })
        .collect()
}

/// Claims with a fresh identity until nothing is left; the ids claimed.
async fn claim_everything(ctx: &Ctx) -> std::collections::HashSet<String> {
    let mut claimed = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match ctx.claim_for_audit().await {
            Ok(items) if items.is_empty() => break,
            Ok(items) => claimed.extend(items.into_iter().map(|id| ledger::norm(&id))),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    claimed
}

async fn last_sequence(setup: &Setup) -> anyhow::Result<i64> {
    let sql = "SELECT COALESCE(max(sequence), 0) FROM decision_sequence";
    Ok(match (&setup.sqlite_path, &setup.postgres) {
        (Some(path), _) => {
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(path)
                .read_only(true);
            let pool = sqlx::SqlitePool::connect_with(options).await?;
            let last: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await?;
            pool.close().await;
            last
        }
        (None, Some(pg)) => {
            let pool = sqlx::PgPool::connect(&pg.url()).await?;
            let last: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await?;
            pool.close().await;
            last
        }
        _ => unreachable!(),
    })
}

fn print_report(report: &Report) {
    let f = &report.findings;
    println!(
        "\n{:?}: {} replica(s), {} round(s), {:.0} s",
        report.backend, report.replicas, report.rounds, report.seconds
    );
    println!(
        "{:<22} {:>8} {:>14} {:>12} {:>10}",
        "fault", "injected", "recovery p50", "max", "readyz"
    );
    for s in &report.summary {
        let tracked = report
            .faults
            .iter()
            .filter(|r| r.fault == s.fault)
            .all(|r| r.readyz_tracked);
        println!(
            "{:<22} {:>8} {:>11} ms {:>9} ms {:>10}",
            s.fault,
            s.injected,
            s.recovery_median_ms.map_or("-".into(), |v| v.to_string()),
            s.recovery_max_ms.map_or("-".into(), |v| v.to_string()),
            if tracked { "tracked" } else { "no" }
        );
        for (rpc, codes) in &s.codes {
            let codes: Vec<String> = codes.iter().map(|(c, n)| format!("{c} {n}")).collect();
            println!("    {rpc}: {}", codes.join(", "));
        }
    }
    println!(
        "submissions {} ({} attempts, {} retried), acknowledged {} during the run, {} after settling",
        f.submissions, f.attempts, f.retried, f.acknowledged, f.acknowledged_after_settling
    );
    println!(
        "lost {}, duplicated {}, verdict mismatches {}, never acknowledged {}",
        f.lost, f.duplicated, f.verdict_mismatch, f.never_acknowledged
    );
    println!(
        "claims {}, decisions acknowledged {} (unconfirmed {}), not applied {}, decided twice {}, review items lost {}, lease violations {}",
        f.claims,
        f.decisions_acknowledged,
        f.decisions_unconfirmed,
        f.decisions_not_applied,
        f.decided_twice,
        f.review_items_lost,
        f.lease_violations
    );
    println!(
        "stream: {} of {} events over {} connections, gaps {}, duplicates {}, out of order {}, mismatches {}",
        f.stream_events_seen,
        f.stream_events_expected,
        f.stream_connects,
        f.stream_gaps,
        f.stream_duplicates,
        f.stream_out_of_order,
        f.stream_mismatch
    );
    println!("integrity_check: {}", f.integrity_check);
    for example in &f.examples {
        println!("  finding: {example}");
    }
    if report.failures.is_empty() {
        println!("PASS");
    } else {
        for failure in &report.failures {
            println!("FAIL: {failure}");
        }
    }
}
