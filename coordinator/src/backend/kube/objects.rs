//! Every object a Kubernetes run creates, built from the run configuration and the few facts
//! the cluster gives (the owner's uid, the coordinator's address, the TLS material). The same
//! functions render `--dry-run -o yaml` and the real run, so what a user reviews is what runs.
//!
//! How clients are placed: one Pod per client, pinned to its node by a required node affinity on
//! the node's name (`metadata.name`, which, unlike the `kubernetes.io/hostname` label, is always
//! the node's name; plus its node type's selector and tolerations), rather than Rook's one
//! DaemonSet per client index. A pinned pod guarantees the count on every node just as a
//! DaemonSet does, and it also: maps one-to-one onto a client of the report (the pod is named
//! after its node and index); never lands on a node that joins mid-run, which would change the
//! expected count under the run; and shows an unschedulable client as a Pending pod with its
//! own FailedScheduling event for that node. `restartPolicy: Never`: an agent that crashes is a
//! finding, not something to hide behind restarts. Host checkers, which need no address, are
//! one hostNetwork DaemonSet per node type, kept by the same affinity to the nodes the run
//! planned (a cordoned or NotReady node the preflight left out gets none).

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetSpec};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort,
    DownwardAPIVolumeFile, DownwardAPIVolumeSource, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, ObjectFieldSelector,
    Pod, PodSecurityContext, PodSpec, PodTemplateSpec, ResourceRequirements, SeccompProfile,
    Secret, SecretVolumeSource, SecurityContext, Service, ServicePort, ServiceSpec, Toleration,
    Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use multinet_proto::config::{NodeType, RunConfig};
use multinet_proto::multus::selection::{NetworkSelection, render_annotation};
use multinet_proto::network::CephNetwork;

use super::names::{CLIENT, NODE_TYPE, Owner, RunNames};

/// Where agents find what is mounted into them.
pub mod paths {
    /// The run settings (ConfigMap), file `run.json`.
    pub const RUN_DIR: &str = "/etc/multinet/run";
    /// The TLS material (Secret): `ca.crt`, `agent.crt`, `agent.key`.
    pub const TLS_DIR: &str = "/etc/multinet/tls";
    /// The pod's annotations (downward API), file `network-status`.
    pub const POD_DIR: &str = "/etc/multinet/pod";
    /// A soak's coordinator: its own TLS identity (Secret, optional: it exists once the run
    /// has started), file [`COORDINATOR_TLS_FILE`], read by a replacement of its pod.
    pub const COORDINATOR_TLS_DIR: &str = "/etc/multinet/coordinator-tls";
    /// The file in [`COORDINATOR_TLS_DIR`]: the run PKI's state as JSON
    /// ([`crate::pki::PkiState`]).
    pub const COORDINATOR_TLS_FILE: &str = "pki.json";
}

/// The Multus selection annotation.
pub const NETWORKS_ANNOTATION: &str = "k8s.v1.cni.cncf.io/networks";
/// Where Multus reports what it attached.
pub const NETWORK_STATUS_ANNOTATION: &str = "k8s.v1.cni.cncf.io/network-status";
/// The name of the coordinator container's metrics port (`metricsAddr`), which
/// deploy/monitoring/'s Service and PodMonitor refer to.
pub const METRICS_PORT_NAME: &str = "metrics";
/// The container of `bench network`'s client pods, whose log the bench reads.
pub const BENCH_CLIENT_CONTAINER: &str = "client";
/// The UDP port of the coordinator's control plane in a cluster.
pub const CONTROL_PORT: u16 = 7443;
/// The coordinator Job's service account: the one deploy/rbac.yaml grants what a run needs.
/// (The test pods' account is the run configuration's `serviceAccountName`, as in Rook; they
/// need no API access, only, for host checkers, permission to use the host network.)
pub const COORDINATOR_SERVICE_ACCOUNT: &str = "multinet";
/// The non-root user and group the image runs as.
pub const RUN_AS: i64 = 65532;

/// The largest part of a soak's checkpoint in one ConfigMap: the API server refuses a
/// ConfigMap whose data exceed 1 MiB (`validation.ValidateConfigMap`, `MaxSecretSize`); the
/// rest of the limit is left to the object's metadata.
pub const CHECKPOINT_PART_BYTES: usize = 768 * 1024;

/// What a soak's checkpoint index says ([`KubeRun::checkpoint_index`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointIndex {
    /// Counts the checkpoints stored in the run, from 1.
    pub generation: u64,
    /// The slot its parts are in: `generation % 2`.
    pub slot: u8,
    /// How many parts.
    pub parts: usize,
    /// Its gzipped size, bytes.
    pub bytes: usize,
    /// When it was written, ms since the run started.
    pub written_ms: u64,
}

impl CheckpointIndex {
    /// Reads an index ConfigMap's data; `None` when a field is missing or not a number.
    pub fn from_data(data: &BTreeMap<String, String>) -> Option<Self> {
        let get = |k: &str| data.get(k).and_then(|v| v.trim().parse::<u64>().ok());
        Some(Self {
            generation: get("generation")?,
            slot: u8::try_from(get("slot")?).ok().filter(|s| *s < 2)?,
            parts: usize::try_from(get("parts")?).ok()?,
            bytes: usize::try_from(get("bytes")?).ok()?,
            written_ms: get("written-ms")?,
        })
    }
}

/// What the objects of a run are made from.
#[derive(Debug, Clone)]
pub struct KubeRun<'a> {
    /// Names and labels.
    pub names: RunNames,
    /// The namespace everything lives in.
    pub namespace: String,
    /// The multinet image (both binaries).
    pub image: String,
    /// The run configuration.
    pub config: &'a RunConfig,
    /// The public network's NAD, namespace filled in.
    pub public: Option<NetworkSelection>,
    /// The cluster network's NAD, namespace filled in.
    pub cluster: Option<NetworkSelection>,
    /// The owner ConfigMap as the others refer to it.
    pub owner: Owner,
}

/// The run's TLS material, PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentTls {
    /// The run CA's certificate.
    pub ca: String,
    /// The agents' certificate (client auth to the coordinator; server auth for the probe
    /// server's HTTPS).
    pub cert: String,
    /// Its key.
    pub key: String,
}

impl KubeRun<'_> {
    /// A run `0a1b2c3d4e` in rook-ceph of `config`, without networks: for unit tests.
    #[cfg(test)]
    pub(crate) fn sample(config: &RunConfig) -> KubeRun<'_> {
        let names = RunNames::new("0a1b2c3d4e");
        KubeRun {
            owner: Owner {
                name: names.owner(),
                uid: "u".into(),
            },
            names,
            namespace: "rook-ceph".into(),
            image: "i".into(),
            config,
            public: None,
            cluster: None,
        }
    }

    fn meta(&self, name: String, component: &str) -> ObjectMeta {
        self.names
            .meta(name, &self.namespace, component, Some(&self.owner))
    }

    /// The selection of `network`, with the interface name the agent looks for.
    fn selection(&self, network: CephNetwork) -> Option<NetworkSelection> {
        let s = match network {
            CephNetwork::Public => self.public.clone(),
            CephNetwork::Cluster => self.cluster.clone(),
        }?;
        Some(NetworkSelection {
            interface: Some(network.key().to_string()),
            ..s
        })
    }

    /// The networks the run tests, public first.
    pub fn networks(&self) -> Vec<CephNetwork> {
        [CephNetwork::Public, CephNetwork::Cluster]
            .into_iter()
            .filter(|n| self.selection(*n).is_some())
            .collect()
    }

    /// The owner: deleting it (foreground) removes the run. It also holds the run
    /// configuration (`config.yaml`), which the coordinator Job reads.
    pub fn owner_config_map(&self, config_yaml: String) -> ConfigMap {
        ConfigMap {
            metadata: self
                .names
                .meta(self.names.owner(), &self.namespace, "owner", None),
            data: Some(BTreeMap::from([
                (
                    "about".to_string(),
                    format!(
                        "Owns every object of multinet run {}. `multinet cleanup -n {} --run {}` deletes it and waits until they are gone.",
                        self.names.run, self.namespace, self.names.run
                    ),
                ),
                ("config.yaml".to_string(), config_yaml),
            ])),
            ..ConfigMap::default()
        }
    }

    /// The TLS Secret. `None` (dry run): the keys are listed, the material is made when the
    /// run starts.
    pub fn tls_secret(&self, tls: Option<&AgentTls>) -> Secret {
        let entry = |value: &str| ByteString(value.as_bytes().to_vec());
        let data = match tls {
            Some(t) => BTreeMap::from([
                ("ca.crt".to_string(), entry(&t.ca)),
                ("agent.crt".to_string(), entry(&t.cert)),
                ("agent.key".to_string(), entry(&t.key)),
            ]),
            None => ["ca.crt", "agent.crt", "agent.key"]
                .into_iter()
                .map(|k| (k.to_string(), entry("made when the run starts")))
                .collect(),
        };
        Secret {
            metadata: self.meta(self.names.tls(), "tls"),
            type_: Some("Opaque".into()),
            data: Some(data),
            immutable: Some(true),
            ..Secret::default()
        }
    }

    /// The agents' run settings (`run.json`, a [`multinet_proto::assignment::PodRunSettings`]).
    pub fn agents_config_map(&self, run_json: String) -> ConfigMap {
        ConfigMap {
            metadata: self.meta(self.names.agents(), "agents"),
            data: Some(BTreeMap::from([("run.json".to_string(), run_json)])),
            immutable: Some(true),
            ..ConfigMap::default()
        }
    }

    /// The server pod, placed where the placement rule says (the node type with most OSDs),
    /// pinned to `node`, one node of that type.
    pub fn server_pod(&self, node_type: &str, node: &str) -> Pod {
        let networks = self.networks();
        let args = agent_args("server", "server", &networks);
        self.agent_pod(
            self.names.server(),
            "server",
            node_type,
            node,
            None,
            &networks,
            args,
        )
    }

    /// A mesh run's responder on `node` (of `node_type`): agent `agent` (`server-<node>`,
    /// [`crate::mesh::responder_pod`]) in pod [`RunNames::responder`], attached to `networks`
    /// — those its node's pods use, as the supervisor planned them (an OSD node's: every
    /// network under test; otherwise public) — and pinned to `node` like a client.
    pub fn responder_pod(
        &self,
        node_type: &str,
        node: &str,
        agent: &str,
        networks: &[CephNetwork],
    ) -> Pod {
        let args = agent_args("server", agent, networks);
        self.agent_pod(
            self.names.responder(node),
            "server",
            node_type,
            node,
            None,
            networks,
            args,
        )
    }

    /// A client pod on `node`: `index` is `osd-<i>` (both networks) or `other-<i>` (public).
    pub fn client_pod(&self, node: &str, node_type: &str, index: &str) -> Pod {
        let networks: Vec<CephNetwork> = if index.starts_with("osd-") {
            self.networks()
        } else {
            vec![CephNetwork::Public]
        };
        let args = agent_args("client", &format!("client-{node}-{index}"), &networks);
        self.agent_pod(
            self.names.client(node, index),
            "client",
            node_type,
            node,
            Some(index),
            &networks,
            args,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn agent_pod(
        &self,
        name: String,
        component: &str,
        node_type: &str,
        node: &str,
        index: Option<&str>,
        networks: &[CephNetwork],
        args: Vec<String>,
    ) -> Pod {
        let selections: Vec<NetworkSelection> =
            networks.iter().filter_map(|n| self.selection(*n)).collect();
        let mut metadata = self.meta(name, component);
        let labels = metadata.labels.get_or_insert_with(BTreeMap::new);
        labels.insert(NODE_TYPE.into(), node_type.into());
        if let Some(i) = index {
            labels.insert(CLIENT.into(), i.into());
        }
        metadata.annotations = Some(BTreeMap::from([(
            NETWORKS_ANNOTATION.to_string(),
            render_annotation(&selections),
        )]));
        let mut spec = self.pod_spec(node_type, args, true);
        if component == "server" {
            // The server answers every client (a mesh's responder, those of the nodes that
            // probe it): more room than a client needs.
            spec.containers[0].resources = Some(resources("20m", "32Mi", "256Mi"));
        }
        spec.affinity = Some(on_nodes(&[node]));
        spec.restart_policy = Some("Never".into());
        Pod {
            metadata,
            spec: Some(spec),
            ..Pod::default()
        }
    }

    /// `multinet bench network`'s client pod for one path (`name`, [`RunNames::bench_client`]):
    /// `args` (`bench client --tests …`) run once (`restartPolicy: Never`) in container
    /// [`BENCH_CLIENT_CONTAINER`], pinned to `node`, attached to the network under test only
    /// (its source address is read from the mounted network-status), trusting the run CA
    /// from the run's Secret, as the agents' ServiceAccount; ended by Kubernetes past
    /// `deadline` (`activeDeadlineSeconds`), whatever happens to the bench.
    pub fn bench_client_pod(
        &self,
        name: String,
        node_type: &str,
        node: &str,
        network: CephNetwork,
        args: Vec<String>,
        deadline: std::time::Duration,
    ) -> Pod {
        let mut metadata = self.meta(name, "bench-client");
        metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(NODE_TYPE.into(), node_type.into());
        let selections: Vec<NetworkSelection> = self.selection(network).into_iter().collect();
        metadata.annotations = Some(BTreeMap::from([(
            NETWORKS_ANNOTATION.to_string(),
            render_annotation(&selections),
        )]));
        let mut spec = self.pod_spec(node_type, args, true);
        spec.containers[0].name = BENCH_CLIENT_CONTAINER.into();
        // The load generator runs flat out for each test: more room than a probing client.
        spec.containers[0].resources = Some(resources("20m", "32Mi", "256Mi"));
        spec.affinity = Some(on_nodes(&[node]));
        spec.restart_policy = Some("Never".into());
        spec.active_deadline_seconds = Some(deadline.as_secs().max(1) as i64);
        Pod {
            metadata,
            spec: Some(spec),
            ..Pod::default()
        }
    }

    /// The host checkers of a node type: one per node, in the node's network namespace,
    /// probing the server's public address (in a mesh, the responders' of the node's peers,
    /// as the coordinator tells each checker); kept to `nodes`, the nodes of the type the run
    /// planned.
    pub fn host_check_daemon_set(&self, node_type: &str, nodes: &[&str]) -> DaemonSet {
        let name = self.names.host_check(node_type);
        let mut selector = BTreeMap::from([
            (super::names::RUN.to_string(), self.names.run.clone()),
            (
                super::names::COMPONENT.to_string(),
                "host-check".to_string(),
            ),
        ]);
        selector.insert(NODE_TYPE.into(), node_type.into());
        let mut pod_labels = self.names.labels("host-check");
        pod_labels.insert(NODE_TYPE.into(), node_type.into());
        let mut spec = self.pod_spec(
            node_type,
            agent_args("host-check", "host-$(NODE_NAME)", &[]),
            false,
        );
        spec.host_network = Some(true);
        spec.affinity = Some(on_nodes(nodes));
        spec.dns_policy = Some("ClusterFirstWithHostNet".into());
        let mut metadata = self.meta(name, "host-check");
        metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(NODE_TYPE.into(), node_type.into());
        DaemonSet {
            metadata,
            spec: Some(DaemonSetSpec {
                selector: LabelSelector {
                    match_labels: Some(selector),
                    ..LabelSelector::default()
                },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(pod_labels),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(spec),
                },
                ..DaemonSetSpec::default()
            }),
            ..DaemonSet::default()
        }
    }

    /// A soak's Service in front of the coordinator's control plane: ClusterIP, UDP
    /// [`CONTROL_PORT`], selecting the coordinator Job's pod. The agents dial its address, so
    /// a pod that replaces the coordinator's (evicted, its node lost) is found at the same
    /// address; kube-proxy drops the UDP flows to an endpoint that is gone (its conntrack
    /// cleanup for UDP Services), so the agents' next packets reach the new pod.
    pub fn control_service(&self) -> Service {
        Service {
            metadata: self.meta(self.names.control(), "control"),
            spec: Some(ServiceSpec {
                type_: Some("ClusterIP".into()),
                selector: Some(self.names.labels("coordinator")),
                ports: Some(vec![ServicePort {
                    name: Some("control".into()),
                    protocol: Some("UDP".into()),
                    port: i32::from(CONTROL_PORT),
                    target_port: Some(IntOrString::Int(i32::from(CONTROL_PORT))),
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        }
    }

    /// A soak's Secret with the coordinator's TLS identity (`pki_json`, a
    /// [`crate::pki::PkiState`]), mounted (optional) into the coordinator Job's pod: a
    /// replacement pod serves the agents with it. The key stays out of the checkpoint's
    /// ConfigMaps.
    pub fn coordinator_tls_secret(&self, pki_json: &str) -> Secret {
        Secret {
            metadata: self.meta(self.names.coordinator_tls(), "coordinator-tls"),
            type_: Some("Opaque".into()),
            data: Some(BTreeMap::from([(
                paths::COORDINATOR_TLS_FILE.to_string(),
                ByteString(pki_json.as_bytes().to_vec()),
            )])),
            immutable: Some(true),
            ..Secret::default()
        }
    }

    /// Part `index` of a soak's checkpoint, generation `generation`, in `slot`: gzipped
    /// checkpoint bytes (at most [`CHECKPOINT_PART_BYTES`]).
    pub fn checkpoint_part(
        &self,
        slot: u8,
        index: usize,
        generation: u64,
        part: &[u8],
    ) -> ConfigMap {
        ConfigMap {
            metadata: self.meta(self.names.checkpoint_part(slot, index), "checkpoint"),
            data: Some(BTreeMap::from([(
                "generation".to_string(),
                generation.to_string(),
            )])),
            binary_data: Some(BTreeMap::from([(
                "part".to_string(),
                ByteString(part.to_vec()),
            )])),
            ..ConfigMap::default()
        }
    }

    /// The index of a soak's checkpoint: its `generation`, the `slot` whose first `parts`
    /// parts hold it (`bytes` gzipped), and when it was written (`written_ms` into the run).
    /// Replaced only once every part is written, so it always names a whole checkpoint.
    pub fn checkpoint_index(&self, index: &CheckpointIndex) -> ConfigMap {
        ConfigMap {
            metadata: self.meta(self.names.checkpoint(), "checkpoint"),
            data: Some(BTreeMap::from([
                ("generation".to_string(), index.generation.to_string()),
                ("slot".to_string(), index.slot.to_string()),
                ("parts".to_string(), index.parts.to_string()),
                ("bytes".to_string(), index.bytes.to_string()),
                ("written-ms".to_string(), index.written_ms.to_string()),
            ])),
            ..ConfigMap::default()
        }
    }

    /// The coordinator Job `multinet run` starts when it runs outside the cluster: the same
    /// run, its configuration read from the owner ConfigMap, served from inside; `extra` are
    /// further `multinet run` arguments.
    ///
    /// A soak's Job restarts a coordinator that died (`restartPolicy: OnFailure`, at most
    /// [`COORDINATOR_RESTARTS`] times, which Kubernetes counts against `backoffLimit`): the
    /// kubelet restarts the container in the same pod, so the agents find the control plane
    /// at the same address and the new process finds the checkpoint in the same emptyDir
    /// (`/tmp`) and continues the run. A pod that is replaced (evicted, force-deleted, its
    /// node lost) is replaced by the Job controller once it has ended (`podReplacementPolicy:
    /// Failed`, also counted against `backoffLimit`): the new pod reads the checkpoint from
    /// the API ([`KubeRun::checkpoint_index`]) and the coordinator's TLS identity from its
    /// Secret (mounted optional at [`paths::COORDINATOR_TLS_DIR`]), and the agents reach it
    /// through the run's Service ([`KubeRun::control_service`]). Any other run's Job is never
    /// restarted (`Never`, `backoffLimit: 0`): a coordinator without a checkpoint cannot take
    /// a run over.
    pub fn coordinator_job(&self, extra: Vec<String>) -> Job {
        let restarts = coordinator_restarts(self.config);
        let mut args: Vec<String> = [
            "run",
            "--backend",
            "kube",
            "--in-cluster-run",
            &self.names.run,
            "-c",
            "/etc/multinet/config/config.yaml",
            "--image",
            &self.image,
        ]
        .into_iter()
        .map(String::from)
        .collect();
        args.extend(extra);
        let mut mounts = vec![
            mount("tmp", "/tmp", false),
            mount("config", "/etc/multinet/config", true),
        ];
        let mut volumes = vec![
            Volume {
                name: "tmp".into(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Volume::default()
            },
            Volume {
                name: "config".into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: self.names.owner(),
                    ..ConfigMapVolumeSource::default()
                }),
                ..Volume::default()
            },
        ];
        if restarts > 0 {
            // Made by the coordinator when the run starts: a replacement pod has it.
            mounts.push(mount("coordinator-tls", paths::COORDINATOR_TLS_DIR, true));
            volumes.push(Volume {
                name: "coordinator-tls".into(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(self.names.coordinator_tls()),
                    optional: Some(true),
                    default_mode: Some(0o400),
                    ..SecretVolumeSource::default()
                }),
                ..Volume::default()
            });
        }
        let spec = PodSpec {
            containers: vec![Container {
                name: "coordinator".into(),
                image: Some(self.image.clone()),
                args: Some(args),
                env: Some(vec![
                    field_env("POD_IP", "status.podIP"),
                    field_env("POD_NAMESPACE", "metadata.namespace"),
                    EnvVar {
                        name: "MULTINET_RUN_ID".into(),
                        value: Some(self.names.run.clone()),
                        ..EnvVar::default()
                    },
                ]),
                security_context: Some(container_security()),
                termination_message_policy: Some(LOG_ON_ERROR.into()),
                resources: Some(resources("20m", "64Mi", "512Mi")),
                // The live metrics' port, named for a PodMonitor or a Service to find
                // (deploy/monitoring/).
                ports: self.config.metrics_addr.map(|addr| {
                    vec![ContainerPort {
                        name: Some(METRICS_PORT_NAME.into()),
                        container_port: i32::from(addr.port()),
                        protocol: Some("TCP".into()),
                        ..ContainerPort::default()
                    }]
                }),
                volume_mounts: Some(mounts),
                ..Container::default()
            }],
            volumes: Some(volumes),
            restart_policy: Some(if restarts > 0 { "OnFailure" } else { "Never" }.into()),
            security_context: Some(pod_security()),
            service_account_name: Some(COORDINATOR_SERVICE_ACCOUNT.into()),
            ..PodSpec::default()
        };
        Job {
            metadata: self.meta(self.names.coordinator(), "coordinator"),
            spec: Some(JobSpec {
                // Kubernetes fails a Job whose pods' restarts reach backoffLimit (the Job
                // controller's pastBackoffLimitOnFailure: restartCount sum >= limit), so the
                // limit is one more than the restarts that may resume.
                backoff_limit: Some(if restarts > 0 { restarts + 1 } else { 0 }),
                active_deadline_seconds: Some(job_deadline(self.config).as_secs() as i64),
                // A replacement pod only once the one it replaces has ended: two coordinators
                // of one run never serve at once (the Job controller's default replaces a pod
                // as soon as it is terminating).
                pod_replacement_policy: (restarts > 0).then(|| "Failed".to_string()),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(self.names.labels("coordinator")),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(spec),
                },
                ..JobSpec::default()
            }),
            ..Job::default()
        }
    }

    /// The coordinator Job of `multinet bench network --backend kube` from outside the
    /// cluster: the coordinator Job of a run ([`Self::coordinator_job`]: the owner's
    /// configuration mounted, the same account, never restarted) running `bench network
    /// --in-cluster-run` with `extra` arguments instead, ended by Kubernetes past `deadline`
    /// (the bench's estimate and a margin).
    pub fn bench_job(&self, extra: Vec<String>, deadline: std::time::Duration) -> Job {
        let mut job = self.coordinator_job(Vec::new());
        let mut args: Vec<String> = [
            "bench",
            "network",
            "--backend",
            "kube",
            "--in-cluster-run",
            &self.names.run,
            "--run-config",
            "/etc/multinet/config/config.yaml",
            "--image",
            &self.image,
        ]
        .into_iter()
        .map(String::from)
        .collect();
        args.extend(extra);
        if let Some(spec) = job.spec.as_mut() {
            spec.active_deadline_seconds = Some(deadline.as_secs().max(1) as i64);
            if let Some(pod) = spec.template.spec.as_mut() {
                pod.containers[0].args = Some(args);
            }
        }
        job
    }

    /// Where the coordinator stores the final report (under `key`, in the format the command
    /// outside the cluster asked for) and the run's exit code. A report too large for a
    /// ConfigMap's value (the object is limited to 1 MiB) is stored gzipped under `<key>.gz`.
    pub fn report_config_map(&self, key: &str, report: &str, exit_code: u8) -> ConfigMap {
        let mut data = BTreeMap::from([("exit-code".to_string(), exit_code.to_string())]);
        let mut binary = BTreeMap::new();
        if report.len() <= REPORT_INLINE_MAX {
            data.insert(key.to_string(), report.to_string());
        } else {
            binary.insert(format!("{key}.gz"), ByteString(gzip(report.as_bytes())));
        }
        ConfigMap {
            metadata: self.meta(self.names.report(), "report"),
            data: Some(data),
            binary_data: (!binary.is_empty()).then_some(binary),
            ..ConfigMap::default()
        }
    }

    /// A pod spec running one agent: node type placement, non-root, no capabilities, seccomp
    /// RuntimeDefault, read-only root; the run settings, TLS and (for pods with Multus
    /// networks) the network-status annotation mounted as files.
    fn pod_spec(&self, node_type: &str, args: Vec<String>, network_status: bool) -> PodSpec {
        let placement = self.config.node_types.get(node_type).map(placement);
        let mut mounts = vec![
            mount("run", paths::RUN_DIR, true),
            mount("tls", paths::TLS_DIR, true),
        ];
        let mut volumes = vec![
            Volume {
                name: "run".into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: self.names.agents(),
                    ..ConfigMapVolumeSource::default()
                }),
                ..Volume::default()
            },
            Volume {
                name: "tls".into(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(self.names.tls()),
                    default_mode: Some(0o440),
                    ..SecretVolumeSource::default()
                }),
                ..Volume::default()
            },
        ];
        if network_status {
            mounts.push(mount("pod", paths::POD_DIR, true));
            volumes.push(Volume {
                name: "pod".into(),
                downward_api: Some(DownwardAPIVolumeSource {
                    items: Some(vec![DownwardAPIVolumeFile {
                        path: "network-status".into(),
                        field_ref: Some(ObjectFieldSelector {
                            field_path: format!(
                                "metadata.annotations['{NETWORK_STATUS_ANNOTATION}']"
                            ),
                            ..ObjectFieldSelector::default()
                        }),
                        ..DownwardAPIVolumeFile::default()
                    }]),
                    ..DownwardAPIVolumeSource::default()
                }),
                ..Volume::default()
            });
        }
        let (node_selector, tolerations) = placement.unwrap_or_default();
        PodSpec {
            containers: vec![Container {
                name: "agent".into(),
                image: Some(self.image.clone()),
                args: Some(args),
                env: Some(vec![
                    field_env("NODE_NAME", "spec.nodeName"),
                    field_env("POD_NAME", "metadata.name"),
                ]),
                security_context: Some(container_security()),
                termination_message_policy: Some(LOG_ON_ERROR.into()),
                resources: Some(resources("5m", "16Mi", "64Mi")),
                volume_mounts: Some(mounts),
                ..Container::default()
            }],
            volumes: Some(volumes),
            node_selector: (!node_selector.is_empty()).then_some(node_selector),
            tolerations: (!tolerations.is_empty()).then_some(tolerations),
            security_context: Some(pod_security()),
            service_account_name: (!self.config.service_account_name.is_empty())
                .then(|| self.config.service_account_name.clone()),
            automount_service_account_token: Some(false),
            termination_grace_period_seconds: Some(5),
            ..PodSpec::default()
        }
    }
}

/// The agent's arguments: `multinet agent --kube` with its role, name in the report, and
/// networks; everything else comes from the mounted files.
fn agent_args(role: &str, name: &str, networks: &[CephNetwork]) -> Vec<String> {
    let mut args = vec![
        "agent".to_string(),
        "--kube".into(),
        "--role".into(),
        role.into(),
        "--name".into(),
        name.into(),
        "--node".into(),
        "$(NODE_NAME)".into(),
    ];
    if !networks.is_empty() {
        args.push("--networks".into());
        args.push(
            networks
                .iter()
                .map(|n| n.key())
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    args
}

/// The largest report stored as text; above it, gzipped (a ConfigMap holds at most 1 MiB).
pub const REPORT_INLINE_MAX: usize = 900 * 1024;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

/// A container that fails without writing a termination message gets the end of its log as
/// one: the reason an agent or the coordinator ended shows in the pod's status.
const LOG_ON_ERROR: &str = "FallbackToLogsOnError";

/// How many times a soak's coordinator Job restarts a coordinator that died: enough for an
/// OOM kill or a crash now and then, few enough that one that cannot start gives up soon
/// (the kubelet's back-off between restarts is 10 s, doubling).
pub const COORDINATOR_RESTARTS: i32 = 3;

/// How many times the coordinator Job of a run with `config` restarts its coordinator: a
/// soak's checkpoints let it resume ([`COORDINATOR_RESTARTS`]); any other run, none.
pub fn coordinator_restarts(config: &RunConfig) -> i32 {
    if config.soak_duration.as_std().is_zero() {
        0
    } else {
        COORDINATOR_RESTARTS
    }
}

/// How long the coordinator Job may run: every stage's deadline, the soak, and a margin for
/// the cleanup. The Job is ended by Kubernetes after it even if nobody is left to remove it.
pub fn job_deadline(config: &RunConfig) -> std::time::Duration {
    config.resource_timeout.as_std() * 5 + config.soak_duration.as_std()
}

/// A required node affinity on the nodes' names: one term per node, each a single-value
/// `matchFields` requirement on `metadata.name`. The terms are ORed; the API server refuses
/// a node field selector with more than one value (`In [n1, n2]`), so the nodes cannot share
/// a requirement (Kubernetes pkg/apis/core/validation/validation.go,
/// validateNodeFieldSelectorRequirement).
fn on_nodes(nodes: &[&str]) -> Affinity {
    Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: nodes
                    .iter()
                    .map(|node| NodeSelectorTerm {
                        match_fields: Some(vec![NodeSelectorRequirement {
                            key: "metadata.name".into(),
                            operator: "In".into(),
                            values: Some(vec![node.to_string()]),
                        }]),
                        ..NodeSelectorTerm::default()
                    })
                    .collect(),
            }),
            ..NodeAffinity::default()
        }),
        ..Affinity::default()
    }
}

/// A node type's node selector and tolerations as Kubernetes takes them.
fn placement(t: &NodeType) -> (BTreeMap<String, String>, Vec<Toleration>) {
    let tolerations = t
        .placement
        .tolerations
        .iter()
        .map(|t| Toleration {
            key: (!t.key.is_empty()).then(|| t.key.clone()),
            operator: Some(format!("{:?}", t.operator)),
            value: (!t.value.is_empty()).then(|| t.value.clone()),
            effect: t.effect.map(|e| format!("{e:?}")),
            toleration_seconds: t.toleration_seconds,
        })
        .collect();
    (t.placement.node_selector.clone(), tolerations)
}

fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: Some(read_only),
        ..VolumeMount::default()
    }
}

fn resources(cpu: &str, memory: &str, memory_limit: &str) -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_string(), Quantity(cpu.into())),
            ("memory".to_string(), Quantity(memory.into())),
        ])),
        limits: Some(BTreeMap::from([(
            "memory".to_string(),
            Quantity(memory_limit.into()),
        )])),
        ..ResourceRequirements::default()
    }
}

fn pod_security() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS),
        run_as_group: Some(RUN_AS),
        fs_group: Some(RUN_AS),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..SeccompProfile::default()
        }),
        ..PodSecurityContext::default()
    }
}

fn container_security() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Capabilities::default()
        }),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        ..SecurityContext::default()
    }
}

#[cfg(test)]
mod tests {
    use multinet_proto::multus::selection::parse_single_selection;

    use super::*;

    /// A run with the lab's public and cluster NADs in rook-ceph.
    fn with_networks(config: &RunConfig) -> KubeRun<'_> {
        let selection = |text: &str| {
            Some(
                parse_single_selection(text, "rook-ceph")
                    .expect("selection")
                    .0,
            )
        };
        KubeRun {
            public: selection("public-net"),
            cluster: selection("cluster-net"),
            ..KubeRun::sample(config)
        }
    }

    fn args(pod: &Pod) -> Vec<String> {
        pod.spec
            .as_ref()
            .and_then(|s| s.containers[0].args.clone())
            .unwrap_or_default()
    }

    /// The nodes a pod's required node affinity names, term by term.
    fn pinned_to(pod: &Pod) -> Vec<String> {
        pod.spec
            .as_ref()
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|s| {
                s.node_selector_terms
                    .iter()
                    .flat_map(|t| t.match_fields.iter().flatten())
                    .flat_map(|r| r.values.iter().flatten().cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn annotation(pod: &Pod, key: &str) -> Option<String> {
        pod.metadata.annotations.as_ref()?.get(key).cloned()
    }

    /// A mesh's responder is its identity's pod: named after its node, running agent
    /// `server-<node>` on the networks it was given, asking Multus for exactly those, pinned
    /// to its node, labelled a server of its node type.
    #[test]
    fn a_responder_pod_follows_its_identity() {
        let config = RunConfig::default();
        let run = with_networks(&config);
        let both = [CephNetwork::Public, CephNetwork::Cluster];
        let osd = run.responder_pod("storage", "w1", "server-w1", &both);
        assert_eq!(
            osd.metadata.name.as_deref(),
            Some("multinet-0a1b2c3d4e-w1-server")
        );
        assert_eq!(
            args(&osd),
            [
                "agent",
                "--kube",
                "--role",
                "server",
                "--name",
                "server-w1",
                "--node",
                "$(NODE_NAME)",
                "--networks",
                "public,cluster"
            ]
        );
        assert_eq!(
            annotation(&osd, NETWORKS_ANNOTATION).as_deref(),
            Some(
                r#"[{"name":"public-net","namespace":"rook-ceph","interface":"public"},{"name":"cluster-net","namespace":"rook-ceph","interface":"cluster"}]"#
            )
        );
        assert_eq!(pinned_to(&osd), ["w1"]);
        let labels = osd.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels
                .get(super::super::names::COMPONENT)
                .map(String::as_str),
            Some("server")
        );
        assert_eq!(labels.get(NODE_TYPE).map(String::as_str), Some("storage"));
        assert_eq!(
            osd.spec.as_ref().and_then(|s| s.restart_policy.as_deref()),
            Some("Never")
        );
        // A node of other daemons only: public alone, in the arguments and the annotation.
        let other = run.responder_pod("arbiter", "a1", "server-a1", &[CephNetwork::Public]);
        assert_eq!(args(&other)[5], "server-a1");
        assert_eq!(args(&other)[8..], ["--networks", "public"]);
        assert_eq!(
            annotation(&other, NETWORKS_ANNOTATION).as_deref(),
            Some(r#"[{"name":"public-net","namespace":"rook-ceph","interface":"public"}]"#)
        );
        assert_eq!(pinned_to(&other), ["a1"]);
    }

    /// A 253-character node name gives a responder pod a name Kubernetes takes (bounded as
    /// a client's is), still pinned to the node by its full name and running its agent.
    #[test]
    fn a_responder_on_a_long_node_name_has_a_bounded_pod_name() {
        let config = RunConfig::default();
        let run = with_networks(&config);
        let node = format!("{}.example.com", "storage-a".repeat(26));
        assert!(node.len() > 230, "{}", node.len());
        let agent = format!("server-{node}");
        let pod = run.responder_pod("storage", &node, &agent, &[CephNetwork::Public]);
        let name = pod.metadata.name.clone().unwrap_or_default();
        assert!(
            multinet_proto::names::dns1123_subdomain(&name).is_ok(),
            "{name}"
        );
        assert!(name.len() <= 253 && name.ends_with("-server"), "{name}");
        assert_eq!(pinned_to(&pod), [node]);
        assert_eq!(args(&pod)[5], agent);
    }

    /// `bench network`'s client pod for a path on the cluster network: the Multus annotation
    /// of that network alone, pinned to its node, never restarted, bounded by its deadline,
    /// the run's labels and owner, the agents' ServiceAccount, the run's TLS Secret and the
    /// network-status mounted, `bench client` running every test of the path.
    #[test]
    fn a_bench_client_pod() {
        let config = RunConfig {
            service_account_name: "multinet".into(),
            ..RunConfig::default()
        };
        let run = with_networks(&config);
        let listener = multinet_proto::control::Listener {
            network: CephNetwork::Cluster,
            http: "198.18.2.1:8080".parse().expect("address"),
            https: "198.18.2.1:8443".parse().expect("address"),
        };
        let duration = std::time::Duration::from_millis(500);
        let tests = crate::bench::network::path_tests(4);
        let pod = run.bench_client_pod(
            run.names.bench_client(3),
            "storage",
            "w2",
            CephNetwork::Cluster,
            crate::bench::network::kube::client_args(
                &tests,
                &listener,
                CephNetwork::Cluster,
                duration,
            ),
            crate::bench::network::kube::client_deadline(tests.len(), duration),
        );
        assert_eq!(pinned_to(&pod), ["w2"]);
        insta::assert_snapshot!(serde_saphyr::to_string(&pod).expect("YAML"));
    }

    /// The single-server run's server keeps its name and runs agent `server` on every
    /// network the run tests.
    #[test]
    fn the_single_server_keeps_its_name_and_every_network() {
        let config = RunConfig::default();
        let run = with_networks(&config);
        let pod = run.server_pod("storage", "w1");
        assert_eq!(
            pod.metadata.name.as_deref(),
            Some("multinet-0a1b2c3d4e-server")
        );
        assert_eq!(args(&pod)[5], "server");
        assert_eq!(args(&pod)[8..], ["--networks", "public,cluster"]);
        assert_eq!(pinned_to(&pod), ["w1"]);
    }
}
