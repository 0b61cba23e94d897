//! Crash reports, as Redis writes them: on a fatal signal (SIGSEGV, SIGBUS,
//! SIGFPE, SIGILL, SIGABRT) the log gets a report between Redis's START and
//! END lines (the signal, its code and address, and the stack trace of the
//! thread that crashed) before the signal's default action ends the
//! process (with a core dump where the system keeps them).
//! `crash-log-enabled no` leaves the report out. A panic is logged with its
//! thread, place and message before Rust's own handling of it (with
//! `use-exit-on-panic yes` the process then exits with status 1).
//!
//! The handler runs on the crashed thread's own stack (the small signal
//! stacks threads have are too small to write a stack trace from), so a
//! stack overflow ends the process without a report. Writing the report
//! is not async-signal-safe, as Redis's is not: a crash
//! inside the allocator or the log's lock could block it, so an alarm
//! ends the process after a few seconds whatever happens.

use std::sync::atomic::Ordering::Relaxed;

use crate::config::process::CRASH_LOG;

const SIGNALS: [libc::c_int; 5] = [libc::SIGSEGV, libc::SIGBUS, libc::SIGFPE, libc::SIGILL, libc::SIGABRT];

/// Installs the signal handlers and the panic hook (once, at start).
pub fn install() {
    for sig in SIGNALS {
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask"
        // value; the handler has the SA_SIGINFO signature.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER | libc::SA_RESETHAND;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |p| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("unnamed");
        let place = p.location().map(|l| l.to_string()).unwrap_or_default();
        let msg = p.payload().downcast_ref::<&str>().copied().or_else(|| p.payload().downcast_ref::<String>().map(String::as_str));
        tracing::error!("thread '{name}' panicked at {place}: {}", msg.unwrap_or("(no message)"));
        default(p);
        if crate::config::process::EXIT_ON_PANIC.load(Relaxed) {
            std::process::exit(1);
        }
    }));
}

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    if CRASH_LOG.load(Relaxed) {
        // SAFETY: alarm only arms a timer; SIGALRM's default action ends
        // the process if the report cannot be finished.
        unsafe { libc::alarm(5) };
        report(sig, info);
    }
    // SA_RESETHAND put the default action back: the signal again ends
    // the process (SA_NODEFER lets it through at once).
    // SAFETY: raising a signal at this process.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

fn report(sig: libc::c_int, info: *mut libc::siginfo_t) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let (code, addr) = if info.is_null() { (0, 0) } else { unsafe { ((*info).si_code, (*info).si_addr() as usize) } };
    let version = env!("CARGO_PKG_VERSION");
    tracing::error!("\n\n=== DAMSELFLY BUG REPORT START: Cut & paste starting from here ===");
    tracing::error!("Damselfly {version} crashed by signal: {sig}, si_code: {code}");
    // A code above 0: the kernel's, for a real fault (not a signal sent).
    if matches!(sig, libc::SIGSEGV | libc::SIGBUS) && code > 0 {
        tracing::error!("Accessing address: {addr:#x}");
    }
    let thread = std::thread::current();
    tracing::error!(
        "\n------ STACK TRACE ------\nthread '{}'\n{}",
        thread.name().unwrap_or("unnamed"),
        std::backtrace::Backtrace::force_capture()
    );
    tracing::error!("\n=== DAMSELFLY BUG REPORT END. Make sure to include from START to END. ===\n");
}
