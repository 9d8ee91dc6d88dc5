//! The `milvus-tier` binary, the program's edge: parse arguments (`cli`), set up logging,
//! run a command of the library, print its report, exit with the documented code.

mod cli;

use clap::Parser;
use cli::{Cli, LogFormat};
use std::io::IsTerminal;

fn main() {
    let cli = Cli::parse();
    milvus_tier::init_crypto();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(milvus_tier::error::exit::FAILURE);
        }
    };
    let code = runtime.block_on(cli::run(cli));
    std::process::exit(code);
}

fn init_logging(format: Option<LogFormat>) {
    let terminal = std::io::stderr().is_terminal();
    let json = format.map_or(!terminal, |f| f == LogFormat::Json);
    // At a terminal, progress bars tell what is going on and logs show only problems; a
    // job's collected log gets the steps' progress events too.
    let default = if terminal {
        "warn"
    } else {
        "warn,milvus_tier=info"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("MILVUS_TIER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(terminal);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
