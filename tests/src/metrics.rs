//! The live metrics of a run as a test sees them: `multinet run --metrics-addr 127.0.0.1:0`
//! started in the background ([`MetricsRun`], which learns the port from the run's stderr
//! notice), a scrape over plain HTTP/1.1 ([`scrape`]; loopback only), and a parser of the
//! Prometheus/OpenMetrics text format ([`parse`]) so tests compare values, not text.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// One sample line: `name{label="value",...} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The sample's name (`multinet_probes_total`, `…_bucket`).
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

impl Sample {
    /// Whether every `(label, value)` of `want` is among its labels.
    pub fn has(&self, want: &[(&str, &str)]) -> bool {
        want.iter()
            .all(|(k, v)| self.labels.get(*k).is_some_and(|have| have == v))
    }
}

/// Parses an exposition: every sample, with `# TYPE`/`# HELP`/`# UNIT` lines checked for
/// shape and an OpenMetrics exposition's closing `# EOF` required.
///
/// # Errors
///
/// The first line that is no comment, sample or `# EOF`, and a missing `# EOF`.
pub fn parse(text: &str) -> Result<Vec<Sample>, String> {
    let mut samples = Vec::new();
    let mut eof = false;
    for (n, line) in text.lines().enumerate() {
        let bad = |why: &str| format!("line {}: {why}: {line:?}", n + 1);
        if eof {
            return Err(bad("after # EOF"));
        }
        if line == "# EOF" {
            eof = true;
            continue;
        }
        if let Some(comment) = line.strip_prefix("# ") {
            let mut words = comment.splitn(3, ' ');
            match (words.next(), words.next()) {
                (Some("TYPE" | "HELP" | "UNIT"), Some(name)) if !name.is_empty() => continue,
                _ => return Err(bad("unknown comment")),
            }
        }
        samples.push(sample(line).map_err(|why| bad(&why))?);
    }
    if !eof {
        return Err("no # EOF at the end".into());
    }
    Ok(samples)
}

fn sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value after the name")?;
    let name = &line[..name_end];
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(mut inner) = rest.strip_prefix('{') {
        loop {
            if let Some(after) = inner.strip_prefix('}') {
                rest = after;
                break;
            }
            let (key, after) = inner.split_once("=\"").ok_or("a label without =\"")?;
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("bad label name {key:?}"));
            }
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next().ok_or("unclosed label value")? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next().ok_or("escape at the end")?.1 {
                        'n' => value.push('\n'),
                        c @ ('"' | '\\') => value.push(c),
                        c => return Err(format!("bad escape \\{c}")),
                    },
                    (_, c) => value.push(c),
                }
            };
            if labels.insert(key.to_string(), value).is_some() {
                return Err(format!("label {key} twice"));
            }
            inner = &after[end + 1..];
            inner = inner.strip_prefix(',').unwrap_or(inner);
        }
    }
    let value = rest
        .strip_prefix(' ')
        .ok_or("no space before the value")?
        .split(' ')
        .next()
        .unwrap_or_default();
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().map_err(|_| format!("bad value {v:?}"))?,
    };
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// `GET /metrics` from `addr`, which must be on loopback; the body of a 200 answer.
///
/// # Errors
///
/// Connection, timeout, status other than 200, a body that is not UTF-8.
pub fn scrape(addr: SocketAddr) -> Result<String, String> {
    assert!(
        addr.ip().is_loopback(),
        "tests scrape loopback only: {addr}"
    );
    let timeout = Duration::from_secs(5);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let text = String::from_utf8(raw).map_err(|e| e.to_string())?;
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no header end")?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("not 200: {head}"));
    }
    // hyper answers a whole body with a content-length, or chunked.
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return dechunk(body);
    }
    Ok(body.to_string())
}

fn dechunk(mut body: &str) -> Result<String, String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").ok_or("bad chunk")?;
        let size = usize::from_str_radix(size.trim(), 16).map_err(|e| e.to_string())?;
        if size == 0 {
            return Ok(out);
        }
        out.push_str(rest.get(..size).ok_or("short chunk")?);
        body = rest.get(size + 2..).ok_or("short chunk")?;
    }
}

/// `multinet run … --metrics-addr 127.0.0.1:0` in the background: where its metrics are
/// served, and its stderr as it comes. The process is killed and reaped on drop if it is
/// still running.
#[derive(Debug)]
pub struct MetricsRun {
    child: Option<Child>,
    /// Reads the report from stdout as it comes: a soak's report is larger than a pipe holds,
    /// and a run blocked writing it would never end.
    stdout: Option<std::thread::JoinHandle<Vec<u8>>>,
    /// Where `GET /metrics` answers.
    pub addr: SocketAddr,
    /// Stderr lines after the notice.
    lines: Receiver<String>,
    /// Stderr lines read so far (for failure messages).
    pub said: Vec<String>,
}

impl MetricsRun {
    /// Starts `multinet` (`binary`) with `args` plus `--metrics-addr 127.0.0.1:0`, stdout
    /// piped (the report), and waits up to `patience` for its `metrics: serving` notice.
    ///
    /// # Panics
    ///
    /// When it cannot start or says no address in time (it is killed then).
    pub fn start(binary: &str, args: &[&str], patience: Duration) -> Self {
        let mut child = Command::new(binary)
            .args(args)
            .args(["--metrics-addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("multinet runs");
        let stderr = child.stderr.take().expect("stderr");
        let mut stdout = child.stdout.take().expect("stdout");
        let stdout = std::thread::spawn(move || {
            let mut report = Vec::new();
            let _ = stdout.read_to_end(&mut report);
            report
        });
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut run = Self {
            child: Some(child),
            stdout: Some(stdout),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            lines,
            said: Vec::new(),
        };
        let deadline = Instant::now() + patience;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = run.lines.recv_timeout(left) else {
                panic!("no `metrics: serving` notice: {:#?}", run.said);
            };
            let addr = line
                .split("metrics: serving http://")
                .nth(1)
                .and_then(|rest| rest.strip_suffix("/metrics"))
                .and_then(|a| a.parse().ok());
            run.said.push(line);
            if let Some(addr) = addr {
                run.addr = addr;
                return run;
            }
        }
    }

    /// Scrapes and parses the metrics now.
    ///
    /// # Errors
    ///
    /// As [`scrape`] and [`parse`].
    pub fn samples(&self) -> Result<Vec<Sample>, String> {
        parse(&scrape(self.addr)?)
    }

    /// Waits for the run to end, at most `patience` (killed then), and returns its output
    /// (stderr as read so far).
    ///
    /// # Panics
    ///
    /// When it does not end in time.
    pub fn wait(mut self, patience: Duration) -> Output {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + patience;
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the run did not end within {patience:?}: {:#?}", self.said);
            }
            while let Ok(line) = self.lines.recv_timeout(crate::eventually::POLL) {
                self.said.push(line);
            }
        }
        let status = child.wait().expect("exit status");
        let stdout = self
            .stdout
            .take()
            .map(|t| t.join().expect("stdout reader"))
            .unwrap_or_default();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.said.push(line);
        }
        Output {
            status,
            stdout,
            stderr: self.said.join("\n").into_bytes(),
        }
    }
}

impl Drop for MetricsRun {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_samples_labels_escapes_and_infinities() {
        let text = "# HELP a_total A.\n# TYPE a counter\na_total{x=\"1\",y=\"q\\\"\\\\\\n\"} 3\nb 0.25\nh_bucket{le=\"+Inf\"} 7\n# EOF\n";
        let samples = parse(text).expect("parses");
        assert_eq!(samples.len(), 3);
        assert_eq!(samples[0].name, "a_total");
        assert_eq!(samples[0].labels["y"], "q\"\\\n");
        assert!(samples[0].has(&[("x", "1")]));
        assert_eq!(samples[0].value, 3.0);
        assert_eq!(samples[1].value, 0.25);
        assert_eq!(samples[2].labels["le"], "+Inf");
        assert!(parse("a 1\n").is_err(), "no # EOF");
        assert!(parse("a{x=1} 1\n# EOF\n").is_err(), "unquoted");
        assert!(parse("a{x=\"1\"}\n# EOF\n").is_err(), "no value");
    }
}
