//! `multinet spec check` and `multinet config` as a user runs them: the real binary, the example
//! files in deploy/, exit codes, and snapshots of text and JSON output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Runs `multinet ARGS` from the workspace root (so file names in the output are stable).
fn multinet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_multinet"))
        .args(args)
        .current_dir(workspace_root())
        .output()
        .expect("multinet runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("UTF-8 output")
}

/// A scratch file removed when dropped, also when the test fails.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("multinet-test-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).expect("write temp file");
        TempFile(path)
    }
    fn path(&self) -> &str {
        self.0.to_str().expect("UTF-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

const EXAMPLES: &[(&str, &str)] = &[
    ("multus_short", "deploy/examples/cephcluster-multus.yaml"),
    (
        "multus_json",
        "deploy/examples/cephcluster-multus-json.yaml",
    ),
    ("host", "deploy/examples/cephcluster-host.yaml"),
    (
        "legacy_host_network",
        "deploy/examples/cephcluster-legacy-hostnetwork.yaml",
    ),
    ("dual_stack", "deploy/examples/network-dual-stack.yaml"),
];

#[test]
fn every_example_is_valid_text_and_json() {
    for (name, file) in EXAMPLES {
        let text = multinet(&[
            "spec",
            "check",
            file,
            "--nads",
            "deploy/examples/nads.yaml",
            "--nodes",
            "3",
        ]);
        assert_eq!(text.status.code(), Some(0), "{file}: {}", stdout(&text));
        insta::assert_snapshot!(format!("{name}_text"), stdout(&text));
        let json = multinet(&[
            "spec",
            "check",
            file,
            "--nads",
            "deploy/examples/nads.yaml",
            "-o",
            "json",
        ]);
        assert_eq!(json.status.code(), Some(0));
        let value: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON output");
        insta::assert_json_snapshot!(format!("{name}_json"), value);
    }
}

#[test]
fn json_has_the_documented_keys() {
    let out = multinet(&[
        "spec",
        "check",
        "deploy/examples/cephcluster-multus.yaml",
        "--nads",
        "deploy/examples/nads.yaml",
        "--nodes",
        "3",
        "-o",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    for key in [
        "provider",
        "networks",
        "osd_annotation",
        "daemon_annotation",
        "ceph",
        "ms_bind_flags",
        "warnings",
        "errors",
        "nads",
        "capacity",
    ] {
        assert!(v.get(key).is_some(), "missing key {key}");
    }
    assert_eq!(
        v["networks"]["public"]["selection"]["namespace"],
        "rook-ceph"
    );
    assert_eq!(v["ceph"]["public_network"], "192.168.20.0/24");
    assert_eq!(v["nads"][0]["capacity"], 254);
    assert_eq!(v["capacity"]["checks"][0]["demand"], 58);
}

#[test]
fn invalid_spec_exits_22_listing_every_error() {
    let spec = TempFile::new(
        "bad-spec.yaml",
        "kind: CephCluster\nspec:\n  network:\n    provider: multus\n    selectors:\n      public: 'Bad_Name'\n    ipFamily: IPv5\n",
    );
    let out = multinet(&["spec", "check", spec.path()]);
    assert_eq!(out.status.code(), Some(22));
    let text = stdout(&out);
    assert!(text.contains("spec.network.selectors.public: "), "{text}");
    assert!(
        text.contains("spec.network.ipFamily: must be \"IPv4\" or \"IPv6\", found \"IPv5\""),
        "{text}"
    );
    assert!(text.contains("INVALID: 2 error(s)"), "{text}");
}

#[test]
fn malformed_yaml_names_file_line_and_column() {
    let spec = TempFile::new(
        "malformed.yaml",
        "kind: CephCluster\nspec:\n  network: [provider: multus\n",
    );
    let out = multinet(&["spec", "check", spec.path(), "-o", "json"]);
    assert_eq!(out.status.code(), Some(22));
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("JSON even for malformed input");
    let message = v["errors"][0]["message"].as_str().expect("an error");
    assert_eq!(v["errors"][0]["field"], spec.path());
    assert!(message.contains("line 3 column"), "{message}");
    assert_eq!(v["errors"].as_array().map(Vec::len), Some(1));
}

#[test]
fn missing_nad_and_missing_file_are_invalid() {
    let nads = TempFile::new(
        "nads-other.yaml",
        "apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata: {name: other, namespace: rook-ceph}\nspec: {config: '{\"type\": \"macvlan\"}'}\n",
    );
    let out = multinet(&[
        "spec",
        "check",
        "deploy/examples/cephcluster-multus.yaml",
        "--nads",
        nads.path(),
    ]);
    assert_eq!(out.status.code(), Some(22));
    let text = stdout(&out);
    assert!(text.contains("spec.network.selectors.public: selects NetworkAttachmentDefinition rook-ceph/public-net"), "{text}");
    let out = multinet(&["spec", "check", "no/such/file.yaml"]);
    assert_eq!(out.status.code(), Some(22));
    assert!(stdout(&out).contains("no/such/file.yaml: cannot read: no such file"));
}

#[test]
fn capacity_shortfall_will_not_work_exit_1_with_the_arithmetic() {
    let config = TempFile::new(
        "big-nodes.yaml",
        "publicNetwork: public-net\nclusterNetwork: cluster-net\nnodeTypes:\n  big:\n    osdsPerNode: 12\n    otherDaemonsPerNode: 16\n",
    );
    let out = multinet(&[
        "spec",
        "check",
        "deploy/examples/cephcluster-multus.yaml",
        "--nads",
        "deploy/examples/nads.yaml",
        "--nodes",
        "6",
        "-c",
        config.path(),
    ]);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "valid, but will not work as configured: {text}"
    );
    assert!(text.contains("cluster: 6 nodes × 12 clients + 1 server address(es) = 73; whereabouts (192.168.30.0/26) can hand out 62"), "{text}");
    assert!(text.contains("DOES NOT FIT"), "{text}");
    assert!(text.contains("\nwill not work (1)\n  - NetworkAttachmentDefinition rook-ceph/cluster-net: too few addresses"), "{text}");
    assert!(
        text.ends_with("valid, but WILL NOT WORK as configured: 1 problem(s) (0 warning(s))\n"),
        "{text}"
    );
    let json = multinet(&[
        "spec",
        "check",
        "deploy/examples/cephcluster-multus.yaml",
        "--nads",
        "deploy/examples/nads.yaml",
        "--nodes",
        "6",
        "-c",
        config.path(),
        "-o",
        "json",
    ]);
    assert_eq!(json.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(v["valid"], true);
    assert_eq!(
        v["will_not_work"][0]["field"],
        "NetworkAttachmentDefinition rook-ceph/cluster-net"
    );
}

#[test]
fn host_local_and_dhcp_capacities_are_told_as_they_are() {
    let out = multinet(&[
        "spec",
        "check",
        "deploy/examples/cephcluster-multus.yaml",
        "--nads",
        "deploy/examples/nads-host-local-dhcp.yaml",
        "--nodes",
        "3",
    ]);
    let text = stdout(&out);
    // 20 addresses needed per node, 13 there: valid, but it will not work.
    assert_eq!(out.status.code(), Some(1), "{text}");
    // host-local: 198.18.0.2–.14 minus nothing (the gateway .1 is outside) is 13, per node.
    assert!(
        text.contains("IPAM host-local: capacity 13 pod(s)"),
        "{text}"
    );
    assert!(
        text.contains("range set 1 (IPv4): 13 usable, one address per pod"),
        "{text}"
    );
    assert!(text.contains("198.18.0.2 – 198.18.0.14"), "{text}");
    assert!(
        text.contains("host-local allocates on each node separately"),
        "{text}"
    );
    // …so the worst case compares per node: 19 clients + the server on its node = 20 > 13.
    assert!(
        text.contains("per node (host-local allocates per node) 19 clients + 1 server address(es) on the server's node = 20; host-local (198.18.0.0/28) can hand out 13"),
        "{text}"
    );
    // dhcp: capacity unknown, and said why.
    assert!(text.contains("IPAM dhcp: capacity unknown"), "{text}");
    assert!(
        text.contains("the DHCP server decides the capacity"),
        "{text}"
    );
    assert!(
        text.contains("cluster: 3 nodes × 3 clients + 1 server address(es) = 10; capacity unknown"),
        "{text}"
    );
    let json = multinet(&[
        "spec",
        "check",
        "deploy/examples/cephcluster-multus.yaml",
        "--nads",
        "deploy/examples/nads-host-local-dhcp.yaml",
        "-o",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    let nads = v["nads"].as_array().expect("nads");
    assert_eq!(nads[0]["capacity"], 13);
    assert_eq!(nads[1]["capacity"], serde_json::Value::Null);
}

#[test]
fn config_samples_pass_their_own_check() {
    for kind in ["converged", "dedicated-storage-nodes", "stretch-cluster"] {
        let out = multinet(&["config", "sample", kind]);
        assert_eq!(out.status.code(), Some(0));
        let sample = TempFile::new(&format!("{kind}.yaml"), &stdout(&out));
        let check = multinet(&["config", "check", sample.path()]);
        assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
        let text = stdout(&check).replace(sample.path(), "SAMPLE");
        insta::assert_snapshot!(format!("config_check_{kind}"), text);
    }
}

#[test]
fn config_check_lists_every_problem() {
    let bad = TempFile::new(
        "bad-config.yaml",
        "namespace: ''\nresourceTimeout: 30s\nflakyThreshold: 2s\nnodeTypes:\n  Bad_Type: {osdsPerNode: 0}\n",
    );
    let out = multinet(&["config", "check", bad.path(), "-o", "json"]);
    assert_eq!(out.status.code(), Some(22));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let fields: Vec<&str> = v["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    for want in [
        "namespace",
        "publicNetwork",
        "resourceTimeout",
        "flakyThreshold",
        "nodeTypes.Bad_Type",
    ] {
        assert!(fields.contains(&want), "{want} not in {fields:?}");
    }
}

#[test]
fn usage_errors_exit_22() {
    assert_eq!(multinet(&["spec", "check"]).status.code(), Some(22));
    assert_eq!(
        multinet(&["config", "sample", "nope"]).status.code(),
        Some(22)
    );
    assert_eq!(multinet(&["--help"]).status.code(), Some(0));
}

#[test]
fn readme_example_output_is_what_multinet_prints() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).expect("README.md");
    let example = readme
        .split("### Example: `spec check`")
        .nth(1)
        .and_then(|rest| rest.split("```text\n").nth(1))
        .and_then(|block| block.split("```").next())
        .expect("README has the spec check example block");
    let out = multinet(&[
        "spec",
        "check",
        "deploy/examples/cephcluster-multus.yaml",
        "--nads",
        "deploy/examples/nads.yaml",
        "--nodes",
        "3",
    ]);
    assert_eq!(
        stdout(&out),
        example,
        "README's example is stale: update it from the command's output"
    );
}

/// Runs `spec check` on a bare `network:` document and one NAD config, with `--nodes 3`.
fn check_with_nad(network: &str, config: &str, name: &str) -> (Output, TempFile, TempFile) {
    let spec = TempFile::new(&format!("{name}-spec.yaml"), network);
    let nads = TempFile::new(
        &format!("{name}-nads.yaml"),
        &format!(
            "apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata: {{name: pub, namespace: rook-ceph}}\nspec:\n  config: '{config}'\n"
        ),
    );
    let out = multinet(&[
        "spec",
        "check",
        spec.path(),
        "--nads",
        nads.path(),
        "--nodes",
        "3",
    ]);
    (out, spec, nads)
}

#[test]
fn what_the_plugins_refuse_is_invalid_exit_22() {
    let network = "network: {provider: multus, selectors: {public: pub}, addressRanges: {public: [192.0.0.0/8]}}\n";
    let cases = [
        // host-local refuses a subnet with host bits set (range.go Canonicalize).
        (
            r#"{"cniVersion": "0.3.1", "type": "macvlan", "master": "eth1", "ipam": {"type": "host-local", "subnet": "192.0.2.12/24"}}"#,
            "spec.config.ipam.subnet: 192.0.2.12/24 has host bits set",
        ),
        // whereabouts refuses a START outside END/PREFIX's network (config.go LoadIPAMConfig).
        (
            r#"{"cniVersion": "0.3.1", "type": "macvlan", "master": "eth1", "ipam": {"type": "whereabouts", "range": "192.168.1.5-192.168.2.25/28"}}"#,
            "the start 192.168.1.5 lies outside 192.168.2.16/28",
        ),
    ];
    for (i, (config, want)) in cases.iter().enumerate() {
        let (out, _spec, _nads) = check_with_nad(network, config, &format!("refused-{i}"));
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(22), "{text}");
        assert!(text.contains(want), "{want}: {text}");
        assert!(
            !text.contains("range_start"),
            "no key the user never wrote: {text}"
        );
    }
}

#[test]
fn an_ipv6_only_network_ceph_will_not_bind_exits_1() {
    let (out, _spec, _nads) = check_with_nad(
        "network: {provider: multus, selectors: {public: pub}}\n",
        r#"{"cniVersion": "0.3.1", "type": "macvlan", "master": "eth1", "ipam": {"type": "whereabouts", "range": "fd00:20::/120"}}"#,
        "ipv6-only",
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("network.selectors.public: Ceph binds IPv4 (ipFamily unset"),
        "{text}"
    );
    let (out, _spec, _nads) = check_with_nad(
        "network: {provider: multus, selectors: {public: pub}, ipFamily: IPv6}\n",
        r#"{"cniVersion": "0.3.1", "type": "macvlan", "master": "eth1", "ipam": {"type": "whereabouts", "range": "fd00:20::/120"}}"#,
        "ipv6-set",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn too_many_separators_are_named_as_such() {
    let spec = TempFile::new(
        "separators.yaml",
        "network: {provider: multus, selectors: {public: root@a/root@b/root@c}}\n",
    );
    let out = multinet(&["spec", "check", spec.path()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(22), "{text}");
    assert!(
        text.contains(
            "network.selectors.public: \"root@a/root@b/root@c\": has 2 '/' where at most one"
        ),
        "{text}"
    );
    let error = text
        .lines()
        .find(|l| l.contains("network.selectors.public:"))
        .expect("the error line");
    assert!(
        !error.contains("the namespace") && !error.contains("must be lowercase"),
        "not a bad-namespace problem: {error}"
    );
}

#[test]
fn help_documents_the_exit_codes() {
    let out = multinet(&["spec", "check", "--help"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0));
    for want in [
        "0 valid and will work",
        "1 valid but will not work as configured",
        "22 invalid",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
}

// `spec check --pods` / `--ippools`: the live state, from the example objects in
// deploy/examples/live (written from the real formats; their headers cite the sources).

const PODS_HEALTHY: &str = "deploy/examples/live/pods-healthy.yaml";
const PODS_BROKEN: &str = "deploy/examples/live/pods-broken.yaml";
const IPPOOLS: &str = "deploy/examples/live/ippools.yaml";

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

#[test]
fn live_pods_without_a_manifest() {
    let healthy = multinet(&["spec", "check", "--pods", PODS_HEALTHY]);
    assert_eq!(healthy.status.code(), Some(0), "{}", stdout(&healthy));
    assert!(
        stdout(&healthy).contains("6 pod(s), 4 with Multus attachments checked"),
        "{}",
        stdout(&healthy)
    );

    let broken = multinet(&["spec", "check", "--pods", PODS_BROKEN]);
    assert_eq!(broken.status.code(), Some(1), "{}", stdout(&broken));
    let text = stdout(&broken);
    assert!(
        text.contains(
            "duplicate_address: pods rook-ceph/rook-ceph-osd-0-6d5f8b7c9-x2x7k (node worker-a) and \
             rook-ceph/rook-ceph-osd-1-7f9c6d8b5-q8w4z (node worker-b) both hold 192.168.30.2 \
             on network rook-ceph/cluster-net"
        ),
        "{text}"
    );
    assert!(
        text.contains("host-local allocates on each node on its own"),
        "{text}"
    );

    let out = multinet(&["spec", "check", "--pods", PODS_BROKEN, "-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    let kinds: Vec<&str> = v["live"]["attachments"]
        .as_array()
        .expect("attachments")
        .iter()
        .filter_map(|a| a["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["no_status", "interface_missing", "no_address"]);
    let dup = &v["live"]["duplicates"][0];
    assert_eq!(dup["address"], "192.168.30.2");
    assert_eq!(dup["pods"][0]["node"], "worker-a");
    assert_eq!(dup["pods"][1]["node"], "worker-b");
    let will_not_work = v["will_not_work"].as_array().expect("will_not_work");
    assert_eq!(will_not_work.len(), 4);
    assert!(
        will_not_work
            .iter()
            .any(|p| p["field"] == "duplicate_address")
    );
}

#[test]
fn live_pods_from_standard_input() {
    let text = std::fs::read_to_string(workspace_root().join(PODS_BROKEN)).expect("example");
    let mut child = Command::new(env!("CARGO_BIN_EXE_multinet"))
        .args(["spec", "check", "--pods", "-", "-o", "json"])
        .current_dir(workspace_root())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("multinet runs");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(text.as_bytes()).expect("write pods");
    }
    let out = child.wait_with_output().expect("multinet ends");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["live"]["pods"], 5);
    // Only one input can come from standard input.
    let both = multinet(&["spec", "check", "-", "--pods", "-"]);
    assert_eq!(both.status.code(), Some(22));
}

#[test]
fn live_ippools_leaks_and_overlaps_are_warnings() {
    let out = multinet(&[
        "spec",
        "check",
        "--pods",
        PODS_HEALTHY,
        "--ippools",
        IPPOOLS,
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let v = json(&out);
    let pools = &v["live"]["ippools"];
    assert_eq!(pools["leaked"][0]["address"], "192.168.20.9");
    assert_eq!(pools["overlaps"].as_array().map(Vec::len), Some(1));
    assert_eq!(pools["unchecked_namespaces"][0], "tenant-a");
    let warnings: Vec<String> = v["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .map(|w| format!("{}: {}", w["field"], w["message"]))
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("IPPool kube-system/192.168.20.0-24") && w.contains("1 leaked")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("overlaps IPPool")),
        "{warnings:?}"
    );

    // Two whereabouts NADs whose ranges overlap: named, each with its range.
    let nads = TempFile::new(
        "nads-overlapping.yaml",
        &["192.168.30.0/26", "192.168.30.32/27"]
            .iter()
            .zip(["cluster-net", "tenant-net"])
            .map(|(range, name)| {
                format!(
                    "apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata: {{name: {name}, namespace: rook-ceph}}\nspec:\n  config: '{{\"cniVersion\": \"0.3.1\", \"type\": \"macvlan\", \"master\": \"eth2\", \"ipam\": {{\"type\": \"whereabouts\", \"range\": \"{range}\"}}}}'\n"
                )
            })
            .collect::<Vec<_>>()
            .join("---\n"),
    );
    let out = multinet(&[
        "spec",
        "check",
        "--pods",
        PODS_HEALTHY,
        "--ippools",
        IPPOOLS,
        "--nads",
        nads.path(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains(
            "NAD rook-ceph/cluster-net: its whereabouts range 192.168.30.0/26 overlaps \
             192.168.30.32/27 of NAD rook-ceph/tenant-net"
        ),
        "{text}"
    );
    assert!(
        text.contains("its range 192.168.30.0/26 (NAD rook-ceph/cluster-net) overlaps IPPool"),
        "{text}"
    );
}

#[test]
fn live_free_addresses_against_the_worst_case() {
    let manifest = [
        "spec",
        "check",
        "deploy/examples/cephcluster-multus.yaml",
        "--nads",
        "deploy/examples/nads.yaml",
        "--nodes",
        "3",
        "--pods",
        PODS_HEALTHY,
        "--ippools",
    ];
    let mut args = manifest.to_vec();
    args.extend([IPPOOLS, "-o", "json"]);
    let fits = multinet(&args);
    assert_eq!(fits.status.code(), Some(0), "{}", stdout(&fits));
    let demand = json(&fits)["live"]["ippools"]["demand"].clone();
    // cluster-net: 3 nodes × 3 OSDs + the server = 10; 62 usable − 2 reserved = 60 free.
    let cluster = demand
        .as_array()
        .and_then(|d| d.iter().find(|c| c["nad"] == "rook-ceph/cluster-net"))
        .expect("cluster-net compared");
    assert_eq!(
        (cluster["demand"].clone(), cluster["free"].clone()),
        (10.into(), 60.into())
    );

    // 55 of cluster-net's 62 addresses held by pods that are gone: 7 free, 10 needed.
    let mut full = String::from(
        "apiVersion: whereabouts.cni.cncf.io/v1alpha1\nkind: IPPool\nmetadata:\n  name: 192.168.30.0-26\n  namespace: kube-system\nspec:\n  range: 192.168.30.0/26\n  allocations:\n",
    );
    for offset in 1..=55 {
        full.push_str(&format!(
            "    \"{offset}\": {{id: c{offset}, podref: rook-ceph/gone-{offset}, ifname: net2}}\n"
        ));
    }
    let pools = TempFile::new("ippools-full.yaml", &full);
    let mut args = manifest.to_vec();
    args.push(pools.path());
    let out = multinet(&args);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(
            "NAD rook-ceph/cluster-net: the worst case needs 10 address(es) but only 7 are free \
             now: 192.168.30.0/26: 62 usable − 55 reserved in IPPool kube-system/192.168.30.0-26 \
             (55 of them leaked) = 7 free"
        ),
        "{}",
        stdout(&out)
    );

    // Without the manifest nothing says which pool serves which network: a warning.
    let out = multinet(&[
        "spec",
        "check",
        "--pods",
        PODS_HEALTHY,
        "--ippools",
        IPPOOLS,
        "--nodes",
        "3",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains("--nodes: comparing free addresses with the worst case needs"),
        "{}",
        stdout(&out)
    );
    let out = multinet(&[
        "spec",
        "check",
        "--pods",
        PODS_HEALTHY,
        "--nodes",
        "3",
        "-c",
        "deploy/examples/run-config-converged.yaml",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(
        text.contains("--nodes: the worst case is compared"),
        "{text}"
    );
    assert!(
        text.contains("--config: deploy/examples/run-config-converged.yaml was not read"),
        "{text}"
    );
}

#[test]
fn live_bad_objects_exit_22_naming_the_object() {
    let pods = TempFile::new(
        "pods-bad.yaml",
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: rook-ceph-osd-0\n    namespace: rook-ceph\n    annotations:\n      k8s.v1.cni.cncf.io/network-status: 'not json'\n- apiVersion: v1\n  kind: Pod\n  metadata: {namespace: rook-ceph}\n",
    );
    let pools = TempFile::new(
        "ippools-bad.yaml",
        "apiVersion: whereabouts.cni.cncf.io/v1alpha1\nkind: IPPool\nmetadata: {name: broken, namespace: kube-system}\nspec: {range: 192.168.20/24}\n",
    );
    let out = multinet(&[
        "spec",
        "check",
        "--pods",
        pods.path(),
        "--ippools",
        pools.path(),
    ]);
    assert_eq!(out.status.code(), Some(22), "{}", stdout(&out));
    let text = stdout(&out);
    for expected in [
        "Pod rook-ceph/rook-ceph-osd-0: metadata.annotations[\"k8s.v1.cni.cncf.io/network-status\"]",
        "document 1.items[1].metadata.name: a Pod needs a name",
        "IPPool kube-system/broken: spec.range",
    ] {
        assert!(text.contains(expected), "{expected:?} in {text}");
    }
    let missing = multinet(&["spec", "check", "--pods", "no-such-pods.yaml"]);
    assert_eq!(missing.status.code(), Some(22));
    assert!(stdout(&missing).contains("no-such-pods.yaml: cannot read: no such file"));
}

#[test]
fn readme_live_example_is_what_multinet_prints() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).expect("README.md");
    let example = readme
        .split("### Example: `spec check --pods`")
        .nth(1)
        .and_then(|rest| rest.split("```text\n").nth(1))
        .and_then(|block| block.split("```").next())
        .expect("README has the spec check --pods example block");
    let (command, output) = example.split_once('\n').expect("command line, then output");
    let args: Vec<&str> = command
        .trim_start_matches("$ multinet ")
        .split_whitespace()
        .collect();
    let out = multinet(&args);
    assert_eq!(
        stdout(&out),
        output,
        "README's example is stale: update it from the command's output"
    );
}
