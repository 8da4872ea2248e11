//! The report's columns: each metric, its heading, CSV key and value on a path, and the groups
//! the text report's per-path tables show them in.

use multinet_agent::load::LoadKind;

use super::PathResult;

/// A column of the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Download, one connection, Gbit/s.
    Download1,
    /// Download, `--streams` connections.
    DownloadN,
    /// Upload, one connection.
    Upload1,
    /// Upload, `--streams` connections.
    UploadN,
    /// Request/response on a kept-alive connection, per second.
    Rr,
    /// Its latency percentiles, µs.
    RrP50,
    /// 90th.
    RrP90,
    /// 99th.
    RrP99,
    /// 99.9th.
    RrP999,
    /// New connection + request, per second.
    Crr,
    /// New connection + full TLS handshake + request, per second.
    Tls,
    /// Client CPU during the one-connection download, % of one core.
    ClientCpu,
    /// Server agent CPU during it.
    ServerCpu,
    /// TCP MSS of the download's connection.
    Mss,
    /// The kernel's path MTU of it (IPv4 and IPv6).
    PathMtu,
    /// multinet's one-connection upload over iperf3's on the same path.
    Iperf3Upload,
    /// multinet's one-connection download over iperf3's (`-R`).
    Iperf3Download,
}

/// Every column, in order.
pub const METRICS: [Metric; 17] = [
    Metric::Download1,
    Metric::DownloadN,
    Metric::Upload1,
    Metric::UploadN,
    Metric::Rr,
    Metric::RrP50,
    Metric::RrP90,
    Metric::RrP99,
    Metric::RrP999,
    Metric::Crr,
    Metric::Tls,
    Metric::ClientCpu,
    Metric::ServerCpu,
    Metric::Mss,
    Metric::PathMtu,
    Metric::Iperf3Upload,
    Metric::Iperf3Download,
];

/// The text report's per-path tables, one per group of related columns, each keyed by path:
/// together the groups hold every [`METRICS`] column once. The path and 17 metrics in one
/// table were some 150 characters wide; a group is at most 7 metrics, under 80 characters with
/// lab-style node names (`n1 → n2`). Read as a QA engineer reads a path: how fast (throughput, with
/// iperf3 beside it as the yardstick), how responsive (request rates and latency), and what
/// it cost and carried (CPU of both ends, segment sizes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricGroup {
    /// Bulk throughput both ways, 1 and `--streams` connections, and multinet's
    /// one-connection figures over iperf3's on the same path.
    Throughput,
    /// Request/response rate and latency percentiles, new connections and TLS handshakes
    /// per second.
    Requests,
    /// What the one-connection download cost and found: CPU of client and server agent, TCP
    /// MSS and path MTU.
    DownloadCost,
}

impl MetricGroup {
    /// Every group, in the order the text report prints them.
    pub const ALL: [MetricGroup; 3] = [Self::Throughput, Self::Requests, Self::DownloadCost];

    /// Its columns, in order.
    pub fn metrics(self) -> &'static [Metric] {
        match self {
            Self::Throughput => &[
                Metric::Download1,
                Metric::DownloadN,
                Metric::Upload1,
                Metric::UploadN,
                Metric::Iperf3Download,
                Metric::Iperf3Upload,
            ],
            Self::Requests => &[
                Metric::Rr,
                Metric::RrP50,
                Metric::RrP90,
                Metric::RrP99,
                Metric::RrP999,
                Metric::Crr,
                Metric::Tls,
            ],
            Self::DownloadCost => &[
                Metric::ClientCpu,
                Metric::ServerCpu,
                Metric::Mss,
                Metric::PathMtu,
            ],
        }
    }

    /// The line above its table: what its columns are and their units.
    pub fn title(self) -> &'static str {
        match self {
            Self::Throughput => {
                "throughput, Gbit/s, and one connection's over iperf3's on the path"
            }
            Self::Requests => "requests per second and request/response latency, µs",
            Self::DownloadCost => {
                "one-connection download: CPU, % of one core; MSS and path MTU, bytes"
            }
        }
    }
}

impl Metric {
    /// Its heading in a text table.
    pub fn heading(self, streams: u32) -> String {
        match self {
            Metric::Download1 => "down×1".into(),
            Metric::DownloadN => format!("down×{streams}"),
            Metric::Upload1 => "up×1".into(),
            Metric::UploadN => format!("up×{streams}"),
            Metric::Rr => "RR/s".into(),
            Metric::RrP50 => "p50 µs".into(),
            Metric::RrP90 => "p90".into(),
            Metric::RrP99 => "p99".into(),
            Metric::RrP999 => "p99.9".into(),
            Metric::Crr => "CRR/s".into(),
            Metric::Tls => "TLS/s".into(),
            Metric::ClientCpu => "client%".into(),
            Metric::ServerCpu => "server%".into(),
            Metric::Mss => "MSS".into(),
            Metric::PathMtu => "PMTU".into(),
            Metric::Iperf3Upload => "up/iperf3".into(),
            Metric::Iperf3Download => "down/iperf3".into(),
        }
    }

    /// Its name in CSV and in the side-by-side tables' titles.
    pub fn key(self) -> &'static str {
        match self {
            Metric::Download1 => "download_1_gbit_per_s",
            Metric::DownloadN => "download_n_gbit_per_s",
            Metric::Upload1 => "upload_1_gbit_per_s",
            Metric::UploadN => "upload_n_gbit_per_s",
            Metric::Rr => "rr_per_s",
            Metric::RrP50 => "rr_p50_us",
            Metric::RrP90 => "rr_p90_us",
            Metric::RrP99 => "rr_p99_us",
            Metric::RrP999 => "rr_p999_us",
            Metric::Crr => "crr_per_s",
            Metric::Tls => "tls_per_s",
            Metric::ClientCpu => "client_cpu_percent",
            Metric::ServerCpu => "server_cpu_percent",
            Metric::Mss => "tcp_mss",
            Metric::PathMtu => "path_mtu",
            Metric::Iperf3Upload => "upload_over_iperf3",
            Metric::Iperf3Download => "download_over_iperf3",
        }
    }

    /// Its value on `path` (`streams`: the parallel tests' connections).
    pub fn of(self, path: &PathResult, streams: u32) -> Option<f64> {
        let rr = || path.outcome(LoadKind::RequestResponse, 1);
        let latency = || rr().and_then(|o| o.latency_us);
        let down1 = || path.test(LoadKind::Download, 1);
        let gbit = |kind, n| path.outcome(kind, n).and_then(|o| o.gbit_per_s);
        let rate = |kind| path.outcome(kind, 1).and_then(|o| o.per_second);
        let ratio = |ours: Option<f64>, theirs: Option<f64>| {
            ours.zip(theirs.filter(|t| *t > 0.0)).map(|(o, t)| o / t)
        };
        match self {
            Metric::Download1 => gbit(LoadKind::Download, 1),
            Metric::DownloadN => gbit(LoadKind::Download, streams),
            Metric::Upload1 => gbit(LoadKind::Upload, 1),
            Metric::UploadN => gbit(LoadKind::Upload, streams),
            Metric::Rr => rate(LoadKind::RequestResponse),
            Metric::RrP50 => latency().map(|l| l.p50 as f64),
            Metric::RrP90 => latency().map(|l| l.p90 as f64),
            Metric::RrP99 => latency().map(|l| l.p99 as f64),
            Metric::RrP999 => latency().map(|l| l.p999 as f64),
            Metric::Crr => rate(LoadKind::ConnectRequest),
            Metric::Tls => rate(LoadKind::TlsHandshakeRequest),
            Metric::ClientCpu => down1()
                .and_then(|t| t.outcome.as_ref())
                .and_then(|o| o.cpu_seconds.map(|c| 100.0 * c / o.seconds)),
            Metric::ServerCpu => down1().and_then(|t| {
                let o = t.outcome.as_ref()?;
                Some(100.0 * t.server_cpu_seconds? / o.seconds)
            }),
            Metric::Mss => path
                .outcome(LoadKind::Download, 1)
                .and_then(|o| o.tcp_mss)
                .map(f64::from),
            Metric::PathMtu => path
                .outcome(LoadKind::Download, 1)
                .and_then(|o| o.path_mtu)
                .map(f64::from),
            Metric::Iperf3Upload => ratio(
                gbit(LoadKind::Upload, 1),
                path.iperf3.as_ref().and_then(|i| i.upload_gbit_per_s),
            ),
            Metric::Iperf3Download => ratio(
                gbit(LoadKind::Download, 1),
                path.iperf3.as_ref().and_then(|i| i.download_gbit_per_s),
            ),
        }
    }

    /// A value as a cell.
    pub(super) fn cell(self, value: Option<f64>) -> String {
        let Some(v) = value else {
            return "-".into();
        };
        match self {
            Metric::Download1 | Metric::DownloadN | Metric::Upload1 | Metric::UploadN => {
                format!("{v:.2}")
            }
            Metric::Iperf3Upload | Metric::Iperf3Download => format!("{v:.2}×"),
            _ => format!("{v:.0}"),
        }
    }
}
