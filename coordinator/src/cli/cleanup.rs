//! `multinet cleanup`: removes what Kubernetes runs left behind.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::backend::kube::{self as kube_backend, cleanup, client};

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
pub fn run(args: &CleanupArgs) -> u8 {
    let runtime = match multinet_agent::entry::single_threaded() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("multinet cleanup: cannot start the runtime: {e}");
            return 1;
        }
    };
    let result = runtime.block_on(async {
        let client = client::connect(args.kubeconfig.as_deref(), args.context.as_deref()).await?;
        Ok::<_, kube_backend::Error>(
            cleanup::cleanup_runs(
                &client,
                &args.namespace,
                args.run.as_deref(),
                Duration::from_secs(args.timeout_minutes * 60),
            )
            .await?,
        )
    });
    match result {
        Ok(lines) => {
            for line in lines {
                crate::outln!("{line}");
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
                e,
                kube_backend::Error::Cleanup(cleanup::CleanupError::NotGone { .. })
            ) {
                eprintln!(
                    "multinet cleanup: {}; then run `{again}` again to finish",
                    crate::exit::chain(&e)
                );
            } else {
                eprintln!("multinet cleanup: {}", crate::exit::chain(&e));
            }
            1
        }
    }
}
