//! Errors of the Kubernetes API as a person reads them. kube's own `Display` of a refusal is
//! `ApiError: <message>: <reason> (<the Status, debug-printed>)`, and its source repeats the
//! message again: printed with its causes, one 403 reads as the message three times inside
//! a dump of the client's structs. Every error from the API that reaches a user goes through
//! [`said`] (or [`ApiResultExt::said`]) first: the API server's message and its HTTP code,
//! once; other errors (connection, TLS, decoding) as their chain of causes, each cause once.

/// An error of a Kubernetes API call, ready to be shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KubeError {
    /// The API server answered with a failure Status.
    #[error("{message} ({code}{})", with_space(.reason))]
    Api {
        /// The Status message (what was refused, and why).
        message: String,
        /// The HTTP code (403, 404, 422, …).
        code: u16,
        /// The machine-readable reason (`Forbidden`, `NotFound`, `Invalid`, …).
        reason: String,
    },
    /// The request did not get an answer from the API server (connection, TLS, decoding):
    /// its causes, each once.
    #[error("{0}")]
    Request(String),
}

/// ` reason`, or nothing.
fn with_space(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(" {reason}")
    }
}

impl KubeError {
    /// The HTTP code, when the API server answered.
    pub fn code(&self) -> Option<u16> {
        match self {
            Self::Api { code, .. } => Some(*code),
            Self::Request(_) => None,
        }
    }
}

/// `e` as a user reads it.
pub fn said(e: kube::Error) -> KubeError {
    match e {
        kube::Error::Api(status) => KubeError::Api {
            message: status.message.clone(),
            code: status.code,
            reason: status.reason.clone(),
        },
        other => KubeError::Request(causes(&other)),
    }
}

/// A watch's error as a user reads it.
pub fn said_watch(e: kube::runtime::watcher::Error) -> KubeError {
    use kube::runtime::watcher::Error as W;
    match e {
        W::InitialListFailed(e) | W::WatchStartFailed(e) | W::WatchFailed(e) => said(e),
        W::WatchError(status) => said(kube::Error::Api(status)),
        other => KubeError::Request(causes(&other)),
    }
}

/// An error and its causes, joined with `: `, leaving out a cause whose text is said already
/// (wrappers often repeat their source's message in their own).
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

/// [`said`] on a result.
pub trait ApiResultExt<T> {
    /// The error, as a user reads it.
    fn said(self) -> Result<T, KubeError>;
}

impl<T> ApiResultExt<T> for Result<T, kube::Error> {
    fn said(self) -> Result<T, KubeError> {
        self.map_err(said)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_its_message_and_code_once() {
        let message = "networkattachmentdefinitions.k8s.cni.cncf.io \"public-net\" is forbidden: User \"system:serviceaccount:rook-ceph:multinet\" cannot get resource \"network-attachment-definitions\" in API group \"k8s.cni.cncf.io\" in the namespace \"nets\"";
        let e = kube::Error::Api(
            kube::core::Status::failure(message, "Forbidden")
                .with_code(403)
                .boxed(),
        );
        // What kube prints by itself, with its causes: the message twice, and once more
        // inside a debug dump of the Status.
        let raw = crate::exit::chain(&e);
        assert!(
            raw.matches(message).count() == 2 && raw.contains("Status { status: Some(Failure)"),
            "{raw}"
        );
        let e = kube::Error::Api(
            kube::core::Status::failure(message, "Forbidden")
                .with_code(403)
                .boxed(),
        );
        let shown = crate::exit::chain(&said(e));
        assert_eq!(shown, format!("{message} (403 Forbidden)"));
    }
}
