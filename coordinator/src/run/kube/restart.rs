//! A soak's coordinator Job restarted by the kubelet: its container died (OOM-killed, a
//! crash) and was started again in the same pod (`restartPolicy: OnFailure`,
//! [`crate::backend::kube::objects::coordinator_restarts`]). The pod keeps its address, so
//! the agents reconnect to the same control plane, and its emptyDir, so the new process finds
//! the checkpoint the dead one wrote ([`crate::checkpoint`]) and continues the run from it.
//!
//! What the new process finds decides how it starts ([`Start`]): nothing of the run (a first
//! start), a checkpoint (resume) — in the emptyDir, or, when the pod was replaced and its
//! emptyDir went with it, in the API ([`replaced`]) — or traces of the run without a
//! checkpoint: it died before its first one. Then the run cannot be continued: the last
//! interim report stays as the run's report (the command outside shows it and exits 69), or,
//! when there is none, an error report says why.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::ConfigMap;

mod replaced;

use super::{kube_run, owner_of};
use crate::backend::kube::api_error::ApiResultExt;
use crate::backend::kube::names::RunNames;
use crate::backend::kube::{self as kube_backend, outside};
use crate::checkpoint::{self, Checkpoint};
use crate::exit::chain;
use crate::report::{ErrorReport, Format};
use multinet_proto::config::RunConfig;
use multinet_proto::multus::selection::NetworkSelection;

/// How a soak's coordinator Job starts.
#[derive(Debug)]
pub(super) enum Start {
    /// Nothing of the run exists yet: a first start.
    Fresh,
    /// A checkpoint in the run's directory: continue from it.
    Resume {
        /// The checkpoint.
        checkpoint: Box<Checkpoint>,
        /// The run's directory (where it was found, or made for a replacement pod).
        run_dir: PathBuf,
        /// Where it was read from, as the log says it.
        from: String,
    },
    /// The run was started by an earlier process and cannot be continued: why.
    Lost(String),
    /// An earlier process made the run's final report but died before it was stored: store
    /// it.
    Stored(FinalReport),
}

/// A run's final report as rendered for the command outside, kept in the pod's emptyDir
/// until it is stored (a container that dies in between leaves it to its restart).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(super) struct FinalReport {
    /// The run's exit code.
    pub exit_code: u8,
    /// The report, in the run's format.
    pub text: String,
}

impl FinalReport {
    /// Where it is kept: beside the run's directory (which the run's cleanup removes).
    fn path(run_root: &Path, id: &str) -> PathBuf {
        run_root.join(format!("multinet-{id}.final-report.json"))
    }

    /// Keeps it under `run_root` (atomically), until [`FinalReport::forget`].
    ///
    /// # Errors
    ///
    /// It cannot be written.
    pub fn keep(&self, run_root: &Path, id: &str) -> std::io::Result<()> {
        let text = serde_json::to_string(self).map_err(std::io::Error::other)?;
        crate::report::write_atomically(&Self::path(run_root, id), &text)
    }

    /// Removes it once stored.
    pub fn forget(run_root: &Path, id: &str) {
        let _ = std::fs::remove_file(Self::path(run_root, id));
    }
}

/// How the coordinator of run `id` starts, from what its run directory under `run_root` and
/// the cluster hold: a checkpoint there is resumed, else one stored in the API (the pod was
/// replaced; the coordinator's TLS identity is read from `tls_dir`); the directory without
/// one, or the run's agents' settings or report already in the cluster (an earlier pod started
/// the run and died before its first checkpoint), means the run cannot be continued.
///
/// # Errors
///
/// The API server cannot be asked.
pub(super) async fn how(
    client: &kube::Client,
    namespace: &str,
    id: &str,
    run_root: &Path,
    pod_ip: Option<std::net::IpAddr>,
    tls_dir: &Path,
) -> kube_backend::Result<Start> {
    // What the emptyDir holds comes first; when it holds nothing to resume from, the API's
    // copy of the checkpoint may still continue the run.
    let lost_here = match from_run_dir(run_root, id, pod_ip) {
        Some(Start::Lost(why)) => Some(why),
        Some(start) => return Ok(start),
        None => None,
    };
    if let Some(start) = replaced::from_api(client, namespace, id, run_root, tls_dir).await? {
        return Ok(start);
    }
    if let Some(why) = lost_here {
        return Ok(Start::Lost(why));
    }
    // The agents' settings ConfigMap is made with the first agent, the report with the first
    // interim report: either there means an earlier coordinator pod started the run.
    let names = RunNames::new(id);
    let config_maps: kube::Api<ConfigMap> = kube::Api::namespaced(client.clone(), namespace);
    for name in [names.agents(), names.report()] {
        let found = config_maps
            .get_opt(&name)
            .await
            .said()
            .map_err(kube_backend::Error::call(format!("{namespace}/{name}")))?;
        if found.is_some() {
            return Ok(Start::Lost(
                "an earlier coordinator pod started the run and was replaced before it stored its first checkpoint".into(),
            ));
        }
    }
    Ok(Start::Fresh)
}

/// What the run's files under `run_root` say: a final report not yet stored, a checkpoint to
/// resume (taken by a coordinator at `pod_ip`, the address its agents dial), the run's
/// directory without one (the run cannot be continued), or nothing (`None`).
fn from_run_dir(run_root: &Path, id: &str, pod_ip: Option<std::net::IpAddr>) -> Option<Start> {
    if let Some(kept) = std::fs::read(FinalReport::path(run_root, id))
        .ok()
        .and_then(|t| serde_json::from_slice::<FinalReport>(&t).ok())
    {
        return Some(Start::Stored(kept));
    }
    let run_dir = crate::supervisor::run_dir(run_root, id);
    let path = run_dir.join(checkpoint::FILE);
    if path.is_file() {
        return Some(match Checkpoint::read(&path) {
            Ok(read) => match &read.backend {
                checkpoint::BackendState::Kube(state)
                    if state.control_service.is_none()
                        && state.pod_ip.is_some()
                        && state.pod_ip != pod_ip =>
                {
                    Start::Lost(format!(
                        "the pod's address changed ({} in the checkpoint, {} now: its sandbox was made again) and the agents dial the old one",
                        state.pod_ip.map_or("-".into(), |ip| ip.to_string()),
                        pod_ip.map_or("unknown".into(), |ip| ip.to_string())
                    ))
                }
                checkpoint::BackendState::Kube(_) => Start::Resume {
                    checkpoint: Box::new(read),
                    from: path.display().to_string(),
                    run_dir,
                },
                _ => Start::Lost(format!(
                    "{}: the checkpoint is not of a Kubernetes run",
                    path.display()
                )),
            },
            Err(e) => Start::Lost(format!("its checkpoint cannot be read: {}", chain(&e))),
        });
    }
    run_dir.exists().then(|| {
        Start::Lost(format!(
            "the run's directory {} holds no checkpoint (the coordinator died before it wrote its first)",
            run_dir.display()
        ))
    })
}

/// A run and how its report is stored, for [`lost`] and [`store_error`].
pub(super) struct Run<'a> {
    /// Its id.
    pub id: &'a str,
    /// Its configuration.
    pub config: &'a RunConfig,
    /// The image.
    pub image: &'a str,
    /// The networks' selections.
    pub selections: (&'a Option<NetworkSelection>, &'a Option<NetworkSelection>),
    /// The report's format.
    pub format: Format,
}

/// Ends a run that cannot be continued (`why`): its last interim report, when it stored one,
/// stays its report; else an error report says why, with exit code 69.
///
/// # Errors
///
/// The API server cannot be asked or refuses the report.
pub(super) async fn lost(
    client: &kube::Client,
    run: &Run<'_>,
    why: &str,
) -> kube_backend::Result<String> {
    ended_early(client, run, why, crate::exit::ERROR, 0).await
}

/// Ends a run that stopped before its final report (`why`, exit code `exit_code`,
/// `duration_ms` into this process): its last interim report, when it stored one, stays its
/// report (what it measured until then is worth more than the error); else an error report
/// says why.
///
/// # Errors
///
/// The API server cannot be asked or refuses the report.
pub(super) async fn ended_early(
    client: &kube::Client,
    run: &Run<'_>,
    why: &str,
    exit_code: u8,
    duration_ms: u64,
) -> kube_backend::Result<String> {
    let names = RunNames::new(run.id);
    let ns = &run.config.namespace;
    let reports: kube::Api<ConfigMap> = kube::Api::namespaced(client.clone(), ns);
    let interim =
        reports
            .get_opt(&names.report())
            .await
            .said()
            .map_err(kube_backend::Error::call(format!(
                "{ns}/{}",
                names.report()
            )))?;
    if interim.is_some() {
        return Ok(format!(
            "run {} cannot be continued: {why}; its last interim report stays its report",
            run.id
        ));
    }
    let error = format!("run {} cannot be continued: {why}", run.id);
    store_error(client, run, &error, exit_code, duration_ms).await?;
    Ok(error)
}

/// Stores an error report (`error`, exit code `exit_code`, `duration_ms` into the process)
/// as the run's report.
///
/// # Errors
///
/// The API server cannot be asked or refuses the report.
pub(super) async fn store_error(
    client: &kube::Client,
    run: &Run<'_>,
    error: &str,
    exit_code: u8,
    duration_ms: u64,
) -> kube_backend::Result<String> {
    let report = ErrorReport::new("kube", error.to_string(), duration_ms);
    store(client, run, &report.render(run.format), exit_code).await
}

/// Stores `text` (a report in the run's format, the run's `exit_code`) as the run's final
/// report, for the command outside the cluster; where it is.
///
/// # Errors
///
/// The API server cannot be asked or refuses the report.
pub(super) async fn store(
    client: &kube::Client,
    run: &Run<'_>,
    text: &str,
    exit_code: u8,
) -> kube_backend::Result<String> {
    let owner = owner_of(run.id, client, &run.config.namespace).await?;
    let objects = kube_run(
        run.id,
        run.config,
        run.image,
        run.selections.0,
        run.selections.1,
        owner,
    );
    outside::store_report(client, &objects, run.format, text, exit_code, false).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The coordinator pod's address in the tests' checkpoints.
    const IP: Option<std::net::IpAddr> =
        Some(std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 244, 1, 7)));

    /// A run root removed also when the test fails.
    struct Root(PathBuf);

    impl Drop for Root {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn root(test: &str) -> Root {
        let dir = std::env::temp_dir().join(format!(
            "multinet-kube-restart-{test}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("run root");
        Root(dir)
    }

    /// The directory of run `id` under `root`, made, holding `checkpoint` when given.
    fn run_dir_with(root: &Root, id: &str, checkpoint: Option<&[u8]>) -> PathBuf {
        let dir = crate::supervisor::run_dir(&root.0, id);
        std::fs::create_dir(&dir).expect("run dir");
        if let Some(text) = checkpoint {
            std::fs::write(dir.join(checkpoint::FILE), text).expect("written");
        }
        dir
    }

    /// The committed checkpoint seed (a lab run's), with its backend part as given.
    fn checkpoint_with(backend: serde_json::Value) -> Vec<u8> {
        let seed = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fuzz/seeds/checkpoint/lab-2-nodes.json"
        );
        let mut c: serde_json::Value =
            serde_json::from_slice(&std::fs::read(seed).expect("seed")).expect("JSON");
        c["backend"] = backend;
        serde_json::to_vec(&c).expect("encodes")
    }

    #[test]
    fn nothing_of_the_run_is_a_first_start_as_far_as_the_directory_says() {
        assert!(
            from_run_dir(std::path::Path::new("/nonexistent-multinet"), "0a1b2c", IP).is_none()
        );
        let root = root("fresh");
        assert!(from_run_dir(&root.0, "0a1b2c", None).is_none());
    }

    #[test]
    fn a_run_directory_without_a_checkpoint_cannot_be_continued() {
        let root = root("nockpt");
        run_dir_with(&root, "0a1b2c", None);
        match from_run_dir(&root.0, "0a1b2c", None) {
            Some(Start::Lost(why)) => assert!(
                why.ends_with(
                    "holds no checkpoint (the coordinator died before it wrote its first)"
                ),
                "{why}"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_kubernetes_checkpoint_is_resumed_with_the_objects_it_names() {
        let root = root("kube");
        let state = serde_json::json!({
            "backend": "kube",
            "shared_created": true,
            "created_pods": ["multinet-3205903ff9-client-n1-osd-0"],
            "host_sets": ["converged"],
            "refused_sets": {},
            "told": [],
            "pod_ip": "10.244.1.7",
        });
        let dir = run_dir_with(&root, "3205903ff9", Some(&checkpoint_with(state)));
        match from_run_dir(&root.0, "3205903ff9", IP) {
            Some(Start::Resume {
                checkpoint,
                run_dir,
                from,
            }) => {
                assert_eq!(run_dir, dir);
                assert_eq!(from, dir.join(checkpoint::FILE).display().to_string());
                let checkpoint::BackendState::Kube(state) = checkpoint.backend else {
                    panic!("{:?}", checkpoint.backend)
                };
                assert!(state.shared_created);
                assert_eq!(state.created_pods, ["multinet-3205903ff9-client-n1-osd-0"]);
                assert!(state.host_sets.contains("converged"));
            }
            other => panic!("{other:?}"),
        }
    }

    /// A final report kept but not stored (the process died in between) is stored by the
    /// restart, whatever else is there; once stored it is forgotten.
    #[test]
    fn a_final_report_kept_but_not_stored_comes_first() {
        let root = root("final");
        run_dir_with(&root, "0a1b2c", None);
        let kept = FinalReport {
            exit_code: 1,
            text: "{\"verdict\": \"fail\"}".into(),
        };
        kept.keep(&root.0, "0a1b2c").expect("kept");
        match from_run_dir(&root.0, "0a1b2c", IP) {
            Some(Start::Stored(found)) => assert_eq!(found, kept),
            other => panic!("{other:?}"),
        }
        FinalReport::forget(&root.0, "0a1b2c");
        assert!(matches!(
            from_run_dir(&root.0, "0a1b2c", IP),
            Some(Start::Lost(_))
        ));
    }

    #[test]
    fn a_checkpoint_taken_at_another_pod_address_cannot_be_continued() {
        let root = root("newip");
        let state = serde_json::json!({"backend": "kube", "pod_ip": "10.244.1.7"});
        run_dir_with(&root, "3205903ff9", Some(&checkpoint_with(state)));
        let now = Some("10.244.2.9".parse().expect("ip"));
        match from_run_dir(&root.0, "3205903ff9", now) {
            Some(Start::Lost(why)) => assert!(
                why.starts_with(
                    "the pod's address changed (10.244.1.7 in the checkpoint, 10.244.2.9 now"
                ),
                "{why}"
            ),
            other => panic!("{other:?}"),
        }
    }

    /// With the run's Service in front of the coordinator, the agents do not dial the pod's
    /// address: a new one does not stop the run.
    #[test]
    fn a_checkpoint_taken_at_another_pod_address_is_resumed_when_the_agents_dial_the_service() {
        let root = root("service");
        let state = serde_json::json!({
            "backend": "kube", "shared_created": true, "created_pods": [], "host_sets": [],
            "refused_sets": {}, "told": [], "pod_ip": "10.244.1.7",
            "control_service": "198.19.255.40:7443",
        });
        run_dir_with(&root, "3205903ff9", Some(&checkpoint_with(state)));
        let now = Some("10.244.2.9".parse().expect("ip"));
        match from_run_dir(&root.0, "3205903ff9", now) {
            Some(Start::Resume { checkpoint, .. }) => {
                let checkpoint::BackendState::Kube(state) = checkpoint.backend else {
                    panic!("{:?}", checkpoint.backend)
                };
                assert_eq!(
                    state.control_service,
                    Some("198.19.255.40:7443".parse().expect("addr"))
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn another_backends_or_an_unreadable_checkpoint_cannot_be_continued_and_says_why() {
        let root = root("other");
        let lab = checkpoint_with(serde_json::json!({"backend": "local", "agents": []}));
        let dir = run_dir_with(&root, "3205903ff9", Some(&lab));
        match from_run_dir(&root.0, "3205903ff9", IP) {
            Some(Start::Lost(why)) => assert!(why.ends_with("not of a Kubernetes run"), "{why}"),
            other => panic!("{other:?}"),
        }
        std::fs::write(dir.join(checkpoint::FILE), b"{\"version\": 1").expect("written");
        match from_run_dir(&root.0, "3205903ff9", IP) {
            Some(Start::Lost(why)) => assert!(
                why.starts_with("its checkpoint cannot be read")
                    && why.contains("not a multinet checkpoint"),
                "{why}"
            ),
            other => panic!("{other:?}"),
        }
    }
}
