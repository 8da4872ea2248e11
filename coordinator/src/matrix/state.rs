//! The matrix as a run's checkpoint holds it ([`crate::checkpoint`]): every path's figures,
//! outage windows and timelines, as lists (JSON maps take only string keys), read back with
//! the bounds the live matrix keeps checked, so a damaged checkpoint cannot make a matrix that
//! grows or loops.

use serde::{Deserialize, Serialize};

use super::timeline::{BUCKETS, FIRST_WIDTH_MS};
use super::{NodePathKey, OUTAGES_KEPT, PathKey, PathMatrix, PathStats, Timeline};

/// A [`PathMatrix`], serializable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MatrixState {
    /// Every path with its figures.
    pub paths: Vec<(PathKey, PathStats)>,
    /// Every node path's timeline.
    pub timelines: Vec<(NodePathKey, Timeline)>,
    /// Results reported lost.
    pub lost: u64,
    /// Results recorded.
    pub recorded: u64,
}

/// Why a [`MatrixState`] cannot be a matrix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// A path keeps more outage windows than the matrix does.
    #[error("path {0} keeps {1} outage windows (at most {OUTAGES_KEPT})")]
    Outages(String, usize),
    /// A timeline's buckets are not the matrix's.
    #[error(
        "the timeline of {0} has {1} buckets of {2} ms (at most {BUCKETS}, of {FIRST_WIDTH_MS} ms doubled)"
    )]
    Timeline(String, usize, u64),
}

impl PathMatrix {
    /// The matrix as it stands, serializable.
    pub fn to_state(&self) -> MatrixState {
        MatrixState {
            paths: self
                .paths()
                .into_iter()
                .map(|(k, s)| (k.clone(), s.clone()))
                .collect(),
            timelines: {
                let mut all: Vec<_> = self
                    .timelines
                    .iter()
                    .map(|(k, t)| (k.clone(), t.clone()))
                    .collect();
                all.sort_by(|a, b| a.0.cmp(&b.0));
                all
            },
            lost: self.lost,
            recorded: self.recorded,
        }
    }

    /// The matrix a [`MatrixState`] holds.
    ///
    /// # Errors
    ///
    /// A path with more outage windows than the matrix keeps, or a timeline whose buckets the
    /// matrix would not have made ([`Error`]).
    pub fn from_state(state: MatrixState) -> Result<Self, Error> {
        let mut matrix = PathMatrix {
            lost: state.lost,
            recorded: state.recorded,
            ..PathMatrix::default()
        };
        for (key, stats) in state.paths {
            if stats.recent_outages.len() > OUTAGES_KEPT {
                return Err(Error::Outages(
                    format!("{key:?}"),
                    stats.recent_outages.len(),
                ));
            }
            matrix.paths.insert(key, stats);
        }
        for (key, timeline) in state.timelines {
            let (len, width) = (timeline.buckets().len(), timeline.width_ms());
            let doubled = width >= FIRST_WIDTH_MS
                && width % FIRST_WIDTH_MS == 0
                && (width / FIRST_WIDTH_MS).is_power_of_two();
            if len > BUCKETS || !doubled {
                return Err(Error::Timeline(format!("{key:?}"), len, width));
            }
            matrix.timelines.insert(key, timeline);
        }
        Ok(matrix)
    }
}

/// A map as a list of pairs, for keys JSON cannot have as object keys.
pub mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Serializes `map` as `[[key, value], …]`.
    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        map: &BTreeMap<K, V>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.iter())
    }

    /// Reads `[[key, value], …]`.
    pub fn deserialize<'de, K, V, D>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(deserializer)?
            .into_iter()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use multinet_proto::probe::{FailureClass, Outcome};

    use super::*;
    use crate::matrix::tests::result;

    #[test]
    fn a_matrix_reads_back_as_it_was_written_and_goes_on_recording_alike() {
        let mut m = PathMatrix::default();
        for at in 0..400u64 {
            let mut r = result(at * 1_000, !(100..130).contains(&at));
            if at % 2 == 0 && r.outcome != Outcome::Ok {
                r.outcome = Outcome::Failed(FailureClass::HttpStatus(503));
            }
            m.record("c1", "n1", &[r], u64::from(at == 7));
        }
        let json = serde_json::to_string(&m.to_state()).expect("encodes");
        let mut back = PathMatrix::from_state(serde_json::from_str(&json).expect("decodes"))
            .expect("a matrix");
        assert_eq!(back.to_state(), m.to_state());
        m.record("c1", "n1", &[result(900_000, true)], 0);
        back.record("c1", "n1", &[result(900_000, true)], 0);
        assert_eq!(back.to_state(), m.to_state());
        assert_eq!((back.recorded(), back.lost()), (401, 1));
    }

    #[test]
    fn a_damaged_timeline_is_refused() {
        let mut m = PathMatrix::default();
        m.record("c1", "n1", &[result(5, true)], 0);
        let mut json = serde_json::to_value(m.to_state()).expect("encodes");
        json["timelines"][0][1]["width_ms"] = 0.into();
        let state: MatrixState = serde_json::from_value(json).expect("decodes");
        assert!(matches!(
            PathMatrix::from_state(state),
            Err(Error::Timeline(_, 1, 0))
        ));
    }
}
