//! `damselfly`: a Redis-compatible, shared-nothing, in-memory data store.

use std::sync::atomic::Ordering::Relaxed;

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
    // Before any thread exists: only the calling thread survives a fork.
    if cfg.process.daemonize.load(Relaxed) {
        if let Err(e) = daemonize() {
            eprintln!("damselfly: can't daemonize: {e}");
            std::process::exit(1);
        }
    }
    let level = cfg.process.loglevel.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if let Err(e) = init_logging(config::process::log_filter(&level), &cfg) {
        eprintln!("damselfly: can't open the log file {}: {e}", cfg.logfile);
        std::process::exit(1);
    }
    server::crash::install();
    let pidfile = match PidFile::create(&cfg) {
        Ok(p) => p,
        Err(e) => {
            // As Redis: the server runs on without it.
            tracing::warn!("{e}");
            None
        }
    };
    process_settings(&cfg);
    logo(&cfg);
    let to_file = !cfg.logfile.is_empty();
    let result = server::run(cfg);
    drop(pidfile);
    if let Err(e) = result {
        if to_file {
            tracing::error!("{e}");
        }
        eprintln!("damselfly: {e}");
        std::process::exit(1);
    }
}

/// `daemonize yes`: runs on in a child detached from the terminal (a new
/// session, standard input and output on /dev/null), as Redis does; the
/// parent exits at once.
fn daemonize() -> std::io::Result<()> {
    // SAFETY: no other thread runs yet (see `main`); the child continues
    // with a copy of this single-threaded process.
    match unsafe { libc::fork() } {
        -1 => return Err(std::io::Error::last_os_error()),
        0 => {}
        _ => std::process::exit(0),
    }
    // SAFETY: plain system calls on this process's own descriptors.
    unsafe {
        libc::setsid();
        let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if fd >= 0 {
            libc::dup2(fd, 0);
            libc::dup2(fd, 1);
            libc::dup2(fd, 2);
            if fd > 2 {
                libc::close(fd);
            }
        }
    }
    Ok(())
}

/// `pidfile` (or Redis's default path when daemonized without one): the
/// process id, written at start and removed when the server stops.
struct PidFile(std::path::PathBuf);

impl PidFile {
    fn create(cfg: &config::Config) -> Result<Option<PidFile>, String> {
        let mut path = cfg.process.pidfile.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if path.is_empty() {
            if !cfg.process.daemonize.load(Relaxed) {
                return Ok(None);
            }
            path = "/var/run/damselfly.pid".into();
            *cfg.process.pidfile.lock().unwrap_or_else(|e| e.into_inner()) = path.clone();
        }
        std::fs::write(&path, format!("{}\n", std::process::id())).map_err(|e| format!("Failed to write PID file {path}: {e}"))?;
        Ok(Some(PidFile(path.into())))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `disable-thp` and `oom-score-adj` for the role the node starts in.
fn process_settings(cfg: &config::Config) {
    #[cfg(target_os = "linux")]
    if cfg.process.disable_thp.load(Relaxed) {
        // SAFETY: a prctl that changes only this process's memory policy.
        if unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) } != 0 {
            tracing::warn!("disable-thp: {}", std::io::Error::last_os_error());
        }
    }
    if let Err(e) = cfg.process.apply_oom_score(cfg.replicaof.is_some()) {
        tracing::warn!("{e}");
    }
}

/// `always-show-logo yes`, or an interactive start logging to the
/// terminal: the banner, as Redis shows its logo.
fn logo(cfg: &config::Config) {
    use std::io::IsTerminal;
    let interactive = cfg.logfile.is_empty() && std::io::stdout().is_terminal();
    if !cfg.process.always_show_logo.load(Relaxed) && !interactive {
        return;
    }
    let mode = if cfg.cluster.is_some() { "cluster" } else { "standalone" };
    let (version, port, pid, shards) = (env!("CARGO_PKG_VERSION"), cfg.port(), std::process::id(), cfg.shards);
    tracing::info!(
        "\n      \\  /       Damselfly {version}, Redis-compatible, {mode} mode\n  ====(oo)====    Port: {port}  PID: {pid}  Shards: {shards}\n       ||\n       ||\n"
    );
}

/// The log: `loglevel` (or `RUST_LOG`) filters it, and CONFIG SET
/// loglevel changes the filter at run time; `logfile` says where it goes
/// (standard error when empty; the file is appended to, as Redis does),
/// `log-format` whether lines are text or JSON objects.
fn init_logging(level: &str, cfg: &config::Config) -> std::io::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    macro_rules! install {
        ($builder:expr) => {{
            let builder = $builder.with_env_filter(filter).with_filter_reloading();
            let handle = builder.reload_handle();
            let _ = config::process::LOG_LEVEL.set(Box::new(move |level: &str| {
                let f = EnvFilter::try_new(level).map_err(|e| e.to_string())?;
                handle.reload(f).map_err(|e| e.to_string())
            }));
            builder.init();
        }};
    }
    let base = tracing_subscriber::fmt().with_target(false);
    if cfg.logfile.is_empty() {
        if cfg.log_json {
            install!(base.json());
        } else {
            install!(base);
        }
        return Ok(());
    }
    let file = std::fs::OpenOptions::new().create(true).append(true).open(&cfg.logfile)?;
    let base = base.with_ansi(false).with_writer(std::sync::Mutex::new(file));
    if cfg.log_json {
        install!(base.json());
    } else {
        install!(base);
    }
    Ok(())
}
