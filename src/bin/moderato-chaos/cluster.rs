//! The processes the harness breaks: a throwaway Postgres cluster, moderato
//! replicas, and for SQLite a small tmpfs volume to fill.
//!
//! Everything is started by the harness, on loopback, and torn down when it
//! ends (also when it fails: `Drop`), so a run leaves nothing behind.

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// A free loopback port: bound once and released, then reused for every
/// start of the process that gets it (clients keep one address per replica).
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

fn run(command: &mut Command) -> anyhow::Result<String> {
    let output = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Sends `signal` (a name `kill` knows: STOP, CONT, KILL, TERM) to `pids`.
pub fn signal(signal: &str, pids: &[u32]) -> anyhow::Result<()> {
    if pids.is_empty() {
        return Ok(());
    }
    let mut command = Command::new("kill");
    command.arg(format!("-{signal}"));
    command.args(pids.iter().map(u32::to_string));
    run(&mut command).map(drop)
}

/// A Postgres cluster of the harness's own, in `work/pgdata`, on a free port,
/// with `fsync` on: an immediate stop is a crash the cluster must recover
/// from without losing a commit.
pub struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    log: PathBuf,
    pub port: u16,
    /// initdb refuses to run as root: then everything runs as `postgres`.
    as_postgres: bool,
    running: bool,
}

impl Postgres {
    pub fn init(work: &Path, pg_bin: Option<PathBuf>) -> anyhow::Result<Postgres> {
        let bin = match pg_bin {
            Some(bin) => bin,
            None => find_pg_bin().context(
                "no initdb found: install PostgreSQL's server binaries or pass --pg-bin",
            )?,
        };
        let as_postgres = run(Command::new("id").arg("-u"))?.trim() == "0";
        let data = work.join("pgdata");
        let log = work.join("postgres.log");
        if as_postgres {
            // `work` is 0755: the postgres user reaches its data directory.
            let _ = run(Command::new("id").arg("postgres")).or_else(|_| {
                run(Command::new("useradd").args(["--system", "--no-create-home", "postgres"]))
            })?;
            fs::create_dir(&data)?;
            fs::write(&log, "")?;
            run(Command::new("chown").arg("postgres").arg(&data).arg(&log))?;
        }
        let port = free_addr()?.port();
        let mut pg = Postgres {
            bin,
            data,
            log,
            port,
            as_postgres,
            running: false,
        };
        let mut initdb = pg.command("initdb");
        initdb.arg("-D").arg(&pg.data);
        initdb.args(["-U", "postgres", "--auth=trust", "--no-sync"]);
        run(&mut initdb)?;
        pg.start()?;
        Ok(pg)
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the cluster and waits until it accepts connections.
    pub fn start(&mut self) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=200",
            self.port
        );
        let mut start = self.command("pg_ctl");
        start.arg("-D").arg(&self.data).arg("-l").arg(&self.log);
        start.args(["-o", &options, "-w", "-t", "60", "start"]);
        run(&mut start)?;
        self.running = true;
        Ok(())
    }

    /// `mode`: `fast` (clients disconnected, clean shutdown) or `immediate`
    /// (every process quits at once: crash recovery at the next start).
    pub fn stop(&mut self, mode: &str) -> anyhow::Result<()> {
        let mut stop = self.command("pg_ctl");
        stop.arg("-D").arg(&self.data);
        stop.args(["-m", mode, "-w", "-t", "60", "stop"]);
        run(&mut stop)?;
        self.running = false;
        Ok(())
    }

    /// The postmaster and every process it started (backends, walwriter,
    /// checkpointer…): what a pause must stop for the database to hang.
    pub fn pids(&self) -> anyhow::Result<Vec<u32>> {
        let pid_file = fs::read_to_string(self.data.join("postmaster.pid"))
            .context("reading postmaster.pid")?;
        let postmaster: u32 = pid_file
            .lines()
            .next()
            .and_then(|line| line.trim().parse().ok())
            .context("postmaster.pid has no pid")?;
        let mut pids = vec![postmaster];
        for entry in fs::read_dir("/proc")?.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // pid (comm) state ppid …: comm may hold spaces, so split after ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|ppid| ppid.parse::<u32>().ok());
            if ppid == Some(postmaster) {
                pids.push(pid);
            }
        }
        Ok(pids)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.running {
            let _ = self.stop("immediate");
        }
    }
}

fn find_pg_bin() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .collect();
    candidates.sort();
    candidates.reverse();
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path));
    }
    candidates
        .into_iter()
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
}

/// One moderato process, restartable on the same addresses.
pub struct Replica {
    pub name: String,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    binary: PathBuf,
    env: Vec<(String, String)>,
    extra_args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
    pub starts: u32,
}

impl Replica {
    pub fn new(
        name: &str,
        binary: &Path,
        env: Vec<(String, String)>,
        extra_args: Vec<String>,
        work: &Path,
    ) -> anyhow::Result<Replica> {
        Ok(Replica {
            name: name.to_owned(),
            grpc: free_addr()?,
            http: free_addr()?,
            binary: binary.to_owned(),
            env,
            extra_args,
            log: work.join(format!("{name}.log")),
            child: None,
            starts: 0,
        })
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    pub fn spawn(&mut self) -> anyhow::Result<()> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(&self.binary)
            .arg("--grpc-addr")
            .arg(self.grpc.to_string())
            .arg("--http-addr")
            .arg(self.http.to_string())
            .args(&self.extra_args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.child = Some(child);
        self.starts += 1;
        Ok(())
    }

    /// SIGKILL: no graceful stop, whatever is in flight is cut.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// SIGTERM and a wait for the graceful stop (killed after `grace`).
    pub fn stop(&mut self, grace: Duration) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        signal("TERM", &[child.id()])?;
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.kill()?;
        child.wait()?;
        bail!("{} did not stop within {grace:?}", self.name)
    }

    /// Whether the process exited by itself (it should not).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// A tmpfs of `size_mib` at `path`, for the SQLite database: the disk-full
/// fault fills it with a file and frees it again. Needs root (mount).
pub struct SmallVolume {
    pub path: PathBuf,
    mounted: bool,
}

impl SmallVolume {
    pub fn mount(path: &Path, size_mib: u32) -> anyhow::Result<SmallVolume> {
        fs::create_dir_all(path)?;
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size_mib}m,mode=0755"))
            .arg("tmpfs")
            .arg(path))
        .context("mounting a tmpfs for the disk-full fault (needs root)")?;
        Ok(SmallVolume {
            path: path.to_owned(),
            mounted: true,
        })
    }

    /// Writes a file until the volume is full; returns its path and size.
    pub fn fill(&self) -> anyhow::Result<(PathBuf, u64)> {
        use std::io::Write as _;
        let path = self.path.join("filler");
        let mut file = fs::File::create(&path)?;
        let mut written = 0u64;
        for chunk in [1 << 20, 4096, 512] {
            let block = vec![0u8; chunk];
            loop {
                match file.write(&block) {
                    Ok(0) => break,
                    Ok(n) => written += n as u64,
                    Err(err) if err.raw_os_error() == Some(28) => break, // ENOSPC
                    Err(err) => return Err(err.into()),
                }
            }
        }
        let _ = file.sync_all();
        Ok((path, written))
    }
}

impl Drop for SmallVolume {
    fn drop(&mut self) {
        if self.mounted {
            let _ = run(Command::new("umount").arg("-l").arg(&self.path));
        }
    }
}
