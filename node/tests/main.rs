//! Integration tests of the node engine: real processes (`/bin/true`, `/bin/false`, `sleep`,
//! `sh -c` scripts), each test on its own state directory and ephemeral ports.

mod util;

mod adopt;
mod health;
mod launch;
mod limits;
mod logs_exec;
mod restart;
mod stop;
mod uring;
