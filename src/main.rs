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
    let args = cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    actlog::http::install_panic_hook();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("actlog: {e:#}");
            ExitCode::FAILURE
        }
    }
}
