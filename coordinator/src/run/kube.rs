//! A Kubernetes run: the configuration checked with the backend's rules, the dry run, and the
//! coordinator inside the cluster (the Job's process, or `multinet run` started in a pod).
//! From outside a cluster the coordinator runs as a Job: see `job`.

use multinet_proto::config::RunConfig;
use multinet_proto::field::Problems;
use multinet_proto::multus::selection::NetworkSelection;
use multinet_proto::network::CephNetwork;

use super::launch::{Ended, execute_with, finish, metrics_listener, settings};
use super::{Error, Notice, Result, RunOutcome, RunRequest, Say, warn_all};
use crate::backend::kube::api_error::ApiResultExt;
use crate::backend::kube::backend::{KubeBackend, KubeBackendSpec, OwnerRole, RUN_ROOT};
use crate::backend::kube::names::{Owner, RunNames};
use crate::backend::kube::objects::KubeRun;
use crate::backend::kube::preflight::{Preflight, Problem, Purpose, Who, preflight};
use crate::backend::kube::{self as kube_backend, client, dry_run, outside};
use crate::exit::chain;
use crate::report::{self, Format};

mod hand_over;
mod restart;

/// The arguments the coordinator Job gets beyond its run id, configuration and image: the
/// report's format and the agents' grace — one function, for the dry run and the real Job.
/// A soak's agents wait long enough for the Job to restart a coordinator that died.
pub(super) fn job_args(format: Format, request: &RunRequest, config: &RunConfig) -> Vec<String> {
    vec![
        "-o".to_string(),
        format.name().into(),
        "--agent-grace-seconds".into(),
        agent_grace(request, config).as_secs().to_string(),
    ]
}

/// The agents' grace in a kube run: a soak's coordinator is restarted by its Job and resumes
/// ([`crate::backend::kube::objects::coordinator_restarts`]).
fn agent_grace(request: &RunRequest, config: &RunConfig) -> std::time::Duration {
    request.agent_grace_for(kube_backend::objects::coordinator_restarts(config) > 0)
}

pub(super) fn run(request: &RunRequest, say: Say<'_>) -> Result<RunOutcome> {
    let mut problems = Problems::default();
    let config = super::config::resolve_for_kube(&request.config, &mut problems)
        .ok_or_else(|| Error::Invalid(problems.clone()))?;
    if request.config.until_stopped() {
        return Err(Error::Usage(
            "--duration without a value (a soak until stopped) is for the lab and local backends: give the kube backend a duration (--duration 6h, or soakDuration in the configuration), which bounds its coordinator Job".into(),
        ));
    }
    if request.kube.dry_run != (request.format == Format::Yaml) {
        return Err(Error::Usage(
            "--dry-run prints the run's objects as YAML: give --dry-run with -o yaml".into(),
        ));
    }
    // The coordinator Job reads the configuration the command outside has checked and warned
    // about already: each warning is said once, there.
    if request.kube.in_cluster_run.is_none() {
        warn_all(&problems, say);
    }
    if request.kube.dry_run {
        let grace_ms = agent_grace(request, &config).as_millis() as u64;
        let yaml = dry_run::render(
            &config,
            &request.kube.image,
            job_args(Format::Json, request, &config),
            grace_ms,
        )
        .map_err(|e| Error::Usage(crate::exit::chain(&e)))?;
        crate::out!("{yaml}");
        return Ok(RunOutcome {
            exit_code: crate::exit::SUCCESS,
            report: None,
        });
    }
    let (public, cluster) = config.network_selections(&mut Problems::default());
    // In a pod, this process is the coordinator — unless a kubeconfig is named: then the
    // cluster it names may be another one, and the coordinator runs there as a Job.
    if request.kube.in_cluster_run.is_some()
        || (client::in_cluster() && !request.kube.names_a_cluster())
    {
        in_cluster(request, config, public, cluster, say)
    } else {
        super::job::run_outside(request, config, public, cluster, say)
    }
}

/// The preflight's problems as an error, or `Ok` when there are none: exit 22 when the input
/// is at fault, 1 when the cluster is.
fn refused(problems: Vec<Problem>) -> Result<()> {
    if problems.is_empty() {
        return Ok(());
    }
    let invalid = problems.iter().any(|p| matches!(p, Problem::Invalid(_)));
    let lines = problems
        .into_iter()
        .map(|p| match p {
            Problem::Invalid(text) | Problem::Cluster(text) => text,
        })
        .collect();
    Err(Error::Refused { lines, invalid })
}

pub(crate) fn selection_list(
    public: &Option<NetworkSelection>,
    cluster: &Option<NetworkSelection>,
) -> Vec<(CephNetwork, NetworkSelection)> {
    [
        (CephNetwork::Public, public),
        (CephNetwork::Cluster, cluster),
    ]
    .into_iter()
    .filter_map(|(n, s)| s.clone().map(|s| (n, s)))
    .collect()
}

/// Preflight for `who`; says what was left out and the warnings — unless `own_run` is set:
/// then this is the coordinator Job of a run whose command outside the cluster said them
/// already (its log is streamed there: each line once).
pub(super) async fn checked(
    client: &kube::Client,
    config: &RunConfig,
    selections: &[(CephNetwork, NetworkSelection)],
    who: Who,
    own_run: Option<&str>,
    say: Say<'_>,
) -> Result<Preflight> {
    let (found, problems) = preflight(client, config, selections, who, own_run, Purpose::Run)
        .await
        .map_err(|e| Error::failed("preflight", e))?;
    refused(problems)?;
    if own_run.is_none() {
        for line in found.left_out.iter().chain(&found.warnings) {
            say(Notice::Note(line.clone()));
        }
    }
    Ok(found)
}

/// The coordinator inside the cluster: serves the control plane on its pod IP.
///
/// As a soak's coordinator Job (restarted by the kubelet should it die) it first looks at
/// what an earlier process of the run left ([`restart::how`]): it resumes from a checkpoint,
/// or ends a run it cannot continue; and it exits 0 once it has stored a report (the run's
/// exit code is stored with it), so that the Job restarts only a coordinator that died.
fn in_cluster(
    request: &RunRequest,
    config: RunConfig,
    public: Option<NetworkSelection>,
    cluster: Option<NetworkSelection>,
    say: Say<'_>,
) -> Result<RunOutcome> {
    let started = std::time::Instant::now();
    let kube = &request.kube;
    let job_run = kube.in_cluster_run.clone();
    let resumable = job_run.is_some() && kube_backend::objects::coordinator_restarts(&config) > 0;
    let run = restart::Run {
        id: job_run.as_deref().unwrap_or_default(),
        config: &config,
        image: &kube.image,
        selections: (&public, &cluster),
        format: request.format,
    };
    let namespace = config.namespace.clone();
    let start = match &job_run {
        Some(id) if resumable => with_client(request, |client| async move {
            let pod_ip = std::env::var("POD_IP").ok().and_then(|ip| ip.parse().ok());
            restart::how(
                &client,
                &namespace,
                id,
                std::path::Path::new(RUN_ROOT),
                pod_ip,
                std::path::Path::new(kube_backend::objects::paths::COORDINATOR_TLS_DIR),
            )
            .await
        })?,
        _ => restart::Start::Fresh,
    };
    let (resume, kube_state) = match start {
        restart::Start::Fresh => (None, None),
        restart::Start::Resume {
            checkpoint,
            run_dir,
            from,
        } => {
            say(Notice::Info(format!(
                "run {}: the coordinator restarted; resuming from {from} (written {:.1} s into the run)",
                checkpoint.run_id,
                checkpoint.written_ms as f64 / 1000.0
            )));
            let state = match &checkpoint.backend {
                crate::checkpoint::BackendState::Kube(state) => {
                    Some((state.clone(), checkpoint.supervisor.nodes.clone()))
                }
                _ => None,
            };
            (
                Some(super::launch::Resume {
                    checkpoint,
                    run_dir,
                }),
                state,
            )
        }
        restart::Start::Lost(why) => {
            let said = with_client(request, |client| async move {
                restart::lost(&client, &run, &why).await
            })?;
            say(Notice::Note(said));
            return Ok(RunOutcome {
                exit_code: crate::exit::SUCCESS,
                report: None,
            });
        }
        restart::Start::Stored(kept) => {
            let stored = store_final(request, &run, &kept)?;
            say(Notice::Line(format!(
                "multinet: the run's final report, made before the coordinator restarted, stored in {stored}"
            )));
            return Ok(RunOutcome {
                exit_code: crate::exit::SUCCESS,
                report: None,
            });
        }
    };
    let make = {
        let config = config.clone();
        let (public, cluster) = (public.clone(), cluster.clone());
        let image = kube.image.clone();
        let job_run = job_run.clone();
        move || async move {
            let client = client::connect(kube.kubeconfig.as_deref(), kube.context.as_deref())
                .await
                .map_err(|e| Error::failed("", e))?;
            let selections = selection_list(&public, &cluster);
            let checked = checked(
                &client,
                &config,
                &selections,
                Who::Coordinator,
                job_run.as_deref(),
                say,
            )
            .await;
            let found = match (checked, &kube_state) {
                (Ok(found), _) => found,
                // A resumed soak goes on with the nodes it planned, whatever the cluster's
                // state now (a node under pressure or down is what a soak is there to see);
                // only the NADs' details (for diagnosing sandbox failures) are missed.
                (Err(e), Some(_)) => {
                    tracing::warn!(
                        "the preflight of the resumed run: {}; going on with the checkpoint's nodes",
                        chain(&e)
                    );
                    Preflight::default()
                }
                (Err(e), None) => return Err(e),
            };
            let pod_ip: std::net::IpAddr = std::env::var("POD_IP")
                .ok()
                .and_then(|ip| ip.parse().ok())
                .ok_or_else(|| Error::Usage("POD_IP is not set to this pod's IP: give it from the downward API (status.podIP), as deploy/coordinator-job.yaml does".into()))?;
            let (run_id, owner, owner_role) = match job_run {
                Some(id) => {
                    let owner = owner_of(&id, &client, &config.namespace)
                        .await
                        .map_err(|e| Error::failed("the run's owner ConfigMap", e))?;
                    (id, owner, OwnerRole::Outside)
                }
                None => {
                    let id = crate::supervisor::new_run_id();
                    let run = kube_run(
                        &id,
                        &config,
                        &image,
                        &public,
                        &cluster,
                        Owner {
                            name: String::new(),
                            uid: String::new(),
                        },
                    );
                    let yaml = serde_saphyr::to_string(&config).unwrap_or_default();
                    let owner = outside::create_owner(&client, &run, yaml)
                        .await
                        .map_err(|e| Error::failed("", e))?;
                    (id, owner, OwnerRole::Ours)
                }
            };
            let mut spec = KubeBackendSpec {
                client,
                run_id,
                config,
                image,
                public,
                cluster,
                owner,
                owner_role,
                pod_ip,
                nodes: found.nodes,
                nads: found.nads,
                resumable,
            };
            let mut backend = match kube_state {
                // The run's nodes are the ones it planned, whatever the preflight finds now.
                Some((state, nodes)) => {
                    spec.nodes = nodes;
                    KubeBackend::resume(spec, state)
                }
                None => KubeBackend::new(spec),
            };
            backend.watch();
            Ok(backend)
        }
    };
    let metrics = metrics_listener(&config)?;
    let mut run_settings = settings(config.clone(), request);
    if let Some(id) = &job_run
        && resumable
    {
        run_settings.hand_over = Some(hand_over::ask(request, id, &config.namespace));
    }
    if let Some(id) = &job_run {
        run_settings.interim = Some(interim_store(
            request,
            id,
            &config,
            (public.clone(), cluster.clone()),
        ));
    }
    let ended = execute_with(make, run_settings, metrics, resume, request.quiet, say);
    let Some(id) = &job_run else {
        return finish(ended?, request);
    };
    let ended = match ended {
        Ok(ended) => ended,
        // Left to the pod that replaces this one: nothing of the run is ended or stored here.
        Err(e @ Error::HandedOver(_)) => return Err(e),
        // A restartable Job's coordinator that could not carry the run out says why in the
        // run's report and ends: a restart could not do better.
        Err(e) if resumable => {
            let exit_code = crate::exit::code(&e);
            let error = chain(&e);
            let elapsed = started.elapsed().as_millis() as u64;
            let stored = with_client(request, |client| async move {
                restart::ended_early(&client, &run, &error, exit_code, elapsed).await
            });
            return match stored {
                Ok(said) => {
                    say(Notice::Note(said));
                    Ok(RunOutcome {
                        exit_code: crate::exit::SUCCESS,
                        report: None,
                    })
                }
                Err(_) => Err(e),
            };
        }
        Err(e) => return Err(e),
    };
    let Ended { report, left } = ended;
    let exit_code = report.verdict.exit_code().max(u8::from(left));
    // For the command outside the cluster, which prints it and removes the run.
    let kept = restart::FinalReport {
        exit_code,
        text: report::render(&report, request.format),
    };
    // Kept in the emptyDir first: should this process die before the report is stored, its
    // restart stores it.
    if resumable && let Err(e) = kept.keep(std::path::Path::new(RUN_ROOT), id) {
        tracing::warn!("keeping the final report until it is stored: {e}");
    }
    let stored = store_final(request, &run, &kept)?;
    say(Notice::Line(format!("multinet: report stored in {stored}")));
    Ok(RunOutcome {
        // The run's exit code is stored with its report; a restartable Job's container
        // exits 0 so that it is not restarted for a verdict.
        exit_code: if resumable {
            crate::exit::SUCCESS
        } else {
            exit_code
        },
        report: Some(report),
    })
}

/// Stores the run's final report (`kept`) for the command outside, trying again for about
/// half a minute when the API server does not take it (a restart of it, a network blip);
/// forgets the copy kept in the emptyDir once stored.
fn store_final(
    request: &RunRequest,
    run: &restart::Run<'_>,
    kept: &restart::FinalReport,
) -> Result<String> {
    let mut pause = std::time::Duration::from_secs(1);
    for attempt in 1.. {
        let stored = with_client(request, |client| async move {
            restart::store(&client, run, &kept.text, kept.exit_code).await
        });
        match stored {
            Ok(stored) => {
                restart::FinalReport::forget(std::path::Path::new(RUN_ROOT), run.id);
                return Ok(stored);
            }
            Err(e) if attempt < 5 => {
                tracing::warn!("storing the report (attempt {attempt} of 5): {}", chain(&e));
                std::thread::sleep(pause);
                pause *= 2;
            }
            Err(e) => return Err(e),
        }
    }
    unreachable!("the loop returns")
}

/// A soak's interim reports, stored in the run's report ConfigMap (replacing the previous one,
/// marked in progress) for the command outside the cluster: what it shows should the Job die
/// before its final report. Each store runs as a task of its own on the run's runtime, so the
/// soak never waits on the API server; a store that fails is logged and the next one tries
/// again.
fn interim_store(
    request: &RunRequest,
    id: &str,
    config: &RunConfig,
    (public, cluster): (Option<NetworkSelection>, Option<NetworkSelection>),
) -> crate::supervisor::InterimReports {
    let format = request.format;
    let (kubeconfig, context) = (
        request.kube.kubeconfig.clone(),
        request.kube.context.clone(),
    );
    let (id, config, image) = (id.to_string(), config.clone(), request.kube.image.clone());
    crate::supervisor::InterimReports(std::sync::Arc::new(move |report| {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| "no runtime to store it from".to_string())?;
        let text = report::render(report, format);
        let exit_code = report.verdict.exit_code();
        let (kubeconfig, context) = (kubeconfig.clone(), context.clone());
        let (id, config, image) = (id.clone(), config.clone(), image.clone());
        let (public, cluster) = (public.clone(), cluster.clone());
        runtime.spawn(async move {
            let stored = async {
                let client = client::connect(kubeconfig.as_deref(), context.as_deref()).await?;
                let owner = owner_of(&id, &client, &config.namespace).await?;
                let run = kube_run(&id, &config, &image, &public, &cluster, owner);
                outside::store_report(&client, &run, format, &text, exit_code, true).await
            };
            if let Err(e) = stored.await {
                tracing::warn!("the interim report: {}", crate::exit::chain(&e));
            }
        });
        Ok(())
    }))
}

pub(crate) async fn owner_of(
    id: &str,
    client: &kube::Client,
    namespace: &str,
) -> kube_backend::Result<Owner> {
    let names = RunNames::new(id);
    let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client.clone(), namespace);
    let owner = api
        .get(&names.owner())
        .await
        .said()
        .map_err(kube_backend::Error::call(format!(
            "{namespace}/{}",
            names.owner()
        )))?;
    Ok(Owner {
        name: names.owner(),
        uid: owner.metadata.uid.unwrap_or_default(),
    })
}

pub(crate) fn kube_run<'a>(
    id: &str,
    config: &'a RunConfig,
    image: &str,
    public: &Option<NetworkSelection>,
    cluster: &Option<NetworkSelection>,
    owner: Owner,
) -> KubeRun<'a> {
    KubeRun {
        names: RunNames::new(id),
        namespace: config.namespace.clone(),
        image: image.to_string(),
        config,
        public: public.clone(),
        cluster: cluster.clone(),
        owner,
    }
}

/// Runs `work` with a client on a runtime of its own.
/// An error of the client or of `work` is [`Error::Failed`]; `work` returns the run's own
/// errors (a refused preflight, a signal) inside its `Ok`.
pub(super) fn with_client<F, Fut, T>(request: &RunRequest, work: F) -> Result<T>
where
    F: FnOnce(kube::Client) -> Fut,
    Fut: std::future::Future<Output = kube_backend::Result<T>>,
{
    let runtime = multinet_agent::entry::single_threaded()
        .map_err(|e| Error::failed("cannot start the runtime", e))?;
    runtime
        .block_on(async {
            let client = client::connect(
                request.kube.kubeconfig.as_deref(),
                request.kube.context.as_deref(),
            )
            .await?;
            work(client).await
        })
        .map_err(|e| Error::failed("", e))
}
