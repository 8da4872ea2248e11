//! `multinet report show` and `multinet report compare` as a user runs them: the real binary on
//! the stored lab reports in tests/fixtures/reports, exit codes and what is said.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/reports")
        .join(name)
}

fn multinet(args: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_multinet"))
        .args(args)
        .output()
        .expect("multinet runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 output")
}

/// A scratch file removed when dropped, also when the test fails.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("multinet-cli-report-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).expect("write scratch file");
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn p(s: &str) -> &Path {
    Path::new(s)
}

#[test]
fn show_renders_a_stored_report_in_every_format() {
    let fail = fixture("lab-block-cluster.json");
    let out = multinet(&[p("report"), p("show"), &fail]);
    assert_eq!(out.status.code(), Some(0));
    let shown = text(&out.stdout);
    assert!(
        shown.starts_with("multinet validation run 0963e26173 — FAIL\n"),
        "{shown}"
    );
    assert!(
        shown.contains(" 1. Fail inter_node_blocked [cluster]: "),
        "{shown}"
    );
    assert!(
        shown.lines().any(|l| l.starts_with("  n2 ")
            && l.trim_start_matches("  n2 ")
                .trim_start()
                .starts_with("0/18 -")),
        "{shown}"
    );

    let json = multinet(&[p("report"), p("show"), &fail, p("-o"), p("json")]);
    assert_eq!(
        text(&json.stdout),
        std::fs::read_to_string(&fail).expect("fixture")
    );

    let junit = text(&multinet(&[p("report"), p("show"), &fail, p("-o"), p("junit")]).stdout);
    assert!(junit.contains(r#"tests="6" failures="2""#), "{junit}");

    let html = text(&multinet(&[p("report"), p("show"), &fail, p("-o"), p("html")]).stdout);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("data-kind=\"inter_node_blocked\""));
}

#[test]
fn show_reads_a_report_from_before_schema_version() {
    let mut report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("lab-pass.json")).expect("fixture"))
            .expect("JSON");
    report
        .as_object_mut()
        .expect("object")
        .shift_remove("schema_version");
    let old = TempFile::new("v1.json", &report.to_string());
    let out = multinet(&[p("report"), p("show"), &old.0, p("-o"), p("json")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(shown["schema_version"], 1);
    assert_eq!(shown["verdict"], "pass");
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn what_is_no_report_exits_22_naming_the_file() {
    let bad = TempFile::new("bad.json", r#"{"backend": "lab", "findings": []}"#);
    let out = multinet(&[p("report"), p("show"), &bad.0]);
    assert_eq!(out.status.code(), Some(22));
    let said = text(&out.stderr);
    assert!(
        said.contains(&format!(
            "{} is not a multinet JSON report",
            bad.0.display()
        )) && said.contains("missing field `verdict`"),
        "{said}"
    );
    assert_eq!(text(&out.stdout), "");
    let missing = multinet(&[
        p("report"),
        p("compare"),
        p("/nonexistent/before.json"),
        &bad.0,
    ]);
    assert_eq!(missing.status.code(), Some(22));
    assert!(text(&missing.stderr).contains("cannot read /nonexistent/before.json"));
}

#[test]
fn compare_identical_reports_is_no_change_and_exit_0() {
    let pass = fixture("lab-pass.json");
    let out = multinet(&[p("report"), p("compare"), &pass, &pass]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let said = text(&out.stdout);
    assert!(said.contains("— no change\n"), "{said}");
    assert!(
        said.contains("findings new (0)\n") && said.contains("worse (0)"),
        "{said}"
    );
}

#[test]
fn compare_names_a_new_finding_and_the_blocked_cells_and_exits_1() {
    let (pass, fail) = (fixture("lab-pass.json"), fixture("lab-block-cluster.json"));
    let out = multinet(&[p("report"), p("compare"), &pass, &fail]);
    assert_eq!(out.status.code(), Some(1));
    let said = text(&out.stdout);
    assert!(
        said.contains("5c4ae76c41 (pass) → 0963e26173 (fail) — REGRESSION"),
        "{said}"
    );
    assert!(
        said.contains("  + fail inter_node_blocked [cluster] (n2, n3): "),
        "{said}"
    );
    assert!(
        said.contains("  cluster n3 https+L/ka: success 100.0% → 0.0%"),
        "{said}"
    );

    let json = multinet(&[p("report"), p("compare"), &pass, &fail, p("-o"), p("json")]);
    assert_eq!(json.status.code(), Some(1));
    let c: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(c["new_findings"][0]["kind"], "inter_node_blocked");
    assert!(
        c["regressions"]
            .as_array()
            .expect("list")
            .contains(&"new_finding".into())
    );

    // The way back fixes things: no regression of a kind that fails by default …
    let back = multinet(&[
        p("report"),
        p("compare"),
        &fail,
        &pass,
        p("--fail-on"),
        p("new-finding,success,verdict"),
    ]);
    assert_eq!(back.status.code(), Some(0), "{}", text(&back.stdout));
    assert!(text(&back.stdout).contains("findings gone (1)"));
    // … and --fail-on narrows what fails.
    let narrowed = multinet(&[
        p("report"),
        p("compare"),
        &pass,
        &fail,
        p("--fail-on"),
        p("topology"),
    ]);
    assert_eq!(
        narrowed.status.code(),
        Some(0),
        "{}",
        text(&narrowed.stdout)
    );
}

#[test]
fn compare_names_a_path_twice_as_slow_and_exits_1() {
    let pass = fixture("lab-pass.json");
    let mut slower: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&pass).expect("fixture")).expect("JSON");
    for path in slower["paths"].as_array_mut().expect("paths") {
        let is_it = path["source_node"] == "n3"
            && path["network"] == "cluster"
            && path["kind"]
                == serde_json::json!({"scheme": "https", "payload": "small", "connection": "fresh"});
        if is_it {
            for q in ["p50", "p90", "p99", "max"] {
                if let Some(us) = path["latency_us"][q].as_u64() {
                    path["latency_us"][q] = (us * 2).into();
                }
            }
        }
    }
    let after = TempFile::new("slower.json", &slower.to_string());
    let out = multinet(&[p("report"), p("compare"), &pass, &after.0]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let said = text(&out.stdout);
    assert!(said.contains("regressions: latency\n"), "{said}");
    assert!(said.contains("worse (1): "), "{said}");
    assert!(said.contains("  cluster n3 https: p50 "), "{said}");
}

/// `multinet report show` on a terminal (util-linux's `script` gives it one): coloured, unless
/// `NO_COLOR` is set; piped, plain.
#[test]
fn show_colours_for_a_terminal_unless_no_color() {
    let fail = fixture("lab-block-cluster.json");
    let command = format!(
        "{} report show {}",
        env!("CARGO_BIN_EXE_multinet"),
        fail.display()
    );
    let on_terminal = |no_color: Option<&str>| {
        let mut c = Command::new("script");
        c.args(["-qec", &command, "/dev/null"]);
        c.env_remove("NO_COLOR");
        if let Some(v) = no_color {
            c.env("NO_COLOR", v);
        }
        let out = c.output().expect("script runs");
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    assert!(on_terminal(None).contains("\x1b[1;31mFAIL\x1b[0m"));
    assert!(
        on_terminal(Some("")).contains("\x1b[1;31mFAIL"),
        "an empty NO_COLOR is unset"
    );
    let plain = on_terminal(Some("1"));
    assert!(
        plain.contains("— FAIL") && !plain.contains('\x1b'),
        "{plain}"
    );
    let piped = multinet(&[p("report"), p("show"), &fail]);
    assert!(!text(&piped.stdout).contains('\x1b'));
}

#[test]
fn a_reader_that_closes_the_pipe_early_ends_the_output_not_the_command() {
    // `multinet report show … | head -c1`: the reader goes after a byte. The JSON and HTML are
    // far more than a pipe holds, so the write meets the closed pipe whenever the reader goes;
    // the command finishes with its own exit code and says nothing about it (println! panicked).
    for args in [
        vec!["report", "show", "-o", "json"],
        vec!["report", "show", "-o", "html"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_multinet"))
            .args(&args)
            .arg(fixture("lab-block-cluster.json"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("multinet runs");
        let mut stdout = child.stdout.take().expect("stdout");
        let mut first = [0u8; 1];
        std::io::Read::read_exact(&mut stdout, &mut first).expect("some output first");
        drop(stdout);
        let out = child.wait_with_output().expect("multinet ends");
        let stderr = text(&out.stderr);
        // `report show` succeeds whatever the stored verdict was.
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: {stderr}"
        );
    }
}
