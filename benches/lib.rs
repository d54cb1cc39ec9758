//! Home of skr8tr's benchmarks: criterion benches of the real functions (`proto.rs`) and the
//! side-by-side peer benchmark scripts. This library is empty on purpose; the benches link the
//! crates they measure directly.
