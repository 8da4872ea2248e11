//! A test's client as a process (`multinet bench client`, in the client pod's namespace),
//! and any process the bench runs: bounded in time, its JSON output read.

use std::time::Duration;

use multinet_agent::load::{LoadKind, LoadOutcome};

use super::report::TestResult;
use super::site::{Bench, exec_in};
use super::{ANSWER_BYTES, TEST_PATIENCE};

/// One test's client, as its command line says it.
pub(super) struct ClientArgs<'a> {
    pub(super) kind: LoadKind,
    pub(super) streams: u32,
    pub(super) target: std::net::SocketAddr,
    pub(super) source: std::net::IpAddr,
    pub(super) device: Option<&'a str>,
}

/// Runs one test: the client process in `ns` (`None`: this machine's namespace, bound to the
/// client's loopback address), bounded by the duration and [`TEST_PATIENCE`]; the server
/// agent's (`server_pid`) CPU time read before and after.
pub(super) async fn run_test(
    bench: &Bench<'_>,
    ns: Option<&str>,
    server_pid: Option<i32>,
    args: ClientArgs<'_>,
) -> TestResult {
    let mut argv = exec_in(ns);
    argv.extend(bench.client_command.iter().cloned());
    argv.extend([
        "--kind".to_string(),
        args.kind.name().to_string(),
        "--target".into(),
        args.target.to_string(),
        "--source".into(),
        args.source.to_string(),
        "--streams".into(),
        args.streams.to_string(),
        "--duration-ms".into(),
        bench.request.duration.as_millis().to_string(),
        "--answer-bytes".into(),
        ANSWER_BYTES.to_string(),
        "--ca".into(),
        bench.tls.ca.display().to_string(),
        "--cert".into(),
        bench.tls.cert.display().to_string(),
        "--key".into(),
        bench.tls.key.display().to_string(),
    ]);
    if let Some(device) = args.device {
        argv.extend(["--device".to_string(), device.to_string()]);
    }
    let server_before = server_pid.and_then(|pid| multinet_agent::load::cpu_seconds(Some(pid)));
    let ran = run_json::<LoadOutcome>(&argv, bench.request.duration + TEST_PATIENCE).await;
    let server_after = server_pid.and_then(|pid| multinet_agent::load::cpu_seconds(Some(pid)));
    let server_cpu = server_before
        .zip(server_after)
        .map(|(before, after)| after - before);
    match ran {
        Ok(outcome) => TestResult {
            kind: args.kind,
            streams: args.streams,
            outcome: Some(outcome),
            server_cpu_seconds: server_cpu,
            failure: None,
        },
        Err(why) => TestResult {
            kind: args.kind,
            streams: args.streams,
            outcome: None,
            server_cpu_seconds: server_cpu,
            failure: Some(why),
        },
    }
}

/// Runs `argv` to its end within `limit` (killed past it) and reads its standard output as
/// JSON; a failure is said with the process's standard error.
pub(crate) async fn run_json<T: serde::de::DeserializeOwned>(
    argv: &[String],
    limit: Duration,
) -> Result<T, String> {
    let output = run_bounded(argv, limit).await?;
    if !output.status.success() {
        return Err(format!(
            "{} exited with {}: {}",
            program_of(argv),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| {
        format!(
            "its output is not what was expected ({e}): {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )
    })
}

/// The program a command line runs, past `nsenter … --` and `taskset -c CPUS` (what the
/// bench puts before it: [`super::site::exec_in`], the loopback comparison's pinning).
pub(crate) fn program_of(argv: &[String]) -> &str {
    let mut args = argv.iter().map(String::as_str);
    while let Some(arg) = args.next() {
        match arg.rsplit('/').next().unwrap_or(arg) {
            "nsenter" => {
                for option in args.by_ref() {
                    if option == "--" {
                        break;
                    }
                }
            }
            "taskset" => {
                // `-c CPUS`
                args.next();
                args.next();
            }
            _ => return arg,
        }
    }
    ""
}

/// Runs `argv` to its end within `limit`; killed (and waited for) past it.
pub(crate) async fn run_bounded(
    argv: &[String],
    limit: Duration,
) -> Result<std::process::Output, String> {
    let (program, args) = argv.split_first().ok_or("an empty command")?;
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(Ok(output)) => Ok(output),
        Ok(Err(e)) => Err(format!("waiting for {program}: {e}")),
        // Dropping the future drops the child: killed (kill_on_drop) and reaped by tokio.
        Err(_) => Err(format!(
            "{program} did not end within {}s; killed",
            limit.as_secs()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_names_the_program_not_what_runs_it() {
        let argv = |words: &str| -> Vec<String> { words.split(' ').map(String::from).collect() };
        assert_eq!(
            program_of(&argv(
                "nsenter --net=/run/netns/x -- /usr/bin/taskset -c 0,1 /bin/multinet bench client"
            )),
            "/bin/multinet"
        );
        assert_eq!(
            program_of(&argv("/usr/bin/wrk --threads=1")),
            "/usr/bin/wrk"
        );
        assert_eq!(program_of(&argv("taskset -c 1 nginx -c x")), "nginx");
    }

    #[tokio::test]
    async fn a_test_process_past_its_limit_is_killed_and_said() {
        let argv = vec!["sleep".to_string(), "30".to_string()];
        let started = std::time::Instant::now();
        let error = run_bounded(&argv, Duration::from_millis(200))
            .await
            .expect_err("killed");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(error.contains("did not end within"), "{error}");
    }

    #[tokio::test]
    async fn a_failing_process_is_said_with_its_stderr() {
        let argv = vec![
            "sh".to_string(),
            "-c".to_string(),
            "echo broken >&2; exit 3".to_string(),
        ];
        let error = run_json::<serde_json::Value>(&argv, Duration::from_secs(5))
            .await
            .expect_err("fails");
        assert!(error.contains("broken"), "{error}");
    }
}
