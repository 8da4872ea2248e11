//! `multinet-agent --assignment FILE.json` (local and lab backends) or `multinet-agent --kube
//! --role … --name … --node …` (in a Kubernetes pod): runs the role it is given. Exit codes:
//! 0 after Stop from the coordinator, 1 on a fatal error (message on stderr), 3 when the
//! coordinator was unreachable longer than the grace period, 143 on SIGTERM.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(multinet_agent::entry::main(
        "multinet-agent",
        std::env::args().skip(1),
    ))
}
