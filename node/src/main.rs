//! `damselfly`: a Redis-compatible, shared-nothing, in-memory data store.

use damselfly::{alloc, config, server};

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

fn main() {
    let args = config::Args::from_argv(std::env::args());
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&args.loglevel));
    tracing_subscriber::fmt().with_env_filter(filter).with_target(false).init();
    let cfg = match config::Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("damselfly: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = server::run(cfg) {
        eprintln!("damselfly: {e}");
        std::process::exit(1);
    }
}
