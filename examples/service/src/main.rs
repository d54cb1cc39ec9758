//! The example service binary; the server is `skr8tr_example_service` (also reachable as
//! `skr8tr example-service`, which `skr8tr dev` deploys).

fn main() -> std::io::Result<()> {
    skr8tr_example_service::main_with_args(std::env::args().skip(1))
}
