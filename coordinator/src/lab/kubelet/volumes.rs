//! A container's environment and volumes, as the kubelet materializes them: env values and
//! `fieldRef`s (the downward API), Secret and ConfigMap keys; emptyDir, ConfigMap, Secret and
//! downward-API volumes as files under the pod's directory, mounted into the container's root by
//! [`super::container`].
//!
//! Rules followed (Kubernetes `pkg/kubelet/kubelet_pods.go`, `makeEnvironmentVariables` and
//! `podFieldSelectorRuntimeValue`; `pkg/volume/{secret,configmap,downwardapi,emptydir}`;
//! `pkg/fieldpath/fieldpath.go`, `ExtractFieldPathAsString` and `FormatMap`): the service
//! links of the `kubernetes` Service (`KUBERNETES_SERVICE_HOST`, `_PORT`) come first; a
//! volume's `defaultMode` defaults to 0644; with a pod `fsGroup` the files belong to that
//! group; a whole label or annotation map is written as sorted `key="value"` lines; one
//! annotation is written as its value; an `optional` Secret or ConfigMap volume whose object
//! does not exist is an empty volume, and its `items` naming missing keys are left out.
//! Anything else is refused with a message naming it. Not emulated: Secret and ConfigMap
//! volumes are written once, when the pod starts (a kubelet refreshes them as their objects
//! change).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{ConfigMap, Container, KeyToPath, Pod, Secret, Volume};
use kube::Api;

use super::Kubelet;
use crate::backend::kube::api_error::{KubeError, said};

/// Why a container's environment or a pod's volumes could not be made; each names the env
/// variable or volume, and what of it the lab does not have or emulate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `fieldRef` names a field the downward API does not offer.
    #[error("fieldRef {path:?} is not a field the downward API offers")]
    Field {
        /// The `fieldPath`.
        path: String,
    },
    /// The container asks for `envFrom`.
    #[error("container {container}: envFrom is not emulated by the lab")]
    EnvFrom {
        /// The container.
        container: String,
    },
    /// An env variable's Secret could not be read.
    #[error("env {var}: secret {secret}")]
    EnvSecret {
        /// The variable.
        var: String,
        /// The Secret.
        secret: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// An env variable's ConfigMap could not be read.
    #[error("env {var}: configmap {map}")]
    EnvConfigMap {
        /// The variable.
        var: String,
        /// The ConfigMap.
        map: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// An env variable's Secret or ConfigMap lacks the key.
    #[error("env {var}: {kind} {object} has no key {key}")]
    EnvNoKey {
        /// The variable.
        var: String,
        /// `secret` or `configmap`.
        kind: &'static str,
        /// The Secret or ConfigMap.
        object: String,
        /// The key.
        key: String,
    },
    /// An env variable's `valueFrom` is one the lab does not emulate (resourceFieldRef).
    #[error("env {var}: this valueFrom is not emulated by the lab")]
    EnvValueFrom {
        /// The variable.
        var: String,
    },
    /// A volume's Secret or ConfigMap could not be read.
    #[error("volume {volume}: {kind} {object}")]
    Source {
        /// The volume.
        volume: String,
        /// `secret` or `configmap`.
        kind: &'static str,
        /// The Secret or ConfigMap.
        object: String,
        /// What the API server said.
        #[source]
        source: KubeError,
    },
    /// A volume's `items` names a key its Secret or ConfigMap does not have.
    #[error("volume {volume}: no key {key}")]
    NoKey {
        /// The volume.
        volume: String,
        /// The key.
        key: String,
    },
    /// A downward-API volume's item has no `fieldRef`.
    #[error("volume {volume}: item {item} has no fieldRef (resourceFieldRef is not emulated)")]
    NoFieldRef {
        /// The volume.
        volume: String,
        /// The item's path.
        item: String,
    },
    /// A volume of a kind the lab does not emulate.
    #[error(
        "volume {volume}: only emptyDir, configMap, secret and downwardAPI volumes are emulated by the lab"
    )]
    Unsupported {
        /// The volume.
        volume: String,
    },
    /// A file's path leaves its volume.
    #[error("volume {volume}: path {path:?} is not a relative path inside the volume")]
    Path {
        /// The volume.
        volume: String,
        /// The item's path.
        path: String,
    },
    /// A volume's directory could not be made.
    #[error("creating {}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A volume's file could not be written, given its group or its mode.
    #[error("writing {}", path.display())]
    Write {
        /// The file (or the emptyDir's directory, for its mode).
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Results of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn create_dir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|source| Error::CreateDir {
        path: path.to_path_buf(),
        source,
    })
}

fn writing(path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Write { path, source }
}

/// A volume ready to mount: its directory on the host.
#[derive(Debug, Clone)]
pub struct HostVolume {
    /// The volume's name in the pod.
    pub name: String,
    /// Its files.
    pub dir: PathBuf,
    /// Mounted read-only whatever the mount says (Secret, ConfigMap, downward API).
    pub read_only: bool,
}

/// The value a downward-API `fieldPath` has for `pod` (env or volume file).
pub fn field_value(pod: &Pod, path: &str) -> Result<String> {
    let meta = &pod.metadata;
    let spec = pod.spec.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let subscript = |prefix: &str| -> Option<String> {
        path.strip_prefix(prefix)?
            .strip_suffix("']")
            .map(str::to_string)
    };
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "metadata.labels" => format_map(meta.labels.as_ref()),
        "metadata.annotations" => format_map(meta.annotations.as_ref()),
        "spec.nodeName" => spec.node_name.unwrap_or_default(),
        "spec.serviceAccountName" => spec.service_account_name.unwrap_or_default(),
        "status.hostIP" => status.host_ip.unwrap_or_default(),
        "status.podIP" => status.pod_ip.unwrap_or_default(),
        "status.podIPs" => status
            .pod_ips
            .unwrap_or_default()
            .into_iter()
            .map(|p| p.ip)
            .collect::<Vec<_>>()
            .join(","),
        _ => {
            if let Some(key) = subscript("metadata.labels['") {
                meta.labels
                    .as_ref()
                    .and_then(|l| l.get(&key))
                    .cloned()
                    .unwrap_or_default()
            } else if let Some(key) = subscript("metadata.annotations['") {
                meta.annotations
                    .as_ref()
                    .and_then(|a| a.get(&key))
                    .cloned()
                    .unwrap_or_default()
            } else {
                return Err(Error::Field {
                    path: path.to_string(),
                });
            }
        }
    })
}

/// A label or annotation map as the downward API writes it: `key="value"` lines, sorted.
fn format_map(map: Option<&BTreeMap<String, String>>) -> String {
    map.into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", serde_json::Value::String(v.clone())))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The container's environment, in order: the `kubernetes` Service's variables, then the
/// container's `env` (later names win, `$(VAR)` in values expanded from earlier ones).
pub async fn environment(
    kubelet: &Kubelet,
    pod: &Pod,
    container: &Container,
) -> Result<Vec<(String, String)>> {
    let service = kubelet.api_service;
    let mut env: Vec<(String, String)> = vec![
        ("KUBERNETES_SERVICE_HOST".into(), service.ip().to_string()),
        ("KUBERNETES_SERVICE_PORT".into(), service.port().to_string()),
        (
            "KUBERNETES_SERVICE_PORT_HTTPS".into(),
            service.port().to_string(),
        ),
        ("KUBERNETES_PORT".into(), format!("tcp://{service}")),
        (
            "HOSTNAME".into(),
            pod.metadata.name.clone().unwrap_or_default(),
        ),
        ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
    ];
    if container.env_from.as_ref().is_some_and(|e| !e.is_empty()) {
        return Err(Error::EnvFrom {
            container: container.name.clone(),
        });
    }
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    for var in container.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (_, Some(from)) => {
                if let Some(field) = &from.field_ref {
                    field_value(pod, &field.field_path)?
                } else if let Some(key) = &from.secret_key_ref {
                    let secret: Secret = Api::namespaced(kubelet.client.clone(), &namespace)
                        .get(&key.name)
                        .await
                        .map_err(|source| Error::EnvSecret {
                            var: var.name.clone(),
                            secret: key.name.clone(),
                            source,
                        })?;
                    let bytes = secret
                        .data
                        .and_then(|d| d.get(&key.key).cloned())
                        .ok_or_else(|| Error::EnvNoKey {
                            var: var.name.clone(),
                            kind: "secret",
                            object: key.name.clone(),
                            key: key.key.clone(),
                        })?;
                    String::from_utf8_lossy(&bytes.0).into_owned()
                } else if let Some(key) = &from.config_map_key_ref {
                    let map: ConfigMap = Api::namespaced(kubelet.client.clone(), &namespace)
                        .get(&key.name)
                        .await
                        .map_err(|source| Error::EnvConfigMap {
                            var: var.name.clone(),
                            map: key.name.clone(),
                            source,
                        })?;
                    map.data
                        .and_then(|d| d.get(&key.key).cloned())
                        .ok_or_else(|| Error::EnvNoKey {
                            var: var.name.clone(),
                            kind: "configmap",
                            object: key.name.clone(),
                            key: key.key.clone(),
                        })?
                } else {
                    return Err(Error::EnvValueFrom {
                        var: var.name.clone(),
                    });
                }
            }
            (Some(value), None) => expand(value, &env),
            (None, None) => String::new(),
        };
        env.retain(|(k, _)| *k != var.name);
        env.push((var.name.clone(), value));
    }
    Ok(env)
}

/// `$(VAR)` replaced by VAR's value when VAR is defined, `$$` by `$`, anything else kept — the
/// kubelet's expansion of command, args and env values (`third_party/forked/golang/expansion`).
pub fn expand(text: &str, env: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            let name = &inner[..end];
            match env.iter().rev().find(|(k, _)| k == name) {
                Some((_, v)) => out.push_str(v),
                None => out.push_str(&format!("$({name})")),
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Materializes every volume of `pod` under `dir` (one directory per volume).
pub async fn materialize(kubelet: &Kubelet, pod: &Pod, dir: &Path) -> Result<Vec<HostVolume>> {
    let spec = pod.spec.clone().unwrap_or_default();
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let fs_group = spec.security_context.as_ref().and_then(|s| s.fs_group);
    let mut out = Vec::new();
    for volume in spec.volumes.iter().flatten() {
        let target = dir.join(&volume.name);
        create_dir(&target)?;
        let files = files_of(kubelet, pod, &namespace, volume).await?;
        match files {
            None => {
                // emptyDir: world-writable, as the kubelet makes it.
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o777))
                    .map_err(writing(&target))?;
            }
            Some((files, mode)) => write_files(&target, &volume.name, files, mode, fs_group)?,
        }
        out.push(HostVolume {
            name: volume.name.clone(),
            dir: target,
            read_only: volume.empty_dir.is_none(),
        });
    }
    Ok(out)
}

type Files = Vec<(String, Vec<u8>, Option<i32>)>;

/// Writes a volume's files: `mode` unless the item gives one, owned by `fs_group` (group
/// readable) when the pod has one.
fn write_files(
    target: &Path,
    volume: &str,
    files: Files,
    mode: i32,
    fs_group: Option<i64>,
) -> Result<()> {
    for (path, bytes, item_mode) in files {
        if path.split('/').any(|p| p == ".." || p.is_empty()) || path.starts_with('/') {
            return Err(Error::Path {
                volume: volume.to_string(),
                path,
            });
        }
        let file = target.join(&path);
        if let Some(parent) = file.parent() {
            create_dir(parent)?;
        }
        std::fs::write(&file, bytes).map_err(writing(&file))?;
        let mut mode = item_mode.unwrap_or(mode) as u32 & 0o777;
        if let Some(group) = fs_group {
            std::os::unix::fs::chown(&file, Some(0), Some(group as u32)).map_err(writing(&file))?;
            mode |= 0o040;
        }
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode))
            .map_err(writing(&file))?;
    }
    Ok(())
}

/// Rewrites the downward-API volumes from `pod` (after Multus wrote its annotation), as the
/// kubelet's volume manager does when the pod changes.
pub fn refresh_downward(pod: &Pod, dir: &Path) -> Result<()> {
    let spec = pod.spec.clone().unwrap_or_default();
    let fs_group = spec.security_context.as_ref().and_then(|s| s.fs_group);
    for volume in spec.volumes.iter().flatten() {
        if let Some(source) = &volume.downward_api {
            let files = downward_files(pod, &volume.name, source)?;
            write_files(
                &dir.join(&volume.name),
                &volume.name,
                files,
                source.default_mode.unwrap_or(0o644),
                fs_group,
            )?;
        }
    }
    Ok(())
}

fn downward_files(
    pod: &Pod,
    name: &str,
    source: &k8s_openapi::api::core::v1::DownwardAPIVolumeSource,
) -> Result<Files> {
    let mut files = Vec::new();
    for item in source.items.iter().flatten() {
        let field = item.field_ref.as_ref().ok_or_else(|| Error::NoFieldRef {
            volume: name.to_string(),
            item: item.path.clone(),
        })?;
        files.push((
            item.path.clone(),
            field_value(pod, &field.field_path)?.into_bytes(),
            item.mode,
        ));
    }
    Ok(files)
}

/// A volume's files and default mode; `None` for an emptyDir.
async fn files_of(
    kubelet: &Kubelet,
    pod: &Pod,
    namespace: &str,
    volume: &Volume,
) -> Result<Option<(Files, i32)>> {
    let name = &volume.name;
    if volume.empty_dir.is_some() {
        return Ok(None);
    }
    if let Some(source) = &volume.secret {
        let secret_name = source.secret_name.clone().unwrap_or_default();
        let optional = source.optional == Some(true);
        let secret: Option<Secret> = optional_get(
            Api::namespaced(kubelet.client.clone(), namespace),
            &secret_name,
            optional,
        )
        .await
        .map_err(|e| Error::Source {
            volume: name.clone(),
            kind: "secret",
            object: secret_name.clone(),
            source: said(e),
        })?;
        let data: BTreeMap<String, Vec<u8>> = secret
            .and_then(|s| s.data)
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect();
        return Ok(Some((
            select(&data, source.items.as_deref(), name, optional)?,
            source.default_mode.unwrap_or(0o644),
        )));
    }
    if let Some(source) = &volume.config_map {
        let map_name = source.name.clone();
        let optional = source.optional == Some(true);
        let map: Option<ConfigMap> = optional_get(
            Api::namespaced(kubelet.client.clone(), namespace),
            &map_name,
            optional,
        )
        .await
        .map_err(|e| Error::Source {
            volume: name.clone(),
            kind: "configmap",
            object: map_name.clone(),
            source: said(e),
        })?;
        let map = map.unwrap_or_default();
        let mut data: BTreeMap<String, Vec<u8>> = map
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.into_bytes()))
            .collect();
        data.extend(
            map.binary_data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0)),
        );
        return Ok(Some((
            select(&data, source.items.as_deref(), name, optional)?,
            source.default_mode.unwrap_or(0o644),
        )));
    }
    if let Some(source) = &volume.downward_api {
        return Ok(Some((
            downward_files(pod, name, source)?,
            source.default_mode.unwrap_or(0o644),
        )));
    }
    Err(Error::Unsupported {
        volume: name.clone(),
    })
}

/// Secret or ConfigMap `name`; `None` when it does not exist and the volume is `optional`
/// (the kubelet's rule, `pkg/volume/secret` and `pkg/volume/configmap`, `SetUpAt`: an
/// optional source that is not found is an empty volume). Any other failure is the caller's.
async fn optional_get<K>(api: Api<K>, name: &str, optional: bool) -> kube::Result<Option<K>>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.get(name).await {
        Ok(object) => Ok(Some(object)),
        Err(kube::Error::Api(e)) if e.code == 404 && optional => Ok(None),
        Err(e) => Err(e),
    }
}

/// The keys of `data` a volume projects: every key, or the `items` asked for. An item whose
/// key is missing fails the volume, unless the volume is `optional`: then it is left out
/// (the kubelet's `MakePayload` for Secret and ConfigMap volumes).
fn select(
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    volume: &str,
    optional: bool,
) -> Result<Files> {
    match items {
        None => Ok(data
            .iter()
            .map(|(k, v)| (k.clone(), v.clone(), None))
            .collect()),
        Some(items) => items
            .iter()
            .filter(|item| !optional || data.contains_key(&item.key))
            .map(|item| {
                let bytes = data.get(&item.key).ok_or_else(|| Error::NoKey {
                    volume: volume.to_string(),
                    key: item.key.clone(),
                })?;
                Ok((item.path.clone(), bytes.clone(), item.mode))
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    #[test]
    fn a_missing_items_key_fails_a_required_volume_and_is_left_out_of_an_optional_one() {
        let data = BTreeMap::from([("present".to_string(), b"yes".to_vec())]);
        let items = [
            KeyToPath {
                key: "present".into(),
                path: "p".into(),
                mode: None,
            },
            KeyToPath {
                key: "absent".into(),
                path: "a".into(),
                mode: None,
            },
        ];
        let e = select(&data, Some(&items), "tls", false).expect_err("a required key is missing");
        assert_eq!(e.to_string(), "volume tls: no key absent");
        let files = select(&data, Some(&items), "tls", true).expect("optional");
        assert_eq!(files, vec![("p".to_string(), b"yes".to_vec(), None)]);
        // An optional source that does not exist projects nothing.
        let none = select(&BTreeMap::new(), Some(&items), "tls", true).expect("optional");
        assert!(none.is_empty());
        assert!(
            select(&BTreeMap::new(), None, "tls", true)
                .expect("all keys")
                .is_empty()
        );
    }

    #[test]
    fn dollar_parens_expand_defined_names_and_keep_the_rest() {
        let env = vec![("NODE_NAME".to_string(), "n2".to_string())];
        assert_eq!(expand("host-$(NODE_NAME)", &env), "host-n2");
        assert_eq!(expand("$(MISSING)", &env), "$(MISSING)");
        assert_eq!(expand("$$(NODE_NAME)", &env), "$(NODE_NAME)");
        assert_eq!(expand("a$b", &env), "a$b");
        assert_eq!(expand("$(NODE_NAME", &env), "$(NODE_NAME");
    }

    #[test]
    fn field_paths_read_the_pod_as_the_downward_api_does() {
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("ns".into()),
                annotations: Some(BTreeMap::from([
                    (
                        "k8s.v1.cni.cncf.io/network-status".to_string(),
                        "[{\"a\":1}]".to_string(),
                    ),
                    ("b".to_string(), "two\nlines".to_string()),
                ])),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        };
        assert_eq!(
            field_value(
                &pod,
                "metadata.annotations['k8s.v1.cni.cncf.io/network-status']"
            )
            .expect("field"),
            "[{\"a\":1}]"
        );
        assert_eq!(
            field_value(&pod, "metadata.annotations").expect("field"),
            "b=\"two\\nlines\"\nk8s.v1.cni.cncf.io/network-status=\"[{\\\"a\\\":1}]\""
        );
        assert_eq!(
            field_value(&pod, "metadata.namespace").expect("field"),
            "ns"
        );
        assert!(field_value(&pod, "spec.unknown").is_err());
    }
}
