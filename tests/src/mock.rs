//! A scripted Kubernetes API server: each expected request (method, path, and the query
//! parameters that matter) gets its canned answer, in order. The requests the client really
//! made are recorded, so a test asserts the exact sequence; a request off the script is
//! answered with an error and recorded, so the test sees it.

use serde_json::{Value, json};

/// One expected request and its answer.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// `GET`, `POST`, …
    pub method: &'static str,
    /// The path, e.g. `/api/v1/namespaces/rook-ceph/configmaps`.
    pub path: String,
    /// Substrings the query string must contain (e.g. a label selector).
    pub query: Vec<String>,
    /// HTTP status of the answer.
    pub status: u16,
    /// JSON body of the answer.
    pub body: Value,
}

impl Exchange {
    /// `method path` answered `200 body`.
    pub fn ok(method: &'static str, path: impl Into<String>, body: Value) -> Self {
        Self {
            method,
            path: path.into(),
            query: Vec::new(),
            status: 200,
            body,
        }
    }

    /// `method path` answered `404 Not Found`.
    pub fn not_found(method: &'static str, path: impl Into<String>) -> Self {
        let path = path.into();
        Self {
            method,
            body: json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                         "reason": "NotFound", "code": 404, "message": format!("{path} not found")}),
            path,
            query: Vec::new(),
            status: 404,
        }
    }

    /// `method path` refused: `403 Forbidden` with `message` (as admission refuses an object).
    pub fn forbidden(method: &'static str, path: impl Into<String>, message: &str) -> Self {
        Self {
            method,
            path: path.into(),
            query: Vec::new(),
            status: 403,
            body: json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                         "reason": "Forbidden", "code": 403, "message": message}),
        }
    }

    /// The query string must contain `part`.
    pub fn with_query(mut self, part: &str) -> Self {
        self.query.push(part.to_string());
        self
    }
}

/// A request as the client sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    /// Method.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// JSON body, if any.
    pub body: Option<Value>,
}

impl Seen {
    /// The request as the client sent it.
    async fn read(request: http::Request<kube::client::Body>) -> Self {
        use http_body_util::BodyExt;
        let method = request.method().to_string();
        let uri = request.uri().to_string();
        let bytes = request
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Self {
            method,
            uri,
            body: serde_json::from_slice(&bytes).ok(),
        }
    }
}

/// Serves `script` to the returned client; the handle yields every request seen and whether
/// each matched its exchange.
pub fn serve(
    script: Vec<Exchange>,
) -> (
    kube::Client,
    tokio::task::JoinHandle<Result<Vec<Seen>, String>>,
) {
    let (service, mut handle) = tower_test::mock::pair::<
        http::Request<kube::client::Body>,
        http::Response<kube::client::Body>,
    >();
    let task = tokio::spawn(async move {
        let mut seen = Vec::new();
        for (i, exchange) in script.into_iter().enumerate() {
            let Some((request, respond)) = handle.next_request().await else {
                return Err(format!(
                    "the client stopped after {i} requests; next expected {} {}",
                    exchange.method, exchange.path
                ));
            };
            let request = Seen::read(request).await;
            let (method, uri) = (request.method.clone(), request.uri.clone());
            seen.push(request);
            let path = uri.split('?').next().unwrap_or_default();
            let query = percent_decoded(uri.split_once('?').map_or("", |(_, q)| q));
            if method != exchange.method
                || path != exchange.path
                || !exchange.query.iter().all(|q| query.contains(q.as_str()))
            {
                return Err(format!(
                    "request {}: expected {} {} (query with {:?}), got {method} {uri}",
                    i + 1,
                    exchange.method,
                    exchange.path,
                    exchange.query
                ));
            }
            let response = http::Response::builder()
                .status(exchange.status)
                .header("content-type", "application/json")
                .body(kube::client::Body::from(
                    serde_json::to_vec(&exchange.body).unwrap_or_default(),
                ))
                .map_err(|e| e.to_string())?;
            respond.send_response(response);
        }
        Ok(seen)
    });
    (kube::Client::new(service, "default"), task)
}

/// What a route-based fake API server answers: a status and a body (JSON or plain text), or
/// nothing yet (a watch held open until the client goes away).
#[derive(Debug)]
pub enum Answer {
    /// This status and body.
    Body(u16, Vec<u8>),
    /// Hold the request open.
    Hold,
}

impl Answer {
    /// `200` with `value` as JSON.
    pub fn json(value: Value) -> Self {
        Self::Body(200, serde_json::to_vec(&value).unwrap_or_default())
    }
}

/// A fake API server that answers each request by `route(method, uri, body)`, in whatever
/// order the client sends them (for flows with concurrent watches, where a script's order
/// cannot be known). The handle yields every request seen, once the client is dropped.
pub fn serve_routes(
    mut route: impl FnMut(&str, &str, Option<&Value>) -> Answer + Send + 'static,
) -> (kube::Client, tokio::task::JoinHandle<Vec<Seen>>) {
    let (service, mut handle) = tower_test::mock::pair::<
        http::Request<kube::client::Body>,
        http::Response<kube::client::Body>,
    >();
    let task = tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut held = Vec::new();
        while let Some((request, respond)) = handle.next_request().await {
            let Seen { method, uri, body } = Seen::read(request).await;
            let uri = percent_decoded(&uri);
            match route(&method, &uri, body.as_ref()) {
                Answer::Body(status, bytes) => {
                    if let Ok(response) = http::Response::builder()
                        .status(status)
                        .body(kube::client::Body::from(bytes))
                    {
                        respond.send_response(response);
                    }
                }
                Answer::Hold => held.push(respond),
            }
            seen.push(Seen { method, uri, body });
        }
        seen
    });
    (kube::Client::new(service, "default"), task)
}

fn percent_decoded(uri: &str) -> String {
    uri.replace("%3D", "=")
        .replace("%2C", ",")
        .replace("%2F", "/")
        .replace("%3A", ":")
        .replace("%28", "(")
        .replace("%29", ")")
        .replace('+', " ")
}

/// An answer to a SelfSubjectAccessReview.
pub fn access(allowed: bool) -> Value {
    json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
           "spec": {}, "status": {"allowed": allowed}})
}

/// A list of `kind` with `items`.
pub fn list(api_version: &str, kind: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": api_version, "kind": format!("{kind}List"),
           "metadata": {"resourceVersion": "1"}, "items": items})
}

/// A node with labels, taints, Ready status and cordon flag.
pub fn node(name: &str, labels: Value, taints: Value, ready: bool, cordoned: bool) -> Value {
    node_in_state(
        name,
        labels,
        taints,
        if ready { "True" } else { "False" },
        cordoned,
    )
}

/// A node whose Ready condition has `ready` as its status (`True`, `False`, `Unknown`).
pub fn node_in_state(
    name: &str,
    labels: Value,
    taints: Value,
    ready: &str,
    cordoned: bool,
) -> Value {
    json!({"apiVersion": "v1", "kind": "Node",
           "metadata": {"name": name, "labels": labels},
           "spec": {"taints": taints, "unschedulable": cordoned},
           "status": {"conditions": [{"type": "Ready", "status": ready}]}})
}

/// A NetworkAttachmentDefinition with `config`.
pub fn nad(namespace: &str, name: &str, config: &str) -> Value {
    json!({"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
           "metadata": {"name": name, "namespace": namespace},
           "spec": {"config": config}})
}
