//! Field paths and the problems found at them.
//!
//! Every parser in `proto` reads a loosely typed document (`serde_json::Value`, whatever the
//! source format was) through [`Field`], which remembers where it is (`spec.network.selectors`)
//! and files every problem it meets into [`Problems`] instead of stopping at the first one. A
//! user fixing a manifest sees all that is wrong with it at once, each problem naming its field.
//!
//! This module owns no knowledge of any particular document; it must stay free of I/O.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

/// One thing wrong (or worth a warning) in an input, at a field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Where in the document: `spec.network.selectors.public`, `nodeTypes.storage.osdsPerNode`.
    pub field: String,
    /// What is wrong and what was expected, written for the person editing the file.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// Errors and warnings collected while reading one input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Problems {
    /// Problems that make the input invalid.
    pub errors: Vec<Problem>,
    /// Problems that are accepted but deserve the user's attention.
    pub warnings: Vec<Problem>,
}

impl Problems {
    /// Records an error at `field`.
    pub fn error(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(Problem {
            field: field.into(),
            message: message.into(),
        });
    }

    /// Records a warning at `field`.
    pub fn warn(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Problem {
            field: field.into(),
            message: message.into(),
        });
    }

    /// True when no error was recorded (warnings allowed).
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }

    /// Every error on one line, `; `-separated (for an error message that holds them all).
    pub fn errors_line(&self) -> String {
        self.errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Moves every problem of `other` into `self`, each field prefixed with `prefix: ` (the file
    /// or object the problems were found in).
    pub fn absorb_under(&mut self, prefix: &str, other: Problems) {
        let place = |mut p: Problem| {
            p.field = format!("{prefix}: {}", p.field);
            p
        };
        self.errors.extend(other.errors.into_iter().map(place));
        self.warnings.extend(other.warnings.into_iter().map(place));
    }

    /// Moves every problem of `other` into `self`.
    pub fn absorb(&mut self, other: Problems) {
        self.errors.extend(other.errors);
        self.warnings.extend(other.warnings);
    }
}

/// The JSON/YAML type name of a value, for messages such as "expected a string, found a list".
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// A value together with its path in the document.
#[derive(Debug, Clone, Copy)]
pub struct Field<'p, 'v> {
    path: &'p str,
    value: &'v Value,
}

/// A child field: owns its path string so it can be handed out by value.
#[derive(Debug, Clone)]
pub struct OwnedPath {
    path: String,
}

impl OwnedPath {
    /// The child path of `parent` at `key` (`a.b` + `c` = `a.b.c`).
    pub fn child(parent: &str, key: &str) -> Self {
        let path = if parent.is_empty() {
            key.to_string()
        } else {
            format!("{parent}.{key}")
        };
        Self { path }
    }

    /// The path of list element `index` of `parent` (`a.b[3]`).
    pub fn index(parent: &str, index: usize) -> Self {
        Self {
            path: format!("{parent}[{index}]"),
        }
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.path
    }

    /// A field at this path.
    pub fn at<'v>(&self, value: &'v Value) -> Field<'_, 'v> {
        Field::new(&self.path, value)
    }
}

impl<'p, 'a> Field<'p, 'a> {
    /// A field at `path` holding `value`.
    pub fn new(path: &'p str, value: &'a Value) -> Self {
        Self { path, value }
    }

    /// Where this field is.
    pub fn path(&self) -> &'p str {
        self.path
    }

    /// The raw value.
    pub fn value(&self) -> &'a Value {
        self.value
    }

    /// The path of a child key, for messages and for [`OwnedPath::at`].
    pub fn child_path(&self, key: &str) -> OwnedPath {
        OwnedPath::child(self.path, key)
    }

    /// The mapping this field holds; `None` (and an error) when it holds anything else.
    /// Null counts as an empty mapping, as Kubernetes treats it.
    pub fn mapping(&self, problems: &mut Problems) -> Option<&'a serde_json::Map<String, Value>> {
        static EMPTY: std::sync::OnceLock<serde_json::Map<String, Value>> =
            std::sync::OnceLock::new();
        match self.value {
            Value::Object(map) => Some(map),
            Value::Null => Some(EMPTY.get_or_init(serde_json::Map::new)),
            other => {
                problems.error(
                    self.path,
                    format!("expected a mapping, found {}", type_name(other)),
                );
                None
            }
        }
    }

    /// A string; YAML scalars that are not strings (`true`, `3`) are taken as their text, the way
    /// Kubernetes tooling reads `map[string]string` fields. Null gives `None`.
    pub fn scalar_string(&self, problems: &mut Problems) -> Option<String> {
        match self.value {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Number(n) => Some(n.to_string()),
            other => {
                problems.error(
                    self.path,
                    format!("expected a string, found {}", type_name(other)),
                );
                None
            }
        }
    }

    /// A string, strictly: any other type is an error. Null gives `None`.
    pub fn string(&self, problems: &mut Problems) -> Option<&'a str> {
        match self.value {
            Value::Null => None,
            Value::String(s) => Some(s),
            other => {
                problems.error(
                    self.path,
                    format!("expected a string, found {}", type_name(other)),
                );
                None
            }
        }
    }

    /// A string that must be present: null (absent) files `missing` as the error.
    pub fn required_string(&self, problems: &mut Problems, missing: &str) -> Option<&'a str> {
        let found = self.string(problems);
        if found.is_none() && self.value.is_null() {
            problems.error(self.path, missing);
        }
        found
    }

    /// A boolean. Null gives `None`.
    pub fn boolean(&self, problems: &mut Problems) -> Option<bool> {
        match self.value {
            Value::Null => None,
            Value::Bool(b) => Some(*b),
            other => {
                problems.error(
                    self.path,
                    format!("expected true or false, found {}", type_name(other)),
                );
                None
            }
        }
    }

    /// A non-negative integer that fits `u32`. Null gives `None`.
    pub fn count(&self, problems: &mut Problems) -> Option<u32> {
        match self.value {
            Value::Null => None,
            Value::Number(n) => match n.as_u64().and_then(|v| u32::try_from(v).ok()) {
                Some(v) => Some(v),
                None => {
                    problems.error(
                        self.path,
                        format!("expected a whole number from 0 to {}, found {n}", u32::MAX),
                    );
                    None
                }
            },
            other => {
                problems.error(
                    self.path,
                    format!("expected a whole number, found {}", type_name(other)),
                );
                None
            }
        }
    }

    /// A list. Null gives an empty list.
    pub fn list(&self, problems: &mut Problems) -> Option<&'a [Value]> {
        match self.value {
            Value::Null => Some(&[]),
            Value::Array(items) => Some(items),
            other => {
                problems.error(
                    self.path,
                    format!("expected a list, found {}", type_name(other)),
                );
                None
            }
        }
    }
}
