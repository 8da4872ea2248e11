//! `multinet report show`: a stored JSON report rendered again, in any format.

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};

use crate::exit;
use crate::report::{self, Format};

/// `multinet report …`
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Render a stored JSON report (`multinet run -o json`) again, in any format; reports of
    /// older multinet versions too (docs/report.md). Exit 0 when shown, 22 when the file is no
    /// report.
    Show {
        /// The JSON report.
        #[arg(value_name = "REPORT.json")]
        file: PathBuf,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t = ShowOutput::Text)]
        output: ShowOutput,
    },
}

/// Formats `report show` renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShowOutput {
    /// For people.
    Text,
    /// For programs: the report in today's schema.
    Json,
    /// JUnit XML for CI dashboards.
    Junit,
    /// One self-contained HTML page.
    Html,
}

impl From<ShowOutput> for Format {
    fn from(output: ShowOutput) -> Self {
        match output {
            ShowOutput::Text => Format::Text,
            ShowOutput::Json => Format::Json,
            ShowOutput::Junit => Format::Junit,
            ShowOutput::Html => Format::Html,
        }
    }
}

/// Runs a `report` subcommand; the exit code.
pub fn run(command: ReportCommand) -> u8 {
    match command {
        ReportCommand::Show { file, output } => match report::stored::load(&file) {
            Ok(stored) => {
                if let Some(warning) = stored.newer_schema_warning(&file) {
                    eprintln!("multinet report show: warning: {warning}");
                }
                print!("{}", stored.render(output.into()));
                exit::SUCCESS
            }
            Err(e) => {
                eprintln!("multinet report show: {}", exit::chain(&e));
                exit::code(&e)
            }
        },
    }
}
