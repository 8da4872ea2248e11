//! A soak's coordinator pod that was replaced (evicted, force-deleted, its node lost): the
//! Job controller's new pod has a fresh emptyDir and another IP. It continues the run from the
//! checkpoint the dead pod stored in the API ([`checkpoint_store`]), with the coordinator's
//! TLS identity from its Secret, mounted into the Job's pods; the agents dial the run's
//! Service, which now selects the new pod.

use std::path::{Path, PathBuf};

use super::Start;
use crate::backend::kube::names::RunNames;
use crate::backend::kube::objects::paths;
use crate::backend::kube::{self as kube_backend, checkpoint_store};
use crate::checkpoint::{BackendState, Checkpoint};
use crate::exit::chain;
use crate::pki::PkiState;

/// How the coordinator of run `id` starts from what the API holds: `None` when no checkpoint
/// was stored; else a resume from it (in a new directory under `run_root`), or why the run
/// cannot be continued. The coordinator's TLS identity is read from `tls_dir`
/// ([`paths::COORDINATOR_TLS_DIR`] in the Job's pod).
///
/// # Errors
///
/// The API server cannot be asked.
pub(in crate::run::kube) async fn from_api(
    client: &kube::Client,
    namespace: &str,
    id: &str,
    run_root: &Path,
    tls_dir: &Path,
) -> kube_backend::Result<Option<Start>> {
    let names = RunNames::new(id);
    let loaded = match checkpoint_store::load(client, namespace, &names).await {
        Ok(None) => return Ok(None),
        Ok(Some(loaded)) => loaded,
        Err(e @ kube_backend::Error::Checkpoint { .. }) => {
            return Ok(Some(Start::Lost(format!(
                "its checkpoint in the API cannot be read: {}",
                chain(&e)
            ))));
        }
        Err(e) => return Err(e),
    };
    let (index, json) = loaded;
    let object = format!("ConfigMap {namespace}/{}", names.checkpoint());
    Ok(Some(
        match resumable(&json, &object, tls_dir, run_root, id) {
            Ok((checkpoint, run_dir)) => Start::Resume {
                checkpoint: Box::new(checkpoint),
                run_dir,
                from: format!("{object} (generation {})", index.generation),
            },
            Err(why) => Start::Lost(why),
        },
    ))
}

/// The checkpoint in `json` (read from `object`) with the coordinator's key from `tls_dir`,
/// and the run's new directory under `run_root`; or why it cannot be resumed.
fn resumable(
    json: &[u8],
    object: &str,
    tls_dir: &Path,
    run_root: &Path,
    id: &str,
) -> Result<(Checkpoint, PathBuf), String> {
    let mut checkpoint = Checkpoint::parse(json, Path::new(object))
        .map_err(|e| format!("its checkpoint in the API cannot be read: {}", chain(&e)))?;
    match &checkpoint.backend {
        BackendState::Kube(state) if state.control_service.is_some() => {}
        BackendState::Kube(_) => {
            return Err(format!(
                "{object}: the agents dial the old pod's address, not the run's Service"
            ));
        }
        _ => {
            return Err(format!(
                "{object}: the checkpoint is not of a Kubernetes run"
            ));
        }
    }
    if checkpoint.run_id != id {
        return Err(format!(
            "{object}: the checkpoint is of run {}, not {id}",
            checkpoint.run_id
        ));
    }
    checkpoint.pki = identity(tls_dir, &checkpoint.pki)?;
    let run_dir = crate::supervisor::run_dir(run_root, id);
    std::fs::create_dir_all(&run_dir)
        .map_err(|e| format!("making the run's directory {}: {e}", run_dir.display()))?;
    Ok((checkpoint, run_dir))
}

/// The coordinator's TLS identity as mounted in `tls_dir`, when it is the one the checkpoint
/// (`stored`, without its key) names.
fn identity(tls_dir: &Path, stored: &PkiState) -> Result<PkiState, String> {
    let path = tls_dir.join(paths::COORDINATOR_TLS_FILE);
    let text = std::fs::read(&path).map_err(|e| {
        format!(
            "the coordinator's TLS identity is not mounted at {} ({e}): the new pod cannot serve the agents",
            path.display()
        )
    })?;
    let mounted: PkiState = serde_json::from_slice(&text).map_err(|e| {
        format!(
            "{}: not the coordinator's TLS identity: {e}",
            path.display()
        )
    })?;
    if mounted.ca != stored.ca || mounted.certificate != stored.certificate {
        return Err(format!(
            "{}: another run's TLS identity (its CA or certificate differs from the checkpoint's)",
            path.display()
        ));
    }
    Ok(mounted)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn dir(test: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!(
            "multinet-kube-replaced-{test}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        Dir(dir)
    }

    /// The committed seed checkpoint of a Kubernetes run, as the API holds it: without the
    /// key, the Service's address `service` in its backend part.
    fn stored(service: Option<&str>) -> (Vec<u8>, PkiState) {
        let seed = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fuzz/seeds/checkpoint/kube-2-nodes.json"
        );
        let mut value: serde_json::Value =
            serde_json::from_slice(&std::fs::read(seed).expect("seed")).expect("json");
        let pki: PkiState = serde_json::from_value(value["pki"].clone()).expect("pki");
        value["pki"]["key"] = "".into();
        value["backend"]["control_service"] = service.map_or(serde_json::Value::Null, Into::into);
        (serde_json::to_vec(&value).expect("json"), pki)
    }

    fn mount(dir: &Dir, pki: &PkiState) -> PathBuf {
        let tls = dir.0.join("tls");
        std::fs::create_dir_all(&tls).expect("tls dir");
        std::fs::write(
            tls.join(paths::COORDINATOR_TLS_FILE),
            serde_json::to_vec(pki).expect("json"),
        )
        .expect("written");
        tls
    }

    fn run_id(json: &[u8]) -> String {
        serde_json::from_slice::<serde_json::Value>(json).expect("json")["run_id"]
            .as_str()
            .expect("run id")
            .to_string()
    }

    #[test]
    fn a_stored_checkpoint_resumes_with_the_mounted_key_in_a_new_directory() {
        let d = dir("resumes");
        let (json, pki) = stored(Some("198.19.255.40:7443"));
        let id = run_id(&json);
        let tls = mount(&d, &pki);
        let (checkpoint, run_dir) =
            resumable(&json, "ConfigMap ns/cp", &tls, &d.0, &id).expect("resumable");
        assert_eq!(checkpoint.pki, pki, "the key from the Secret");
        assert!(run_dir.is_dir());
        assert_eq!(run_dir, crate::supervisor::run_dir(&d.0, &id));
    }

    #[test]
    fn without_the_service_the_mount_or_with_another_runs_identity_it_cannot_be_resumed() {
        let d = dir("refused");
        let (json, pki) = stored(Some("198.19.255.40:7443"));
        let id = run_id(&json);
        // No Secret mounted (optional volume, empty).
        let why = resumable(&json, "ConfigMap ns/cp", &d.0.join("none"), &d.0, &id)
            .expect_err("no identity");
        assert!(why.contains("not mounted"), "{why}");
        // Another run's identity.
        let other = PkiState {
            certificate: "b3RoZXI=".into(),
            ..pki.clone()
        };
        let tls = mount(&d, &other);
        let why = resumable(&json, "ConfigMap ns/cp", &tls, &d.0, &id).expect_err("other");
        assert!(why.contains("another run's"), "{why}");
        // The agents dial the old pod: no Service in the checkpoint.
        let tls = mount(&d, &pki);
        let (old, _) = stored(None);
        let why = resumable(&old, "ConfigMap ns/cp", &tls, &d.0, &id).expect_err("no service");
        assert!(why.contains("old pod's address"), "{why}");
        // Another run's checkpoint.
        let why =
            resumable(&json, "ConfigMap ns/cp", &tls, &d.0, "ffffffffff").expect_err("other run");
        assert!(why.contains("not ffffffffff"), "{why}");
    }
}
