//! A real Kubernetes control plane with the lab as its nodes, for the end-to-end suite
//! (`tests/kube_lab.rs`): `tests/kube/control-plane up` gives the API server (its kubeconfig
//! in `MULTINET_E2E_CONTROL_PLANE`), `multinet lab up --kubeconfig` the nodes. Each test gets
//! its own namespace (the NADs and the RBAC of `deploy/rbac.yaml` applied in it) and its own
//! lab; dropping the guard stops the lab, removes it and its Node objects, and the namespace —
//! also when the test fails.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::eventually::{POLL, within};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The control plane's admin kubeconfig (`MULTINET_E2E_CONTROL_PLANE`).
pub fn kubeconfig() -> PathBuf {
    let path = std::env::var_os("MULTINET_E2E_CONTROL_PLANE").unwrap_or_else(|| {
        panic!(
            "set MULTINET_E2E_CONTROL_PLANE to the kubeconfig `tests/kube/control-plane up` prints"
        )
    });
    PathBuf::from(path)
}

/// The kubectl built with the control plane (`MULTINET_E2E_KUBECTL`, else the cache).
pub fn kubectl_path() -> PathBuf {
    if let Some(p) = std::env::var_os("MULTINET_E2E_KUBECTL") {
        return PathBuf::from(p);
    }
    std::fs::read_dir("/var/cache/multinet/kubernetes")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin/kubectl"))
        .find(|p| p.is_file())
        .expect("kubectl: set MULTINET_E2E_KUBECTL or run tests/kube/control-plane build")
}

/// `kubectl --kubeconfig … ARGS`, its output.
pub fn kubectl(args: &[&str]) -> Output {
    Command::new(kubectl_path())
        .arg("--kubeconfig")
        .arg(kubeconfig())
        .args(args)
        .output()
        .expect("kubectl runs")
}

/// `kubectl` that must succeed; its stdout.
pub fn kubectl_ok(args: &[&str]) -> String {
    let out = kubectl(args);
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `kubectl apply -f -` with `text` on stdin.
pub fn kubectl_apply(namespace: &str, text: &str) {
    use std::io::Write;
    let mut child = Command::new(kubectl_path())
        .arg("--kubeconfig")
        .arg(kubeconfig())
        .args(["apply", "-n", namespace, "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("writing to kubectl");
    let out = child.wait_with_output().expect("kubectl ends");
    assert!(
        out.status.success(),
        "kubectl apply: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits for `done` up to `patience`, checking every 250 ms (its checks ask the API server).
#[track_caller]
pub fn wait_for(what: &str, patience: Duration, mut done: impl FnMut() -> bool) {
    let every = Duration::from_millis(250);
    if within(patience, every, || if done() { Ok(()) } else { Err(()) }).is_err() {
        panic!("{what}: not within {patience:?}");
    }
}

/// A lab serving as the cluster's nodes, and a namespace to run in.
#[derive(Debug)]
pub struct LabCluster {
    /// The `multinet-e2e` binary.
    pub bin: &'static str,
    /// The lab's name.
    pub lab: String,
    /// The namespace (NADs `public-net`, `cluster-net`; ServiceAccount `multinet`).
    pub namespace: String,
    /// The lab's node names.
    pub nodes: Vec<String>,
    child: Option<Child>,
    dir: PathBuf,
    /// What the lab printed on stderr so far is in this file.
    pub log: PathBuf,
}

impl LabCluster {
    /// Builds lab `name` (≤ 8 characters) with `topology` (the topology file's `nodes:` and
    /// anything else but `name` and `networks`) and the networks of `tests/kube/nads.yaml`,
    /// serving as the cluster's nodes with `extra` arguments to `lab up`; waits until every
    /// node but those given `--not-ready` is Ready.
    /// `bin` is the `multinet-e2e` binary (`env!("CARGO_BIN_EXE_multinet-e2e")` in a test).
    pub fn start(
        bin: &'static str,
        name: &str,
        nodes: &[&str],
        topology: &str,
        extra: &[&str],
    ) -> Self {
        // Asked first: a guard whose cleanup needs the kubeconfig must never exist without one.
        let _ = kubeconfig();
        let dir = std::env::temp_dir().join(format!("multinet-e2e-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        let topology_text = format!("name: {name}\n{topology}\n");
        let topology = dir.join("topology.yaml");
        std::fs::write(&topology, topology_text).expect("topology");
        let log = dir.join("lab.log");
        let namespace = format!("e2e-{name}");
        let mut cluster = Self {
            bin,
            lab: name.into(),
            namespace: namespace.clone(),
            nodes: nodes.iter().map(|n| n.to_string()).collect(),
            child: None,
            dir,
            log: log.clone(),
        };
        // Leftovers of an earlier, killed test of the same name.
        cluster.remove_lab();
        let _ = kubectl(&[
            "delete",
            "namespace",
            &namespace,
            "--wait=true",
            "--timeout=60s",
        ]);
        kubectl_ok(&["create", "namespace", &namespace]);
        let nads = workspace().join("tests/kube/nads.yaml");
        kubectl_apply(&namespace, &std::fs::read_to_string(&nads).expect("NADs"));
        let rbac = std::fs::read_to_string(workspace().join("deploy/rbac.yaml")).expect("RBAC");
        kubectl_apply(
            &namespace,
            &rbac.replace("namespace: rook-ceph", &format!("namespace: {namespace}")),
        );

        let mut child = Command::new(bin)
            .args(["lab", "up", "-f"])
            .arg(&topology)
            .arg("--nads")
            .arg(&nads)
            .arg("--kubeconfig")
            .arg(kubeconfig())
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("lab log"))
            .spawn()
            .expect("multinet lab up runs");
        let stdout = child.stdout.take().expect("stdout");
        cluster.child = Some(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let up = rx
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("lab up: {}", cluster.stderr()));
        assert!(
            up.contains("is up as the cluster's nodes"),
            "{up}\n{}",
            cluster.stderr()
        );
        for node in nodes {
            if extra.windows(2).any(|w| w == ["--not-ready", *node]) {
                continue;
            }
            let out = kubectl(&[
                "wait",
                "--for=condition=Ready",
                &format!("node/{node}"),
                "--timeout=60s",
            ]);
            assert!(
                out.status.success(),
                "node {node} Ready: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        cluster
    }

    /// What the lab said on stderr.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `multinet run --backend kube` from outside the cluster, in the namespace, with `args`
    /// (the pods run as ServiceAccount `multinet`).
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_command(args).output().expect("multinet run runs")
    }

    /// The command [`Self::run`] runs.
    pub fn run_command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(self.bin);
        c.args(["run", "--backend", "kube", "--kubeconfig"])
            .arg(kubeconfig())
            .args(["-n", &self.namespace, "--service-account", "multinet"])
            .args(args);
        c
    }

    /// A file in the test's scratch directory.
    pub fn scratch(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, contents).expect("scratch file");
        path
    }

    /// The lab's pod namespaces that exist (a pod's sandbox not removed).
    pub fn pod_namespaces(&self) -> Vec<String> {
        let prefix = format!("{}-", self.lab);
        crate::e2e::lab_namespaces(&self.lab)
            .into_iter()
            .filter(|n| {
                n.strip_prefix(&prefix)
                    .is_some_and(|rest| rest.contains("-p"))
            })
            .collect()
    }

    /// Stops the lab serving (SIGTERM, as a user ends `lab up`) and waits for it, bounded.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = nix_kill(child.id());
        let exited = within(Duration::from_secs(90), POLL, || match child.try_wait() {
            Ok(Some(status)) => Ok(status),
            _ => Err(()),
        });
        exited.ok().or_else(|| {
            let _ = child.kill();
            child.wait().ok()
        })
    }

    /// Processes running in any of the lab's namespaces (nodes and pods).
    pub fn processes(&self) -> Vec<String> {
        crate::e2e::lab_namespaces(&self.lab)
            .into_iter()
            .flat_map(|ns| {
                let pids = Command::new("ip")
                    .args(["netns", "pids", &ns])
                    .output()
                    .expect("ip runs");
                String::from_utf8_lossy(&pids.stdout)
                    .split_whitespace()
                    .map(|p| format!("{ns}: {p}"))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn remove_lab(&self) {
        let _ = Command::new(self.bin)
            .args(["lab", "down", &self.lab])
            .output();
        for node in &self.nodes {
            let _ = kubectl(&["delete", "node", node, "--ignore-not-found", "--wait=false"]);
        }
    }
}

impl Drop for LabCluster {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix_kill(child.id());
            // Bounded either way: a drop must not hang nor panic.
            let _ = within(Duration::from_secs(60), POLL, || match child.try_wait() {
                Ok(Some(_)) => Ok(()),
                _ => Err(()),
            });
            let _ = child.kill();
            let _ = child.wait();
        }
        self.remove_lab();
        let _ = kubectl(&["delete", "namespace", &self.namespace, "--wait=false"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// SIGTERM to a process.
fn nix_kill(pid: u32) -> std::io::Result<()> {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other("kill failed"))
    }
}
