//! The report: the table's rows as data (a definition per row, read from both engines' figures),
//! the machine, the notes, and the printed Markdown. The targets are `targets.rs`'s.

use serde::Serialize;

use super::engine::{DEPTHS, PAGE_FILTERS};
use super::http;
use super::options::Plan;
use super::targets::Target;
use super::util::Figures;

/// The machine a report was made on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_mib: u64,
    pub kernel: String,
}

/// One line of the table: a figure for both engines and their ratio (actlog / SQLite).
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub figure: String,
    pub unit: String,
    pub actlog: Option<f64>,
    pub sqlite: Option<f64>,
    pub ratio: Option<f64>,
    /// `higher` or `lower`: which way is better.
    pub better: String,
}

/// A whole run: the table, the targets, and every raw figure of both engines.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub date: String,
    pub command: String,
    pub events: u64,
    pub seed: u64,
    pub machine: Machine,
    pub rows: Vec<Row>,
    pub targets: Vec<Target>,
    pub actlog: Figures,
    pub sqlite: Figures,
    pub notes: Vec<String>,
}

/// Which way of a figure is better.
#[derive(Debug, Clone, Copy)]
enum Better {
    Higher,
    Lower,
}

impl Better {
    fn as_str(self) -> &'static str {
        match self {
            Better::Higher => "higher",
            Better::Lower => "lower",
        }
    }
}

use Better::{Higher, Lower};

/// One row's definition: its label, its unit, the figure key it shows, which way is better.
struct RowDef {
    label: String,
    unit: &'static str,
    key: String,
    better: Better,
}

/// The ingest rows.
const INGEST: [(&str, &str, &str, Better); 4] = [
    (
        "ingest, sync (SQLite NORMAL)",
        "events/s",
        "ingest.sync.events_per_s",
        Higher,
    ),
    (
        "ingest, relaxed (SQLite NORMAL)",
        "events/s",
        "ingest.relaxed.events_per_s",
        Higher,
    ),
    (
        "ingest, SQLite synchronous=FULL",
        "events/s",
        "ingest.full.events_per_s",
        Higher,
    ),
    (
        "ingest batch p99, sync",
        "ms",
        "ingest.sync.batch_p99_ms",
        Lower,
    ),
];

/// Single-activity appends, each acknowledged durable on its own (`single.rs`), by threads.
const SINGLE: [(usize, &str); 2] = [
    (
        1,
        "single appends, 1 thread (SQLite FULL, a row a transaction)",
    ),
    (
        16,
        "single appends, 16 threads (SQLite FULL, a row a transaction)",
    ),
];

/// How long after an acknowledged append the background indexer folds it (actlog only).
const FOLD_DELAY: [(&str, &str, &str, Better); 2] = [
    (
        "fold delay after an acknowledged append, p50",
        "ms",
        "ingest.fold_delay_p50_ms",
        Lower,
    ),
    (
        "fold delay after an acknowledged append, p99",
        "ms",
        "ingest.fold_delay_p99_ms",
        Lower,
    ),
];

/// The whole-log scans: `scan.<name>.records_per_s`, and MB/s for the warm and cold ones.
const SCANS: [(&str, &str); 10] = [
    ("warm_fwd", "scan warm fwd, Store::scan (read in place)"),
    ("warm_rev", "scan warm rev, Store::scan (read in place)"),
    ("owned_fwd", "scan warm fwd, owned Activity"),
    ("owned_rev", "scan warm rev, owned Activity"),
    ("cold_fwd", "scan cold fwd"),
    ("cold_rev", "scan cold rev"),
    ("paged_fwd", "scan warm fwd, query pages of 1000"),
    ("paged_rev", "scan warm rev, query pages of 1000"),
    ("raw_fwd", "raw sled iteration fwd (ceiling)"),
    ("raw_rev", "raw sled iteration rev (ceiling)"),
];

/// The decoded scans as a share of the raw iteration.
const SHARES: [(&str, &str, &str, Better); 2] = [
    (
        "scan warm fwd share of raw",
        "%",
        "scan.warm_fwd.share_of_raw",
        Higher,
    ),
    (
        "scan warm rev share of raw",
        "%",
        "scan.warm_rev.share_of_raw",
        Higher,
    ),
];

/// Counts, export, the store's size and open, memory.
const STORE: [(&str, &str, &str, Better); 8] = [
    ("exact count (by action)", "ms", "count.action.ms", Lower),
    ("facet of actions", "ms", "facet.action.ms", Lower),
    (
        "export NDJSON, all tenants",
        "records/s",
        "export.records_per_s",
        Higher,
    ),
    (
        "disk per event (after sync ingest)",
        "bytes",
        "disk.sync.bytes_per_event",
        Lower,
    ),
    (
        "sled keys per event (after sync ingest)",
        "keys",
        "ingest.sync.keys_per_event",
        Lower,
    ),
    ("open", "ms", "open.ms", Lower),
    (
        "peak RSS, ingest sync",
        "MiB",
        "ingest.sync.peak_rss_mib",
        Lower,
    ),
    ("peak RSS, reads", "MiB", "read.peak_rss_mib", Lower),
];

/// The last row: requests of the HTTP load that failed, over every cell.
const HTTP_ERRORS: (&str, &str, &str, Better) = (
    "HTTP failed requests (non-2xx or transport), all cells",
    "requests",
    "http.errors",
    Lower,
);

/// Every row of the table, in order. Page rows appear for the cells either engine measured.
fn row_defs(a: &Figures, s: &Figures) -> Vec<RowDef> {
    let mut defs = Vec::new();
    let mut add = |label: &str, unit: &'static str, key: String, better: Better| {
        defs.push(RowDef {
            label: label.to_owned(),
            unit,
            key,
            better,
        });
    };
    for (label, unit, key, better) in INGEST {
        add(label, unit, key.into(), better);
    }
    for (threads, label) in SINGLE {
        let key = |what: &str| format!("ingest.single.c{threads}.{what}");
        add(label, "events/s", key("events_per_s"), Higher);
        add(&format!("{label}, p50"), "µs", key("p50_us"), Lower);
        add(&format!("{label}, p99"), "µs", key("p99_us"), Lower);
    }
    for (label, unit, key, better) in FOLD_DELAY {
        add(label, unit, key.into(), better);
    }
    for (name, label) in SCANS {
        add(
            label,
            "records/s",
            format!("scan.{name}.records_per_s"),
            Higher,
        );
        if name.starts_with("warm") || name.starts_with("cold") {
            add(label, "MB/s", format!("scan.{name}.mb_per_s"), Higher);
        }
    }
    for (label, unit, key, better) in SHARES {
        add(label, unit, key.into(), better);
    }
    for name in PAGE_FILTERS {
        for depth in DEPTHS {
            for (kind, what) in [("cursor", "cursor"), ("offset", "OFFSET")] {
                for p in ["p50", "p99"] {
                    let key = format!("page.{name}.d{depth}.{kind}_{p}_us");
                    if a.contains_key(&key) || s.contains_key(&key) {
                        add(
                            &format!("page of 50 by {name}, depth {depth}, {what} {p}"),
                            "µs",
                            key,
                            Lower,
                        );
                    }
                }
            }
        }
    }
    for (label, unit, key, better) in STORE {
        add(label, unit, key.into(), better);
    }
    for (target, what) in [
        (http::Target::Page, "HTTP GET page of 50"),
        (http::Target::Post, "HTTP POST batch of 100"),
        (http::Target::PostOne, "HTTP POST one activity"),
        (http::Target::Fixed, "HTTP fixed page (ceiling)"),
    ] {
        for c in http::CONNECTIONS {
            let label = format!("{what}, {c} conn{}", if c == 1 { "" } else { "s" });
            let key = |what: &str| format!("http.{}.c{c}.{what}", target.name());
            add(&label, "req/s", key("rps"), Higher);
            if target.activities() > 0 {
                add(&label, "activities/s", key("activities_per_s"), Higher);
            }
            add(&format!("{label}, p50"), "µs", key("p50_us"), Lower);
            add(&format!("{label}, p99"), "µs", key("p99_us"), Lower);
            // 100% is one core busy; the client's share is part of the process's.
            add(
                &format!("{label}, CPU of the process"),
                "%",
                key("cpu_pct"),
                Lower,
            );
            add(
                &format!("{label}, CPU of the load generator"),
                "%",
                key("client_cpu_pct"),
                Lower,
            );
            if target == http::Target::Page {
                add(
                    &format!("{label}, share of the fixed page's req/s"),
                    "%",
                    key("share_of_fixed_pct"),
                    Higher,
                );
            }
        }
    }
    let (label, unit, key, better) = HTTP_ERRORS;
    add(label, unit, key.into(), better);
    defs
}

/// Figures only actlog has: the raw iteration under its scans, the fold delay of its
/// background indexer, and the HTTP layer.
fn actlog_only(key: &str) -> bool {
    key.contains("raw") || key.starts_with("ingest.fold_delay") || key.starts_with("http.")
}

/// A figure as measured, or derived from measured ones: MB/s from records/s and the mean size
/// of a record as actlog stores it (the same for both engines), a share of the raw iteration.
fn figure(f: &Figures, a: &Figures, key: &str) -> Option<f64> {
    if let Some(v) = f.get(key) {
        return Some(*v);
    }
    let bytes_per_record = a.get("scan.bytes")? / a.get("scan.records")?;
    if let Some(k) = key.strip_suffix(".mb_per_s") {
        return Some(f.get(&format!("{k}.records_per_s"))? * bytes_per_record / 1e6);
    }
    if let Some(k) = key.strip_suffix(".share_of_raw") {
        let dir = k.strip_prefix("scan.warm_")?;
        return Some(
            100.0 * f.get(&format!("{k}.records_per_s"))?
                / f.get(&format!("scan.raw_{dir}.records_per_s"))?,
        );
    }
    None
}

/// The table's rows, read from actlog's (`a`) and SQLite's (`s`) figures.
pub fn rows(a: &Figures, s: &Figures) -> Vec<Row> {
    row_defs(a, s)
        .into_iter()
        .map(|d| {
            let av = figure(a, a, &d.key);
            let sv = if actlog_only(&d.key) {
                None
            } else {
                figure(s, a, &d.key)
            };
            let ratio = match (av, sv) {
                (Some(x), Some(y)) if y != 0.0 => Some(x / y),
                _ => None,
            };
            Row {
                figure: d.label,
                unit: d.unit.to_owned(),
                actlog: av,
                sqlite: sv,
                ratio,
                better: d.better.as_str().to_owned(),
            }
        })
        .collect()
}

fn machine() -> Machine {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu_model = read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or_else(String::new, |s| s.trim().to_owned());
    let memory_mib = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<u64>().ok())
        .map_or(0, |k| k / 1024);
    Machine {
        cpus: std::thread::available_parallelism().map_or(0, usize::from),
        cpu_model,
        memory_mib,
        kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
    }
}

/// A report with no figures yet: the run's identity, the machine and the notes.
pub fn empty(plan: &Plan) -> Report {
    Report {
        date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        command: String::new(),
        events: plan.events,
        seed: plan.seed,
        machine: machine(),
        rows: Vec::new(),
        targets: Vec::new(),
        actlog: Figures::new(),
        sqlite: Figures::new(),
        notes: vec![
            "Each phase runs in its own process; 'cold' means a freshly opened store or connection \
             (the OS page cache is not dropped)."
                .into(),
            "Cursor pages alternate engines within one process, one actlog page then one SQLite \
             page per repetition; OFFSET pages are SQLite-only, in its read phase."
                .into(),
            "actlog runs with a 256 MB sled cache, SQLite with a 256 MB page cache.".into(),
            "MB/s is records/s times the mean size of a record as actlog stores it (key + value), \
             the same for both engines, so its ratio equals the records/s ratio."
                .into(),
            "SQLite 'sync' ingest is synchronous=NORMAL in WAL mode (the issue's tuned peer); \
             synchronous=FULL, the durability of actlog's sync, is the 'full' row."
                .into(),
            "Single appends: each activity its own transaction, returned once durable, each \
             cell on a fresh store for a bounded window. actlog: `Store::append` in sync \
             durability from every thread on one `Store` (concurrent appends share flushes). \
             SQLite: one INSERT (and its context rows) per transaction, synchronous=FULL in WAL \
             mode (each commit syncs the WAL, as actlog's sync flushes), one connection behind \
             a mutex shared by the threads (SQLite writes one transaction at a time). Both \
             end a durable commit in an fsync (actlog: fdatasync of sled's file after sled's \
             flush, which alone is only sync_file_range)."
                .into(),
            "Fold delay: a store opened as `actlog serve` opens it (sync, background indexer at \
             its default interval), single appends 5 ms apart from one thread, the pending \
             count read every 0.2 ms between them; the delay runs from an append's \
             acknowledgement to the first read showing it folded."
                .into(),
            "HTTP: actlog's router (`http::app_with`: API v1 plus `GET /bench/fixed`) served by \
             axum on 127.0.0.1 from a fresh store of up to 100k events in one tenant, with \
             `actlog serve`'s defaults (sync durability, 128 MB cache, concurrency limit, timeout) \
             except the per-key rate limiter, which is off (per_second 0); request log lines are \
             formatted at `info` as the server does, into a sink. The load generator (keep-alive \
             HTTP/1.1, one task per connection, one thread) runs in the same process on the same \
             cores, so the HTTP figures are a lower bound."
                .into(),
            "HTTP fixed page (ceiling): the bytes of one real page of 50, captured at setup, \
             served from memory through every middleware layer of the API (request id, tracing, \
             panic catching, metrics, rate limit (off), concurrency limit and timeout, body \
             limit); it skips authentication (the key lookup), query parsing, the store and JSON \
             serialization."
                .into(),
        ],
    }
}

fn fmt_num(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(x) if !x.is_finite() => "–".into(),
        Some(x) if x.abs() >= 100.0 => {
            let whole = format!("{x:.0}");
            let (sign, digits) = whole.split_at(usize::from(whole.starts_with('-')));
            let mut out = String::new();
            for (i, c) in digits.chars().enumerate() {
                if i > 0 && (digits.len() - i) % 3 == 0 {
                    out.push(',');
                }
                out.push(c);
            }
            format!("{sign}{out}")
        }
        Some(x) if x.abs() >= 10.0 => format!("{x:.1}"),
        Some(x) => format!("{x:.2}"),
    }
}

/// The report as one Markdown table, then the targets.
pub fn table(r: &Report) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "\nactlog bench — {} events, seed {}, {} ({} CPUs, {} MiB), {}\n\n",
        r.events, r.seed, r.machine.cpu_model, r.machine.cpus, r.machine.memory_mib, r.date
    ));
    out.push_str("| figure | unit | actlog | SQLite | actlog/SQLite |\n|---|---|---:|---:|---:|\n");
    for row in &r.rows {
        if row.actlog.is_none() && row.sqlite.is_none() {
            continue;
        }
        let ratio = row.ratio.map_or("–".into(), |x| format!("{x:.2}×"));
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            row.figure,
            row.unit,
            fmt_num(row.actlog),
            fmt_num(row.sqlite),
            ratio
        ));
    }
    out.push_str("\n| target | measured | met |\n|---|---|---|\n");
    for t in &r.targets {
        let met = match t.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "n/a",
        };
        out.push_str(&format!("| {} | {} | {} |\n", t.target, t.measured, met));
    }
    out.push('\n');
    for n in &r.notes {
        out.push_str(&format!("- {n}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_only_actlog_has_are_never_compared() {
        let a: Figures = [
            ("scan.raw_fwd.records_per_s", 10.0),
            ("http.errors", 0.0),
            ("open.ms", 2.0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let s = a.clone();
        let rows = rows(&a, &s);
        let row = |label: &str| rows.iter().find(|r| r.figure.starts_with(label)).unwrap();
        assert_eq!(row("raw sled iteration fwd").sqlite, None);
        assert_eq!(row("HTTP failed requests").sqlite, None);
        assert_eq!(row("open").ratio, Some(1.0));
        assert_eq!(row("open").better, "lower");
        // The fold delay is actlog's; single appends are compared.
        let a: Figures = [
            ("ingest.fold_delay_p50_ms", 25.0),
            ("ingest.single.c16.events_per_s", 300.0),
            ("http.post1.c16.activities_per_s", 3000.0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let s = a.clone();
        let rows = super::rows(&a, &s);
        let row = |label: &str| rows.iter().find(|r| r.figure == label).unwrap();
        assert_eq!(
            row("fold delay after an acknowledged append, p50").sqlite,
            None
        );
        let single = row("single appends, 16 threads (SQLite FULL, a row a transaction)");
        assert_eq!(
            (single.unit.as_str(), single.ratio),
            ("events/s", Some(1.0))
        );
        let http = rows
            .iter()
            .find(|r| r.figure == "HTTP POST one activity, 16 conns" && r.unit == "activities/s")
            .unwrap();
        assert_eq!((http.actlog, http.sqlite), (Some(3000.0), None));
        // Page rows appear only for the cells measured.
        assert!(!rows.iter().any(|r| r.figure.starts_with("page of 50")));
    }
}
