//! Which process runs a phase, and what each process measures of itself. By default each phase
//! runs in a child process of its own: the same executable run again with the same arguments and
//! `ACTLOG_BENCH_PHASE` set, so each phase's peak RSS is its own and one engine's page cache never
//! helps the other. The parent gathers the children's figures by engine.

use std::io;
use std::path::{Path, PathBuf};

use super::engines::{ActlogEngine, SqliteEngine};
use super::options::{BenchOptions, Plan};
use super::phases::{Phase, ACTLOG_DIR, PHASES, SQLITE_DIR};
use super::util::{float, io_err, Figures};
use super::Engine;

const PHASE_ENV: &str = "ACTLOG_BENCH_PHASE";
const DIR_ENV: &str = "ACTLOG_BENCH_DATA";
const OUT_ENV: &str = "ACTLOG_BENCH_OUT";

/// Both engines' figures of a whole run.
pub struct Measured {
    pub actlog: Figures,
    pub sqlite: Figures,
}

/// In a child process (`ACTLOG_BENCH_PHASE` set): runs that phase, writes its figures where the
/// parent said, and returns `true`. In the parent: returns `false` at once.
pub fn run_as_child(plan: &Plan) -> io::Result<bool> {
    let Ok(name) = std::env::var(PHASE_ENV) else {
        return Ok(false);
    };
    let phase = Phase::from_name(&name)
        .ok_or_else(|| io::Error::other(format!("unknown bench phase {name:?}")))?;
    let dir = PathBuf::from(std::env::var_os(DIR_ENV).unwrap_or_default());
    let out = PathBuf::from(std::env::var_os(OUT_ENV).unwrap_or_default());
    let fig = phase.run(plan, &dir)?;
    std::fs::write(out, serde_json::to_vec(&fig).map_err(io_err)?)?;
    Ok(true)
}

/// Runs every phase (each in a child unless `--in-process`) and sorts the figures by engine.
pub fn run_all(opts: &BenchOptions, plan: &Plan) -> io::Result<Measured> {
    let (base, temporary) = match &opts.dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("actlog-bench-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&base)?;
    let mut m = Measured {
        actlog: Figures::new(),
        sqlite: Figures::new(),
    };
    for phase in PHASES {
        eprintln!("actlog bench: {} ({} events)…", phase.name(), plan.events);
        let fig = if opts.in_process {
            phase.run(plan, &base)?
        } else {
            run_child(phase, &base)?
        };
        let actlog_prefix = format!("{}/", ActlogEngine::NAME);
        let sqlite_prefix = format!("{}/", SqliteEngine::NAME);
        for (key, value) in fig {
            if let Some(k) = key.strip_prefix(&actlog_prefix) {
                m.actlog.insert(k.to_owned(), value);
            } else if let Some(k) = key.strip_prefix(&sqlite_prefix) {
                m.sqlite.insert(k.to_owned(), value);
            } else if phase.engine() == ActlogEngine::NAME {
                m.actlog.insert(key, value);
            } else {
                m.sqlite.insert(key, value);
            }
        }
    }
    if temporary && !opts.keep {
        std::fs::remove_dir_all(&base)?;
    } else {
        for d in [ACTLOG_DIR, SQLITE_DIR] {
            eprintln!("actlog bench: data kept in {}", base.join(d).display());
        }
    }
    Ok(m)
}

/// Runs one phase in a child: this executable again, same arguments, with the phase in the env.
fn run_child(phase: Phase, base: &Path) -> io::Result<Figures> {
    let name = phase.name();
    let out = base.join(format!("{name}.json"));
    let status = std::process::Command::new(std::env::current_exe()?)
        .args(std::env::args_os().skip(1))
        .env(PHASE_ENV, name)
        .env(DIR_ENV, base)
        .env(OUT_ENV, &out)
        .status()?;
    if !status.success() {
        return Err(io::Error::other(format!(
            "bench phase {name} failed: {status}"
        )));
    }
    let fig = serde_json::from_slice(&std::fs::read(&out)?).map_err(io_err)?;
    std::fs::remove_file(&out)?;
    Ok(fig)
}

/// The process's peak resident set so far (VmHWM), in MiB; NaN where /proc is not there. A
/// phase's own when it runs in a child.
pub fn peak_rss_mib() -> f64 {
    proc_status_kib("VmHWM:").map_or(f64::NAN, |k| float(k) / 1024.0)
}

fn proc_status_kib(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
