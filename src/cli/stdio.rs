//! Standard output and standard error that never panic, as a Unix tool behaves.
//!
//! std's `print!` family panics when a write fails, so `simulate run x.toml | head -1` (a broken
//! pipe), `> /dev/full` (no space) or a closed stderr ended in exit 101. This module defines
//! `print!`, `println!`, `eprint!` and `eprintln!` for the whole CLI: declared first in
//! `cli/mod.rs` with `#[macro_use]`, they shadow std's macros of the same name in every CLI
//! module, so call sites read as usual and none can reach the panicking ones (a test reads the
//! sources to keep it so).
//!
//! - Standard output: the first failed write is remembered and later output is dropped. A
//!   broken pipe (the reader went away, as with `| head`) is quiet: the command finishes its work
//!   and its files, and exits with its own code. Any other error (a full disk) makes the command
//!   exit 2 with a message on standard error, since the output it promised is lost.
//! - Standard error: best effort. A message that cannot be written is dropped; the exit code
//!   still says what happened.

use std::fmt;
use std::io::{ErrorKind, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once a write to standard output failed: later output is dropped.
static STDOUT_DEAD: AtomicBool = AtomicBool::new(false);
/// The first error writing to standard output.
static STDOUT_ERROR: Mutex<Option<std::io::Error>> = Mutex::new(None);

fn remember(e: std::io::Error) {
    STDOUT_DEAD.store(true, Ordering::SeqCst);
    let mut first = STDOUT_ERROR
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    first.get_or_insert(e);
}

/// Writes to standard output unless a write has failed before; remembers a failure.
pub fn out(args: fmt::Arguments<'_>) {
    if STDOUT_DEAD.load(Ordering::SeqCst) {
        return;
    }
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        remember(e);
    }
}

/// Writes to standard error; a failure is dropped (there is nowhere left to report it).
pub fn err(args: fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// The exit code of a command that would exit with `code`, once its output is flushed: `code`
/// if every write to standard output succeeded or the reader closed the pipe, else 2 with a
/// message on standard error.
pub fn finish(code: u8) -> u8 {
    if !STDOUT_DEAD.load(Ordering::SeqCst)
        && let Err(e) = std::io::stdout().lock().flush()
    {
        remember(e);
    }
    let first = STDOUT_ERROR
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    match first {
        None => code,
        Some(e) if e.kind() == ErrorKind::BrokenPipe => code,
        Some(e) => {
            err(format_args!(
                "error: cannot write to standard output: {e}; the command's output is lost \
                 (its files, if any, were written)\n"
            ));
            super::EXIT_INVALID
        }
    }
}

/// `print!` that never panics (see the module documentation).
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::cli::stdio::out(format_args!($($arg)*))
    };
}

/// `println!` that never panics (see the module documentation).
macro_rules! println {
    () => {
        $crate::cli::stdio::out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::stdio::out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprint!` that never panics (see the module documentation).
macro_rules! eprint {
    ($($arg:tt)*) => {
        $crate::cli::stdio::err(format_args!($($arg)*))
    };
}

/// `eprintln!` that never panics (see the module documentation).
macro_rules! eprintln {
    () => {
        $crate::cli::stdio::err(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::stdio::err(format_args!("{}\n", format_args!($($arg)*)))
    };
}
