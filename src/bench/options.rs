//! `actlog bench`'s options, and the plan a run measures with.

use std::path::PathBuf;
use std::time::Duration;

/// Options of `actlog bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchOptions {
    /// Activities in the dataset.
    #[arg(long, default_value_t = 1_000_000, env = "ACTLOG_BENCH_EVENTS")]
    pub events: u64,
    /// A smoke run: 100k activities and fewer repetitions.
    #[arg(long, env = "ACTLOG_BENCH_QUICK")]
    pub quick: bool,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE", env = "ACTLOG_BENCH_JSON")]
    pub json: Option<PathBuf>,
    /// Where the engines' data goes (default: a new directory under the system's temp directory,
    /// removed at the end).
    #[arg(long, value_name = "DIR", env = "ACTLOG_BENCH_DIR")]
    pub dir: Option<PathBuf>,
    /// The dataset's seed.
    #[arg(long, default_value_t = 42, env = "ACTLOG_BENCH_SEED")]
    pub seed: u64,
    /// Run every phase in this process (peak RSS then covers everything run before it).
    #[arg(long, env = "ACTLOG_BENCH_IN_PROCESS")]
    pub in_process: bool,
    /// Keep the data directory after the run.
    #[arg(long, env = "ACTLOG_BENCH_KEEP")]
    pub keep: bool,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            events: 1_000_000,
            quick: false,
            json: None,
            dir: None,
            seed: 42,
            in_process: false,
            keep: false,
        }
    }
}

/// What a run measures with, derived from the options.
#[derive(Debug, Clone)]
pub struct Plan {
    pub seed: u64,
    pub events: u64,
    /// Repetitions of each whole-log scan (the median is reported).
    pub runs: usize,
    /// Most page queries timed per cell, and the time one cell may take.
    pub page_reps: usize,
    pub page_budget: Duration,
    /// The HTTP load: each cell's untimed warm-up and its measured window.
    pub http_warmup: Duration,
    pub http_window: Duration,
    /// Untimed page requests before the first page cell (see `http::run`).
    pub http_page_warmup: Duration,
    /// Single-activity appends: each cell's measured window, and the most activities a cell
    /// may append (whichever ends it first).
    pub single_window: Duration,
    pub single_events: u64,
    /// Appends the fold delay is measured on, one sample each.
    pub fold_samples: usize,
}

impl Plan {
    pub fn new(o: &BenchOptions) -> Plan {
        Plan {
            seed: o.seed,
            events: if o.quick { 100_000 } else { o.events },
            runs: if o.quick { 3 } else { 5 },
            page_reps: if o.quick { 300 } else { 1000 },
            page_budget: Duration::from_secs(if o.quick { 1 } else { 3 }),
            http_warmup: if o.quick {
                Duration::ZERO
            } else {
                Duration::from_millis(500)
            },
            http_window: Duration::from_secs(if o.quick { 1 } else { 5 }),
            http_page_warmup: Duration::from_secs(if o.quick { 3 } else { 10 }),
            single_window: Duration::from_secs(if o.quick { 2 } else { 5 }),
            single_events: if o.quick { 30_000 } else { 100_000 },
            fold_samples: if o.quick { 200 } else { 500 },
        }
    }
}
