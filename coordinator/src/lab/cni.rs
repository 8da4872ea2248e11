//! Running CNI plugins as the CNI specification says: `CNI_COMMAND`, `CNI_CONTAINERID`,
//! `CNI_NETNS`, `CNI_IFNAME`, `CNI_PATH` in the environment, the network configuration on
//! stdin, the result (or error) as JSON on stdout. The plugin runs inside the node's namespace,
//! where its master interface lives.

use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where Debian's containernetworking-plugins live.
pub const CNI_PATH: &str = "/usr/lib/cni";

/// One attachment: enough to delete it again (also after a crash, from the lab's state file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// Namespace the plugin runs in (the node's).
    pub node_ns: String,
    /// The pod's namespace.
    pub pod_ns: String,
    /// Container id (the pod name).
    pub container_id: String,
    /// Interface name in the pod.
    pub ifname: String,
    /// The network configuration as given to the plugin.
    pub config: String,
}

impl Attachment {
    fn plugin(&self) -> anyhow::Result<String> {
        let v: Value = serde_json::from_str(&self.config).context("the CNI config is not JSON")?;
        let t = v
            .get("type")
            .and_then(Value::as_str)
            .context("the CNI config has no type")?;
        anyhow::ensure!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "CNI plugin type {t:?} is not a plain name"
        );
        Ok(format!("{CNI_PATH}/{t}"))
    }

    fn invoke(&self, command: &str) -> anyhow::Result<Vec<u8>> {
        let plugin = self.plugin()?;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.node_ns, &plugin])
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", &self.container_id)
            .env("CNI_NETNS", format!("/run/netns/{}", self.pod_ns))
            .env("CNI_IFNAME", &self.ifname)
            .env("CNI_PATH", CNI_PATH)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {plugin}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(self.config.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            // CNI errors are JSON: {"code": N, "msg": "...", "details": "..."}.
            let text = String::from_utf8_lossy(&out.stdout);
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| {
                    let msg = v.get("msg")?.as_str()?.to_string();
                    Some(match v.get("details").and_then(Value::as_str) {
                        Some(d) if !d.is_empty() => format!("{msg}: {d}"),
                        _ => msg,
                    })
                })
                .unwrap_or_else(|| {
                    format!(
                        "{} {}",
                        text.trim(),
                        String::from_utf8_lossy(&out.stderr).trim()
                    )
                });
            anyhow::bail!(
                "CNI {command} ({}) failed: {message}",
                self.plugin().unwrap_or_default()
            );
        }
        Ok(out.stdout)
    }

    /// CNI ADD; returns the addresses the plugin assigned.
    pub fn add(&self) -> anyhow::Result<Vec<IpAddr>> {
        let out = self.invoke("ADD")?;
        let result: Value = serde_json::from_slice(&out).context("the CNI result is not JSON")?;
        let ips = result
            .get("ips")
            .and_then(Value::as_array)
            .map(|ips| {
                ips.iter()
                    .filter_map(|ip| {
                        ip.get("address")?
                            .as_str()?
                            .split('/')
                            .next()?
                            .parse::<IpAddr>()
                            .ok()
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(ips)
    }

    /// CNI DEL (releases the IPAM address); errors are returned, the caller decides.
    pub fn del(&self) -> anyhow::Result<()> {
        self.invoke("DEL").map(|_| ())
    }
}
