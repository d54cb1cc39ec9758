//! Criterion benches of the shared contract's hot functions, on real inputs:
//! ML-DSA-65 sign and verify of a SUBMIT, manifest parsing of the bundled examples, and
//! datagram decoding (plain and signed). Results: `benches/results/proto.md`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use skr8tr_proto::auth::{KeyRole, SigningKey, Verifier, sign_command};
use skr8tr_proto::manifest;
use skr8tr_proto::wire::{ConductorRequest, MeshEvent, Message as _, TowerPush};

const EXAMPLES: &[(&str, &str)] = &[
    ("api-server", include_str!("../examples/api-server.skr8tr")),
    ("worker-env", include_str!("../examples/worker-env.skr8tr")),
    ("vm-legacy", include_str!("../examples/vm-legacy.skr8tr")),
];

fn signing(c: &mut Criterion) {
    let (key, public) = SigningKey::generate().expect("keygen");
    let cmd = "SUBMIT|/opt/apps/api.skr8tr";
    c.bench_function("mldsa65/sign", |b| {
        b.iter(|| sign_command(&key, black_box(cmd), 1_767_225_600).expect("sign"));
    });
    // Verify without the replay guard refusing repeats: a fresh signature per verifier is too
    // slow to set up per iteration, so verify the raw signature over the signed bytes.
    let signed = sign_command(&key, cmd, 1_767_225_600).expect("sign");
    let parsed = skr8tr_proto::auth::SignedCommand::parse(&signed).expect("parse");
    c.bench_function("mldsa65/verify", |b| {
        b.iter(|| assert!(black_box(&parsed).is_signed_by(&public)));
    });
    c.bench_function("mldsa65/verifier_full_path_first_seen", |b| {
        b.iter_batched(
            || Verifier::new(KeyRole::Operator, [public.clone()]).with_clock(|| 1_767_225_600u64),
            |mut v| v.verify(black_box(&signed)).map(str::len).expect("valid"),
            criterion::BatchSize::SmallInput,
        );
    });
}

fn manifests(c: &mut Criterion) {
    for (name, text) in EXAMPLES {
        c.bench_function(&format!("manifest/parse/{name}"), |b| {
            b.iter(|| manifest::parse(name, black_box(text)).expect("valid example"));
        });
    }
}

fn datagrams(c: &mut Criterion) {
    let heartbeat = "HEARTBEAT|node-a|12.5|2048|10.0.0.5|7775|8192|4000|17|\
        api.g1.r1:api:1:4242:healthy:8080:3.25:20480,api.g1.r2:api:1:4243:healthy:8081:1.5:20000";
    let update = "UPDATE|api|42|3|10.0.0.1:8080,10.0.0.2:8080,[fd00::3]:8080";
    c.bench_function("wire/decode/list", |b| {
        b.iter(|| ConductorRequest::decode(black_box(b"LIST")).expect("valid"));
    });
    c.bench_function("wire/decode/heartbeat_2_replicas", |b| {
        b.iter(|| MeshEvent::decode(black_box(heartbeat.as_bytes())).expect("valid"));
    });
    c.bench_function("wire/decode/update_3_backends", |b| {
        b.iter(|| TowerPush::decode(black_box(update.as_bytes())).expect("valid"));
    });
}

criterion_group!(benches, signing, manifests, datagrams);
criterion_main!(benches);
