//! Reading the user's files. Every failure names the file; YAML syntax errors carry the line
//! and column the parser gives. Nothing here panics on bad input.

use std::path::Path;

use multinet_proto::field::Problems;
use multinet_proto::yaml::parse_documents;
use serde_json::Value;

/// Reads `path` as UTF-8 text; `-` reads standard input.
pub fn read_text(path: &Path) -> Result<String, String> {
    let result = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    };
    result.map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => "cannot read: no such file".to_string(),
        std::io::ErrorKind::InvalidData => "cannot read: the file is not UTF-8 text".to_string(),
        _ => format!("cannot read: {e}"),
    })
}

/// Reads `path` as text; on failure files the error under the file's name into `problems`.
pub fn read_text_or_report(path: &Path, problems: &mut Problems) -> Option<String> {
    read_text(path)
        .map_err(|e| problems.error(path.display().to_string(), e))
        .ok()
}

/// Reads and parses a YAML stream; on failure files one error under the file's name into
/// `problems` and returns `None`.
pub fn read_documents(path: &Path, problems: &mut Problems) -> Option<Vec<Value>> {
    let label = path.display().to_string();
    let text = read_text_or_report(path, problems)?;
    match parse_documents(&text) {
        Ok(docs) => Some(docs),
        Err(e) => {
            problems.error(label, format!("not valid YAML: {e}"));
            None
        }
    }
}

/// Reads and parses a run configuration file: a file that cannot be read or is not YAML is
/// filed into `problems` under the file's name (`None`); otherwise the configuration (defaults
/// merged) and the problems of its content, for the caller to file as it shows them.
pub fn read_run_config(
    path: &Path,
    problems: &mut Problems,
) -> Option<(multinet_proto::config::RunConfig, Problems)> {
    let text = read_text_or_report(path, problems)?;
    match multinet_proto::config::parse_run_config(&text) {
        Ok(parsed) => Some(parsed),
        Err(e) => {
            problems.error(path.display().to_string(), format!("not valid YAML: {e}"));
            None
        }
    }
}
