//! What the end-to-end tests ask of a finished run: its processes, its findings.

use serde_json::Value;

/// Command lines of the processes that mention `needle` (a run's directory, a lab's state
/// directory): what a run or lab left running.
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(needle))
        .collect()
}

/// The network namespaces of lab `lab` (`<lab>-…`) that exist.
pub fn lab_namespaces(lab: &str) -> Vec<String> {
    let out = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&format!("{lab}-")))
        .map(str::to_string)
        .collect()
}

/// A JSON report's findings as (kind, network, nodes).
pub fn findings(report: &Value) -> Vec<(String, Option<String>, Vec<String>)> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            let nodes = f["nodes"]
                .as_array()
                .expect("nodes")
                .iter()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect();
            (
                f["kind"].as_str().expect("kind").to_string(),
                f["network"].as_str().map(str::to_string),
                nodes,
            )
        })
        .collect()
}
