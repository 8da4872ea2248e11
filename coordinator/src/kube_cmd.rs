//! `multinet run --backend kube`: the run configuration for a cluster, `--dry-run -o yaml`,
//! and the run itself.

use multinet_proto::field::Problems;

use crate::backend::k8s::dry_run;
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
