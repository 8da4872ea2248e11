//! Events about a pod, as the kubelet's event recorder writes them: core/v1 Events from
//! component `kubelet` on the pod's node, the same reason and message counted on one Event
//! (`count`, `lastTimestamp`) rather than written again — client-go
//! `tools/record/events_cache.go`, `EventCorrelator`, which the kubelet's recorder uses.

use crate::backend::kube::api_error::said;
use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

/// Normal or Warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An ordinary step.
    Normal,
    /// Something went wrong.
    Warning,
}

/// Writes one pod's events, aggregating repeats.
#[derive(Debug)]
pub struct Recorder {
    api: Api<Event>,
    involved: ObjectReference,
    node: String,
    seen: HashMap<(String, String), (String, i32)>,
}

impl Recorder {
    /// A recorder for `pod` on `node`.
    pub fn new(client: Client, pod: &Pod, node: &str) -> Self {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        Self {
            api: Api::namespaced(client, &namespace),
            involved: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: pod.metadata.name.clone(),
                namespace: Some(namespace),
                uid: pod.metadata.uid.clone(),
                resource_version: pod.metadata.resource_version.clone(),
                ..ObjectReference::default()
            },
            node: node.to_string(),
            seen: HashMap::new(),
        }
    }

    /// Records `reason` / `message`; a repeat increments the first Event's count. Failures
    /// are logged, never fatal (as the kubelet's recorder).
    pub async fn record(&mut self, kind: Kind, reason: &str, message: &str) {
        let now = Time(Timestamp::now());
        let key = (reason.to_string(), message.to_string());
        if let Some((name, count)) = self.seen.get_mut(&key) {
            *count += 1;
            let patch = json!({"count": *count, "lastTimestamp": now});
            if let Err(e) = self
                .api
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                tracing::warn!("updating event {name}: {}", said(e));
            }
            return;
        }
        let pod_name = self.involved.name.clone().unwrap_or_default();
        let event = Event {
            metadata: ObjectMeta {
                generate_name: Some(format!("{pod_name}.")),
                namespace: self.involved.namespace.clone(),
                ..ObjectMeta::default()
            },
            involved_object: self.involved.clone(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            type_: Some(
                match kind {
                    Kind::Normal => "Normal",
                    Kind::Warning => "Warning",
                }
                .into(),
            ),
            source: Some(EventSource {
                component: Some("kubelet".into()),
                host: Some(self.node.clone()),
            }),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            reporting_component: Some("kubelet".into()),
            reporting_instance: Some(self.node.clone()),
            ..Event::default()
        };
        match self.api.create(&PostParams::default(), &event).await {
            Ok(created) => {
                if let Some(name) = created.metadata.name {
                    self.seen.insert(key, (name, 1));
                }
            }
            Err(e) => tracing::warn!("recording event {reason}: {}", said(e)),
        }
    }
}
