//! `multinet`: see the crate documentation of `multinet_coordinator`.

fn main() -> std::process::ExitCode {
    multinet_coordinator::cli::main()
}
