//! Structured logs to stderr (tracing). The filter comes from `SKR8TR_LOG` (then `RUST_LOG`),
//! default `info`: a level (`warn`), `target=level` pairs, or both, comma-separated
//! (`info,skr8tr_node=debug`). Never pass a secret to a log macro: the types that hold secrets
//! print `<redacted>`.
//!
//! The filter is tracing-subscriber's `Targets`, not `EnvFilter`: the same syntax for levels and
//! targets without span/field matching, and without the regex engine behind it (~220 KiB of
//! code in each daemon, most of it paged in at start: SPEC §6's idle RSS).

use std::io::IsTerminal as _;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The filter when none is set, or when the one set does not parse.
const DEFAULT_FILTER: &str = "info";

/// Parses a filter (`warn`, `info,skr8tr_node=debug`); `None` when it does not parse.
fn parse_filter(text: &str) -> Option<Targets> {
    text.trim().parse().ok()
}

/// Installs the stderr subscriber once; later calls (tests starting several daemons in one
/// process) are no-ops.
pub fn init_logging() {
    let (var, text) = match std::env::var("SKR8TR_LOG") {
        Ok(v) => ("SKR8TR_LOG", v),
        Err(_) => match std::env::var("RUST_LOG") {
            Ok(v) => ("RUST_LOG", v),
            Err(_) => ("", DEFAULT_FILTER.to_owned()),
        },
    };
    let filter = parse_filter(&text).unwrap_or_else(|| {
        eprintln!("ignoring {var}={text:?}: not a log filter (`warn`, `info,target=debug`)");
        Targets::new().with_default(tracing::Level::INFO)
    });
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .finish()
        .with(filter)
        .try_init();
}

#[cfg(test)]
mod tests {
    use tracing::Level;
    use tracing_subscriber::filter::LevelFilter;

    use super::parse_filter;

    #[test]
    fn levels_and_target_pairs_parse() {
        let f = parse_filter("warn").expect("a level");
        assert!(f.would_enable("skr8tr_node", &Level::WARN));
        assert!(!f.would_enable("skr8tr_node", &Level::INFO));
        let f = parse_filter("info,skr8tr_node::agent=debug").expect("pairs");
        assert!(f.would_enable("skr8tr_node::agent::server", &Level::DEBUG));
        assert!(!f.would_enable("skr8tr_control", &Level::DEBUG));
        assert!(f.would_enable("skr8tr_control", &Level::INFO));
        let f = parse_filter("skr8tr_control=trace").expect("a pair alone");
        assert!(f.would_enable("skr8tr_control::tower", &Level::TRACE));
        assert!(!f.would_enable("tokio", &Level::ERROR));
        assert_eq!(
            parse_filter("off").expect("off").default_level(),
            Some(LevelFilter::OFF)
        );
    }

    #[test]
    fn garbage_does_not_parse() {
        assert!(parse_filter("info,=,==").is_none());
        assert!(parse_filter("skr8tr_node=loud").is_none());
    }
}
