//! The HTML report in a real browser: Debian's `chromium`, headless, with a fresh profile,
//! inside a network namespace of its own that has only loopback (so neither the page nor the
//! browser's own background services can reach any network), loads the page `multinet` wrote
//! and dumps the DOM it rendered; the tests assert on that DOM (verdict, findings, a heatmap
//! cell per node and network), on the browser's console (no message at all: the page has no
//! script) and on its network log (no request made by the page). A screenshot of each page is
//! kept under the target directory (`report-html/*.png`) as the test's artifact.
//!
//! The reports: the stored lab runs in tests/fixtures/reports (a pass; the cluster network
//! blocked, one finding; a soak with an outage and an agent away), and a run of the local
//! backend made here with `--report FILE.html`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use multinet_tests::e2e::processes_mentioning;
use multinet_tests::eventually::{eventually, within};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_multinet-e2e");

/// How long one browser run may take on a loaded 2-core machine.
const BROWSER_PATIENCE: Duration = Duration::from_secs(120);

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/reports")
        .join(name)
}

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Whether the browser tests can run: chromium and util-linux's `unshare` installed. Skips
/// (saying so) where they are not, fails under CI ([`multinet_tests::require`]).
fn browser_possible() -> bool {
    let mut missing = Vec::new();
    if chromium().is_none() {
        missing.push("chromium (`apt-get install chromium`)".to_string());
    }
    if !Path::new("/usr/bin/unshare").exists() {
        missing.push("unshare (util-linux)".to_string());
    }
    multinet_tests::require::can_run("the HTML report's browser test", &missing)
}

/// A directory of this test's own, removed when dropped (also when the test fails).
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "multinet-report-html-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A browser process, killed and reaped when dropped if it is still running.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// What the browser made of a page.
struct Rendered {
    dom: String,
    stderr: String,
    net_log: Value,
}

/// Runs chromium on `page` with `extra` arguments in a fresh profile under `scratch`, inside a
/// network namespace with only loopback; its stdout and stderr. Fails the test when it does
/// not end within [`BROWSER_PATIENCE`] or leaves a process behind.
fn browse(page: &Path, scratch: &Path, run: &str, extra: &[String]) -> (String, String) {
    let profile = scratch.join(format!("profile-{run}"));
    std::fs::create_dir_all(&profile).expect("profile dir");
    let (out, err) = (
        scratch.join(format!("{run}.out")),
        scratch.join(format!("{run}.err")),
    );
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let mut command = Command::new("unshare");
    if !root {
        command.arg("--map-root-user");
    }
    command
        .args(["--net", "--"])
        .arg(chromium().expect("chromium"))
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // Console messages and errors on stderr, as `…:CONSOLE:…` lines.
            "--enable-logging=stderr",
            "--v=0",
            // No name resolves: a second wall besides the namespace.
            "--host-resolver-rules=MAP * ~NOTFOUND",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"));
    let mut browser = Running(command.spawn().expect("chromium starts"));
    let status = eventually(BROWSER_PATIENCE, "chromium to finish", || {
        match browser.0.try_wait().expect("wait for chromium") {
            Some(status) => Ok(status),
            None => Err("running"),
        }
    });
    let stderr = std::fs::read_to_string(&err).unwrap_or_default();
    assert!(status.success(), "chromium failed ({status}): {stderr}");
    // Its renderer and helper processes go with it.
    let marker = profile.display().to_string();
    let left = within(Duration::from_secs(20), Duration::from_millis(50), || {
        let left = processes_mentioning(&marker);
        if left.is_empty() { Ok(()) } else { Err(left) }
    });
    assert_eq!(left, Ok(()), "chromium processes left");
    let stdout = std::fs::read_to_string(&out).expect("chromium's output");
    (stdout, stderr)
}

/// The page's DOM as rendered, the browser's stderr and network log, and a screenshot kept
/// as `report-html/<name>.png` under the target directory.
fn render(page: &Path, scratch: &Path, name: &str) -> Rendered {
    let net_log_file = scratch.join("net-log.json");
    let (dom, stderr) = browse(
        page,
        scratch,
        "dom",
        &[
            format!("--log-net-log={}", net_log_file.display()),
            "--dump-dom".into(),
        ],
    );
    let net_log: Value = serde_json::from_str(
        &std::fs::read_to_string(&net_log_file).expect("chromium's network log"),
    )
    .expect("the network log is JSON");
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-html");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let shot = shots.join(format!("{name}.png"));
    let _ = std::fs::remove_file(&shot);
    browse(
        page,
        scratch,
        "shot",
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,2400".into(),
        ],
    );
    assert!(
        std::fs::metadata(&shot).is_ok_and(|m| m.len() > 10_000),
        "no screenshot at {}",
        shot.display()
    );
    Rendered {
        dom,
        stderr,
        net_log,
    }
}

/// The URLs of requests the page made: every URL request in the network log whose initiator is
/// an origin (the page's `file:` origin is `null`). Requests the browser makes for itself (its
/// updater and clock, which the namespace keeps from leaving) have none.
fn page_requests(net_log: &Value) -> Vec<String> {
    let types = &net_log["constants"]["logEventTypes"];
    let start = types["URL_REQUEST_START_JOB"].as_u64().expect("event type");
    net_log["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"].as_u64() == Some(start))
        .filter(|e| {
            e["params"]["initiator"]
                .as_str()
                .is_some_and(|i| i != "not an origin")
        })
        .map(|e| e["params"]["url"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// What every page must be: rendered without a console message, no request made by the page,
/// no http(s) URL in it; the verdict shown.
fn assert_self_contained(r: &Rendered, verdict: &str) {
    let console: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .collect();
    assert_eq!(console, Vec::<&str>::new(), "console messages");
    assert_eq!(page_requests(&r.net_log), Vec::<String>::new());
    for needle in ["http://", "https://", "<script", "<link"] {
        assert!(!r.dom.contains(needle), "the page has {needle}");
    }
    assert!(
        r.dom.contains(&format!(
            "<span id=\"verdict\" class=\"verdict {}\">{}</span>",
            verdict.to_lowercase(),
            verdict
        )),
        "no verdict {verdict} in the DOM"
    );
}

/// A heatmap cell per node and network, with its success ratio: (node, network, ratio).
fn heatmap_cells(dom: &str) -> Vec<(String, String, f64)> {
    dom.split("<td class=\"cell\" ")
        .skip(1)
        .filter(|cell| cell.contains("data-target="))
        .filter_map(|cell| {
            let attr = |name: &str| {
                let from = cell.find(&format!("{name}=\""))? + name.len() + 2;
                Some(cell[from..].split('"').next()?.to_string())
            };
            Some((
                attr("data-node")?,
                attr("data-network")?,
                attr("data-ratio")?.parse().ok()?,
            ))
        })
        .collect()
}

fn show_html(report: &Path, out: &Path) {
    let shown = Command::new(BIN)
        .args(["report", "show"])
        .arg(report)
        .args(["-o", "html"])
        .output()
        .expect("multinet runs");
    assert!(
        shown.status.success(),
        "report show: {}",
        String::from_utf8_lossy(&shown.stderr)
    );
    std::fs::write(out, shown.stdout).expect("write the page");
}

#[test]
fn a_failing_lab_run_shows_its_finding_and_the_blocked_cells() {
    if !browser_possible() {
        return;
    }
    let scratch = Scratch::new("fail");
    let page = scratch.0.join("report.html");
    show_html(&fixture("lab-block-cluster.json"), &page);
    let r = render(&page, &scratch.0, "lab-block-cluster");
    assert_self_contained(&r, "FAIL");
    assert!(
        r.dom
            .contains("<article class=\"finding fail\" data-kind=\"inter_node_blocked\">")
    );
    assert!(
        r.dom
            .contains("traffic between nodes on this network is blocked")
    );
    let cells = heatmap_cells(&r.dom);
    for node in ["n1", "n2", "n3"] {
        for network in ["public", "cluster"] {
            let mine: Vec<f64> = cells
                .iter()
                .filter(|(n, w, _)| n == node && w == network)
                .map(|c| c.2)
                .collect();
            assert!(!mine.is_empty(), "no heatmap cell for {node} on {network}");
            // Blocked: the cluster network from n2 and n3; everything else passed.
            let blocked = network == "cluster" && node != "n1";
            assert!(
                mine.iter()
                    .all(|r| if blocked { *r == 0.0 } else { *r == 1.0 }),
                "{node} {network}: {mine:?}"
            );
        }
    }
}

/// A mesh run's page: a column per responder node, the two blocked cells and nothing else.
#[test]
fn a_mesh_run_shows_a_node_by_node_heatmap_with_the_blocked_pair() {
    if !browser_possible() {
        return;
    }
    let scratch = Scratch::new("mesh");
    let page = scratch.0.join("report.html");
    show_html(&fixture("lab-mesh-block.json"), &page);
    let r = render(&page, &scratch.0, "lab-mesh-block");
    assert_self_contained(&r, "FAIL");
    assert!(r.dom.contains("Nodes × responder nodes (mesh)"));
    assert!(r.dom.contains("between nodes n2 and n3"));
    let nodes = ["n1", "n2", "n3", "n4"];
    for network in ["public", "cluster"] {
        for from in nodes {
            for to in nodes {
                let cell =
                    format!("data-node=\"{from}\" data-network=\"{network}\" data-target=\"{to}\"");
                let at = r
                    .dom
                    .find(&cell)
                    .unwrap_or_else(|| panic!("no cell {from} -> {to} on {network}"));
                let ratio: f64 = r.dom[at..]
                    .split("data-ratio=\"")
                    .nth(1)
                    .and_then(|s| s.split('"').next())
                    .and_then(|s| s.parse().ok())
                    .expect("a ratio");
                let blocked =
                    network == "cluster" && matches!((from, to), ("n2", "n3") | ("n3", "n2"));
                assert_eq!(
                    ratio,
                    if blocked { 0.0 } else { 1.0 },
                    "{from} -> {to} on {network}"
                );
            }
        }
    }
}

#[test]
fn a_passing_lab_run_shows_no_finding() {
    if !browser_possible() {
        return;
    }
    let scratch = Scratch::new("pass");
    let page = scratch.0.join("report.html");
    show_html(&fixture("lab-pass.json"), &page);
    let r = render(&page, &scratch.0, "lab-pass");
    assert_self_contained(&r, "PASS");
    assert!(r.dom.contains("id=\"no-findings\""));
    assert!(!r.dom.contains("class=\"finding"));
    let cells = heatmap_cells(&r.dom);
    for node in ["n1", "n2", "n3"] {
        for network in ["public", "cluster"] {
            assert!(
                cells
                    .iter()
                    .any(|(n, w, r)| n == node && w == network && *r == 1.0),
                "no passing cell for {node} on {network}: {cells:?}"
            );
        }
    }
    assert!(
        r.dom
            .contains("<svg class=\"distribution\" data-network=\"cluster\"")
    );
}

/// A soak's page: its outage window on the timeline where the block was, the agent's
/// absence told apart, the latency-over-time charts, and the findings saying both.
#[test]
fn a_soak_with_an_outage_shows_its_window_and_the_agent_away() {
    if !browser_possible() {
        return;
    }
    let scratch = Scratch::new("soak");
    let page = scratch.0.join("report.html");
    show_html(&fixture("lab-soak-outage.json"), &page);
    let r = render(&page, &scratch.0, "lab-soak-outage");
    assert_self_contained(&r, "FAIL");
    assert!(
        r.dom
            .contains("<article class=\"finding fail\" data-kind=\"outage\">")
    );
    assert!(
        r.dom
            .contains("<article class=\"finding warn\" data-kind=\"agent_outage\">")
    );
    // One window, n2 on the cluster network, from the block (20 s) to its end (35 s).
    let windows: Vec<&str> = r.dom.split("<rect class=\"outage\" ").skip(1).collect();
    assert_eq!(windows.len(), 1, "{windows:?}");
    assert!(
        windows[0].starts_with("data-node=\"n2\" data-network=\"cluster\""),
        "{}",
        windows[0]
    );
    let from: u64 = windows[0]
        .split("data-from-ms=\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .and_then(|t| t.parse().ok())
        .expect("data-from-ms");
    assert!((20_000..24_000).contains(&from), "{from}");
    // The agent killed on n3 is away, not down, on both networks' timelines.
    assert_eq!(
        r.dom
            .matches("<rect class=\"away\" data-node=\"n3\"")
            .count(),
        2
    );
    for network in ["public", "cluster"] {
        assert!(
            r.dom
                .contains(&format!("<svg class=\"drift\" data-network=\"{network}\""))
        );
    }
}

/// `multinet run --report FILE.html` (no `-o`): the local backend's run writes the page.
#[test]
fn a_run_writes_the_page_its_report_file_names() {
    if !browser_possible() {
        return;
    }
    let scratch = Scratch::new("run");
    let page = scratch.0.join("run.html");
    let out = Command::new(BIN)
        .args([
            "run",
            "--backend",
            "local",
            "--nodes",
            "2",
            "--daemons-per-node",
            "1",
            "--probe-interval",
            "100ms",
            "-q",
            "--report",
        ])
        .arg(&page)
        .output()
        .expect("multinet runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let r = render(&page, &scratch.0, "local-run");
    assert_self_contained(&r, "PASS");
    // The local backend says it validates no real network.
    assert!(r.dom.contains("validates no real network"));
    let cells = heatmap_cells(&r.dom);
    for node in ["n1", "n2"] {
        assert!(
            cells.iter().any(|(n, w, _)| n == node && w == "public"),
            "no cell for {node}: {cells:?}"
        );
    }
}
