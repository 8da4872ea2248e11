//! `multinet` as the end-to-end tests run it: the same command line, built in this package so
//! its tests find it (`CARGO_BIN_EXE_multinet-e2e`; Cargo gives a binary's path only to its
//! own package's tests). It starts its agents as `multinet-e2e agent`, as `multinet` does.

fn main() -> std::process::ExitCode {
    multinet_coordinator::cli::main()
}
