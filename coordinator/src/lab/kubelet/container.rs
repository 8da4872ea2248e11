//! Running a container of multinet's image without a container runtime: its own root (this
//! host's libraries read-only, the image's binaries — `/usr/local/bin/multinet` and
//! `multinet-agent` — bound to this host's build, the pod's volumes at their mount paths,
//! `/proc`, `/sys`, `/dev`), in the pod's network namespace (the node's for hostNetwork pods),
//! as the image's user (65532, `USER` in `deploy/Dockerfile`) unless the pod says otherwise.
//!
//! The mount namespace is the one `ip netns exec` makes for each command (mounts made inside
//! it never reach the host's). The process is the container: signals go to it, its exit code
//! is the container's. Its output is kept in CRI log format (`<RFC 3339> <stream> F <line>`),
//! one file per start, for [`super::logs`].

use std::path::{Path, PathBuf};
use std::process::Stdio;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::jiff::Timestamp;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use super::volumes::HostVolume;

/// The image's user and group (`USER 65532:65532` in `deploy/Dockerfile`, distroless nonroot).
pub const IMAGE_USER: i64 = 65532;

/// The image's entrypoint (`ENTRYPOINT` in `deploy/Dockerfile`).
pub const ENTRYPOINT: &str = "/usr/local/bin/multinet";

/// The image's binaries.
const IMAGE_BINARIES: &[&str] = &["/usr/local/bin/multinet", "/usr/local/bin/multinet-agent"];

/// Why a container could not be started; each names the container and what of its spec the
/// lab does not run, or the file it could not prepare.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The container's environment could not be made (env values, Secrets, ConfigMaps).
    #[error(transparent)]
    Environment(#[from] super::volumes::Error),
    /// The command is not one of the image's binaries (the image has no shell).
    #[error(
        "exec: {exe:?}: executable file not found in $PATH (multinet's image has {})",
        IMAGE_BINARIES.join(" and ")
    )]
    NotInImage {
        /// The executable asked for.
        exe: String,
    },
    /// The container asks to run as root, which here would be the host's root.
    #[error(
        "container {container}: the multinet lab runs containers only as a non-root user (runAsUser 0 asked)"
    )]
    Root {
        /// The container.
        container: String,
    },
    /// A part of the spec the lab does not emulate (`workingDir`, `subPathExpr`).
    #[error("container {container}: {field} is not emulated by the lab")]
    NotEmulated {
        /// The container.
        container: String,
        /// The field.
        field: &'static str,
    },
    /// A volumeMount names a volume the pod does not have.
    #[error("container {container}: volumeMount {volume:?} names no volume")]
    NoVolume {
        /// The container.
        container: String,
        /// The volume.
        volume: String,
    },
    /// A volumeMount's subPath cannot be used.
    #[error("container {container}: volumeMount {volume:?} subPath {sub_path:?}")]
    SubPath {
        /// The container.
        container: String,
        /// The volume.
        volume: String,
        /// The subPath.
        sub_path: String,
        /// Why.
        #[source]
        source: SubPathError,
    },
    /// A volumeMount's mountPath is not absolute.
    #[error("container {container}: mountPath {mount_path:?} is not an absolute path")]
    MountPath {
        /// The container.
        container: String,
        /// The mountPath.
        mount_path: String,
    },
    /// A file or directory of the container's root or log could not be made.
    #[error("preparing {}", path.display())]
    Prepare {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The process could not be started.
    #[error("starting the container")]
    Spawn(#[source] std::io::Error),
}

/// Results of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a subPath is refused (Kubernetes' rule: inside its volume, links followed).
#[derive(Debug, thiserror::Error)]
pub enum SubPathError {
    /// Absolute, or with `..`.
    #[error("not a relative path inside the volume")]
    NotRelative,
    /// It resolves (through a symbolic link) outside the volume.
    #[error("leaves the volume")]
    Leaves,
    /// It could not be resolved or created.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

fn preparing(path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Prepare { path, source }
}

/// A started container.
#[derive(Debug)]
pub struct Running {
    /// The process.
    child: Child,
    /// When it started.
    pub started: Timestamp,
    /// The tasks copying its output into the log.
    pumps: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Waits for the process to end, delivering the signals asked for meanwhile (only while
    /// it is not reaped, so a reused pid is never signalled), then for its output to be in the
    /// log (as containerd drains a container's IO before it reports the exit). Returns the
    /// exit code, 128 + the signal for a killed process.
    pub async fn wait(
        mut self,
        mut signals: tokio::sync::mpsc::UnboundedReceiver<nix::sys::signal::Signal>,
    ) -> i32 {
        let status = loop {
            tokio::select! {
                status = self.child.wait() => break status,
                Some(signal) = signals.recv() => {
                    // Not yet reaped, so the pid is still ours. SIGKILL goes to unshare (its
                    // child follows); anything else to the container's PID 1, which gets it
                    // only if it handles it (pid_namespaces(7)).
                    if let Some(pid) = self.child.id() {
                        let target = match signal {
                            nix::sys::signal::Signal::SIGKILL => Some(pid),
                            _ => pid_namespace_init(pid),
                        };
                        if let Some(target) = target {
                            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(target as i32), signal);
                        }
                    }
                }
            }
        };
        for pump in self.pumps {
            let _ = pump.await;
        }
        match status {
            Ok(status) => status.code().unwrap_or_else(|| {
                128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(9)
            }),
            Err(_) => 128,
        }
    }
}

/// Where container `name`'s log of start number `restart` lives.
pub fn log_path(pod_dir: &Path, name: &str, restart: i32) -> PathBuf {
    pod_dir
        .join("logs")
        .join(name)
        .join(format!("{restart}.log"))
}

/// What a container is started with.
#[derive(Debug)]
pub struct Start<'a> {
    /// The pod.
    pub pod: &'a Pod,
    /// The container.
    pub container: &'a Container,
    /// Its environment (service links, env).
    pub env: Vec<(String, String)>,
    /// The pod's volumes on the host.
    pub volumes: &'a [HostVolume],
    /// The network namespace.
    pub netns: &'a str,
    /// The pod's directory.
    pub pod_dir: &'a Path,
    /// The host binary for the image's binaries.
    pub binary: &'a Path,
    /// Which start this is (0 first).
    pub restart: i32,
}

/// The command and arguments the container runs: `command` (else the image's entrypoint) and
/// `args`, `$(VAR)` expanded. The executable must be one of the image's binaries (anything
/// else would fail in the real image too: it has no shell).
pub fn command_line(container: &Container, env: &[(String, String)]) -> Result<Vec<String>> {
    let mut argv: Vec<String> = match &container.command {
        Some(c) if !c.is_empty() => c.clone(),
        _ => vec![ENTRYPOINT.to_string()],
    };
    argv.extend(container.args.clone().unwrap_or_default());
    let argv: Vec<String> = argv
        .iter()
        .map(|a| super::volumes::expand(a, env))
        .collect();
    let exe = argv[0].as_str();
    let known = IMAGE_BINARIES
        .iter()
        .any(|b| *b == exe || b.rsplit('/').next() == Some(exe));
    if !known {
        return Err(Error::NotInImage {
            exe: exe.to_string(),
        });
    }
    Ok(argv)
}

/// A host program's path (the container's `PATH` is the image's, not the host's).
fn host_tool(name: &str) -> String {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .map(|d| format!("{d}/{name}"))
        .find(|p| Path::new(p).exists())
        .unwrap_or_else(|| name.to_string())
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Starts the container.
pub async fn start(s: Start<'_>) -> Result<Running> {
    let argv = command_line(s.container, &s.env)?;
    let spec = s.pod.spec.clone().unwrap_or_default();
    let pod_sc = spec.security_context.clone().unwrap_or_default();
    let sc = s.container.security_context.clone().unwrap_or_default();
    let uid = sc.run_as_user.or(pod_sc.run_as_user).unwrap_or(IMAGE_USER);
    // A root container here would be the host's root (all capabilities, the host's /dev and
    // /sys): a container runtime gives it far less. multinet's pods never ask for it.
    let container = || s.container.name.clone();
    if uid == 0 {
        return Err(Error::Root {
            container: container(),
        });
    }
    let gid = sc
        .run_as_group
        .or(pod_sc.run_as_group)
        .unwrap_or(IMAGE_USER);
    let mut groups: Vec<String> = pod_sc.fs_group.into_iter().map(|g| g.to_string()).collect();
    groups.extend(
        pod_sc
            .supplemental_groups
            .iter()
            .flatten()
            .map(|g| g.to_string()),
    );
    if s.container.working_dir.as_deref().is_some_and(|d| d != "/") {
        return Err(Error::NotEmulated {
            container: container(),
            field: "workingDir",
        });
    }

    let root = s.pod_dir.join("roots").join(&s.container.name);
    for dir in [
        "usr/lib",
        "usr/lib64",
        "usr/local/bin",
        "proc",
        "sys",
        "dev",
        "etc",
        "tmp",
    ] {
        let path = root.join(dir);
        std::fs::create_dir_all(&path).map_err(preparing(&path))?;
    }
    for (link, to) in [("lib", "usr/lib"), ("lib64", "usr/lib64")] {
        let path = root.join(link);
        if !path.exists() {
            std::os::unix::fs::symlink(to, &path).map_err(preparing(&path))?;
        }
    }
    for b in IMAGE_BINARIES {
        let path = root.join(&b[1..]);
        std::fs::write(&path, b"").map_err(preparing(&path))?;
    }
    let name = s.pod.metadata.name.clone().unwrap_or_default();
    let ip = s
        .pod
        .status
        .as_ref()
        .and_then(|st| st.pod_ip.clone())
        .unwrap_or_default();
    let hosts = root.join("etc/hosts");
    std::fs::write(
        &hosts,
        format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n{ip}\t{name}\n"),
    )
    .map_err(preparing(&hosts))?;
    let passwd = root.join("etc/passwd");
    std::fs::write(
        &passwd,
        "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
    )
    .map_err(preparing(&passwd))?;

    let r = |p: &str| quote(&format!("{}{p}", root.display()));
    let (mount, chroot) = (host_tool("mount"), host_tool("chroot"));
    let mut script = vec!["set -e".to_string()];
    script.push(format!("{mount} --rbind /usr/lib {}", r("/usr/lib")));
    script.push(format!("{mount} -o remount,bind,ro {}", r("/usr/lib")));
    if Path::new("/usr/lib64").is_dir() {
        script.push(format!("{mount} --rbind /usr/lib64 {}", r("/usr/lib64")));
    }
    let binary = quote(&s.binary.display().to_string());
    for b in IMAGE_BINARIES {
        script.push(format!("{mount} --bind {binary} {}", r(b)));
    }
    script.push(format!("{mount} --rbind /sys {}", r("/sys")));
    script.push(format!("{mount} --rbind /dev {}", r("/dev")));
    for m in s.container.volume_mounts.iter().flatten() {
        let volume =
            s.volumes
                .iter()
                .find(|v| v.name == m.name)
                .ok_or_else(|| Error::NoVolume {
                    container: container(),
                    volume: m.name.clone(),
                })?;
        if m.sub_path_expr.as_deref().is_some_and(|e| !e.is_empty()) {
            return Err(Error::NotEmulated {
                container: container(),
                field: "subPathExpr",
            });
        }
        let source = match m.sub_path.as_deref().filter(|p| !p.is_empty()) {
            None => volume.dir.clone(),
            Some(sub) => beneath(&volume.dir, sub).map_err(|source| Error::SubPath {
                container: container(),
                volume: m.name.clone(),
                sub_path: sub.to_string(),
                source,
            })?,
        };
        if !m.mount_path.starts_with('/') || m.mount_path.split('/').any(|p| p == "..") {
            return Err(Error::MountPath {
                container: container(),
                mount_path: m.mount_path.clone(),
            });
        }
        let target = root.join(m.mount_path.trim_start_matches('/'));
        if source.is_dir() {
            std::fs::create_dir_all(&target).map_err(preparing(&target))?;
        } else {
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(preparing(parent))?;
            }
            std::fs::write(&target, b"").map_err(preparing(&target))?;
        }
        let target = quote(&target.display().to_string());
        script.push(format!(
            "{mount} --bind {} {target}",
            quote(&source.display().to_string())
        ));
        // Secret, ConfigMap and downward-API volumes are always read-only in a container.
        if m.read_only == Some(true) || volume.read_only {
            script.push(format!("{mount} -o remount,bind,ro {target}"));
        }
    }
    let groups = if groups.is_empty() {
        String::new()
    } else {
        format!(" --groups={}", groups.join(","))
    };
    // The process is PID 1 of its own PID namespace, as in a container: a signal without a
    // handler does not end it (SIGTERM waits for the grace period's SIGKILL, as on a node),
    // and /proc shows the container's processes only. `--kill-child`: SIGKILL to unshare
    // reaches the container.
    let exec = format!(
        "exec {} --pid --fork --kill-child --mount-proc={} {chroot} --userspec={uid}:{gid}{groups} {}",
        host_tool("unshare"),
        r("/proc"),
        quote(&root.display().to_string())
    );
    script.push(format!("{exec} \"$@\""));

    let log = log_path(s.pod_dir, &s.container.name, s.restart);
    if let Some(parent) = log.parent() {
        std::fs::create_dir_all(parent).map_err(preparing(parent))?;
    }
    std::fs::write(&log, b"").map_err(preparing(&log))?;
    let mut pumps = Vec::new();
    let mut child = Command::new(host_tool("ip"))
        .args([
            "netns",
            "exec",
            s.netns,
            &host_tool("sh"),
            "-c",
            &script.join("\n"),
            "container",
        ])
        .args(&argv)
        .env_clear()
        .envs(s.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(Error::Spawn)?;
    if let Some(out) = child.stdout.take() {
        pumps.push(tokio::spawn(pump(out, "stdout", log.clone())));
    }
    if let Some(err) = child.stderr.take() {
        pumps.push(tokio::spawn(pump(err, "stderr", log.clone())));
    }
    Ok(Running {
        child,
        started: Timestamp::now(),
        pumps,
    })
}

/// The container's PID 1: the one child `unshare --fork` (process `pid`) made.
fn pid_namespace_init(pid: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `sub` resolved inside `dir`, symbolic links followed, refused if the result leaves `dir`
/// (a container can put links in a writable volume: Kubernetes' subPath rule, after
/// CVE-2017-1002101).
fn beneath(dir: &Path, sub: &str) -> Result<PathBuf, SubPathError> {
    if !Path::new(sub).is_relative() || sub.split('/').any(|p| p == "..") {
        return Err(SubPathError::NotRelative);
    }
    let base = std::fs::canonicalize(dir)?;
    let wanted = base.join(sub);
    if !wanted.exists() {
        // The kubelet creates a missing subPath directory.
        std::fs::create_dir_all(&wanted)?;
    }
    let resolved = std::fs::canonicalize(&wanted)?;
    if !resolved.starts_with(&base) {
        return Err(SubPathError::Leaves);
    }
    Ok(resolved)
}

/// Copies a stream into the log, a line at a time, in CRI format.
async fn pump(stream: impl AsyncRead + Unpin, name: &'static str, log: PathBuf) {
    use std::io::Write;
    let mut lines = BufReader::new(stream).lines();
    let Ok(mut file) = std::fs::OpenOptions::new().append(true).open(&log) else {
        return;
    };
    while let Ok(Some(line)) = lines.next_line().await {
        let stamp = Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.9fZ");
        let _ = file.write_all(format!("{stamp} {name} F {line}\n").as_bytes());
    }
}

/// The message a container that failed leaves with `FallbackToLogsOnError`: the end of its log
/// (at most 80 lines and 2048 bytes, the kubelet's `kubecontainer.MaxContainerTerminationMessageLogLines`
/// and `…LogLength`).
pub fn fallback_message(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter_map(super::logs::content).collect();
    let tail = lines[lines.len().saturating_sub(80)..].join("\n");
    let start = tail.len().saturating_sub(2048);
    let start = (start..=tail.len())
        .find(|i| tail.is_char_boundary(*i))
        .unwrap_or(tail.len());
    tail[start..].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_is_the_entrypoint_and_args_with_variables_expanded() {
        let c = Container {
            name: "agent".into(),
            args: Some(vec!["agent".into(), "--node".into(), "$(NODE_NAME)".into()]),
            ..Container::default()
        };
        let env = vec![("NODE_NAME".to_string(), "n3".to_string())];
        assert_eq!(
            command_line(&c, &env).expect("command"),
            vec![ENTRYPOINT, "agent", "--node", "n3"]
        );
        let shell = Container {
            command: Some(vec!["/bin/sh".into()]),
            ..c
        };
        let e = command_line(&shell, &env).expect_err("no shell in the image");
        assert!(e.to_string().contains("executable file not found"), "{e}");
    }
}
