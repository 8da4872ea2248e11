//! The one way to run an agent from a command line, shared by `multinet-agent` and
//! `multinet agent`, and the one place tokio runtimes are built for multinet's processes.

use std::io;

use tokio::runtime::{Builder, Runtime};

use crate::pod::{AgentArgs, USAGE, parse_args};

/// A runtime on this thread only: an agent's work is I/O-bound, and a small RSS matters more
/// than a second core. Timers and I/O enabled.
///
/// # Errors
///
/// The operating system refused the runtime's resources (an epoll instance, an eventfd).
pub fn single_threaded() -> io::Result<Runtime> {
    Builder::new_current_thread().enable_all().build()
}

/// A runtime with `workers` worker threads (at least one), timers and I/O enabled.
///
/// # Errors
///
/// As [`single_threaded`], or threads could not be spawned.
pub fn multi_threaded(workers: usize) -> io::Result<Runtime> {
    Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .enable_all()
        .build()
}

/// Runs an agent with the arguments after the program name; `program` prefixes what it says
/// on stderr. Returns the process exit code: 0 after Stop (and for `--help`), 1 on bad
/// arguments or a fatal error, 3 when the coordinator was lost for longer than the grace
/// period, 143 on SIGTERM (see [`crate::ExitReason::code`]).
pub fn main(program: &str, args: impl IntoIterator<Item = String>) -> u8 {
    let args = match parse_args(args) {
        Ok(AgentArgs::Help) => {
            println!("{USAGE}");
            return 0;
        }
        Ok(args) => args,
        Err(message) => {
            eprintln!("{program}: {message}");
            return 1;
        }
    };
    init_logging();
    crate::install_crypto_provider();
    let runtime = match single_threaded() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{program}: cannot start the runtime: {error}");
            return 1;
        }
    };
    let outcome = crate::assignment_from(&args)
        .and_then(|assignment| runtime.block_on(crate::run_until_terminated(assignment)));
    match outcome {
        Ok(reason) => reason.code(),
        Err(error) => {
            eprintln!("{program}: {error:#}");
            1
        }
    }
}

/// The filter of diagnostics when `RUST_LOG` says nothing: warnings, and what multinet's own
/// crates say at `info` (a coordinator lost, an interface a probe could not bind to).
pub const DEFAULT_LOG_FILTER: &str =
    "warn,multinet_agent=info,multinet_coordinator=info,multinet_proto=info";

/// Diagnostics to stderr (`RUST_LOG`, else [`DEFAULT_LOG_FILTER`]); a process that has a
/// subscriber already (`multinet agent` under the command line's) keeps it.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_ansi(false)
        .with_target(false)
        .try_init();
}
