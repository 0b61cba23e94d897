//! `damselfly`: a Redis-compatible, shared-nothing, in-memory data store.

use damselfly::{alloc, config, server};

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

/// Runs `alloc::configure` as the program is loaded, before anything
/// allocates (the runtime does before `main`).
#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static CONFIGURE_ALLOCATOR: extern "C" fn() = configure_allocator;

#[cfg(target_os = "linux")]
extern "C" fn configure_allocator() {
    alloc::configure();
}

fn main() {
    let args = config::Args::from_argv(std::env::args());
    let cfg = match config::Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("damselfly: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = init_logging(&args.loglevel, &cfg) {
        eprintln!("damselfly: can't open the log file {}: {e}", cfg.logfile);
        std::process::exit(1);
    }
    let to_file = !cfg.logfile.is_empty();
    if let Err(e) = server::run(cfg) {
        if to_file {
            tracing::error!("{e}");
        }
        eprintln!("damselfly: {e}");
        std::process::exit(1);
    }
}

/// The log: `--loglevel` (or `RUST_LOG`) filters it, `logfile` says where
/// it goes (standard error when empty; the file is appended to, as Redis
/// does), `log-format` whether lines are text or JSON objects.
fn init_logging(level: &str, cfg: &config::Config) -> std::io::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    if cfg.logfile.is_empty() {
        if cfg.log_json {
            builder.json().init();
        } else {
            builder.init();
        }
        return Ok(());
    }
    let file = std::fs::OpenOptions::new().create(true).append(true).open(&cfg.logfile)?;
    let builder = builder.with_ansi(false).with_writer(std::sync::Mutex::new(file));
    if cfg.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
    Ok(())
}
