// Temporary wiring of `actlog bench` on the bench branch; the lead redoes the binary at merge.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
#[cfg(feature = "bench")]
fn main() -> std::io::Result<()> {
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: Cmd,
    }
    #[derive(clap::Subcommand)]
    enum Cmd {
        /// Benchmark actlog against SQLite (issue 5).
        Bench(actlog::bench::BenchOptions),
    }
    let Cli {
        cmd: Cmd::Bench(opts),
    } = Cli::parse();
    actlog::bench::run(&opts).map(|_| ())
}

#[cfg(not(feature = "bench"))]
fn main() {}
