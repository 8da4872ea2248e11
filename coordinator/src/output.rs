//! What a command prints on standard output. A reader that closes the pipe early
//! (`multinet spec check … | head`) has what it wanted: the rest is dropped without a word and
//! the command finishes as it would have (a run still cleans up, its exit code is still its
//! verdict's), where `println!` would panic. Any other write error is said once on stderr.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// The reader went away (or writing failed): nothing more is written.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `args` to standard output, unless its reader has gone.
pub fn write(args: std::fmt::Arguments<'_>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("multinet: writing to standard output: {e}");
        }
    }
}

/// `print!` through [`write`].
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write(format_args!($($arg)*))
    };
}

/// `println!` through [`write`].
#[macro_export]
macro_rules! outln {
    () => {
        $crate::output::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}
