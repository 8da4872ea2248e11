//! YAML (and therefore JSON) documents read into loosely typed values.
//!
//! Parsers in `proto` work on `serde_json::Value` so that every field can be checked and
//! reported by path (see [`crate::field`]). This module turns text into such values and turns
//! the YAML parser's failures into a [`SyntaxError`] with line and column. It reads no files:
//! callers pass the text and name the file in their own messages.

use serde_json::Value;

/// Text that is not well-formed YAML.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", match (line, column) { (Some(l), Some(c)) => format!("line {l} column {c}: "), _ => String::new() })]
pub struct SyntaxError {
    /// 1-based line where the parser stopped, when it knows.
    pub line: Option<u64>,
    /// 1-based column where the parser stopped, when it knows.
    pub column: Option<u64>,
    /// The parser's own description.
    pub message: String,
}

impl SyntaxError {
    fn from_saphyr(err: &serde_saphyr::Error) -> Self {
        let location = err.location();
        // The rendered error starts with "error: line L column C: " when a location is known;
        // keep only the description, since the location is carried separately.
        let rendered = err.without_snippet().to_string();
        let first_line = rendered.lines().next().unwrap_or_default();
        let message = first_line
            .strip_prefix("error: ")
            .unwrap_or(first_line)
            .to_string();
        let message = match message.split_once(": ") {
            Some((head, rest)) if head.starts_with("line ") && head.contains(" column ") => {
                rest.to_string()
            }
            _ => message,
        };
        Self {
            line: location.map(|l| l.line()),
            column: location.map(|l| l.column()),
            message,
        }
    }
}

/// Parses every document of a YAML stream (`---` separated). Empty documents are dropped.
pub fn parse_documents(text: &str) -> Result<Vec<Value>, SyntaxError> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(text).map_err(|e| SyntaxError::from_saphyr(&e))?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// Parses a single YAML (or JSON) document. An empty text gives `Value::Null`.
pub fn parse_document(text: &str) -> Result<Value, SyntaxError> {
    let mut docs = parse_documents(text)?;
    match docs.len() {
        0 => Ok(Value::Null),
        1 => Ok(docs.remove(0)),
        n => Err(SyntaxError {
            line: None,
            column: None,
            message: format!("expected one YAML document, found {n}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let err = parse_documents("a: 1\nb: [1, 2\n").expect_err("unclosed list");
        assert_eq!(err.line, Some(2));
        assert!(err.message.contains("unclosed"), "{err}");
        assert!(err.to_string().starts_with("line 2 column"), "{err}");
    }

    #[test]
    fn multiple_documents_and_empty_ones() {
        let docs = parse_documents("---\na: 1\n---\n---\nb: 2\n").expect("valid stream");
        assert_eq!(docs.len(), 2);
        assert_eq!(parse_document("").expect("empty"), Value::Null);
        assert!(parse_document("a: 1\n---\nb: 2\n").is_err());
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let err = parse_document("a: 1\na: 2\n").expect_err("duplicate key");
        assert!(err.message.contains("duplicate"), "{err}");
    }
}
