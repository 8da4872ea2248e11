//! A soak's checkpoint in the API, for a pod that replaces the coordinator's (evicted,
//! force-deleted, its node lost): the emptyDir that keeps the checkpoint across a container
//! restart goes with the pod.
//!
//! The checkpoint (without the coordinator's key, which is in its own Secret) is gzipped and
//! cut into parts of at most [`CHECKPOINT_PART_BYTES`], one ConfigMap each — a 2,000-client
//! checkpoint is ~27 MB of JSON (BENCHMARKS.md, `bench soak`), beyond one ConfigMap's 1 MiB.
//! Generations alternate between two slots of parts, and the index ConfigMap, which names the
//! generation, its slot and its number of parts, is replaced only once every part is written:
//! a coordinator that dies while storing leaves the index on the previous, whole generation.
//! Each part carries its generation, so a part of another generation is found on reading, and
//! the gzip stream's CRC checks the bytes.

use std::collections::BTreeMap;
use std::io::Read as _;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};

use super::api_error::ApiResultExt;
use super::names::RunNames;
use super::objects::{CHECKPOINT_PART_BYTES, CheckpointIndex, KubeRun};
use super::{Error, Result};

/// Stores `gzipped` as generation `generation` of run `run`'s checkpoint, written
/// `written_ms` into the run; returns the index it now has.
///
/// # Errors
///
/// The API server refuses a part or the index ([`Error::Call`]); the index then still names
/// the previous generation.
pub async fn store(
    client: &Client,
    run: &KubeRun<'_>,
    generation: u64,
    written_ms: u64,
    gzipped: &[u8],
) -> Result<CheckpointIndex> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &run.namespace);
    let slot = (generation % 2) as u8;
    let chunks: Vec<&[u8]> = gzipped.chunks(CHECKPOINT_PART_BYTES).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let part = run.checkpoint_part(slot, i, generation, chunk);
        put(&api, &run.names.checkpoint_part(slot, i), &part).await?;
    }
    let index = CheckpointIndex {
        generation,
        slot,
        parts: chunks.len(),
        bytes: gzipped.len(),
        written_ms,
    };
    put(&api, &run.names.checkpoint(), &run.checkpoint_index(&index)).await?;
    // Parts of this slot beyond this generation's (an earlier, larger checkpoint): unused,
    // removed so the run's objects do not grow. The checkpoint is stored whatever happens
    // here: a part left is only said (the garbage collector removes it with the run).
    for i in chunks.len().. {
        let name = run.names.checkpoint_part(slot, i);
        match api.delete(&name, &DeleteParams::default()).await.said() {
            Ok(_) => {}
            Err(e) if e.code() == Some(404) => break,
            Err(e) => {
                tracing::warn!(
                    "removing the unused checkpoint part ConfigMap {}/{name}: {e}",
                    run.namespace
                );
                break;
            }
        }
    }
    Ok(index)
}

/// Removes run `names`'s checkpoint index, so that no coordinator resumes from it: the run is
/// ending (its agents are told to stop next). Its parts go with the run.
///
/// # Errors
///
/// The API server refuses (a missing index is no error).
pub async fn forget(client: &Client, namespace: &str, names: &RunNames) -> Result<()> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let name = names.checkpoint();
    match api.delete(&name, &DeleteParams::default()).await.said() {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(404) => Ok(()),
        Err(e) => Err(Error::call(format!(
            "deleting ConfigMap {namespace}/{name}"
        ))(e)),
    }
}

/// Creates or replaces ConfigMap `name` (only this run's coordinator writes it).
async fn put(api: &Api<ConfigMap>, name: &str, cm: &ConfigMap) -> Result<()> {
    let ns = api.namespace().unwrap_or_default().to_string();
    let storing = || Error::call(format!("storing the checkpoint in ConfigMap {ns}/{name}"));
    match api.get_opt(name).await.said().map_err(storing())? {
        None => api.create(&PostParams::default(), cm).await,
        Some(_) => api.replace(name, &PostParams::default(), cm).await,
    }
    .said()
    .map_err(storing())?;
    Ok(())
}

/// The latest generation stored for run `names` in `namespace` (0: none yet).
///
/// # Errors
///
/// The API server cannot be asked, or the index is not one multinet wrote.
pub async fn generation(client: &Client, namespace: &str, names: &RunNames) -> Result<u64> {
    Ok(index(client, namespace, names)
        .await?
        .map_or(0, |i| i.generation))
}

async fn index(
    client: &Client,
    namespace: &str,
    names: &RunNames,
) -> Result<Option<CheckpointIndex>> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let name = names.checkpoint();
    let Some(found) = api
        .get_opt(&name)
        .await
        .said()
        .map_err(Error::call(format!("reading ConfigMap {namespace}/{name}")))?
    else {
        return Ok(None);
    };
    CheckpointIndex::from_data(&found.data.unwrap_or_default())
        .map(Some)
        .ok_or_else(|| Error::Checkpoint {
            object: format!("ConfigMap {namespace}/{name}"),
            why: "not a checkpoint index (generation, slot, parts, bytes, written-ms)".into(),
        })
}

/// Reads run `names`'s latest checkpoint: its index and the checkpoint's JSON (without the
/// coordinator's key), or `None` when none was stored.
///
/// # Errors
///
/// The API server cannot be asked; a part is missing, of another generation or the wrong
/// size, or the whole does not gunzip ([`Error::Checkpoint`], naming the object).
pub async fn load(
    client: &Client,
    namespace: &str,
    names: &RunNames,
) -> Result<Option<(CheckpointIndex, Vec<u8>)>> {
    let Some(index) = index(client, namespace, names).await? else {
        return Ok(None);
    };
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let mut gzipped = Vec::with_capacity(index.bytes);
    for i in 0..index.parts {
        let name = names.checkpoint_part(index.slot, i);
        let object = format!("ConfigMap {namespace}/{name}");
        let part = api
            .get_opt(&name)
            .await
            .said()
            .map_err(Error::call(format!("reading {object}")))?
            .ok_or_else(|| Error::Checkpoint {
                object: object.clone(),
                why: format!(
                    "missing: part {i} of the {} of generation {}",
                    index.parts, index.generation
                ),
            })?;
        gzipped.extend(
            part_bytes(&part, index.generation).map_err(|why| Error::Checkpoint {
                object: object.clone(),
                why,
            })?,
        );
    }
    let whole = format!("ConfigMap {namespace}/{}", names.checkpoint());
    if gzipped.len() != index.bytes {
        return Err(Error::Checkpoint {
            object: whole,
            why: format!(
                "its parts hold {} bytes, the index says {}",
                gzipped.len(),
                index.bytes
            ),
        });
    }
    let json = gunzip(&gzipped).map_err(|e| Error::Checkpoint {
        object: whole,
        why: format!("its parts do not gunzip: {e}"),
    })?;
    Ok(Some((index, json)))
}

/// A part's bytes, when it is of `generation`.
fn part_bytes(part: &ConfigMap, generation: u64) -> std::result::Result<Vec<u8>, String> {
    let data = part.data.clone().unwrap_or_default();
    let of = data.get("generation").map(String::as_str).unwrap_or("-");
    if of != generation.to_string() {
        return Err(format!(
            "of generation {of}, the index names generation {generation}"
        ));
    }
    let mut binary: BTreeMap<_, _> = part.binary_data.clone().unwrap_or_default();
    binary
        .remove("part")
        .map(|b| b.0)
        .ok_or_else(|| "no binaryData key `part`".to_string())
}

fn gunzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use multinet_proto::config::RunConfig;

    fn run(config: &RunConfig) -> KubeRun<'_> {
        KubeRun::sample(config)
    }

    /// The parts of a checkpoint larger than a ConfigMap hold it whole, each within the API
    /// server's 1 MiB, and a part of another generation is refused by name.
    #[test]
    fn a_large_checkpoint_is_cut_into_parts_that_each_fit_a_config_map() {
        let config = RunConfig::default();
        let run = run(&config);
        // Not compressible: pseudo-random bytes, 2.5 parts.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let bytes: Vec<u8> = (0..CHECKPOINT_PART_BYTES * 5 / 2)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let chunks: Vec<&[u8]> = bytes.chunks(CHECKPOINT_PART_BYTES).collect();
        assert_eq!(chunks.len(), 3);
        let parts: Vec<ConfigMap> = chunks
            .iter()
            .enumerate()
            .map(|(i, c)| run.checkpoint_part(1, i, 7, c))
            .collect();
        let mut whole = Vec::new();
        for part in &parts {
            let json = serde_json::to_vec(part).expect("json");
            let raw = part_bytes(part, 7).expect("generation 7");
            assert!(raw.len() <= CHECKPOINT_PART_BYTES);
            // The API server's limit counts the data's bytes, not their base64.
            assert!(
                raw.len() + 100 < 1024 * 1024,
                "{} bytes of JSON",
                json.len()
            );
            whole.extend(raw);
        }
        assert_eq!(whole, bytes);
        assert_eq!(
            parts[0].metadata.name.as_deref(),
            Some("multinet-0a1b2c3d4e-checkpoint-b0")
        );
        let refused = part_bytes(&parts[1], 8).expect_err("another generation");
        assert!(refused.contains("generation 7") && refused.contains("generation 8"));
    }

    #[test]
    fn the_index_reads_back_what_it_was_made_from_and_refuses_a_bad_slot() {
        let config = RunConfig::default();
        let index = CheckpointIndex {
            generation: 12,
            slot: 0,
            parts: 3,
            bytes: 2_000_000,
            written_ms: 61_000,
        };
        let cm = run(&config).checkpoint_index(&index);
        let data = cm.data.expect("data");
        assert_eq!(CheckpointIndex::from_data(&data), Some(index));
        let mut bad = data.clone();
        bad.insert("slot".into(), "2".into());
        assert_eq!(CheckpointIndex::from_data(&bad), None);
        bad.remove("slot");
        assert_eq!(CheckpointIndex::from_data(&bad), None);
    }

    #[test]
    fn gzip_and_gunzip_give_back_the_bytes() {
        use std::io::Write as _;
        let text = br#"{"version":1,"run_id":"0a1b2c3d4e"}"#.repeat(1000);
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&text).expect("written");
        let gz = encoder.finish().expect("finished");
        assert!(gz.len() < text.len() / 10);
        assert_eq!(gunzip(&gz).expect("gunzip"), text);
        assert!(
            gunzip(&gz[..gz.len() - 4]).is_err(),
            "a cut stream is found"
        );
    }
}
