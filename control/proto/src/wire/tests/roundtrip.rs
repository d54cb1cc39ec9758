//! Properties of every message type: `decode(encode(m)) == m`; encodings classify as their kind
//! and start with their verb; and no input (random bytes, near-miss text, mutated valid
//! datagrams) makes a decoder or `classify` panic, while whatever decodes re-encodes stably.

use std::fmt::Debug;

use proptest::prelude::*;
use proptest::test_runner::TestRunner;

use super::strategy;
use crate::wire::*;

/// `decode(encode(msg)) == msg`, and the encoding classifies as `kind`.
fn round_trip<M: Message + PartialEq + Debug>(msg: &M, kind: Kind) -> Result<(), TestCaseError> {
    let text = msg.encode();
    let decoded = M::decode(text.as_bytes());
    prop_assert_eq!(decoded.as_ref(), Ok(msg), "text: {:?}", text);
    prop_assert_eq!(classify(text.as_bytes()), kind, "text: {:?}", text);
    Ok(())
}

/// [`round_trip`] for a request, which also starts with its verb.
fn request_round_trip<M: Request + PartialEq + Debug>(msg: &M) -> Result<(), TestCaseError> {
    round_trip(msg, Kind::Request)?;
    let text = msg.encode();
    let first = text.split('|').next().unwrap_or_default();
    prop_assert_eq!(first, msg.verb());
    Ok(())
}

/// Feeds `bytes` to every decoder: none may panic, and whatever decodes must re-encode to
/// text that decodes to the same value.
fn every_decoder(bytes: &[u8]) -> Result<(), TestCaseError> {
    fn stable<M: Message + PartialEq + Debug>(bytes: &[u8]) -> Result<(), TestCaseError> {
        if let Ok(msg) = M::decode(bytes) {
            let again = msg.encode();
            let decoded = M::decode(again.as_bytes());
            prop_assert_eq!(
                decoded.as_ref(),
                Ok(&msg),
                "from {:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        Ok(())
    }
    let _ = classify(bytes);
    stable::<ConductorRequest>(bytes)?;
    stable::<ConductorReply>(bytes)?;
    stable::<NodeRequest>(bytes)?;
    stable::<NodeReply>(bytes)?;
    stable::<TowerRequest>(bytes)?;
    stable::<TowerReply>(bytes)?;
    stable::<TowerPush>(bytes)?;
    stable::<RoutesUpdate>(bytes)?;
    stable::<MeshEvent>(bytes)?;
    Ok(())
}

/// Text close to real datagrams: a known verb or reply head, then fields from the characters
/// that matter to the grammar.
fn near_miss() -> impl Strategy<Value = String> {
    let heads = proptest::sample::select(vec![
        "SUBMIT",
        "EVICT",
        "ROLLOUT",
        "SCALE",
        "LIST",
        "STATUS",
        "APPS",
        "NODES",
        "PING",
        "LOGS",
        "EXEC",
        "ROLLOUT_STATUS",
        "LAUNCH",
        "KILL",
        "HEARTBEAT",
        "DIED",
        "REGISTER",
        "DEREGISTER",
        "LOOKUP",
        "WATCH",
        "UNWATCH",
        "ACK",
        "DRAINED",
        "UPDATE",
        "ERR",
        "OK|SUBMITTED",
        "OK|EVICTED",
        "OK|ROLLOUT",
        "OK|SCALED",
        "OK|LIST",
        "OK|STATUS",
        "OK|APPS",
        "OK|NODES",
        "OK|PONG",
        "OK|LOGS",
        "OK|EXEC",
        "OK|ROLLOUT_STATUS",
        "OK|LAUNCHED",
        "OK|KILLED",
        "OK|REGISTERED",
        "OK|DEREGISTERED",
        "OK|LOOKUP",
        "OK|WATCHING",
        "OK|UNWATCHED",
        "OK|ACKED",
        "OK|DRAINED",
    ]);
    let tail = prop_oneof![
        "(\\|[a-z0-9.:,\\[\\]-]{0,12}){0,8}",
        "(\\|[0-9]{0,3}){0,8}(\\|[a-z0-9:.,]{0,30}){0,2}",
        "\\|[a-z]{1,4}\\|[0-9]{1,2}\\|(b64:)?[A-Za-z0-9+/=]{0,40}",
        "(\\|[\\x00-\\x7f\u{e9}\u{fffd}]{0,10}){0,6}",
    ];
    (heads, tail).prop_map(|(head, tail)| format!("{head}{tail}"))
}

/// One edit of a valid datagram: truncate, insert, replace or remove a byte.
fn mutate(mut bytes: Vec<u8>, op: u8, at: usize, byte: u8) -> Vec<u8> {
    if bytes.is_empty() {
        return vec![byte];
    }
    let at = at % bytes.len();
    let byte = [b'|', b':', b',', b'\n', b'0', b'[', b'-', byte][usize::from(byte % 8)];
    match op % 4 {
        0 => bytes.truncate(at),
        1 => bytes.insert(at, byte),
        2 => bytes[at] = byte,
        _ => {
            bytes.remove(at);
        }
    }
    bytes
}

proptest! {
    #[test]
    fn conductor_requests_round_trip(msg in strategy::conductor_request()) {
        request_round_trip(&msg)?;
    }

    #[test]
    fn conductor_replies_round_trip(msg in strategy::conductor_reply()) {
        round_trip(&msg, Kind::Reply)?;
    }

    #[test]
    fn node_requests_round_trip(msg in strategy::node_request(false)) {
        request_round_trip(&msg)?;
    }

    #[test]
    fn node_replies_round_trip(msg in strategy::node_reply()) {
        round_trip(&msg, Kind::Reply)?;
    }

    #[test]
    fn mesh_events_round_trip(msg in strategy::mesh_event()) {
        request_round_trip(&msg)?;
    }

    #[test]
    fn tower_requests_round_trip(msg in strategy::tower_request()) {
        request_round_trip(&msg)?;
    }

    #[test]
    fn tower_replies_round_trip(msg in strategy::tower_reply()) {
        round_trip(&msg, Kind::Reply)?;
    }

    #[test]
    fn tower_pushes_round_trip(msg in strategy::tower_push()) {
        request_round_trip(&msg)?;
    }

    #[test]
    fn routes_updates_round_trip(msg in strategy::routes_update()) {
        request_round_trip(&msg)?;
    }

    #[test]
    fn error_replies_round_trip_through_every_reply_type(err in strategy::error_reply()) {
        round_trip(&ConductorReply::Error(err.clone()), Kind::Reply)?;
        round_trip(&NodeReply::Error(err.clone()), Kind::Reply)?;
        round_trip(&TowerReply::Error(err), Kind::Reply)?;
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        every_decoder(&bytes)?;
    }

    #[test]
    fn near_misses_never_panic(text in near_miss()) {
        every_decoder(text.as_bytes())?;
    }

    #[test]
    fn mutated_datagrams_never_panic(
        msg in prop_oneof![
            strategy::conductor_request().prop_map(|m| m.encode()),
            strategy::conductor_reply().prop_map(|m| m.encode()),
            strategy::node_request(false).prop_map(|m| m.encode()),
            strategy::node_reply().prop_map(|m| m.encode()),
            strategy::mesh_event().prop_map(|m| m.encode()),
            strategy::tower_request().prop_map(|m| m.encode()),
            strategy::tower_reply().prop_map(|m| m.encode()),
            strategy::tower_push().prop_map(|m| m.encode()),
        ],
        edits in proptest::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = msg.into_bytes();
        for (op, at, byte) in edits {
            bytes = mutate(bytes, op, at, byte);
        }
        every_decoder(&bytes)?;
    }
}

/// Runs a property in a thread with a large stack: the manifest generators build deep value
/// trees, more than the default 2 MiB test thread holds in a debug build.
fn with_big_stack(property: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(property)
        .unwrap()
        .join()
        .unwrap();
}

// Each case prints and parses a whole manifest: fewer cases keep the suite fast.
const MANIFEST_CASES: u32 = 64;

#[test]
fn launch_round_trips_the_whole_app() {
    with_big_stack(|| {
        let mut runner = TestRunner::new(ProptestConfig::with_cases(MANIFEST_CASES));
        runner
            .run(&strategy::launch(), |spec| {
                request_round_trip(&NodeRequest::Launch(Box::new(spec)))
            })
            .unwrap();
    });
}

#[test]
fn inline_manifests_round_trip() {
    with_big_stack(|| {
        let mut runner = TestRunner::new(ProptestConfig::with_cases(MANIFEST_CASES));
        runner
            .run(&crate::manifest::strategy::manifest(), |manifest| {
                let options = crate::manifest::PrintOptions {
                    redact_secrets: false,
                };
                let text = crate::manifest::print(&manifest, &options);
                request_round_trip(&ConductorRequest::Submit(ManifestSource::Inline(text)))
            })
            .unwrap();
    });
}
