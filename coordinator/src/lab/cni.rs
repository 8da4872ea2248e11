//! Running CNI plugins as the CNI specification says: `CNI_COMMAND`, `CNI_CONTAINERID`,
//! `CNI_NETNS`, `CNI_IFNAME`, `CNI_PATH` in the environment, the network configuration on
//! stdin, the result (or error) as JSON on stdout. The plugin runs inside the node's namespace,
//! where its master interface lives.

use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where Debian's containernetworking-plugins live.
pub const CNI_PATH: &str = "/usr/lib/cni";

/// Why a CNI operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The network configuration is not one a runtime can hand to a plugin.
    #[error("{0}")]
    Config(&'static str),
    /// A configuration's `type` is not a plain plugin name.
    #[error("CNI plugin type {0:?} is not a plain name")]
    PluginName(String),
    /// The plugin could not be started, or not be given its configuration.
    #[error("starting {plugin}")]
    Spawn {
        /// The plugin binary.
        plugin: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The plugin ended with an error (CNI specification, "Error": `code`, `msg`, `details`).
    #[error("CNI {command} ({plugin}) failed: {message}")]
    Plugin {
        /// `ADD` or `DEL`.
        command: &'static str,
        /// The plugin binary.
        plugin: String,
        /// The CNI error code, when the plugin wrote one (e.g. 11: try again later).
        code: Option<u64>,
        /// `msg: details`, or what it wrote when that is not a CNI error.
        message: String,
    },
    /// The plugin's result is not JSON.
    #[error("the CNI result is not JSON")]
    Result(#[source] serde_json::Error),
}

/// Results of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

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

/// Plugins (and IPAM types) whose every effect stays in the namespaces they run in and the
/// lab's IPAM directory: links, addresses, routes, sysctls, qdiscs and iptables rules of the
/// node's or pod's namespace, host-local's leases (`containernetworking/plugins`: each works
/// inside the netns it is handed, host-local under its `dataDir`). When the whole lab goes,
/// their DEL would undo nothing that is not removed with it.
const CONTAINED: &[&str] = &[
    "macvlan",
    "ipvlan",
    "bridge",
    "host-device",
    "vlan",
    "ptp",
    "tuning",
    "bandwidth",
    "portmap",
    "sbr",
    "host-local",
    "static",
];

impl Attachment {
    /// Whether every plugin of the configuration, and its IPAM, is one of [`CONTAINED`]: then
    /// removing the lab's namespaces and state directory undoes all the ADD did, and the DEL
    /// can be left out when the whole lab goes (any other plugin, or a config that does not
    /// parse, gets its DEL).
    pub fn contained_in_lab(&self) -> bool {
        self.plugins().is_ok_and(|plugins| {
            plugins.iter().all(|p| {
                let known = |v: Option<&Value>| {
                    v.and_then(Value::as_str)
                        .is_some_and(|t| CONTAINED.contains(&t))
                };
                known(p.get("type"))
                    && p.get("ipam")
                        .is_none_or(|ipam| ipam.get("type").is_none() || known(ipam.get("type")))
            })
        })
    }

    /// The configurations to run, in order: the one plugin, or each plugin of a conflist
    /// with the list's `name` and `cniVersion`, as libcni hands them on.
    fn plugins(&self) -> Result<Vec<serde_json::Map<String, Value>>> {
        let v: Value = serde_json::from_str(&self.config)
            .map_err(|_| Error::Config("the CNI config is not JSON"))?;
        let top = v
            .as_object()
            .ok_or(Error::Config("the CNI config is not an object"))?;
        let Some(list) = top.get("plugins") else {
            return Ok(vec![top.clone()]);
        };
        let list = list
            .as_array()
            .filter(|l| !l.is_empty())
            .ok_or(Error::Config(
                "the conflist's plugins is not a non-empty list",
            ))?;
        list.iter()
            .map(|p| {
                let mut p = p
                    .as_object()
                    .ok_or(Error::Config("a conflist plugin is not an object"))?
                    .clone();
                for key in ["name", "cniVersion"] {
                    if let Some(value) = top.get(key) {
                        p.insert(key.into(), value.clone());
                    }
                }
                Ok(p)
            })
            .collect()
    }

    fn invoke(
        &self,
        command: &'static str,
        config: &serde_json::Map<String, Value>,
    ) -> Result<Vec<u8>> {
        let plugin = plugin_path(config)?;
        let child = Command::new("ip")
            .args(["netns", "exec", &self.node_ns, &plugin])
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", &self.container_id)
            .env("CNI_NETNS", format!("/run/netns/{}", self.pod_ns))
            .env("CNI_IFNAME", &self.ifname)
            .env("CNI_PATH", CNI_PATH)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let spawned = |source| Error::Spawn {
            plugin: plugin.clone(),
            source,
        };
        let mut child = child.map_err(spawned)?;
        if let Some(mut stdin) = child.stdin.take() {
            // A map of JSON values always serializes.
            let config = serde_json::to_vec(config).unwrap_or_default();
            stdin.write_all(&config).map_err(spawned)?;
        }
        let out = child.wait_with_output().map_err(spawned)?;
        if !out.status.success() {
            // CNI errors are JSON: {"code": N, "msg": "...", "details": "..."}.
            let text = String::from_utf8_lossy(&out.stdout);
            let error = serde_json::from_str::<Value>(&text).ok();
            let code = error.as_ref().and_then(|v| v.get("code")?.as_u64());
            let message = error
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
            return Err(Error::Plugin {
                command,
                plugin,
                code,
                message,
            });
        }
        Ok(out.stdout)
    }

    /// CNI ADD, every plugin in order, each given the previous one's result (`prevResult`);
    /// returns the addresses of the final result. After a failure, [`Self::del`] for the
    /// whole list undoes it, as a runtime does (the lab records an attachment before adding
    /// it, and deletes every recorded one).
    pub fn add(&self) -> Result<Vec<IpAddr>> {
        Ok(result_ips(&self.add_result()?))
    }

    /// CNI ADD as [`Self::add`], returning the final plugin's whole result (CNI spec
    /// "Success": `interfaces`, `ips`, `routes`, `dns`).
    pub fn add_result(&self) -> Result<Value> {
        let mut result: Option<Value> = None;
        for mut config in self.plugins()? {
            if let Some(prev) = result.take() {
                config.insert("prevResult".into(), prev);
            }
            let out = self.invoke("ADD", &config)?;
            result = Some(serde_json::from_slice(&out).map_err(Error::Result)?);
        }
        result.ok_or(Error::Config("the CNI config has no plugin"))
    }

    /// CNI DEL, every plugin in reverse order (releases the IPAM address). Every plugin is
    /// asked even if one fails; the first error is returned, the caller decides.
    pub fn del(&self) -> Result<()> {
        let mut first_error = None;
        for plugin in self.plugins()?.iter().rev() {
            if let Err(e) = self.invoke("DEL", plugin) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// The addresses of a CNI result (`ips[].address`, prefix length dropped).
pub fn result_ips(result: &Value) -> Vec<IpAddr> {
    result
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
        .unwrap_or_default()
}

/// The MAC address of the result's interface inside the container (`interfaces[]` with a
/// `sandbox`), as Multus reports it in `network-status`.
pub fn result_mac(result: &Value) -> Option<String> {
    result
        .get("interfaces")?
        .as_array()?
        .iter()
        .find(|i| {
            i.get("sandbox")
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
        })
        .and_then(|i| i.get("mac")?.as_str().map(str::to_string))
}

/// The plugin binary a configuration names (`type`), under [`CNI_PATH`].
fn plugin_path(config: &serde_json::Map<String, Value>) -> Result<String> {
    let t = config
        .get("type")
        .and_then(Value::as_str)
        .ok_or(Error::Config("the CNI config has no type"))?;
    if !t
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Error::PluginName(t.to_string()));
    }
    Ok(format!("{CNI_PATH}/{t}"))
}

#[cfg(test)]
mod tests {
    use super::Attachment;

    fn contained(config: &str) -> bool {
        Attachment {
            node_ns: "lab-n1".into(),
            pod_ns: "lab-n1-p1".into(),
            container_id: "lab-n1-p1".into(),
            ifname: "public".into(),
            config: config.into(),
        }
        .contained_in_lab()
    }

    #[test]
    fn only_plugins_that_keep_nothing_outside_the_lab_skip_their_del_when_it_goes() {
        assert!(contained(
            r#"{"cniVersion":"0.3.1","type":"macvlan","master":"pub0","ipam":{"type":"host-local","ranges":[[{"subnet":"198.18.1.0/24"}]],"dataDir":"/run/multinet/l/ipam"}}"#
        ));
        assert!(contained(
            r#"{"cniVersion":"0.4.0","name":"n","plugins":[{"type":"bridge","ipam":{"type":"static","addresses":[{"address":"198.18.1.5/24"}]}},{"type":"tuning","mtu":1400}]}"#
        ));
        assert!(contained(r#"{"type":"host-device","device":"clu0"}"#));
        // State kept elsewhere: the DHCP daemon's lease, firewalld's zones, a plugin unknown.
        assert!(!contained(
            r#"{"type":"macvlan","master":"pub0","ipam":{"type":"dhcp"}}"#
        ));
        assert!(!contained(
            r#"{"plugins":[{"type":"bridge","ipam":{"type":"host-local"}},{"type":"firewall","backend":"firewalld"}]}"#
        ));
        assert!(!contained(r#"{"type":"multinet-no-such-plugin"}"#));
        assert!(!contained("not json"));
    }
}
