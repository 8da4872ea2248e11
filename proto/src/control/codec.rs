//! Length-prefixed bincode frames. The length is checked against [`MAX_FRAME`] before any
//! allocation; malformed input gives a [`CodecError`], never a panic.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The largest frame body accepted or produced, in bytes.
pub const MAX_FRAME: usize = 1 << 20;

/// Bytes of the length prefix.
pub const PREFIX: usize = 4;

/// Why a frame could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The announced or produced body is larger than [`MAX_FRAME`].
    #[error("frame of {0} bytes exceeds the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    /// The body is not a valid message.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// The body decoded but left bytes over.
    #[error("malformed frame: {0} trailing bytes")]
    Trailing(usize),
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_FRAME>()
}

/// Encodes `message` as one frame (prefix + body).
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, CodecError> {
    let body = bincode::serde::encode_to_vec(message, config())
        .map_err(|e| CodecError::Malformed(e.to_string()))?;
    if body.len() > MAX_FRAME {
        return Err(CodecError::TooLarge(body.len()));
    }
    let mut frame = Vec::with_capacity(PREFIX + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// The body length a prefix announces, checked against [`MAX_FRAME`].
pub fn body_len(prefix: [u8; PREFIX]) -> Result<usize, CodecError> {
    let len = u32::from_be_bytes(prefix) as usize;
    if len > MAX_FRAME {
        return Err(CodecError::TooLarge(len));
    }
    Ok(len)
}

/// Decodes one frame body.
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, CodecError> {
    let (message, used) = bincode::serde::decode_from_slice(body, config())
        .map_err(|e| CodecError::Malformed(e.to_string()))?;
    if used != body.len() {
        return Err(CodecError::Trailing(body.len() - used));
    }
    Ok(message)
}

/// Decodes the first frame in `bytes`: `Ok(None)` when more bytes are needed, otherwise the
/// message and how many bytes it took.
pub fn decode_frame<T: DeserializeOwned>(bytes: &[u8]) -> Result<Option<(T, usize)>, CodecError> {
    let Some(prefix) = bytes.first_chunk::<PREFIX>() else {
        return Ok(None);
    };
    let len = body_len(*prefix)?;
    let Some(body) = bytes.get(PREFIX..PREFIX + len) else {
        return Ok(None);
    };
    Ok(Some((decode_body(body)?, PREFIX + len)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::*;
    use crate::network::CephNetwork;
    use crate::probe::*;
    use proptest::prelude::*;

    fn hello() -> AgentMessage {
        AgentMessage::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            run_id: "run-1".into(),
            agent: AgentIdentity {
                role: Role::Client,
                node: "n1".into(),
                pod: "c-0".into(),
                networks: vec![CephNetwork::Public, CephNetwork::Cluster],
            },
            last_acked: 0,
            clock_epoch_unix_ms: 1_796_000_000_000,
            addresses: vec![crate::assignment::NetworkAddress {
                network: CephNetwork::Public,
                addr: std::net::Ipv4Addr::new(198, 18, 0, 5).into(),
                interface: Some("net1".into()),
            }],
        })
    }

    #[test]
    fn a_hello_is_encoded_as_it_always_was() {
        // Agents and coordinators of one protocol version must agree byte for byte: the
        // identity's fields (role, node, pod, networks) in this order, after the version and
        // the run id; the addresses last (protocol version 2). Version 3 added a message
        // (Egress) after the others, so a Hello's bytes changed only in the version; version 4
        // added the agent's clock epoch last.
        assert_eq!(
            encode(&hello()).expect("encode"),
            [
                0, 0, 0, 42, // length
                0,  // AgentMessage::Hello
                4,  // protocol version
                5, b'r', b'u', b'n', b'-', b'1', // run id
                1,    // role: client
                2, b'n', b'1', // node
                3, b'c', b'-', b'0', // pod
                2, 0, 1, // networks: public, cluster
                0, // last acked
                1, // one address:
                0, // public,
                0, 198, 18, 0, 5, // IPv4 198.18.0.5,
                1, 4, b'n', b'e', b't', b'1', // interface Some("net1")
                253, 0, 40, 241, 41, 162, 1, 0, 0, // clock epoch 1_796_000_000_000 (u64, LE)
            ]
        );
    }

    #[test]
    fn frames_round_trip_and_stream() {
        let a = encode(&hello()).expect("encode");
        let b = encode(&AgentMessage::Heartbeat).expect("encode");
        let stream = [a.clone(), b].concat();
        let (first, used) = decode_frame::<AgentMessage>(&stream)
            .expect("ok")
            .expect("complete");
        assert_eq!(first, hello());
        assert_eq!(used, a.len());
        let (second, _) = decode_frame::<AgentMessage>(&stream[used..])
            .expect("ok")
            .expect("complete");
        assert_eq!(second, AgentMessage::Heartbeat);
        assert_eq!(decode_frame::<AgentMessage>(&a[..a.len() - 1]), Ok(None));
    }

    #[test]
    fn oversized_and_malformed_frames_are_errors() {
        let huge = ((MAX_FRAME + 1) as u32).to_be_bytes();
        assert_eq!(
            decode_frame::<AgentMessage>(&huge),
            Err(CodecError::TooLarge(MAX_FRAME + 1))
        );
        let junk = [0, 0, 0, 2, 0xff, 0xff];
        assert!(matches!(
            decode_frame::<AgentMessage>(&junk),
            Err(CodecError::Malformed(_))
        ));
        let mut trailing = encode(&AgentMessage::Heartbeat).expect("encode");
        trailing[3] += 1;
        trailing.push(0);
        assert_eq!(
            decode_frame::<AgentMessage>(&trailing),
            Err(CodecError::Trailing(1))
        );
        // A list announcing more elements than the frame could hold must not allocate them.
        let lying = [0, 0, 0, 6, 1, 5, 251, 0xff, 0xff, 0xff];
        assert!(decode_frame::<AgentMessage>(&lying).is_err());
    }

    fn result() -> impl Strategy<Value = ProbeResult> {
        (
            any::<bool>(),
            any::<[u8; 4]>(),
            any::<u16>(),
            any::<(bool, bool, bool)>(),
            any::<u64>(),
            any::<u32>(),
            proptest::option::of(0u8..8),
            any::<u16>(),
        )
            .prop_map(
                |(
                    public,
                    ip,
                    port,
                    (https, large, fresh),
                    started_ms,
                    latency_us,
                    failure,
                    status,
                )| ProbeResult {
                    network: if public {
                        CephNetwork::Public
                    } else {
                        CephNetwork::Cluster
                    },
                    target: std::net::SocketAddr::from((ip, port)),
                    kind: ProbeKind {
                        scheme: if https { Scheme::Https } else { Scheme::Http },
                        payload: if large {
                            Payload::Large
                        } else {
                            Payload::Small
                        },
                        connection: if fresh {
                            Connection::Fresh
                        } else {
                            Connection::KeptAlive
                        },
                    },
                    started_ms,
                    latency_us,
                    outcome: match failure {
                        None => Outcome::Ok,
                        Some(0) => Outcome::Failed(FailureClass::ConnectRefused),
                        Some(1) => Outcome::Failed(FailureClass::ConnectTimeout),
                        Some(2) => Outcome::Failed(FailureClass::Tls),
                        Some(3) => Outcome::Failed(FailureClass::HttpStatus(status)),
                        Some(4) => Outcome::Failed(FailureClass::ShortBody),
                        Some(5) => Outcome::Failed(FailureClass::ReadTimeout),
                        Some(6) => Outcome::Failed(FailureClass::Unreachable),
                        Some(_) => Outcome::Failed(FailureClass::Io),
                    },
                },
            )
    }

    fn network() -> impl Strategy<Value = CephNetwork> {
        prop_oneof![Just(CephNetwork::Public), Just(CephNetwork::Cluster)]
    }

    fn address() -> impl Strategy<Value = crate::assignment::NetworkAddress> {
        (
            network(),
            any::<std::net::IpAddr>(),
            proptest::option::of("[a-z0-9]{1,15}"),
        )
            .prop_map(
                |(network, addr, interface)| crate::assignment::NetworkAddress {
                    network,
                    addr,
                    interface,
                },
            )
    }

    /// Socket addresses as serde carries them: an IPv6 scope id or flow label is not part of
    /// the wire form (targets are the NADs' routable addresses, never link-local ones).
    fn socket_addr() -> impl Strategy<Value = std::net::SocketAddr> {
        (any::<std::net::IpAddr>(), any::<u16>()).prop_map(std::net::SocketAddr::from)
    }

    fn listener() -> impl Strategy<Value = Listener> {
        (network(), socket_addr(), socket_addr()).prop_map(|(network, http, https)| Listener {
            network,
            http,
            https,
        })
    }

    fn egress() -> impl Strategy<Value = Egress> {
        (
            network(),
            any::<[u8; 4]>(),
            proptest::option::of(".{0,15}"),
            proptest::option::of(any::<[u8; 16]>()),
        )
            .prop_map(|(network, target, interface, source)| Egress {
                network,
                target: std::net::IpAddr::from(target),
                interface,
                source: source.map(std::net::IpAddr::from),
            })
    }

    fn agent_message() -> impl Strategy<Value = AgentMessage> {
        let hello = (
            any::<u16>(),
            ".{0,20}",
            prop_oneof![
                Just(Role::Server),
                Just(Role::Client),
                Just(Role::HostCheck)
            ],
            ".{0,20}",
            ".{0,40}",
            proptest::collection::vec(network(), 0..3),
            any::<u64>(),
            proptest::collection::vec(address(), 0..3),
            any::<u64>(),
        )
            .prop_map(
                |(
                    protocol_version,
                    run_id,
                    role,
                    node,
                    pod,
                    networks,
                    last_acked,
                    addresses,
                    clock_epoch_unix_ms,
                )| {
                    AgentMessage::Hello(Hello {
                        protocol_version,
                        run_id,
                        agent: AgentIdentity {
                            role,
                            node,
                            pod,
                            networks,
                        },
                        last_acked,
                        addresses,
                        clock_epoch_unix_ms,
                    })
                },
            );
        let report = (
            any::<u64>(),
            proptest::collection::vec(result(), 0..20),
            any::<u64>(),
            any::<u64>(),
        )
            .prop_map(|(seq, results, dropped, produced)| {
                AgentMessage::Report(ReportBatch {
                    seq,
                    results,
                    dropped,
                    produced,
                })
            });
        prop_oneof![
            hello,
            report,
            Just(AgentMessage::Heartbeat),
            proptest::collection::vec(listener(), 0..4)
                .prop_map(|listeners| AgentMessage::ServerReady { listeners }),
            ".{0,80}".prop_map(|reason| AgentMessage::Failed { reason }),
            (
                proptest::collection::vec(egress(), 0..3),
                proptest::option::of(".{0,15}")
            )
                .prop_map(|(routes, control_interface)| AgentMessage::Egress(
                    EgressReport {
                        routes,
                        control_interface
                    }
                )),
        ]
    }

    fn coordinator_message() -> impl Strategy<Value = CoordinatorMessage> {
        let refusal = prop_oneof![
            (any::<u16>(), any::<u16>())
                .prop_map(|(agent, coordinator)| Refusal::ProtocolVersion { agent, coordinator }),
            ".{0,20}".prop_map(|agent| Refusal::RunId { agent }),
            (".{0,20}", ".{0,20}").prop_map(|(pod, node)| Refusal::UnknownAgent { pod, node }),
            Just(Refusal::NoHello),
        ];
        prop_oneof![
            Just(CoordinatorMessage::Welcome),
            proptest::collection::vec(listener(), 0..4)
                .prop_map(|listeners| CoordinatorMessage::Targets { listeners }),
            refusal.prop_map(CoordinatorMessage::Refused),
            any::<u64>().prop_map(|seq| CoordinatorMessage::Ack { seq }),
            Just(CoordinatorMessage::Stop),
        ]
    }

    proptest! {
        #[test]
        fn every_agent_message_round_trips(message in agent_message()) {
            let frame = encode(&message).expect("encode");
            let (decoded, used) = decode_frame::<AgentMessage>(&frame).expect("decodes").expect("complete");
            prop_assert_eq!(decoded, message);
            prop_assert_eq!(used, frame.len());
        }

        #[test]
        fn every_coordinator_message_round_trips(message in coordinator_message()) {
            let frame = encode(&message).expect("encode");
            let (decoded, used) = decode_frame::<CoordinatorMessage>(&frame).expect("decodes").expect("complete");
            prop_assert_eq!(decoded, message);
            prop_assert_eq!(used, frame.len());
        }

        #[test]
        fn report_batches_round_trip(seq in any::<u64>(), results in proptest::collection::vec(result(), 0..50)) {
            let message = AgentMessage::Report(ReportBatch { seq, results, dropped: seq / 7, produced: seq.wrapping_mul(3) });
            let frame = encode(&message).expect("encode");
            let (decoded, used) = decode_frame::<AgentMessage>(&frame).expect("decodes").expect("complete");
            prop_assert_eq!(decoded, message);
            prop_assert_eq!(used, frame.len());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_frame::<AgentMessage>(&bytes);
            let _ = decode_frame::<CoordinatorMessage>(&bytes);
        }
    }
}
