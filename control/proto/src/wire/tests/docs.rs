//! Every example datagram in `docs/PROTOCOL.md` decodes, so the document cannot drift from the
//! code. Examples sit in fenced blocks tagged `wire`, one per line, as
//! `<sender> → <receiver>  <datagram>`; `⏎` in a datagram stands for a newline byte.

use crate::wire::*;

const PROTOCOL_MD: &str = include_str!("../../../../../docs/PROTOCOL.md");

fn debug<M: std::fmt::Debug>(decoded: Result<M, WireError>) -> Result<String, WireError> {
    decoded.map(|m| format!("{m:?}"))
}

/// Decodes `datagram` with the decoder its direction and kind call for.
fn decode(from: &str, to: &str, datagram: &[u8]) -> Result<String, WireError> {
    match (classify(datagram), from, to) {
        (Kind::Reply, "conductor", _) => debug(ConductorReply::decode(datagram)),
        (Kind::Reply, "node", _) => debug(NodeReply::decode(datagram)),
        (Kind::Reply, "tower", _) => debug(TowerReply::decode(datagram)),
        (Kind::Request, "node", "conductor") => debug(MeshEvent::decode(datagram)),
        (Kind::Request, _, "conductor") => debug(ConductorRequest::decode(datagram)),
        (Kind::Request, _, "node") => debug(NodeRequest::decode(datagram).inspect(|req| {
            // A mesh-signed node request names its target node (replay to another node).
            assert_eq!(
                req.auth() == Auth::Mesh,
                req.target().is_some(),
                "{req:?} must name its node exactly when it is mesh-signed"
            );
        })),
        (Kind::Request, _, "tower") => debug(TowerRequest::decode(datagram)),
        (Kind::Request, "tower", _) if datagram.starts_with(b"ROUTES_UPDATE|") => {
            debug(RoutesUpdate::decode(datagram))
        }
        (Kind::Request, "tower", _) => debug(TowerPush::decode(datagram)),
        (kind, from, to) => panic!("no decoder for a {kind:?} from {from} to {to}"),
    }
}

#[test]
fn every_example_in_the_protocol_doc_decodes() {
    let mut in_block = false;
    let mut checked = 0;
    for (number, line) in PROTOCOL_MD.lines().enumerate() {
        let number = number + 1;
        if line.trim_start().starts_with("```") {
            in_block = line.trim() == "```wire";
            continue;
        }
        if !in_block || line.trim().is_empty() {
            continue;
        }
        let (route, datagram) = line
            .split_once("  ")
            .unwrap_or_else(|| panic!("line {number}: expected `<from> → <to>  <datagram>`"));
        let (from, to) = route
            .split_once(" → ")
            .unwrap_or_else(|| panic!("line {number}: expected `<from> → <to>`"));
        let datagram = datagram.trim_start().replace('⏎', "\n");
        if let Err(err) = decode(from.trim(), to.trim(), datagram.as_bytes()) {
            panic!("docs/PROTOCOL.md line {number}: {datagram:?}: {err}");
        }
        checked += 1;
    }
    assert!(checked > 60, "only {checked} examples found");
}
