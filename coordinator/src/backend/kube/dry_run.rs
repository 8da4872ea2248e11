//! `multinet run --backend kube --dry-run -o yaml`: every object a run would create, from the
//! configuration alone — no cluster is contacted. What depends on the cluster is rendered as
//! the run would fill it in: the owner's uid is a zero placeholder, the TLS material and the
//! coordinator's address are made when the run starts, and the nodes are placeholders —
//! [`PLACEHOLDER_NODES`] per node type, named `<node type>-node-<n>`. Everything else is
//! exactly what a run sends: the server pinned to a node by its name, each host-check
//! DaemonSet kept to its nodes by the same node affinity (one term per node), clients shown
//! for the first node of each type (a run creates them on every node of the type). A mesh
//! run (`mesh: true`) shows, instead of the server, a responder on every placeholder node
//! that runs test pods, each pinned to its node and attached to its node's networks
//! ([`crate::mesh::responder_networks`]).

use multinet_proto::assignment::{PodRunSettings, ProbeSettings};
use multinet_proto::config::RunConfig;
use multinet_proto::field::Problems;
use serde::Serialize;

use super::Error;
use super::names::{Owner, RunNames};
use super::objects::{CONTROL_PORT, KubeRun};

/// The run id a dry run shows.
pub const DRY_RUN_ID: &str = "dryrun0000";

/// How many placeholder nodes of each node type a dry run shows: two, so that the node
/// affinity of a host-check DaemonSet is drawn as it is for any real node type of more than
/// one node.
pub const PLACEHOLDER_NODES: usize = 2;

/// The placeholder names of `node_type`'s nodes in a dry run (valid node names: node type
/// names are DNS subdomains).
pub fn placeholder_nodes(node_type: &str) -> Vec<String> {
    (1..=PLACEHOLDER_NODES)
        .map(|i| format!("{node_type}-node-{i}"))
        .collect()
}

/// The agents' shared settings for `config`, with the coordinator's address when known.
pub fn pod_run_settings(
    run_id: &str,
    config: &RunConfig,
    coordinator: Option<std::net::SocketAddr>,
    grace_ms: u64,
) -> PodRunSettings {
    PodRunSettings {
        run_id: run_id.to_string(),
        coordinator: coordinator.map_or_else(
            || format!("COORDINATOR_POD_IP:{CONTROL_PORT}"),
            |a| a.to_string(),
        ),
        probe: ProbeSettings {
            interval_ms: config.probe_interval.as_std().as_millis() as u64,
            timeout_ms: config.probe_timeout.as_std().as_millis() as u64,
            small_bytes: config.payload_bytes.small,
            large_bytes: config.payload_bytes.large,
        },
        grace_ms,
        batch_max: 256,
        unacked_max: 1024,
    }
}

/// The YAML stream of every object of a run of `config`; `run_args` are the arguments the
/// coordinator Job would get.
pub fn render(
    config: &RunConfig,
    image: &str,
    run_args: Vec<String>,
    grace_ms: u64,
) -> super::Result<String> {
    let mut problems = Problems::default();
    let (public, cluster) = config.network_selections(&mut problems);
    if !problems.is_valid() {
        return Err(Error::Invalid(problems.errors_line()));
    }
    let names = RunNames::new(DRY_RUN_ID);
    let run = KubeRun {
        owner: Owner {
            name: names.owner(),
            uid: Owner::DRY_RUN_UID.into(),
        },
        names,
        namespace: config.namespace.clone(),
        image: image.to_string(),
        config,
        public,
        cluster,
    };
    let settings = pod_run_settings(DRY_RUN_ID, config, None, grace_ms);
    let mut out = String::from(
        "# multinet run --dry-run: every object a run creates, rendered without a cluster.\n\
         # The owner's uid, the TLS material and the coordinator's address are filled in when\n\
         # the run starts. Node names are placeholders: <node type>-node-1 and -node-2 stand\n\
         # for the nodes of each node type the preflight finds; clients are shown for the\n\
         # first, and a run creates them on every node of that type.\n",
    );
    if config.mesh {
        out.push_str(
            "# A mesh run: instead of the one server, a responder on every node that runs test\n\
             # pods, shown for every placeholder node; each node's clients and host checker probe\n\
             # their peers' responders, as the coordinator tells them.\n",
        );
    }
    let mut doc = |comment: &str, object: &dyn erased::Object| -> super::Result<()> {
        out.push_str("---\n");
        if !comment.is_empty() {
            out.push_str(&format!("# {comment}\n"));
        }
        out.push_str(&object.yaml()?);
        Ok(())
    };
    doc(
        "deleting the owner removes the run",
        &run.owner_config_map(
            serde_saphyr::to_string(config).map_err(Error::encode("the run configuration"))?,
        ),
    )?;
    doc(
        "only when multinet runs outside the cluster: the coordinator, in the cluster",
        &run.coordinator_job(run_args),
    )?;
    if super::objects::coordinator_restarts(config) > 0 {
        doc(
            "a soak: the address its agents dial, kept by a pod that replaces the coordinator's",
            &run.control_service(),
        )?;
        doc(
            "a soak: the coordinator's TLS identity, for a pod that replaces its own; its checkpoint is stored in ConfigMaps multinet-<run>-checkpoint and -checkpoint-{a,b}<n> as the soak goes",
            &run.coordinator_tls_secret("made when the run starts"),
        )?;
    }
    doc("", &run.tls_secret(None))?;
    doc(
        "",
        &run.agents_config_map(
            serde_json::to_string_pretty(&settings)
                .map_err(Error::encode("the agents' settings"))?,
        ),
    )?;
    let server_type = config.server_node_type().ok_or(Error::NoServerNodeType)?;
    if config.mesh {
        let networks = run.networks();
        for name in config.node_types.keys() {
            let Some(attached) = crate::mesh::responder_networks(config, name, &networks) else {
                continue;
            };
            for node in placeholder_nodes(name) {
                doc(
                    &format!("a mesh's responder on node {node} (node type {name})"),
                    &run.responder_pod(name, &node, &crate::mesh::responder_pod(&node), &attached),
                )?;
            }
        }
    } else {
        let server_node = placeholder_nodes(server_type).swap_remove(0);
        doc("", &run.server_pod(server_type, &server_node))?;
    }
    let public = run.public.is_some();
    for (name, t) in &config.node_types {
        let nodes = placeholder_nodes(name);
        if public {
            let nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();
            doc("", &run.host_check_daemon_set(name, &nodes))?;
        }
        if config.host_check_only {
            continue;
        }
        let node = &nodes[0];
        for i in 0..t.osds_per_node {
            doc(
                &format!("on every node of type {name}"),
                &run.client_pod(node, name, &format!("osd-{i}")),
            )?;
        }
        if public {
            for i in 0..t.other_daemons_per_node {
                doc(
                    &format!("on every node of type {name}"),
                    &run.client_pod(node, name, &format!("other-{i}")),
                )?;
            }
        }
    }
    doc(
        "written by the coordinator when the run ends",
        &run.report_config_map("report.json", "{}", 0),
    )?;
    Ok(out)
}

/// Objects rendered as YAML documents (k8s-openapi objects serialize with apiVersion and kind).
mod erased {
    pub trait Object {
        fn yaml(&self) -> super::super::Result<String>;
    }
    impl<T: super::Serialize> Object for T {
        fn yaml(&self) -> super::super::Result<String> {
            serde_saphyr::to_string(self).map_err(super::Error::encode("an object of the run"))
        }
    }
}

#[cfg(test)]
mod tests {
    use multinet_proto::config::parse_run_config;

    use super::*;

    fn config(text: &str) -> RunConfig {
        let (config, problems) = parse_run_config(text).expect("YAML");
        assert!(problems.is_valid(), "{problems:?}");
        config
    }

    fn render_default(config: &RunConfig) -> String {
        render(config, "ghcr.io/multinet/multinet:test", Vec::new(), 10_000).expect("renders")
    }

    #[test]
    fn converged_default() {
        let mut c = RunConfig {
            public_network: "public-net".into(),
            cluster_network: "rook-ceph/cluster-net".into(),
            ..RunConfig::default()
        };
        c.node_types.values_mut().for_each(|t| {
            t.osds_per_node = 1;
            t.other_daemons_per_node = 1;
        });
        insta::assert_snapshot!(render_default(&c));
    }

    #[test]
    fn stretch_cluster_with_tolerations() {
        let c = config(
            "publicNetwork: public-net\nclusterNetwork: cluster-net\nnodeTypes:\n  arbiter:\n    osdsPerNode: 0\n    otherDaemonsPerNode: 1\n    placement:\n      nodeSelector: {topology.kubernetes.io/zone: arbiter}\n      tolerations:\n        - {key: node-role.kubernetes.io/control-plane, operator: Exists, effect: NoSchedule}\n  storage:\n    osdsPerNode: 1\n    otherDaemonsPerNode: 1\n    placement:\n      nodeSelector: {storage: \"true\"}\n",
        );
        insta::assert_snapshot!(render_default(&c));
    }

    const MESH_STRETCH: &str = "publicNetwork: public-net\nclusterNetwork: cluster-net\nmesh: true\nmeshPeers: 1\nnodeTypes:\n  arbiter:\n    osdsPerNode: 0\n    otherDaemonsPerNode: 1\n  storage:\n    osdsPerNode: 1\n    otherDaemonsPerNode: 1\n  idle:\n    osdsPerNode: 0\n    otherDaemonsPerNode: 0\n";

    #[test]
    fn mesh_stretch_cluster() {
        insta::assert_snapshot!(render_default(&config(MESH_STRETCH)));
    }

    /// A mesh's dry run shows a responder on every placeholder node that runs test pods,
    /// each its own agent, pinned to its node, on its node's networks (an OSD node's: both;
    /// other daemons only: public; no test pods: none), and no single server; the
    /// configuration the coordinator Job reads says it is a mesh.
    #[test]
    fn a_mesh_shows_a_responder_on_every_placeholder_node_and_no_server() {
        let out = render_default(&config(MESH_STRETCH));
        let docs = multinet_proto::yaml::parse_documents(&out).expect("YAML stream");
        let servers: Vec<&serde_json::Value> = docs
            .iter()
            .filter(|d| {
                d["kind"] == "Pod"
                    && d["metadata"]["labels"]["app.kubernetes.io/component"] == "server"
            })
            .collect();
        let seen: Vec<(String, String, String, String, String)> = servers
            .iter()
            .map(|pod| {
                let args: Vec<&str> = pod["spec"]["containers"][0]["args"]
                    .as_array()
                    .expect("args")
                    .iter()
                    .filter_map(|a| a.as_str())
                    .collect();
                let at = |flag: &str| {
                    args.iter()
                        .position(|a| *a == flag)
                        .and_then(|i| args.get(i + 1))
                        .map_or(String::new(), |v| v.to_string())
                };
                let pinned = &pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
                    ["nodeSelectorTerms"][0]["matchFields"][0]["values"][0];
                let annotation: Vec<serde_json::Value> = serde_json::from_str(
                    pod["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"]
                        .as_str()
                        .expect("networks annotation"),
                )
                .expect("JSON");
                let interfaces: Vec<&str> = annotation
                    .iter()
                    .filter_map(|s| s["interface"].as_str())
                    .collect();
                assert_eq!(interfaces.join(","), at("--networks"), "{pod}");
                (
                    pod["metadata"]["name"].as_str().unwrap_or_default().into(),
                    at("--name"),
                    pinned.as_str().unwrap_or_default().into(),
                    at("--networks"),
                    pod["metadata"]["labels"]["multinet.io/node-type"]
                        .as_str()
                        .unwrap_or_default()
                        .into(),
                )
            })
            .collect();
        let row = |node: &str, networks: &str, node_type: &str| {
            (
                format!("multinet-dryrun0000-{node}-server"),
                format!("server-{node}"),
                node.to_string(),
                networks.to_string(),
                node_type.to_string(),
            )
        };
        assert_eq!(
            seen,
            [
                row("arbiter-node-1", "public", "arbiter"),
                row("arbiter-node-2", "public", "arbiter"),
                row("storage-node-1", "public,cluster", "storage"),
                row("storage-node-2", "public,cluster", "storage"),
            ],
            "{out}"
        );
        assert!(!out.contains("name: multinet-dryrun0000-server\n"), "{out}");
        let owner = docs
            .iter()
            .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == "multinet-dryrun0000")
            .expect("the owner");
        let stored = owner["data"]["config.yaml"].as_str().expect("config.yaml");
        let (read, problems) = parse_run_config(stored).expect("YAML");
        assert!(problems.is_valid(), "{problems:?}");
        assert!(read.mesh);
        assert_eq!(read.mesh_peers, 1);
    }

    /// A soak's coordinator Job restarts a coordinator that died (it resumes from its
    /// checkpoint); any other run's Job never does.
    #[test]
    fn only_a_soaks_coordinator_job_restarts_its_coordinator() {
        let job_of = |text: &str| -> serde_json::Value {
            let yaml = render_default(&config(text));
            let job = yaml
                .split("\n---\n")
                .find(|doc| doc.contains("kind: Job"))
                .expect("a Job");
            serde_saphyr::from_str(job).expect("YAML")
        };
        let soak = job_of("publicNetwork: public-net\nsoakDuration: 6h\n");
        // Three restarts: Kubernetes fails the Job when the restarts reach backoffLimit.
        assert_eq!(soak["spec"]["backoffLimit"], 4);
        assert_eq!(
            soak["spec"]["template"]["spec"]["restartPolicy"],
            "OnFailure"
        );
        // A replacement pod only once the replaced one has ended, with the coordinator's TLS
        // identity mounted (optional: the coordinator makes it once the run starts).
        assert_eq!(soak["spec"]["podReplacementPolicy"], "Failed");
        let volumes = soak["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .expect("volumes");
        let tls = volumes
            .iter()
            .find(|v| v["name"] == "coordinator-tls")
            .expect("the coordinator's TLS identity");
        assert_eq!(tls["secret"]["optional"], true);
        let yaml = render_default(&config("publicNetwork: public-net\nsoakDuration: 6h\n"));
        let service = yaml
            .split("\n---\n")
            .find(|doc| doc.contains("kind: Service"))
            .expect("a Service");
        let service: serde_json::Value = serde_saphyr::from_str(service).expect("YAML");
        assert_eq!(service["spec"]["ports"][0]["protocol"], "UDP");
        assert_eq!(service["spec"]["ports"][0]["port"], 7443);
        assert_eq!(
            service["spec"]["selector"]["app.kubernetes.io/component"],
            "coordinator"
        );
        let once = job_of("publicNetwork: public-net\n");
        assert!(once["spec"]["podReplacementPolicy"].is_null());
        assert!(
            !render_default(&config("publicNetwork: public-net\n")).contains("kind: Service"),
            "only a soak has the Service"
        );
        assert_eq!(once["spec"]["backoffLimit"], 0);
        assert_eq!(once["spec"]["template"]["spec"]["restartPolicy"], "Never");
    }

    /// Every `matchFields` requirement found anywhere in `value`.
    fn match_fields(value: &serde_json::Value, out: &mut Vec<serde_json::Value>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v) {
                        ("matchFields", serde_json::Value::Array(reqs)) => {
                            out.extend(reqs.iter().cloned())
                        }
                        _ => match_fields(v, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| match_fields(v, out)),
            _ => {}
        }
    }

    /// The API server's rule for a node field selector (Kubernetes
    /// pkg/apis/core/validation/validation.go, validateNodeFieldSelectorRequirement): key
    /// `metadata.name`, operator `In` or `NotIn`, and exactly one value — "must be only one
    /// value when `operator` is 'In' or 'NotIn' for node field selector". A DaemonSet kept to
    /// several nodes needs one term per node.
    #[test]
    fn every_node_field_selector_has_one_value_and_daemon_sets_one_term_per_node() {
        let c = config(
            "publicNetwork: public-net\nclusterNetwork: cluster-net\nnodeTypes:\n  storage:\n    osdsPerNode: 2\n    otherDaemonsPerNode: 1\n",
        );
        let out = render_default(&c);
        let docs = multinet_proto::yaml::parse_documents(&out).expect("YAML stream");
        let mut found = Vec::new();
        docs.iter().for_each(|d| match_fields(d, &mut found));
        // The server, 3 clients, and the DaemonSet's two placeholder nodes.
        assert_eq!(found.len(), 1 + 3 + PLACEHOLDER_NODES, "{out}");
        for req in &found {
            assert_eq!(req["key"], "metadata.name", "{req}");
            assert!(
                matches!(req["operator"].as_str(), Some("In" | "NotIn")),
                "{req}"
            );
            assert_eq!(req["values"].as_array().map(Vec::len), Some(1), "{req}");
        }
        let ds = docs
            .iter()
            .find(|d| d["kind"] == "DaemonSet")
            .expect("a host-check DaemonSet");
        let terms = &ds["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"];
        assert_eq!(
            *terms,
            serde_json::json!([
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["storage-node-1"]}]},
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["storage-node-2"]}]}
            ])
        );
    }

    #[test]
    fn cluster_network_only_has_no_host_checkers_and_no_other_clients() {
        let mut c = config("clusterNetwork: cluster-net\n");
        c.node_types.values_mut().for_each(|t| {
            t.osds_per_node = 1;
            t.other_daemons_per_node = 2;
        });
        let out = render_default(&c);
        assert!(!out.contains("kind: DaemonSet"), "{out}");
        assert!(!out.contains("-other-"), "{out}");
        assert!(out.contains("-osd-0"), "{out}");
    }

    #[test]
    fn host_check_only_starts_no_clients() {
        let mut c = config("publicNetwork: public-net\nhostCheckOnly: true\n");
        c.node_types.values_mut().for_each(|t| t.osds_per_node = 2);
        let out = render_default(&c);
        assert!(out.contains("kind: DaemonSet"), "{out}");
        assert!(!out.contains("component: client"), "{out}");
    }

    #[test]
    fn the_coordinator_declares_its_metrics_port_when_it_serves_metrics() {
        let c = config("publicNetwork: public-net\nmetricsAddr: 0.0.0.0:9464\n");
        let out = render_default(&c);
        let job = out
            .split("\n---\n")
            .find(|d| d.contains("kind: Job"))
            .expect("the coordinator Job");
        let job: serde_json::Value = serde_saphyr::from_str(job).expect("YAML");
        let container = &job["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            container["ports"],
            serde_json::json!([{"containerPort": 9464, "name": "metrics", "protocol": "TCP"}])
        );
        // The configuration the Job reads says where to serve them.
        assert!(out.contains("metricsAddr: 0.0.0.0:9464"), "{out}");
        let without = render_default(&config("publicNetwork: public-net\n"));
        assert!(!without.contains("containerPort"), "{without}");
    }

    #[test]
    fn a_bad_selection_names_the_field() {
        let c = RunConfig {
            public_network: "Not_A/Name!".into(),
            ..RunConfig::default()
        };
        let mut problems = Problems::default();
        let _ = c.network_selections(&mut problems);
        assert!(
            problems.errors[0]
                .to_string()
                .starts_with("publicNetwork: "),
            "{:?}",
            problems.errors
        );
    }
}
