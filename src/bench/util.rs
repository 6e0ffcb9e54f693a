//! Measuring helpers shared by every phase: timers, percentiles, disk use, and the like.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

/// Named figures one phase measured. Keys are `area.name.unit`, values plain numbers.
pub type Figures = BTreeMap<String, f64>;

/// A count as a float: exact below 2^53, far above any count here.
pub fn float(n: u64) -> f64 {
    let hi = u32::try_from(n >> 32).unwrap_or(u32::MAX);
    let lo = u32::try_from(n & 0xFFFF_FFFF).unwrap_or(0);
    f64::from(hi) * 4_294_967_296.0 + f64::from(lo)
}

pub fn float_usize(n: usize) -> f64 {
    float(u64::try_from(n).unwrap_or(u64::MAX))
}

/// Runs `f` and returns its result with the time it took.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

/// The median of some samples (sorts them).
pub fn median(v: &mut [f64]) -> f64 {
    percentile(v, 50.0)
}

/// The `p`-th percentile by nearest rank (sorts the samples); NaN when there are none.
pub fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = float_usize(v.len());
    let rank = (p / 100.0 * n).ceil().max(1.0);
    // rank is a whole number in 1..=len.
    let idx = v
        .iter()
        .enumerate()
        .find(|(i, _)| float_usize(i + 1) >= rank)
        .map_or(v.len() - 1, |(i, _)| i);
    v[idx]
}

/// Seconds from the earliest opening to the latest close of some measuring windows (their
/// union, gaps included), so work still running when one window closed counts against a rate
/// over it, never for it; 0 when there is none.
pub fn span_secs(windows: impl IntoIterator<Item = (Instant, Instant)>) -> f64 {
    let (mut opened, mut closed) = (None::<Instant>, None::<Instant>);
    for (o, c) in windows {
        opened = Some(opened.map_or(o, |x| x.min(o)));
        closed = Some(closed.map_or(c, |x| x.max(c)));
    }
    match (opened, closed) {
        (Some(o), Some(c)) => c.saturating_duration_since(o).as_secs_f64(),
        _ => 0.0,
    }
}

/// `n` per second over `secs`; 0 over no time rather than a division by zero.
pub fn per_second(n: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        float(n) / secs
    } else {
        0.0
    }
}

/// CPU time used so far, user plus system, in seconds: `(this process, the calling thread)`.
/// From Linux's `/proc/self/stat` and `/proc/thread-self/stat`, which count in `USER_HZ` ticks
/// (100 a second: a fixed part of the kernel's ABI), so a figure is good to 10 ms; `None` where
/// /proc is not there.
pub fn cpu_seconds() -> Option<(f64, f64)> {
    Some((
        stat_cpu_seconds("/proc/self/stat")?,
        stat_cpu_seconds("/proc/thread-self/stat")?,
    ))
}

fn stat_cpu_seconds(path: &str) -> Option<f64> {
    parse_stat_cpu_seconds(&std::fs::read_to_string(path).ok()?)
}

/// `utime + stime` of a `stat` line, in seconds. The command name (field 2) is in parentheses
/// and may hold spaces and parentheses itself, so the fields are counted after its last `)`:
/// there the state (field 3) comes first and utime, stime are fields 14 and 15.
fn parse_stat_cpu_seconds(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(float(utime.saturating_add(stime)) / 100.0)
}

/// Untimed calls before each latency measurement.
const WARMUP: usize = 5;

/// Repeats `f` (one sample in microseconds per call) until `max_reps` samples or `budget` time,
/// whichever comes first, but at least `min_reps` samples. Returns (p50, p99, samples).
pub fn latency<E>(
    min_reps: usize,
    max_reps: usize,
    budget: Duration,
    mut f: impl FnMut() -> Result<(), E>,
) -> Result<(f64, f64, usize), E> {
    // A few untimed calls first: the figures are of a warm engine, its first call is not one.
    for _ in 0..WARMUP {
        f()?;
    }
    let start = Instant::now();
    let mut samples = Vec::with_capacity(max_reps);
    while samples.len() < max_reps && (samples.len() < min_reps || start.elapsed() < budget) {
        let ((), d) = {
            let t = Instant::now();
            f()?;
            ((), t.elapsed())
        };
        samples.push(d.as_secs_f64() * 1e6);
    }
    let n = samples.len();
    let p50 = percentile(&mut samples, 50.0);
    let p99 = percentile(&mut samples, 99.0);
    Ok((p50, p99, n))
}

/// Bytes a directory tree occupies on disk (allocated blocks, not apparent lengths).
pub fn disk_usage(path: &Path) -> io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            total += disk_usage(&entry.path())?;
        } else {
            total += meta.blocks() * 512;
        }
    }
    Ok(total)
}

/// Turns any error into an `io::Error` for the harness's one error type.
pub fn io_err(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::other(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&mut v, 50.0), 50.0);
        assert_eq!(percentile(&mut v, 99.0), 99.0);
        assert_eq!(percentile(&mut [3.0], 99.0), 3.0);
        assert_eq!(float(1 << 40), 1_099_511_627_776.0);
    }

    #[test]
    fn rates_run_over_the_union_of_windows() {
        let t = Instant::now();
        let s = |ms: u64| t + Duration::from_millis(ms);
        assert_eq!(span_secs([(s(100), s(600)), (s(0), s(300))]), 0.6);
        assert_eq!(span_secs([]), 0.0);
        assert_eq!(per_second(30, 0.6), 50.0);
        assert_eq!(per_second(30, 0.0), 0.0);
    }

    #[test]
    fn cpu_time_is_read_after_the_command_name_whatever_it_holds() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime …
        let line = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0";
        assert_eq!(parse_stat_cpu_seconds(line), Some(3.25));
        assert_eq!(parse_stat_cpu_seconds("4242 (cut off"), None);
        assert_eq!(parse_stat_cpu_seconds("4242 (x) S 1 2"), None);
    }
}
