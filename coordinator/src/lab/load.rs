//! Loading a lab topology as the user gives it: a topology file, NADs that become its
//! networks (`--nads`), a name from the command line — read and checked, nothing touched.

use std::path::Path;

use multinet_proto::field::Problems;

use crate::input::read_text_or_report;
use crate::lab::topology::{ConfigSource, LabTopology, parse_topology};

/// Which of the user's NADs become which network: those named like the run's networks, else
/// the first and second in the file.
#[derive(Debug, Clone, Copy, Default)]
pub struct NadChoice<'a> {
    /// The file of NetworkAttachmentDefinitions.
    pub file: Option<&'a Path>,
    /// The public network's NAD name, when the run names one.
    pub public: Option<&'a str>,
    /// The cluster network's NAD name, when the run names one.
    pub cluster: Option<&'a str>,
}

/// The topology text with its `networks` replaced by the NADs of `nads`.
fn with_nads(base: &str, nads: NadChoice<'_>, problems: &mut Problems) -> Option<String> {
    let path = nads.file?;
    let label = path.display().to_string();
    let text = read_text_or_report(path, problems)?;
    let docs = match multinet_proto::yaml::parse_documents(&text) {
        Ok(d) => d,
        Err(e) => {
            problems.error(label, format!("not valid YAML: {e}"));
            return None;
        }
    };
    let nad_docs: Vec<&serde_json::Value> = docs
        .iter()
        .filter(|d| {
            d.get("kind").and_then(serde_json::Value::as_str) == Some("NetworkAttachmentDefinition")
        })
        .collect();
    let name_of = |d: &serde_json::Value| {
        d.pointer("/metadata/name")
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
    };
    let pick = |wanted: Option<&str>, index: usize| {
        let wanted = wanted.map(|w| w.rsplit('/').next().unwrap_or(w));
        wanted
            .and_then(|w| {
                nad_docs
                    .iter()
                    .find(|d| name_of(d).as_deref() == Some(w))
                    .copied()
            })
            .or_else(|| nad_docs.get(index).copied())
    };
    let public = pick(nads.public, 0);
    let cluster = pick(nads.cluster, 1).filter(|c| public.is_none_or(|p| !std::ptr::eq(*c, p)));
    if public.is_none() {
        problems.error(label, "holds no NetworkAttachmentDefinition");
        return None;
    }
    let mut topology = match multinet_proto::yaml::parse_document(base) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    if topology.contains_key("networks") {
        problems.warn("--nads", "replaces the topology file's networks");
    }
    let mut networks = serde_json::Map::new();
    for (key, nad) in [("public", public), ("cluster", cluster)] {
        if let Some(nad) = nad {
            networks.insert(key.into(), nad.clone());
        }
    }
    topology.insert("networks".into(), serde_json::Value::Object(networks));
    serde_json::to_string_pretty(&serde_json::Value::Object(topology)).ok()
}

/// Reads and validates a topology (with `nads` as its networks when given; `name` replaces
/// its name): the topology, its source text, and the warnings found.
///
/// # Errors
///
/// Every problem found (with the warnings), each naming its file or flag.
pub fn load_topology(
    file: Option<&Path>,
    name: Option<&str>,
    nads: NadChoice<'_>,
) -> Result<(LabTopology, String, Problems), Problems> {
    let mut problems = Problems::default();
    let base = match file {
        None => String::new(),
        Some(path) => match read_text_or_report(path, &mut problems) {
            Some(text) => text,
            None => return Err(problems),
        },
    };
    let (source, label) = match (nads.file, with_nads(&base, nads, &mut problems)) {
        (Some(_), None) => return Err(problems),
        (Some(path), Some(text)) => (text, path.display().to_string()),
        (None, _) => (
            base,
            file.map(|p| p.display().to_string()).unwrap_or_default(),
        ),
    };
    let (mut topology, source) = match source.trim().is_empty() {
        true => (LabTopology::default(), String::new()),
        false => {
            let text = source;
            match parse_topology(&text) {
                Ok((mut t, found)) => {
                    problems.absorb_under(&label, found);
                    // A run configuration named by path is read relative to the topology file.
                    if let (Some(file), ConfigSource::Path(config)) = (file, &mut t.config)
                        && config.is_relative()
                        && let Some(dir) = file.parent()
                    {
                        *config = dir.join(&*config);
                    }
                    (t, text)
                }
                Err(e) => {
                    problems.error(label, format!("not valid YAML: {e}"));
                    return Err(problems);
                }
            }
        }
    };
    if let Some(name) = name {
        if name.is_empty()
            || name.len() > 6
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            problems.error(
                "--name",
                format!("{name:?}: a lab name is 1 to 6 lowercase letters or digits"),
            );
        }
        topology.name = name.to_string();
    }
    if problems.is_valid() {
        Ok((topology, source, problems))
    } else {
        Err(problems)
    }
}
