//! Link flags for this crate's binaries; nothing is generated.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let linux_gnu = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    if linux_gnu {
        // DT_RELR: the executable's relative relocations packed into a few KiB instead of 24
        // bytes each (170 KiB for skr8tr_sched), a table the dynamic loader reads whole at
        // every start and which then stays resident: -0.5 MB idle RSS over the three control
        // daemons. glibc >= 2.36 loads such binaries; GNU ld < 2.38 ignores the flag with a
        // warning.
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
