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
    init_logging_alone();
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
            eprintln!("{program}: {}", crate::chain(&error));
            1
        }
    }
}

/// Diagnostics when nothing else is asked: warnings from everyone, `info` from multinet's own
/// crates (a coordinator lost, an interface a probe could not bind to).
pub const DEFAULT_LOG_FILTER: &str =
    "warn,multinet_agent=info,multinet_coordinator=info,multinet_proto=info";

/// Installs the process's diagnostics subscriber (`tracing` to `writer`): `filter` when given
/// (a `RUST_LOG`-style filter, e.g. `debug` or `multinet_coordinator::control_plane=trace`),
/// else `RUST_LOG` when set, else [`DEFAULT_LOG_FILTER`]. Always an `EnvFilter`: with
/// directives that name no span fields it decides once per call site, so the call sites QUIC
/// and TLS hit per packet are not filtered again on every event. A process that has a
/// subscriber already keeps it. Measured as private memory (USS) the subscriber costs an
/// agent nothing beyond the spread between runs (BENCHMARKS.md, agent memory).
///
/// # Errors
///
/// `filter` (or `RUST_LOG`) is not a valid filter; the default is installed then.
pub fn init_logging<W>(filter: Option<&str>, writer: W, ansi: bool) -> Result<(), String>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::EnvFilter;
    let from_env = std::env::var("RUST_LOG").ok().filter(|f| !f.is_empty());
    let asked = filter.map(str::to_string).or(from_env);
    let (filter, refused) = match asked.map(|a| (EnvFilter::try_new(&a), a)) {
        Some((Ok(filter), _)) => (filter, None),
        Some((Err(e), asked)) => (
            EnvFilter::new(DEFAULT_LOG_FILTER),
            Some(format!("{asked:?}: {e}")),
        ),
        None => (EnvFilter::new(DEFAULT_LOG_FILTER), None),
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_target(false)
        .try_init();
    refused.map_or(Ok(()), Err)
}

/// Diagnostics of an agent alone: to stderr, no colours.
fn init_logging_alone() {
    if let Err(e) = init_logging(None, std::io::stderr, false) {
        eprintln!("RUST_LOG {e}; logging warnings and multinet's notices only");
    }
}
