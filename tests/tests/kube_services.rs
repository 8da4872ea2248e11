//! The lab's kubelet against a real API server (`tests/kube/control-plane up`), for what a
//! coordinator Job that is replaced needs from its nodes (issue #13): a ClusterIP Service
//! relayed as kube-proxy relays it, also to the pod that replaces its endpoint; optional
//! Secret and ConfigMap volumes; forced deletion. Ignored unless asked for, as `kube_lab.rs`:
//! they need root, the CNI plugins and a control plane (`MULTINET_E2E_CONTROL_PLANE`), and run
//! one at a time with the other suites on that control plane (`.config/nextest.toml`).
//!
//! The pods behind the Services run the test binary's `e2e-echo` ([`multinet_tests::echo`]);
//! the clients are sockets this test opens inside a lab pod's network namespace, so they are
//! pods' traffic and nothing leaves the lab's namespaces.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use multinet_coordinator::backend::kube::DEFAULT_IMAGE;
use multinet_coordinator::lab::build::{COORDINATOR, Lab, STATE_ROOT};
use multinet_coordinator::lab::net::{self, on_thread_in, udp_socket_in};
use multinet_tests::echo::{self, answer};
use multinet_tests::eventually::within;
use multinet_tests::lab_cluster::{LabCluster, kubectl, kubectl_apply, kubectl_ok, wait_for};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_multinet-e2e");

/// How often a wait here looks again (each look asks the API server or sends a datagram).
const EVERY: Duration = Duration::from_millis(250);

/// The grace period of the echo pods: short, as the responder ignores SIGTERM (PID 1 without
/// a handler), so that a lab stopping at the end of a test is not kept waiting.
const GRACE: u32 = 2;

/// A pod on `node` running the echo responder, with `labels` and `extra` YAML after its
/// container's ports (the container's `volumeMounts`, then the pod's `volumes`).
fn echo_pod(name: &str, node: &str, labels: &str, grace: u32, extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {{{labels}}}\nspec:\n{}{extra}",
        echo_pod_spec(node, grace, "  ")
    )
}

/// The echo responder's pod spec (UDP 7000 named `quic`, TCP 8080 named `web`; a grace
/// period of `grace` seconds), each line indented by `indent`.
fn echo_pod_spec(node: &str, grace: u32, indent: &str) -> String {
    [
        format!("nodeName: {node}"),
        "serviceAccountName: multinet".to_string(),
        format!("terminationGracePeriodSeconds: {grace}"),
        "containers:".to_string(),
        "- name: echo".to_string(),
        format!("  image: {DEFAULT_IMAGE}"),
        format!("  args: [{}, --udp, '7000', --tcp, '8080']", echo::COMMAND),
        "  ports:".to_string(),
        "  - {name: quic, containerPort: 7000, protocol: UDP}".to_string(),
        "  - {name: web, containerPort: 8080, protocol: TCP}".to_string(),
    ]
    .iter()
    .map(|l| format!("{indent}{l}\n"))
    .collect()
}

/// Waits until pod `name` is Ready; says why not, with the lab's log, when it is not.
fn wait_ready(cluster: &LabCluster, name: &str) {
    let out = kubectl(&[
        "wait",
        "-n",
        &cluster.namespace,
        "--for=condition=Ready",
        &format!("pod/{name}"),
        "--timeout=60s",
    ]);
    assert!(
        out.status.success(),
        "pod {name} Ready: {}\n{}\nlab: {}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(
            &kubectl(&["get", "pod", name, "-n", &cluster.namespace, "-o", "yaml"]).stdout
        ),
        cluster.stderr()
    );
}

/// The pods matching `selector` that are Ready and not being deleted.
fn ready_pods(namespace: &str, selector: &str) -> Vec<String> {
    let out = kubectl_ok(&["get", "pods", "-n", namespace, "-l", selector, "-o", "json"]);
    let list: Value = serde_json::from_str(&out).expect("a pod list");
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter(|p| {
            p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

/// A Service's ClusterIP.
fn cluster_ip(namespace: &str, service: &str) -> Ipv4Addr {
    let ip = kubectl_ok(&[
        "get",
        "service",
        service,
        "-n",
        namespace,
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    ip.parse()
        .unwrap_or_else(|e| panic!("ClusterIP {ip:?} of {service}: {e}"))
}

/// The IPv4 addresses on the lab's control bridge (`ip -n <lab>-ctl addr show dev ctl`);
/// the bridge's own address ([`COORDINATOR`]) is always among them, so a listing that failed
/// is never taken for one without a Service's address.
fn control_addresses(lab: &str) -> Vec<Ipv4Addr> {
    let out = std::process::Command::new("ip")
        .args([
            "-n",
            &Lab::control_ns(lab),
            "-4",
            "-o",
            "addr",
            "show",
            "dev",
            "ctl",
        ])
        .output()
        .expect("ip runs");
    let addresses: Vec<Ipv4Addr> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "inet")?;
            words.next()?.split('/').next()?.parse().ok()
        })
        .collect();
    assert!(
        addresses.contains(&COORDINATOR),
        "{} has its bridge's address: {addresses:?}",
        Lab::control_ns(lab)
    );
    addresses
}

/// One UDP exchange from `socket`: `ping-<seq>` to `to`, then what answers it within a
/// second — the answering pod and the address the answer came from — past stale answers to
/// earlier exchanges.
fn udp_round(socket: &UdpSocket, to: SocketAddr, seq: u32) -> Option<(String, SocketAddr)> {
    let request = format!("ping-{seq}");
    socket.send_to(request.as_bytes(), to).ok()?;
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut buf = [0u8; 2048];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        socket
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .ok()?;
        let (n, from) = socket.recv_from(&mut buf).ok()?;
        let text = String::from_utf8_lossy(&buf[..n]);
        if let Some(pod) = text.strip_suffix(&format!(" {request}")) {
            return Some((pod.to_string(), from));
        }
    }
}

/// One TCP exchange from namespace `ns`: a line to `to`, the line that answers it and the
/// address the connection was made to.
fn tcp_round(ns: &str, to: SocketAddr, line: &str) -> Result<(String, SocketAddr), String> {
    let stream = on_thread_in(ns, || {
        TcpStream::connect_timeout(&to, Duration::from_secs(2)).map_err(|source| {
            net::Error::Namespace {
                what: format!("connecting to {to} in {ns}"),
                source,
            }
        })
    })
    .map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let peer = stream.peer_addr().map_err(|e| e.to_string())?;
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    writeln!(writer, "{line}").map_err(|e| e.to_string())?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .map_err(|e| e.to_string())?;
    Ok((answer.trim_end().to_string(), peer))
}

/// The one pod namespace of the lab (a test that has started one pod).
fn only_pod_namespace(cluster: &LabCluster) -> String {
    let namespaces = cluster.pod_namespaces();
    assert_eq!(namespaces.len(), 1, "{namespaces:?}");
    namespaces[0].clone()
}

#[test]
#[ignore = "needs root, the CNI plugins and a local control plane: see README"]
fn a_cluster_ip_service_relays_udp_and_tcp_to_its_job_pod_and_to_the_pod_that_replaces_it() {
    let mut cluster = LabCluster::start(BIN, "ksvc", &["v1"], "nodes: [v1]", &[]);
    let ns = cluster.namespace.clone();
    // The client: a pod that is not behind the Service; the test's sockets live in its
    // network namespace.
    kubectl_apply(&ns, &echo_pod("client", "v1", "role: client", GRACE, ""));
    wait_ready(&cluster, "client");
    let client_ns = only_pod_namespace(&cluster);

    // The Job's pod behind a Service: UDP to a named targetPort (7443 → quic, 7000), TCP to a
    // numeric one (80 → 8080).
    let job = format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: echo\nspec:\n  backoffLimit: 6\n  template:\n    metadata:\n      labels: {{app: echo}}\n    spec:\n      restartPolicy: Never\n{}",
        echo_pod_spec("v1", GRACE, "      ")
    );
    kubectl_apply(&ns, &job);
    kubectl_apply(
        &ns,
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: echo\nspec:\n  selector: {app: echo}\n  ports:\n  - {name: quic, protocol: UDP, port: 7443, targetPort: quic}\n  - {name: web, protocol: TCP, port: 80, targetPort: 8080}\n",
    );
    let ip = cluster_ip(&ns, "echo");
    let udp_service = SocketAddr::new(IpAddr::V4(ip), 7443);
    let tcp_service = SocketAddr::new(IpAddr::V4(ip), 80);
    let mut first = Vec::new();
    wait_for("the Job's pod Ready", Duration::from_secs(90), || {
        first = ready_pods(&ns, "job-name=echo");
        !first.is_empty()
    });
    let first = first[0].clone();

    // One client socket, one source port, for the whole test.
    let client = udp_socket_in(&client_ns, SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))
        .expect("a UDP socket in the client pod");
    let source = client.local_addr().expect("its address");
    let mut seq = 0;
    let answered = within(Duration::from_secs(60), EVERY, || {
        seq += 1;
        udp_round(&client, udp_service, seq).ok_or(seq)
    })
    .unwrap_or_else(|tries| {
        panic!(
            "no UDP answer through {udp_service} after {tries} tries; addresses on ctl: {:?}\nlab: {}",
            control_addresses(&cluster.lab),
            cluster.stderr()
        )
    });
    assert_eq!(
        answered,
        (first.clone(), udp_service),
        "the Job's pod answers, from the ClusterIP"
    );
    let tcp = within(Duration::from_secs(10), EVERY, || {
        tcp_round(&client_ns, tcp_service, "hello")
    })
    .unwrap_or_else(|e| panic!("TCP through {tcp_service}: {e}\nlab: {}", cluster.stderr()));
    assert_eq!(tcp, (answer(&first, "hello"), tcp_service));

    // The Job's pod is force-deleted; the Job controller makes another; the same client flow
    // (same source port, sending on) reaches it once the Endpoints name it.
    kubectl_ok(&[
        "delete",
        "pod",
        &first,
        "-n",
        &ns,
        "--force",
        "--grace-period=0",
    ]);
    let mut second = Vec::new();
    wait_for(
        "the Job's replacement pod Ready",
        Duration::from_secs(120),
        || {
            second = ready_pods(&ns, "job-name=echo");
            second.retain(|p| *p != first);
            !second.is_empty()
        },
    );
    let second = second[0].clone();
    let mut last = None;
    let moved = within(Duration::from_secs(60), EVERY, || {
        seq += 1;
        last = udp_round(&client, udp_service, seq);
        match &last {
            Some((pod, from)) if *pod == second => Ok(*from),
            _ => Err(()),
        }
    });
    assert_eq!(
        moved,
        Ok(udp_service),
        "the client's flow reaches the replacement {second}, answered from the ClusterIP; last answer: {last:?}\nlab: {}",
        cluster.stderr()
    );
    assert_eq!(client.local_addr().ok(), Some(source), "the same flow");
    let tcp = tcp_round(&client_ns, tcp_service, "again").expect("TCP to the replacement");
    assert_eq!(tcp, (answer(&second, "again"), tcp_service));
    wait_for(
        "the forced-deleted pod's sandbox removed",
        Duration::from_secs(30),
        || cluster.pod_namespaces().len() == 2,
    );

    // The Service deleted: its address leaves the pod network.
    assert!(control_addresses(&cluster.lab).contains(&ip));
    kubectl_ok(&["delete", "service", "echo", "-n", &ns]);
    wait_for(
        "the deleted Service's ClusterIP off the pod network",
        Duration::from_secs(30),
        || !control_addresses(&cluster.lab).contains(&ip),
    );

    // The lab stops serving: no Service address is left behind.
    kubectl_apply(
        &ns,
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: echo-again\nspec:\n  selector: {app: echo}\n  ports:\n  - {name: quic, protocol: UDP, port: 7443, targetPort: quic}\n",
    );
    let again_ip = cluster_ip(&ns, "echo-again");
    let again = SocketAddr::new(IpAddr::V4(again_ip), 7443);
    within(Duration::from_secs(60), EVERY, || {
        seq += 1;
        udp_round(&client, again, seq).ok_or(())
    })
    .unwrap_or_else(|()| panic!("no UDP answer through {again}\nlab: {}", cluster.stderr()));
    let status = cluster.stop().expect("lab up ended");
    assert!(status.success(), "{status:?}\n{}", cluster.stderr());
    let left = control_addresses(&cluster.lab);
    assert!(
        !left.contains(&again_ip),
        "{again_ip} left on ctl: {left:?}"
    );
}

/// A volume's directory on the host, as the lab's kubelet made it for pod `uid`.
fn volume_dir(lab: &str, uid: &str, volume: &str) -> PathBuf {
    Path::new(STATE_ROOT)
        .join(lab)
        .join("pods")
        .join(uid)
        .join("volumes")
        .join(volume)
}

#[test]
#[ignore = "needs root, the CNI plugins and a local control plane: see README"]
fn an_optional_secret_or_config_map_that_does_not_exist_is_an_empty_volume_and_a_required_one_fails_the_pod()
 {
    let cluster = LabCluster::start(BIN, "kvol", &["v2"], "nodes: [v2]", &[]);
    let ns = cluster.namespace.clone();
    let mounts = "    volumeMounts:\n    - {name: maybe-secret, mountPath: /etc/maybe-secret}\n    - {name: maybe-map, mountPath: /etc/maybe-map}\n";
    let optional = format!(
        "{mounts}  volumes:\n  - name: maybe-secret\n    secret: {{secretName: absent-secret, optional: true}}\n  - name: maybe-map\n    configMap:\n      name: absent-map\n      optional: true\n      items: [{{key: checkpoint, path: checkpoint.json}}]\n"
    );
    kubectl_apply(
        &ns,
        &echo_pod("optional", "v2", "role: optional", GRACE, &optional),
    );
    wait_ready(&cluster, "optional");
    let uid = kubectl_ok(&[
        "get",
        "pod",
        "optional",
        "-n",
        &ns,
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    for volume in ["maybe-secret", "maybe-map"] {
        let dir = volume_dir(&cluster.lab, &uid, volume);
        let entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(entries.is_empty(), "{volume} is empty: {entries:?}");
    }

    // Not optional: the pod does not start, and says which Secret it lacks.
    let required = "    volumeMounts:\n    - {name: must-secret, mountPath: /etc/must-secret}\n  volumes:\n  - name: must-secret\n    secret: {secretName: absent-secret}\n";
    kubectl_apply(
        &ns,
        &echo_pod("required", "v2", "role: required", GRACE, required),
    );
    let field = |path: &str| {
        kubectl_ok(&[
            "get",
            "pod",
            "required",
            "-n",
            &ns,
            "-o",
            &format!("jsonpath={path}"),
        ])
    };
    wait_for(
        "pod required waiting for its Secret",
        Duration::from_secs(60),
        || {
            field("{.status.containerStatuses[0].state.waiting.reason}")
                == "CreateContainerConfigError"
        },
    );
    let message = field("{.status.containerStatuses[0].state.waiting.message}");
    assert!(
        message.contains("must-secret") && message.contains("secret absent-secret"),
        "{message}"
    );
    assert_eq!(field("{.status.phase}"), "Pending");
}

/// The processes in network namespace `ns`.
fn processes_in(ns: &str) -> Vec<u32> {
    let out = std::process::Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .expect("ip runs");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[test]
#[ignore = "needs root, the CNI plugins and a local control plane: see README"]
fn a_force_deleted_pod_is_killed_and_its_sandbox_removed_at_once_and_its_name_runs_again() {
    let cluster = LabCluster::start(BIN, "kforce", &["v3"], "nodes: [v3]", &[]);
    let ns = cluster.namespace.clone();
    // A grace period of 60 s, and a process that ignores SIGTERM (PID 1 without a handler):
    // only SIGKILL ends it within the bound below.
    kubectl_apply(&ns, &echo_pod("doomed", "v3", "role: doomed", 60, ""));
    wait_ready(&cluster, "doomed");
    let pod_ns = only_pod_namespace(&cluster);
    let processes = processes_in(&pod_ns);
    assert!(!processes.is_empty(), "the container runs in {pod_ns}");
    let started = Instant::now();
    kubectl_ok(&[
        "delete",
        "pod",
        "doomed",
        "-n",
        &ns,
        "--force",
        "--grace-period=0",
    ]);
    let gone = kubectl(&["get", "pod", "doomed", "-n", &ns]);
    assert!(!gone.status.success(), "the API object is gone at once");
    wait_for(
        "the container's processes gone and its sandbox removed",
        Duration::from_secs(15),
        || {
            processes
                .iter()
                .all(|p| !Path::new(&format!("/proc/{p}")).exists())
                && cluster.pod_namespaces().is_empty()
        },
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "well within the 60 s grace period: {:?}",
        started.elapsed()
    );

    // The name is free at once, and a new pod of that name runs normally.
    kubectl_apply(&ns, &echo_pod("doomed", "v3", "role: doomed", GRACE, ""));
    wait_ready(&cluster, "doomed");
    assert_eq!(cluster.pod_namespaces().len(), 1);
}
