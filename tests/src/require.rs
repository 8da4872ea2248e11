//! What a test needs from the machine, and what happens when it is missing.
//!
//! A test that cannot run here (the lab needs root, `ip`, `nft` and the CNI plugins) skips
//! with a line on stderr on a developer's machine — but under CI (`CI=true`, as CI services
//! set it) or with `MULTINET_REQUIRE_LAB=1` (`.ci/run` sets it) it fails, naming what is
//! missing: there a skipped test would pass without having checked anything.

use std::path::Path;

/// The variable that makes a missing requirement a failure outside CI too.
pub const REQUIRE_VAR: &str = "MULTINET_REQUIRE_LAB";

/// Whether a test that cannot run must fail rather than skip: `CI` is `true` (or `1`), or
/// [`REQUIRE_VAR`] is `1` (or `true`).
pub fn required() -> bool {
    let set =
        |var: &str| std::env::var(var).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    set("CI") || set(REQUIRE_VAR)
}

/// `true` when `missing` is empty: the test can run. Otherwise the test `what` cannot:
/// panics naming what is missing when [`required`], else says so on stderr and returns
/// `false` (the test returns without checking anything).
pub fn can_run(what: &str, missing: &[String]) -> bool {
    can_run_when(what, missing, required())
}

/// [`can_run`] with `required` given.
fn can_run_when(what: &str, missing: &[String], required: bool) -> bool {
    if missing.is_empty() {
        return true;
    }
    let why = format!("{what} needs {}", missing.join(", "));
    assert!(
        !required,
        "{why}; this machine lacks it, and CI (CI=true) or {REQUIRE_VAR}=1 requires every test to run"
    );
    eprintln!("skipped: {why} (set {REQUIRE_VAR}=1 to make this a failure)");
    false
}

/// The CNI plugins the lab tests run (`/usr/lib/cni`).
const LAB_PLUGINS: &[&str] = &["macvlan", "bridge", "host-device", "host-local", "tuning"];

/// What the lab tests need that this machine lacks: root, iproute2's `ip`, nftables' `nft`,
/// util-linux's `setpriv` and `nsenter`, and the CNI plugins they use.
pub fn lab_missing() -> Vec<String> {
    let mut missing = Vec::new();
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    });
    if !root {
        missing.push("root".to_string());
    }
    for (tool, package) in [
        ("ip", "iproute2"),
        ("nft", "nftables"),
        ("setpriv", "util-linux"),
        ("nsenter", "util-linux"),
    ] {
        let found = std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()));
        if !found {
            missing.push(format!("`{tool}` ({package})"));
        }
    }
    let plugins: Vec<&str> = LAB_PLUGINS
        .iter()
        .copied()
        .filter(|p| !Path::new("/usr/lib/cni").join(p).exists())
        .collect();
    if !plugins.is_empty() {
        missing.push(format!(
            "the CNI plugin(s) {} (containernetworking-plugins)",
            plugins.join(", ")
        ));
    }
    missing
}

/// Whether the calling lab test can run here ([`can_run`] with [`lab_missing`]; the test is
/// named by its thread, as the test harness names it).
pub fn lab() -> bool {
    let thread = std::thread::current();
    let what = match thread.name() {
        Some(name) if name != "main" => format!("the lab test {name}"),
        _ => "this lab test".to_string(),
    };
    can_run(&what, &lab_missing())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_missing_runs_whether_or_not_required() {
        assert!(can_run_when("t", &[], false));
        assert!(can_run_when("t", &[], true));
    }

    #[test]
    fn something_missing_skips_where_not_required() {
        assert!(!can_run_when("t", &["root".to_string()], false));
    }

    #[test]
    #[should_panic(expected = "t needs root, `nft` (nftables); this machine lacks it")]
    fn something_missing_fails_where_required() {
        can_run_when(
            "t",
            &["root".to_string(), "`nft` (nftables)".to_string()],
            true,
        );
    }
}
