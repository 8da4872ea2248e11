//! Live progress while a run goes: a spinner line on a terminal (indicatif), plain timestamped
//! lines otherwise (only when something changed). Written to stderr so stdout stays the report;
//! when either is not a terminal (the report piped to a file or `jq`, a CI log), plain lines.
//! [`LogWriter`] is where diagnostics (`tracing`) go: stderr, around the spinner line.

use std::io::{IsTerminal, Write};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// The spinner on screen, if any: log lines are written around it.
static LIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// A `tracing` writer: one event's text, written to stderr when dropped — around the live
/// spinner when there is one (suspended, written, redrawn), so that logs never break the
/// progress line.
#[derive(Debug, Default)]
pub struct LogWriter {
    buffer: Vec<u8>,
}

impl Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let text = std::mem::take(&mut self.buffer);
        let live = LIVE.lock().unwrap_or_else(PoisonError::into_inner).clone();
        match live {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(&text)),
            None => std::io::stderr().write_all(&text),
        }
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// What the run shows while it goes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Status {
    /// The stage.
    pub stage: String,
    /// Agents connected.
    pub connected: usize,
    /// Agents expected.
    pub expected: usize,
    /// Per network: clients passing / clients attached.
    pub passing: Vec<(String, usize, usize)>,
    /// Paths whose last probe failed.
    pub failing_paths: usize,
    /// Paths that have failed at least once so far.
    pub failed_paths: usize,
}

impl Status {
    fn line(&self) -> String {
        let mut line = format!(
            "{}: agents connected {}/{}",
            self.stage, self.connected, self.expected
        );
        for (net, ok, all) in &self.passing {
            line.push_str(&format!(", {net} passing {ok}/{all}"));
        }
        line.push_str(&format!(
            ", failing paths {} (failed so far {})",
            self.failing_paths, self.failed_paths
        ));
        line
    }
}

/// The progress display.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    last: Option<Status>,
    quiet: bool,
}

impl Progress {
    /// A spinner when stdout and stderr are terminals, plain lines otherwise; nothing at all if
    /// `quiet`.
    pub fn new(quiet: bool) -> Self {
        let live = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
        let bar = (!quiet && live).then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            *LIVE.lock().unwrap_or_else(PoisonError::into_inner) = Some(bar.clone());
            bar
        });
        Self {
            bar,
            started: Instant::now(),
            last: None,
            quiet,
        }
    }

    /// Shows `status` (plain mode: only when it changed).
    pub fn show(&mut self, status: Status) {
        if self.quiet || self.last.as_ref() == Some(&status) {
            return;
        }
        match &self.bar {
            Some(bar) => bar.set_message(status.line()),
            None => eprintln!("{} {}", self.stamp(), status.line()),
        }
        self.last = Some(status);
    }

    /// A one-off message.
    pub fn note(&self, message: &str) {
        if self.quiet {
            return;
        }
        match &self.bar {
            Some(bar) => bar.println(message),
            None => eprintln!("{} {message}", self.stamp()),
        }
    }

    /// `2026-11-29T04:30:13Z +12.3s`: the wall clock (UTC) and the time into the run.
    fn stamp(&self) -> String {
        format!(
            "{} +{:.1}s",
            k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            self.started.elapsed().as_secs_f64()
        )
    }

    /// Clears the spinner.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            LIVE.lock().unwrap_or_else(PoisonError::into_inner).take();
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_line_has_every_count() {
        let s = Status {
            stage: "probe".into(),
            connected: 60,
            expected: 61,
            passing: vec![("public".into(), 50, 57), ("cluster".into(), 9, 9)],
            failing_paths: 3,
            failed_paths: 7,
        };
        assert_eq!(
            s.line(),
            "probe: agents connected 60/61, public passing 50/57, cluster passing 9/9, failing paths 3 (failed so far 7)"
        );
    }
}
