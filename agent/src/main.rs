//! `multinet-agent`: the probe agent. Its roles (server, client, host checker) and its
//! control-plane client are the subject of issue #3; until then it says so and exits.

fn main() -> std::process::ExitCode {
    eprintln!(
        "multinet-agent {}: the probe agent (server, client, host-check) is not built yet; \
         `multinet spec check` and `multinet config` are what works today",
        env!("CARGO_PKG_VERSION")
    );
    std::process::ExitCode::from(2)
}
