//! `multinet-agent --assignment FILE.json`: runs the role the assignment names. Exit codes:
//! 0 after Stop from the coordinator, 1 on a fatal error (message on stderr), 3 when the
//! coordinator was unreachable longer than the grace period.

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: multinet-agent --assignment FILE.json";

fn assignment_path() -> Result<PathBuf, String> {
    let mut args = std::env::args_os().skip(1);
    match (args.next(), args.next(), args.next()) {
        (Some(flag), Some(path), None) if flag == "--assignment" => Ok(PathBuf::from(path)),
        (Some(flag), None, None) if flag == "--help" || flag == "-h" => Err(String::new()),
        _ => Err(USAGE.to_string()),
    }
}

fn main() -> ExitCode {
    let path = match assignment_path() {
        Ok(path) => path,
        Err(message) if message.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("multinet-agent: {message}");
            return ExitCode::from(1);
        }
    };
    multinet_agent::install_crypto_provider();
    // One thread: the agent's work is I/O-bound, and a small RSS matters more.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("multinet-agent: cannot start the runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let outcome = multinet_agent::read_assignment(&path)
        .and_then(|assignment| runtime.block_on(multinet_agent::run(assignment)));
    match outcome {
        Ok(reason) => ExitCode::from(reason.code()),
        Err(error) => {
            eprintln!("multinet-agent: {error:#}");
            ExitCode::from(1)
        }
    }
}
