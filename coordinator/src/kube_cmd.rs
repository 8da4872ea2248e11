//! `multinet run --backend kube`: the run configuration for a cluster, `--dry-run -o yaml`,
//! and the run itself.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use multinet_proto::field::Problems;

use crate::backend::k8s::{cleanup as k8s_cleanup, client, dry_run};
use crate::cli::EXIT_INVALID;
use crate::run_cmd::{RunArgs, RunOutput, build_config, fail_invalid, warn_all};

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
    warn_all(&problems);
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
    eprintln!(
        "multinet run: runs on a cluster are not built yet; --dry-run -o yaml shows the objects a run creates"
    );
    1
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
            eprintln!("multinet cleanup: {e:#}");
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
