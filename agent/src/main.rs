//! `multinet-agent --assignment FILE.json` (local and lab backends) or `multinet-agent --kube
//! --role … --name … --node …` (in a Kubernetes pod): runs the role it is given. Exit codes:
//! 0 after Stop from the coordinator, 1 on a fatal error (message on stderr), 3 when the
//! coordinator was unreachable longer than the grace period.

use std::process::ExitCode;

use multinet_agent::pod::{AgentArgs, USAGE, parse_args};

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(AgentArgs::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(args) => args,
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
    let outcome = multinet_agent::assignment_from(&args)
        .and_then(|assignment| runtime.block_on(multinet_agent::run_until_terminated(assignment)));
    match outcome {
        Ok(reason) => ExitCode::from(reason.code()),
        Err(error) => {
            eprintln!("multinet-agent: {error:#}");
            ExitCode::from(1)
        }
    }
}
