//! Structured logs to stderr (tracing), one set-up for every skr8tr daemon: the control daemons
//! (Tower, Conductor, node agent, `skr8tr_server`), the ingress and the static file server.
//!
//! The filter comes from `SKR8TR_LOG`, with `RUST_LOG` accepted as an alias (`SKR8TR_LOG` wins
//! when both are set), default `info`: a level (`warn`), `target=level` pairs, or both,
//! comma-separated (`info,skr8tr_node=debug`). Never pass a secret to a log macro: the types
//! that hold secrets print `<redacted>`.
//!
//! The filter is tracing-subscriber's `Targets`, not `EnvFilter`: the same syntax for levels and
//! targets without span/field matching, and without the regex engine behind it (~220 KiB of
//! code in each daemon, most of it paged in at start: SPEC §6's idle RSS).
//!
//! Needs no runtime: it is what the ingress takes from this crate.

use std::io::IsTerminal as _;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The filter when none is set, or when the one set does not parse.
const DEFAULT_FILTER: &str = "info";

/// The filter's variable.
const VAR: &str = "SKR8TR_LOG";
/// Its alias, the Rust ecosystem's usual name.
const ALIAS: &str = "RUST_LOG";

/// Which filter applies: `SKR8TR_LOG`'s value, else `RUST_LOG`'s, else [`DEFAULT_FILTER`];
/// with the name of the variable it came from ("" for the default).
fn chosen(var: Option<String>, alias: Option<String>) -> (&'static str, String) {
    match (var, alias) {
        (Some(v), _) => (VAR, v),
        (None, Some(v)) => (ALIAS, v),
        (None, None) => ("", DEFAULT_FILTER.to_owned()),
    }
}

/// Parses a filter (`warn`, `info,skr8tr_node=debug`); `None` when it does not parse.
fn parse_filter(text: &str) -> Option<Targets> {
    text.trim().parse().ok()
}

/// Installs the stderr subscriber once; later calls (tests starting several daemons in one
/// process) are no-ops.
pub fn init_logging() {
    let (var, text) = chosen(std::env::var(VAR).ok(), std::env::var(ALIAS).ok());
    let filter = parse_filter(&text).unwrap_or_else(|| {
        eprintln!("ignoring {var}={text:?}: not a log filter (`warn`, `info,target=debug`)");
        Targets::new().with_default(tracing::Level::INFO)
    });
    let _ = subscriber(filter).try_init();
}

/// The registry with `filter` in front of the stderr formatter. The filter is the only level
/// cap: `fmt()`'s builder would add its own, `info`, under it (so `debug` never showed), and the
/// process's maximum level is the filter's, which a disabled `debug!` on a hot path checks
/// first.
fn subscriber(filter: Targets) -> impl tracing::Subscriber + Send + Sync {
    tracing_subscriber::registry().with(filter).with(
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(false),
    )
}

#[cfg(test)]
mod tests {
    use tracing::Level;
    use tracing_subscriber::filter::LevelFilter;

    use super::{chosen, parse_filter, subscriber};

    #[test]
    fn the_filter_alone_sets_the_level() {
        for (text, debug, hint) in [
            ("debug", true, LevelFilter::DEBUG),
            ("info", false, LevelFilter::INFO),
            ("warn,skr8tr_node=trace", false, LevelFilter::TRACE),
        ] {
            let s = subscriber(parse_filter(text).expect("a filter"));
            assert_eq!(
                tracing::Subscriber::max_level_hint(&s),
                Some(hint),
                "{text}"
            );
            let enabled = tracing::subscriber::with_default(s, || tracing::enabled!(Level::DEBUG));
            assert_eq!(enabled, debug, "{text}");
        }
    }

    #[test]
    fn skr8tr_log_wins_over_its_alias() {
        let some = |s: &str| Some(s.to_owned());
        let table = [
            (some("warn"), some("debug"), ("SKR8TR_LOG", "warn")),
            (some("warn"), None, ("SKR8TR_LOG", "warn")),
            (None, some("debug"), ("RUST_LOG", "debug")),
            (None, None, ("", "info")),
        ];
        for (var, alias, (name, text)) in table {
            assert_eq!(chosen(var, alias), (name, text.to_owned()));
        }
    }

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
