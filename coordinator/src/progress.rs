//! Live progress while a run goes: a spinner line on a terminal (indicatif), plain timestamped
//! lines otherwise (only when something changed). Written to stderr so stdout stays the report.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

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
        line.push_str(&format!(", failing paths {}", self.failing_paths));
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
    /// A spinner when stderr is a terminal, plain lines otherwise; nothing at all if `quiet`.
    pub fn new(quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
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
            None => eprintln!(
                "[{:>7.1}s] {}",
                self.started.elapsed().as_secs_f64(),
                status.line()
            ),
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
            None => eprintln!("[{:>7.1}s] {message}", self.started.elapsed().as_secs_f64()),
        }
    }

    /// Clears the spinner.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
