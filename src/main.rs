//! The `actlog` binary: parse the command line, set up logging, open the store, run the command.
#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used, clippy::expect_used)]

mod cli;

// mimalloc, the default feature `mimalloc` (BENCHMARKS.md has why); the library sets no allocator.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // First, before any thread: the flag is the whole process's.
    let thp = no_transparent_huge_pages();
    let args = cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if let Err(e) = thp {
        tracing::debug!(error = %e, "transparent huge pages stay as the system set them");
    }
    actlog::http::install_panic_hook();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("actlog: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Transparent huge pages cost mimalloc dearly: where THP applies to its arenas, each page it
/// takes fresh, or again after returning it to the OS, faults in a whole 2 MiB page and zeroes
/// it. On a server taking POST batches over one connection that zeroing was 77% of the CPU
/// (BENCHMARKS.md, 2026-12-05). mimalloc is built without its THP advice (feature `no_thp`),
/// which is enough where THP is `madvise` (the usual default); where it is `always` only this
/// turns it off. A kernel that refuses (no such `prctl`, a seccomp filter) leaves things as they
/// were: slower, not wrong.
#[cfg(all(feature = "mimalloc", target_os = "linux"))]
fn no_transparent_huge_pages() -> std::io::Result<()> {
    Ok(rustix::thread::disable_transparent_huge_pages(true)?)
}

#[cfg(not(all(feature = "mimalloc", target_os = "linux")))]
fn no_transparent_huge_pages() -> std::io::Result<()> {
    Ok(())
}
