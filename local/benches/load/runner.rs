//! The runner under test: the release binary (`cargo build --release -p
//! local`), as a user runs it, in a child process of its own, so its memory is
//! its own and the load generator's CPU is not counted as its.

use crate::client::Api;
use anyhow::{Context, bail};
use hyper::Method;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Runner {
    child: Child,
    pub url: String,
    /// Taken by `stop`, which hands it on.
    data: Option<tempfile::TempDir>,
}

/// `LOAD_RUNNER`, or the runner as users build it (`--profile runner`) in
/// this workspace's target directory. Not `target/release/local`: `cargo
/// bench` writes its own build of the package's binaries there.
pub fn binary() -> anyhow::Result<PathBuf> {
    let path = match std::env::var_os("LOAD_RUNNER") {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/runner/local"),
    };
    if !path.is_file() {
        bail!("no runner at {}: run `cargo build --profile runner -p local` first (or set LOAD_RUNNER)", path.display());
    }
    Ok(path)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Runner {
    /// A fresh runner on fresh data, answering on `/local/health`.
    pub async fn start(binary: &Path, args: &[&str]) -> anyhow::Result<Runner> {
        let data = tempfile::tempdir()?;
        let port = free_port()?.to_string();
        let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
        // Its log (info, as a user runs it) goes to a file: a terminal would
        // slow it down, and a failed run can be read afterwards.
        let log = std::fs::File::create(data.path().join("runner.log"))?;
        let child = Command::new(binary)
            .args(["--port", &port, "--data-dir"])
            .arg(data.path())
            .arg("--template")
            .arg(&template)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let mut runner = Runner { child, url: format!("http://127.0.0.1:{port}"), data: Some(data) };
        let client = Api::new(&runner.url, Duration::from_secs(1))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = runner.child.try_wait()? {
                bail!("the runner exited ({status}) before answering; see {}", runner.log().display());
            }
            if client.call(Method::GET, "/local/health", None, None).await.is_ok_and(|answer| answer.status == 200) {
                return Ok(runner);
            }
            if Instant::now() > deadline {
                bail!("the runner did not answer within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log(&self) -> PathBuf {
        self.data.as_ref().map(|data| data.path().join("runner.log")).unwrap_or_default()
    }

    /// Peak resident memory so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmHWM in /proc/<pid>/status")
    }

    /// Where its CPU time is read (`cpu_of`).
    pub fn stat(&self) -> String {
        format!("/proc/{}/stat", self.child.id())
    }

    /// Stops it as Ctrl-C does (work in flight finishes, everything on disk).
    pub async fn stop(mut self) -> anyhow::Result<Stopped> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-INT", &pid]).status()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                self.child.kill()?;
                bail!("the runner did not stop within 30 s of SIGINT");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.data.take().map(|data| Stopped { data }).context("the runner was stopped before")
    }
}

/// CPU time (user + system) of the process whose `/proc/<pid>/stat` this is.
pub fn cpu_of(stat: &str) -> anyhow::Result<Duration> {
    let text = std::fs::read_to_string(stat)?;
    // The fields after the command name, which may hold spaces: utime and
    // stime are the 14th and 15th of the line.
    let fields: Vec<&str> = text.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).with_context(|| format!("{stat} has no field {}", i + 3));
    Ok(Duration::from_secs_f64((ticks(11)? + ticks(12)?) as f64 / clock_ticks()?))
}

/// The whole machine's CPU time, from the first line of `/proc/stat`: where
/// the cores went, runner and load generator or not (the kernel's network
/// work, other processes, time the hypervisor took back).
#[derive(Debug, Clone, Copy, Default)]
pub struct MachineCpu {
    pub busy: u64,
    pub softirq: u64,
    pub steal: u64,
    pub idle: u64,
}

impl MachineCpu {
    pub fn now() -> anyhow::Result<MachineCpu> {
        let text = std::fs::read_to_string("/proc/stat")?;
        let line = text.lines().next().unwrap_or_default();
        // cpu user nice system idle iowait irq softirq steal ...
        let ticks: Vec<u64> = line.split_whitespace().skip(1).map(|field| field.parse().unwrap_or(0)).collect();
        if ticks.len() < 8 {
            bail!("/proc/stat does not start with the cpu line: {line:?}");
        }
        Ok(MachineCpu {
            busy: ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6],
            softirq: ticks[6],
            steal: ticks[7],
            idle: ticks[3] + ticks[4],
        })
    }

    /// Shares of the time since `earlier`: (busy, of which softirq, steal, idle).
    pub fn shares_since(&self, earlier: &MachineCpu) -> (f64, f64, f64, f64) {
        let busy = self.busy.saturating_sub(earlier.busy) as f64;
        let softirq = self.softirq.saturating_sub(earlier.softirq) as f64;
        let steal = self.steal.saturating_sub(earlier.steal) as f64;
        let idle = self.idle.saturating_sub(earlier.idle) as f64;
        let total = (busy + steal + idle).max(1.0);
        (busy / total, softirq / total, steal / total, idle / total)
    }
}

/// Clock ticks per second of `/proc/*/stat` (`getconf CLK_TCK`, 100 on Linux).
fn clock_ticks() -> anyhow::Result<f64> {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    if let Some(ticks) = TICKS.get() {
        return Ok(*ticks);
    }
    let output = Command::new("getconf").arg("CLK_TCK").output()?;
    let ticks = String::from_utf8_lossy(&output.stdout).trim().parse::<f64>().context("getconf CLK_TCK is not a number")?;
    Ok(*TICKS.get_or_init(|| ticks))
}

impl Drop for Runner {
    fn drop(&mut self) {
        // A run that failed half-way leaves no runner behind.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What a stopped runner left: its data directory, until this is dropped.
pub struct Stopped {
    data: tempfile::TempDir,
}

impl Stopped {
    pub fn database(&self) -> PathBuf {
        self.data.path().join("food-delivery.db")
    }
}
