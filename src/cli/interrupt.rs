//! Ctrl-C for long commands: the first interrupt asks the command to stop dispatching work and
//! to write what has finished; the second abandons the work still running.
//!
//! Only commands that can keep partial results install the handler (`simulate sweep`);
//! everywhere else Ctrl-C ends the process as usual, and atomic writes (temporary file +
//! rename) mean no report file is ever left half-written. SIGTERM and SIGHUP (a CI job's
//! timeout, a closed terminal) count as Ctrl-C (ctrlc's `termination` feature).

use std::sync::atomic::{AtomicU32, Ordering};

/// Interrupts received since [`install`].
static INTERRUPTS: AtomicU32 = AtomicU32::new(0);

/// Installs the handler of Ctrl-C (SIGINT), SIGTERM and SIGHUP.
pub fn install() -> Result<(), String> {
    ctrlc::set_handler(|| {
        let n = INTERRUPTS.fetch_add(1, Ordering::SeqCst) + 1;
        if n == 1 {
            eprintln!(
                "\ninterrupted: no new seeds will start; waiting for the running ones to finish \
                 (Ctrl-C again to abandon them and write what has finished)"
            );
        } else if n == 2 {
            eprintln!("\ninterrupted again: abandoning the running seeds");
        }
    })
    .map_err(|e| format!("error: cannot install the Ctrl-C handler: {e}"))
}

/// How many interrupts have arrived.
pub fn count() -> u32 {
    INTERRUPTS.load(Ordering::SeqCst)
}
