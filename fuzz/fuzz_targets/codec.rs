//! Control-plane frames: arbitrary bytes never panic or allocate past the frame limit; a frame
//! is never decoded past its length (it takes exactly its prefix and the body the prefix
//! announces, and the same bytes without what follows decode the same, one byte fewer do not);
//! whatever decodes encodes to a frame that decodes to the same message.
#![no_main]
use libfuzzer_sys::fuzz_target;
use multinet_proto::control::codec::{PREFIX, body_len, decode_frame, encode};
use multinet_proto::control::{AgentMessage, CoordinatorMessage};
use serde::Serialize;
use serde::de::DeserializeOwned;

fn frame_property<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(data: &[u8]) {
    let Ok(Some((message, used))) = decode_frame::<T>(data) else {
        return;
    };
    let prefix = data
        .first_chunk::<PREFIX>()
        .expect("a decoded frame has a prefix");
    assert_eq!(
        used,
        PREFIX + body_len(*prefix).expect("announced length within the limit")
    );
    assert!(used <= data.len());
    let (alone, alone_used) = decode_frame::<T>(&data[..used])
        .expect("the frame alone decodes")
        .expect("the frame alone is complete");
    assert_eq!((&alone, alone_used), (&message, used));
    assert_eq!(
        decode_frame::<T>(&data[..used - 1]),
        Ok(None),
        "one byte short is incomplete"
    );
    let again = encode(&message).expect("a decoded message encodes");
    let (round, round_used) = decode_frame::<T>(&again)
        .expect("decodes")
        .expect("complete");
    assert_eq!(round, message);
    assert_eq!(round_used, again.len());
}

fuzz_target!(|data: &[u8]| {
    frame_property::<AgentMessage>(data);
    frame_property::<CoordinatorMessage>(data);
});
