//! Probes: what a client sends to the server and how the outcome is classified.
//!
//! Addresses only, no DNS. A probe is one HTTP(S) request over one network from one client to the
//! server's address on that network; its kind says which scheme, payload and connection reuse.

use serde::{Deserialize, Serialize};

/// HTTP or HTTPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

/// Payload size class: large payloads find MTU black holes that small ones pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Payload {
    /// A response that fits one packet.
    Small,
    /// A response of many full-size segments.
    Large,
}

/// Whether the probe opened a fresh connection or reused a kept-alive one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Connection {
    /// New TCP (and TLS) handshake.
    Fresh,
    /// Reused connection.
    KeptAlive,
}

/// The kind of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProbeKind {
    /// HTTP or HTTPS.
    pub scheme: Scheme,
    /// Small or large response.
    pub payload: Payload,
    /// Fresh or kept-alive connection.
    pub connection: Connection,
}

/// Why a probe failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// The server's address answered with a reset: nothing listens, or a firewall rejects.
    ConnectRefused,
    /// No answer to the connection attempt in time: packets dropped on the way.
    ConnectTimeout,
    /// The kernel found no way to the address: no route, or the neighbour (ARP/NDP) did not
    /// answer — on one L2 segment, a blocked or missing link.
    Unreachable,
    /// The TLS handshake failed.
    Tls,
    /// The server answered with an unexpected HTTP status.
    HttpStatus(u16),
    /// The response ended before the announced length.
    ShortBody,
    /// Connected, but the response did not arrive in time (typical of MTU black holes).
    ReadTimeout,
    /// Any other I/O failure (address not available, reset mid-response, …).
    Io,
}

/// The outcome of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The response arrived whole.
    Ok,
    /// The probe failed.
    Failed(FailureClass),
}

impl std::fmt::Display for FailureClass {
    /// `connect_refused`, `http_status_503`, …: the names reports and metrics use.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FailureClass::ConnectRefused => f.write_str("connect_refused"),
            FailureClass::ConnectTimeout => f.write_str("connect_timeout"),
            FailureClass::Unreachable => f.write_str("unreachable"),
            FailureClass::Tls => f.write_str("tls"),
            FailureClass::HttpStatus(code) => write!(f, "http_status_{code}"),
            FailureClass::ShortBody => f.write_str("short_body"),
            FailureClass::ReadTimeout => f.write_str("read_timeout"),
            FailureClass::Io => f.write_str("io"),
        }
    }
}
