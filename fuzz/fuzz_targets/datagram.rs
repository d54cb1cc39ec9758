//! Any bytes into every datagram decoder: each returns, never panics; whatever decodes
//! re-encodes to text that decodes to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skr8tr_proto::wire::{
    self, ConductorReply, ConductorRequest, MeshEvent, Message, NodeReply, NodeRequest,
    RoutesUpdate, TowerPush, TowerReply, TowerRequest,
};

fn roundtrip<M: Message + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(m) = M::decode(data) {
        let again = M::decode(m.encode().as_bytes()).expect("encoded form decodes");
        assert_eq!(again, m);
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = wire::classify(data);
    roundtrip::<ConductorRequest>(data);
    roundtrip::<ConductorReply>(data);
    roundtrip::<NodeRequest>(data);
    roundtrip::<NodeReply>(data);
    roundtrip::<TowerRequest>(data);
    roundtrip::<TowerReply>(data);
    roundtrip::<TowerPush>(data);
    roundtrip::<RoutesUpdate>(data);
    roundtrip::<MeshEvent>(data);
});
