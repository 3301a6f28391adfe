//! Ctrl-C and SIGTERM during `plan`, `drift`, `apply` and `destroy`: the first signal stops
//! starting new work; a request still waiting for its answer ends at once (`deadline`: a
//! write's outcome is then unknown, and the report says so), and waits give up at their next
//! poll. The run prints what is done and what is not, and exits 130; a second signal exits at
//! once.

use std::sync::atomic::{AtomicBool, Ordering};

/// The exit code of an interrupted run (128 + SIGINT, as shells report it).
pub(crate) const EXIT: u8 = 130;

static REQUESTED: AtomicBool = AtomicBool::new(false);
static NOTIFY: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Resolves once an interruption is asked for: a wait on an unanswered request ends then,
/// instead of at its deadline.
pub(crate) async fn wait() {
    loop {
        let notified = NOTIFY.notified();
        if requested() {
            return;
        }
        notified.await;
    }
}

/// Whether an interruption was asked for.
pub(crate) fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Listens for SIGINT and SIGTERM for the rest of the process (once, however often asked).
pub(crate) fn install() {
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return;
    }
    tokio::spawn(async {
        #[cfg(unix)]
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        loop {
            #[cfg(unix)]
            let got = match term.as_mut() {
                Some(t) => tokio::select! { r = tokio::signal::ctrl_c() => r.is_ok(), r = t.recv() => r.is_some() },
                None => tokio::signal::ctrl_c().await.is_ok(),
            };
            #[cfg(not(unix))]
            let got = tokio::signal::ctrl_c().await.is_ok();
            if !got {
                return;
            }
            if REQUESTED.swap(true, Ordering::SeqCst) {
                eprintln!("\ninterrupted again: stopping now (calls in flight may still complete on the service's side)");
                std::process::exit(i32::from(EXIT));
            }
            NOTIFY.notify_waiters();
            eprintln!("\ninterrupted: starting nothing new; calls still waiting for an answer end now (interrupt again to stop at once)");
        }
    });
}
