//! A soak's coordinator Job told to stop (SIGTERM) while its run goes on: its pod is being
//! replaced (evicted, drained), and the Job's next pod continues the run from the checkpoint
//! stored in the API ([`crate::backend::kube::checkpoint_store`]). This process then leaves
//! the run as it is, as if killed, instead of ending the soak.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::RunRequest;
use crate::backend::kube::names::RunNames;
use crate::backend::kube::{checkpoint_store, client};
use crate::supervisor::HandOver;

/// A soak's coordinator Job that gets SIGTERM while its run goes on — the run's owner and
/// Job are not being deleted (the command outside deletes the owner when the user stops the
/// run), the Job has neither failed nor reached its deadline, and a checkpoint is stored in
/// the API — leaves the run to the pod that replaces its
/// own (evicted, drained) or, should only the process have been signalled, to its restart.
/// Asked within 5 s; an API that does not answer ends the soak as a signal does.
pub(super) fn ask(request: &RunRequest, id: &str, namespace: &str) -> HandOver {
    let (kubeconfig, context) = (
        request.kube.kubeconfig.clone(),
        request.kube.context.clone(),
    );
    let (id, namespace) = (id.to_string(), namespace.to_string());
    HandOver(std::sync::Arc::new(move || {
        let (kubeconfig, context) = (kubeconfig.clone(), context.clone());
        let (id, namespace) = (id.clone(), namespace.clone());
        Box::pin(async move {
            let asked = async {
                let client = client::connect(kubeconfig.as_deref(), context.as_deref())
                    .await
                    .ok()?;
                let names = RunNames::new(&id);
                let alive = |meta: &ObjectMeta| meta.deletion_timestamp.is_none();
                let owner = kube::Api::<ConfigMap>::namespaced(client.clone(), &namespace)
                    .get_opt(&names.owner())
                    .await
                    .ok()??;
                let job = kube::Api::<Job>::namespaced(client.clone(), &namespace)
                    .get_opt(&names.coordinator())
                    .await
                    .ok()??;
                let stored = checkpoint_store::generation(&client, &namespace, &names)
                    .await
                    .ok()?;
                // A Job at its activeDeadlineSeconds has its pods deleted and is not replaced.
                let past_deadline = job
                    .spec
                    .as_ref()
                    .and_then(|s| s.active_deadline_seconds)
                    .zip(job.status.as_ref().and_then(|s| s.start_time.as_ref()))
                    .is_some_and(|(seconds, start)| {
                        let end = start.0.as_second().saturating_add(seconds);
                        k8s_openapi::jiff::Timestamp::now().as_second() >= end
                    });
                let failed = job
                    .status
                    .iter()
                    .flat_map(|s| s.conditions.iter().flatten())
                    .any(|c| c.type_ == "Failed" && c.status == "True");
                (alive(&owner.metadata)
                    && alive(&job.metadata)
                    && !past_deadline
                    && !failed
                    && stored > 0)
                    .then(|| {
                    format!(
                        "run {id} and its Job go on (this pod is being replaced: evicted, drained) and its checkpoint is stored"
                    )
                })
            };
            tokio::time::timeout(std::time::Duration::from_secs(5), asked)
                .await
                .ok()
                .flatten()
        })
    }))
}
