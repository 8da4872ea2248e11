//! Messages that exist for tests only, compiled with the `test-hooks` feature (the workspace's
//! `multinet-tests` crate enables it) or in this crate's unit tests: they make the roster
//! misbehave on purpose — withhold acknowledgements, drop a connection — so a test can prove
//! that an agent's reconnect loses no result and counts none twice. A production build has
//! neither the messages nor the state they set.

use actix::prelude::*;

use super::AgentRoster;

/// Closes an agent's connection (the agent reconnects and resends what was not
/// acknowledged), and acknowledges normally again: for tests of the no-loss, no-duplicate
/// guarantee.
#[derive(Debug, Message)]
#[rtype(result = "bool")]
pub struct DropConnection(pub String);

impl Handler<DropConnection> for AgentRoster {
    type Result = bool;
    fn handle(&mut self, msg: DropConnection, _: &mut Context<Self>) -> bool {
        let Some(state) = self.agents.get_mut(&msg.0) else {
            return false;
        };
        state.acks_held_at = None;
        match state.connection.as_ref() {
            Some(c) => {
                c.close(
                    crate::control_plane::close_code::DROPPED.into(),
                    b"dropped by the coordinator",
                );
                true
            }
            None => false,
        }
    }
}

/// From now on, records an agent's batches without acknowledging them (until
/// [`DropConnection`]), so that batches the coordinator already has are resent after the
/// reconnect: for tests that the resend is counted once. Answers the sequence number
/// acknowledged last.
#[derive(Debug, Message)]
#[rtype(result = "Option<u64>")]
pub struct WithholdAcks(pub String);

impl Handler<WithholdAcks> for AgentRoster {
    type Result = Option<u64>;
    fn handle(&mut self, msg: WithholdAcks, _: &mut Context<Self>) -> Option<u64> {
        let state = self.agents.get_mut(&msg.0)?;
        state.acks_held_at = Some(state.ledger.last_seq());
        Some(state.ledger.last_seq())
    }
}
