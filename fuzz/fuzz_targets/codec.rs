//! Control-plane frames: arbitrary bytes never panic or allocate past the frame limit, and
//! whatever decodes encodes back to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use multinet_proto::control::codec::{decode_frame, encode};
use multinet_proto::control::{AgentMessage, CoordinatorMessage};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((message, used))) = decode_frame::<AgentMessage>(data) {
        let again = encode(&message).expect("a decoded message encodes");
        let (round, _) = decode_frame::<AgentMessage>(&again).expect("decodes").expect("complete");
        assert_eq!(round, message);
        assert!(used <= data.len());
    }
    let _ = decode_frame::<CoordinatorMessage>(data);
});
