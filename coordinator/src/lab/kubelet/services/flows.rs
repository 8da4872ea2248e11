//! The UDP relay's flows (pure: no sockets; time is passed in): which endpoint each client
//! address is relayed to, since when it was idle, and when a flow ends — idle too long, or
//! its endpoint no longer ready.
//!
//! Rules followed: a flow is what a conntrack entry is for kube-proxy's UDP rules. It ends
//! when idle for the kernel's UDP timeouts (`nf_conntrack_udp_timeout`, 30 s, for a flow
//! that has had no reply; `nf_conntrack_udp_timeout_stream`, 120 s, once it has), and at once
//! when its endpoint leaves the ready set, as kube-proxy deletes the conntrack entries of
//! removed UDP endpoints (`pkg/proxy/conntrack`, `CleanStaleEntries`; before that
//! `ClearEntriesForNAT` in `pkg/util/conntrack`), so that the client's next datagram is
//! balanced again to an endpoint that is ready — not sent into the void for as long as the
//! client keeps the flow alive.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

/// How long a flow that never had a reply lives without traffic (`nf_conntrack_udp_timeout`).
pub const UNREPLIED_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a flow that had replies lives without traffic (`nf_conntrack_udp_timeout_stream`).
pub const REPLIED_TIMEOUT: Duration = Duration::from_secs(120);

/// One client's flow.
#[derive(Debug)]
struct Entry<F> {
    /// Where its datagrams go.
    endpoint: SocketAddr,
    /// Which flow of this client it is (a reply of an ended flow must not touch a new one).
    id: u64,
    /// Its last datagram, either way.
    last: Instant,
    /// Whether the endpoint has answered.
    replied: bool,
    /// What the relay keeps for it (its socket).
    flow: F,
}

impl<F> Entry<F> {
    fn expires(&self) -> Instant {
        self.last
            + if self.replied {
                REPLIED_TIMEOUT
            } else {
                UNREPLIED_TIMEOUT
            }
    }
}

/// The flows of one Service port, by client address.
#[derive(Debug)]
pub struct FlowTable<F> {
    flows: HashMap<SocketAddr, Entry<F>>,
    /// The next flow's id.
    next_id: u64,
}

impl<F> Default for FlowTable<F> {
    fn default() -> Self {
        Self {
            flows: HashMap::new(),
            next_id: 0,
        }
    }
}

impl<F> FlowTable<F> {
    /// The flow of `client` (its last datagram now), if it has one.
    pub fn outbound(&mut self, client: SocketAddr, now: Instant) -> Option<&F> {
        let entry = self.flows.get_mut(&client)?;
        entry.last = now;
        Some(&entry.flow)
    }

    /// A new flow of `client` to `endpoint`; returns its id and the flow it replaces.
    pub fn insert(
        &mut self,
        client: SocketAddr,
        endpoint: SocketAddr,
        flow: F,
        now: Instant,
    ) -> (u64, Option<F>) {
        let id = self.next_id;
        self.next_id += 1;
        let old = self.flows.insert(
            client,
            Entry {
                endpoint,
                id,
                last: now,
                replied: false,
                flow,
            },
        );
        (id, old.map(|e| e.flow))
    }

    /// The id the next [`Self::insert`] gives (so a flow's task can know it beforehand).
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// The endpoint of flow `id` of `client` answered now.
    pub fn inbound(&mut self, client: SocketAddr, id: u64, now: Instant) {
        if let Some(entry) = self.flows.get_mut(&client).filter(|e| e.id == id) {
            entry.last = now;
            entry.replied = true;
        }
    }

    /// Ends flow `id` of `client` (not a newer flow of the same client).
    pub fn remove(&mut self, client: SocketAddr, id: u64) -> Option<F> {
        if self.flows.get(&client).is_some_and(|e| e.id == id) {
            return self.flows.remove(&client).map(|e| e.flow);
        }
        None
    }

    /// Ends every flow of `client`, whichever it is.
    pub fn remove_client(&mut self, client: SocketAddr) -> Option<F> {
        self.flows.remove(&client).map(|e| e.flow)
    }

    /// Ends the flows idle past their timeout at `now`.
    pub fn expire(&mut self, now: Instant) -> Vec<F> {
        self.drain(|e| e.expires() <= now)
    }

    /// When the next flow would expire, if there is one.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.flows.values().map(Entry::expires).min()
    }

    /// Ends the flows whose endpoint is not in `ready` (the endpoint was removed or is no
    /// longer ready).
    pub fn keep_ready(&mut self, ready: &[SocketAddr]) -> Vec<F> {
        self.drain(|e| !ready.contains(&e.endpoint))
    }

    /// How many flows there are.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    fn drain(&mut self, ends: impl Fn(&Entry<F>) -> bool) -> Vec<F> {
        let ending: Vec<SocketAddr> = self
            .flows
            .iter()
            .filter(|(_, e)| ends(e))
            .map(|(client, _)| *client)
            .collect();
        ending
            .into_iter()
            .filter_map(|client| self.flows.remove(&client).map(|e| e.flow))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("a socket address")
    }

    const CLIENT: &str = "198.19.0.103:40000";
    const OLD: &str = "198.19.0.105:7443";
    const NEW: &str = "198.19.0.106:7443";

    #[test]
    fn a_flow_keeps_its_endpoint_while_it_is_used() {
        let t0 = Instant::now();
        let mut flows = FlowTable::default();
        let (id, replaced) = flows.insert(addr(CLIENT), addr(OLD), "socket", t0);
        assert_eq!(replaced, None);
        assert_eq!(
            flows.outbound(addr(CLIENT), t0 + Duration::from_secs(20)),
            Some(&"socket")
        );
        flows.inbound(addr(CLIENT), id, t0 + Duration::from_secs(25));
        // 29 s unreplied would have ended it; replied, it lives 120 s past its last datagram.
        assert!(flows.expire(t0 + Duration::from_secs(60)).is_empty());
        assert_eq!(flows.next_expiry(), Some(t0 + Duration::from_secs(145)));
        assert_eq!(flows.expire(t0 + Duration::from_secs(145)), vec!["socket"]);
        assert!(flows.is_empty());
    }

    #[test]
    fn a_flow_without_a_reply_ends_after_thirty_idle_seconds() {
        let t0 = Instant::now();
        let mut flows = FlowTable::default();
        flows.insert(addr(CLIENT), addr(OLD), 1, t0);
        flows.outbound(addr(CLIENT), t0 + Duration::from_secs(10));
        assert!(flows.expire(t0 + Duration::from_secs(39)).is_empty());
        assert_eq!(flows.expire(t0 + Duration::from_secs(40)), vec![1]);
        assert_eq!(
            flows.outbound(addr(CLIENT), t0 + Duration::from_secs(41)),
            None
        );
    }

    #[test]
    fn flows_to_an_endpoint_no_longer_ready_end_at_once_and_others_stay() {
        let t0 = Instant::now();
        let mut flows = FlowTable::default();
        flows.insert(addr(CLIENT), addr(OLD), "to old", t0);
        flows.insert(addr("198.19.0.104:40001"), addr(NEW), "to new", t0);
        let ended = flows.keep_ready(&[addr(NEW)]);
        assert_eq!(ended, vec!["to old"]);
        assert_eq!(flows.len(), 1);
        // The same client's next datagram finds no flow: the relay balances it anew.
        assert_eq!(flows.outbound(addr(CLIENT), t0), None);
        assert_eq!(
            flows.outbound(addr("198.19.0.104:40001"), t0),
            Some(&"to new")
        );
    }

    #[test]
    fn a_reply_or_an_end_of_an_older_flow_does_not_touch_the_clients_newer_flow() {
        let t0 = Instant::now();
        let mut flows = FlowTable::default();
        let (old, _) = flows.insert(addr(CLIENT), addr(OLD), "old", t0);
        assert_eq!(flows.next_id(), old + 1);
        let (new, replaced) = flows.insert(addr(CLIENT), addr(NEW), "new", t0);
        assert_eq!(replaced, Some("old"));
        assert_ne!(old, new);
        flows.inbound(addr(CLIENT), old, t0 + Duration::from_secs(20));
        assert_eq!(flows.remove(addr(CLIENT), old), None);
        // Still unreplied: the old flow's reply did not count for it.
        assert_eq!(flows.next_expiry(), Some(t0 + UNREPLIED_TIMEOUT));
        assert_eq!(flows.remove(addr(CLIENT), new), Some("new"));
        assert_eq!(flows.next_expiry(), None);
    }
}
