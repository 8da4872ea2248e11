//! What the lab test files share: a lab name unique to the test with a guard that removes the
//! lab ([`LabGuard`]), namespaces of a test's own ([`Scratch`]), a run on a topology, and
//! checks that nothing of a lab is left. Each test file uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use multinet_tests::e2e::processes_mentioning;
use serde_json::Value;

/// Whether the lab can run here: on a developer's machine without root or the plugins the
/// test skips (saying so); under CI it fails ([`multinet_tests::require`]).
pub fn lab_possible() -> bool {
    multinet_tests::require::lab()
}

pub fn namespaces_of(lab: &str) -> Vec<String> {
    multinet_tests::e2e::lab_namespaces(lab)
}

/// A lab name unique to this test process and test, and a guard that removes the lab.
pub struct LabGuard {
    pub name: String,
    pub dir: PathBuf,
}

impl LabGuard {
    pub fn new(letter: char) -> Self {
        let name = format!("{letter}{:05}", std::process::id() % 100_000);
        let dir = std::env::temp_dir().join(format!("multinet-test-lab-{name}"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self { name, dir }
    }

    pub fn topology(&self, body: &str) -> String {
        let path = self.dir.join("topology.yaml");
        std::fs::write(&path, format!("name: {}\n{body}", self.name)).expect("write topology");
        path.display().to_string()
    }

    pub fn assert_gone(&self) {
        assert_eq!(
            namespaces_of(&self.name),
            Vec::<String>::new(),
            "namespaces left"
        );
        assert!(
            !Path::new("/run/multinet").join(&self.name).exists(),
            "lab state (IPAM files, run directory) left"
        );
        // Agents' command lines name their assignment under the lab's state directory.
        let marker = format!("/run/multinet/{}/", self.name);
        assert_eq!(
            processes_mentioning(&marker),
            Vec::<String>::new(),
            "processes of the lab left"
        );
        let host = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().expect("ip runs");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let links = host(&["-o", "link", "show"]);
        assert!(
            !links.contains(&format!("{}-", self.name))
                && !links.contains(&format!("{}n", self.name)),
            "links of the lab left in the host namespace: {links}"
        );
        assert_no_lab_route();
    }
}

/// The host namespace has no route to a lab subnet, IPv4 or IPv6. (The machine may have
/// fd00::/8 addresses of its own: IPv6 routes are compared with those it had when the tests
/// began.)
pub fn assert_no_lab_route() {
    static BEFORE: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let routes = |family: &str| -> Vec<String> {
        let out = Command::new("ip")
            .args([family, "route", "show", "table", "all"])
            .output()
            .expect("ip route");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    };
    let before = BEFORE.get_or_init(|| routes("-6"));
    let v4: Vec<String> = routes("-4")
        .into_iter()
        .filter(|r| r.contains("198.18.") || r.contains("198.19."))
        .collect();
    assert_eq!(
        v4,
        Vec::<String>::new(),
        "a lab route in the host namespace"
    );
    let v6: Vec<String> = routes("-6")
        .into_iter()
        .filter(|r| r.contains("fd00:") && !before.contains(r))
        .collect();
    assert_eq!(
        v6,
        Vec::<String>::new(),
        "a lab route in the host namespace"
    );
}

/// Addresses host-local still holds under a lab's IPAM data directory (files named after an
/// address; CNI DEL removes them).
pub fn ipam_allocations(lab: &str) -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(&path, out);
            } else if let Some(name) = path.file_name().and_then(|n| n.to_str())
                && name.parse::<std::net::IpAddr>().is_ok()
            {
                out.push(path.display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(&Path::new("/run/multinet").join(lab).join("ipam"), &mut out);
    out
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        let _ = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
            .args(["lab", "down", &self.name])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn run(topology: &str) -> (Option<i32>, Value) {
    run_with(topology, &[])
}

/// [`run`] with `extra` arguments (`--duration 60s`).
pub fn run_with(topology: &str, extra: &[&str]) -> (Option<i32>, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args([
            "run",
            "--backend",
            "lab",
            "-q",
            "-o",
            "json",
            "-f",
            topology,
        ])
        .args(extra)
        .output()
        .expect("multinet runs");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "JSON report ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), report)
}

pub const SMALL: &str = "config:\n  nodeTypes:\n    converged: {osdsPerNode: 2, otherDaemonsPerNode: 1}\n  probeInterval: 100ms\n  probeTimeout: 500ms\n  resourceTimeout: 1m\n";

/// `multinet lab status [NAME]`: exit code and standard output.
pub fn lab_status(name: Option<&str>) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_multinet-e2e"))
        .args(["lab", "status"])
        .args(name)
        .output()
        .expect("lab status");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Network namespaces a test made (never a lab's: no `<lab>-` prefix), removed when it ends
/// however it ends.
pub struct Scratch(pub Vec<String>);

impl Scratch {
    /// Makes `count` namespaces named `mnt_<pid>_<test>_<i>`.
    pub fn new(test: &str, count: usize) -> Self {
        Self::new_with(test, count, &[])
    }

    /// [`Scratch::new`], with `sysctls` (`(key under /proc/sys, value)`) written in each
    /// namespace before anything is made in it (`net::netns_add_with`).
    pub fn new_with(test: &str, count: usize, sysctls: &[(&str, &str)]) -> Self {
        let mut scratch = Self(Vec::new());
        for i in 0..count {
            let name = format!("mnt_{}_{test}_{i}", std::process::id());
            multinet_coordinator::lab::net::netns_add_with(&name, sysctls).expect("namespace");
            scratch.0.push(name);
        }
        scratch
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = multinet_coordinator::lab::net::netns_kill_all(&self.0);
        for ns in &self.0 {
            let _ = multinet_coordinator::lab::net::netns_del(ns);
        }
    }
}
