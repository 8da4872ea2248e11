//! `multinet` as the end-to-end tests run it: the same command line, built in this package so
//! its tests find it (`CARGO_BIN_EXE_multinet-e2e`; Cargo gives a binary's path only to its
//! own package's tests). It starts its agents as `multinet-e2e agent`, as `multinet` does.
//! One hidden command of its own, for the lab's Service tests: `e2e-echo`
//! ([`multinet_tests::echo`]).

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some(multinet_tests::echo::COMMAND) {
        return multinet_tests::echo::main(args);
    }
    multinet_coordinator::cli::main()
}
