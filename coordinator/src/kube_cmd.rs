//! `multinet run --backend kube`: the run configuration for a cluster, `--dry-run -o yaml`,
//! and the run itself.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use multinet_proto::field::Problems;

use multinet_proto::config::RunConfig;
use multinet_proto::multus::selection::NetworkSelection;
use multinet_proto::network::CephNetwork;

use crate::backend::k8s::api_error::ApiResultExt;
use crate::backend::k8s::backend::{KubeBackend, KubeBackendSpec, OwnerRole};
use crate::backend::k8s::names::{Owner, RunNames};
use crate::backend::k8s::objects::KubeRun;
use crate::backend::k8s::preflight::{Problem, Who, preflight};
use crate::backend::k8s::{cleanup as k8s_cleanup, client, dry_run, outside};
use crate::cli::EXIT_INVALID;
use crate::run_cmd::{
    Finished, RunArgs, RunOutput, build_config, emit, execute_with, fail_invalid, warn_all,
    write_out,
};
use crate::scheduler::NodePlan;

/// Runs `multinet run --backend kube`; returns the exit code.
pub fn run(args: &RunArgs) -> u8 {
    let mut problems = Problems::default();
    let Some(mut config) = build_config(args, &mut problems) else {
        return fail_invalid(&problems);
    };
    if let Some(sa) = &args.service_account {
        config.service_account_name = sa.clone();
    }
    dry_run::check_node_type_names(&config, &mut problems);
    let _ = dry_run::selections(&config, &mut problems);
    if !problems.is_valid() {
        return fail_invalid(&problems);
    }
    if args.dry_run != (args.output == RunOutput::Yaml) {
        eprintln!(
            "multinet run: --dry-run prints the run's objects as YAML: give --dry-run with -o yaml"
        );
        return EXIT_INVALID;
    }
    // The coordinator Job reads the configuration the command outside has checked and warned
    // about already: each warning is said once, there.
    if args.in_cluster_run.is_none() {
        warn_all(&problems);
    }
    if args.dry_run {
        let extra = vec![
            "-o".to_string(),
            "json".into(),
            "--agent-grace-seconds".into(),
            args.agent_grace_seconds.to_string(),
        ];
        return match dry_run::render(&config, &args.image, extra, args.agent_grace_seconds * 1000) {
            Ok(yaml) => {
                print!("{yaml}");
                0
            }
            Err(e) => {
                eprintln!("multinet run: {e:#}");
                EXIT_INVALID
            }
        };
    }
    let (public, cluster) = dry_run::selections(&config, &mut Problems::default());
    // In a pod, this process is the coordinator — unless a kubeconfig is named: then the
    // cluster it names may be another one, and the coordinator runs there as a Job.
    let named = args.kubeconfig.is_some() || args.context.is_some();
    if args.in_cluster_run.is_some() || (client::in_cluster() && !named) {
        run_in_cluster(args, config, public, cluster)
    } else {
        run_outside(args, config, public, cluster)
    }
}

/// Prints the preflight's problems; the exit code they call for (22 for the input, 1 for the
/// cluster), or `None` when there are none.
fn say_problems(problems: &[Problem]) -> Option<u8> {
    for p in problems {
        match p {
            Problem::Invalid(text) | Problem::Cluster(text) => eprintln!("multinet run: {text}"),
        }
    }
    if problems.iter().any(|p| matches!(p, Problem::Invalid(_))) {
        Some(EXIT_INVALID)
    } else if problems.is_empty() {
        None
    } else {
        Some(1)
    }
}

fn selection_list(
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

/// Preflight for `who`; prints what was left out and the warnings — unless `own_run` is set:
/// then this is the coordinator Job of a run whose command outside the cluster said them
/// already (its log is streamed there: each line once). `Err(code)` when the run must not
/// start.
async fn checked(
    client: &kube::Client,
    config: &RunConfig,
    selections: &[(CephNetwork, NetworkSelection)],
    who: Who,
    own_run: Option<&str>,
) -> Result<Vec<NodePlan>, u8> {
    let (found, problems) = preflight(client, config, selections, who, own_run)
        .await
        .map_err(|e| {
            eprintln!("multinet run: preflight: {e}");
            1u8
        })?;
    if let Some(code) = say_problems(&problems) {
        return Err(code);
    }
    if own_run.is_none() {
        for line in found.left_out.iter().chain(&found.warnings) {
            eprintln!("multinet run: {line}");
        }
    }
    Ok(found.nodes)
}

/// The coordinator inside the cluster: serves the control plane on its pod IP.
fn run_in_cluster(
    args: &RunArgs,
    config: RunConfig,
    public: Option<NetworkSelection>,
    cluster: Option<NetworkSelection>,
) -> u8 {
    let settings = crate::run_cmd::settings(config.clone(), args);
    let image = args.image.clone();
    let job_run = args.in_cluster_run.clone();
    let kubeconfig = args.kubeconfig.clone();
    let context = args.context.clone();
    let make = {
        let config = config.clone();
        let (public, cluster) = (public.clone(), cluster.clone());
        move || async move {
            let client = client::connect(kubeconfig.as_deref(), context.as_deref())
                .await
                .map_err(|e| {
                    eprintln!("multinet run: {e:#}");
                    1u8
                })?;
            let selections = selection_list(&public, &cluster);
            let nodes = checked(
                &client,
                &config,
                &selections,
                Who::Coordinator,
                job_run.as_deref(),
            )
            .await?;
            let pod_ip: std::net::IpAddr = std::env::var("POD_IP")
                .ok()
                .and_then(|ip| ip.parse().ok())
                .ok_or_else(|| {
                    eprintln!("multinet run: POD_IP is not set to this pod's IP: give it from the downward API (status.podIP), as deploy/coordinator-job.yaml does");
                    1u8
                })?;
            let (run_id, owner, owner_role) = match job_run {
                Some(id) => {
                    let owner = owner_of(&id, &client, &config.namespace)
                        .await
                        .map_err(|e| {
                            eprintln!("multinet run: the run's owner ConfigMap: {e:#}");
                            1u8
                        })?;
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
                        .map_err(|e| {
                            eprintln!("multinet run: {e:#}");
                            1u8
                        })?;
                    (id, owner, OwnerRole::Ours)
                }
            };
            let mut backend = KubeBackend::new(KubeBackendSpec {
                client,
                run_id,
                config,
                image,
                public,
                cluster,
                owner,
                owner_role,
                pod_ip,
                nodes,
            });
            backend.watch();
            Ok(backend)
        }
    };
    match execute_with(make, settings, args.quiet) {
        Finished::Code(code) => code,
        Finished::Report(report, left) => {
            let code = report.verdict.exit_code().max(u8::from(left));
            if let Some(id) = &args.in_cluster_run {
                // For the command outside the cluster, which prints it and removes the run.
                let text = crate::run_cmd::render(&report, args.output);
                let stored = with_client(args, |client| {
                    let config = config.clone();
                    let (public, cluster) = (public.clone(), cluster.clone());
                    let image = args.image.clone();
                    let id = id.clone();
                    let output = args.output;
                    async move {
                        let run = kube_run(
                            &id,
                            &config,
                            &image,
                            &public,
                            &cluster,
                            owner_of(&id, &client, &config.namespace).await?,
                        );
                        outside::store_report(&client, &run, output, &text, code).await
                    }
                });
                return match stored {
                    Ok(where_) => {
                        eprintln!("multinet: report stored in {where_}");
                        code
                    }
                    Err(e) => {
                        eprintln!("multinet run: {e:#}");
                        1
                    }
                };
            }
            emit(&report, args).max(u8::from(left))
        }
    }
}

async fn owner_of(id: &str, client: &kube::Client, namespace: &str) -> anyhow::Result<Owner> {
    let names = RunNames::new(id);
    let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client.clone(), namespace);
    let owner = api
        .get(&names.owner())
        .await
        .said()
        .with_context(|| format!("{namespace}/{}", names.owner()))?;
    Ok(Owner {
        name: names.owner(),
        uid: owner.metadata.uid.unwrap_or_default(),
    })
}

fn kube_run<'a>(
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
fn with_client<F, Fut, T>(args: &RunArgs, work: F) -> anyhow::Result<T>
where
    F: FnOnce(kube::Client) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = client::connect(args.kubeconfig.as_deref(), args.context.as_deref()).await?;
        work(client).await
    })
}

/// `multinet run` outside the cluster: the coordinator runs as a Job; its log streams here,
/// its report is printed here, and the run is removed (also on SIGINT/SIGTERM/SIGHUP; a second
/// signal stops waiting for the removal and says how to finish it).
fn run_outside(
    args: &RunArgs,
    config: RunConfig,
    public: Option<NetworkSelection>,
    cluster: Option<NetworkSelection>,
) -> u8 {
    let result = with_client(args, |client| async move {
        let selections = selection_list(&public, &cluster);
        if let Err(code) = checked(&client, &config, &selections, Who::Cli, None).await {
            return Ok(code);
        }
        let id = crate::supervisor::new_run_id();
        let ns = config.namespace.clone();
        let placeholder = Owner {
            name: RunNames::new(&id).owner(),
            uid: String::new(),
        };
        let yaml = serde_saphyr::to_string(&config)?;
        let owner = outside::create_owner(
            &client,
            &kube_run(&id, &config, &args.image, &public, &cluster, placeholder),
            yaml,
        )
        .await?;
        let run = kube_run(&id, &config, &args.image, &public, &cluster, owner.clone());
        let extra = vec![
            "-o".to_string(),
            args.output.name().into(),
            "--agent-grace-seconds".into(),
            args.agent_grace_seconds.to_string(),
        ];
        let bounds = outside::JobBounds::of(&config);
        let mut to_stderr = |line: &str| eprintln!("{line}");
        let outcome = tokio::select! {
            r = outside::run_job(&client, &run, extra, bounds, &mut to_stderr) => Ok(r),
            (name, code) = crate::run_cmd::shutdown_signal() => {
                eprintln!("multinet run: {name}: removing run {id}");
                Err(code)
            }
        };
        // The report first: a run whose removal fails still has its result.
        let code = match outcome {
            Ok(Ok(outcome)) => match outcome.report(args.output) {
                Ok(text) => match write_out(&text, args) {
                    Ok(()) => outcome.exit_code,
                    Err(code) => code,
                },
                // No report to show is never a pass.
                Err(e) => {
                    eprintln!("multinet run: {e:#}");
                    outcome.exit_code.max(1)
                }
            },
            Ok(Err(e)) => {
                eprintln!("multinet run: {e:#}");
                1
            }
            Err(code) => code,
        };
        let removed = tokio::select! {
            r = cleanup_runs(&client, &ns, Some(&id), config.resource_timeout.as_std()) => r,
            (name, _) = crate::run_cmd::shutdown_signal() => {
                Err(anyhow::anyhow!("{name} while waiting for its objects to go"))
            }
        };
        if let Err(e) = removed {
            eprintln!(
                "multinet run: run {id} may not be fully removed: {e:#}; `multinet cleanup -n {ns} --run {id}` finishes it"
            );
            return Ok(code.max(1));
        }
        anyhow::Ok(code)
    });
    result.unwrap_or_else(|e| {
        eprintln!("multinet run: {e:#}");
        1
    })
}

/// Arguments of `multinet cleanup`.
#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// The namespace of the runs.
    #[arg(short = 'n', long, default_value = "rook-ceph")]
    pub namespace: String,
    /// Only this run (its id, as the report and the objects' `multinet.io/run` label give it).
    #[arg(long, value_name = "ID")]
    pub run: Option<String>,
    /// The kubeconfig file [default: $KUBECONFIG, else ~/.kube/config].
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context [default: its current context].
    #[arg(long, value_name = "CTX")]
    pub context: Option<String>,
    /// How long to wait for each run's objects to be gone.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=1440))]
    pub timeout_minutes: u64,
}

/// Runs `multinet cleanup`; returns the exit code.
pub fn cleanup(args: &CleanupArgs) -> u8 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("multinet cleanup: cannot start the runtime: {e}");
            return 1;
        }
    };
    let result = runtime.block_on(async {
        let client = client::connect(args.kubeconfig.as_deref(), args.context.as_deref()).await?;
        cleanup_runs(
            &client,
            &args.namespace,
            args.run.as_deref(),
            Duration::from_secs(args.timeout_minutes * 60),
        )
        .await
    });
    match result {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            0
        }
        Err(e) => {
            let again = match &args.run {
                Some(id) => format!("multinet cleanup -n {} --run {id}", args.namespace),
                None => format!("multinet cleanup -n {}", args.namespace),
            };
            // A removal that did not finish in time says what to look at; the command that
            // finishes it is said here, once.
            if matches!(
                e.downcast_ref::<k8s_cleanup::CleanupError>(),
                Some(k8s_cleanup::CleanupError::NotGone { .. })
            ) {
                eprintln!("multinet cleanup: {e:#}; then run `{again}` again to finish");
            } else {
                eprintln!("multinet cleanup: {e:#}");
            }
            1
        }
    }
}

/// Removes every leftover run in `namespace` (or run `run`); says what it did, line by line.
pub async fn cleanup_runs(
    client: &kube::Client,
    namespace: &str,
    run: Option<&str>,
    timeout: Duration,
) -> anyhow::Result<Vec<String>> {
    let runs = k8s_cleanup::find_runs(client, namespace, run).await?;
    if runs.is_empty() {
        return Ok(vec![match run {
            Some(id) => format!("no objects of run {id} in namespace {namespace}"),
            None => format!("no multinet run left in namespace {namespace}"),
        }]);
    }
    let mut lines = Vec::new();
    for (owner, id) in runs {
        let removed = k8s_cleanup::remove_run(client, namespace, &owner, timeout).await?;
        lines.push(if removed {
            format!("run {id}: removed (ConfigMap {namespace}/{owner} and every object it owned)")
        } else {
            format!("run {id}: already gone")
        });
    }
    Ok(lines)
}
