//! Structured logs to stderr (tracing), one set-up for every skr8tr daemon: the control daemons
//! (Tower, Conductor, node agent, `skr8tr_server`), the ingress and the static file server.
//!
//! The filter comes from `SKR8TR_LOG`, with `RUST_LOG` accepted as an alias (`SKR8TR_LOG` wins
//! when both are set), default `info`: a level (`warn`), `target=level` pairs, or both,
//! comma-separated (`info,skr8tr_node=debug`). Never pass a secret to a log macro: the types
//! that hold secrets print `<redacted>`.
//!
//! One line per event on stderr: text, with colour only when stderr is a terminal (a file or a
//! pipe gets no ANSI escapes), or, with `SKR8TR_LOG_FORMAT=json`, one JSON object per line
//! (`timestamp`, `level`, `message` and the event's fields at the top level) for log shippers.
//!
//! The filter is tracing-subscriber's `Targets`, not `EnvFilter`: the same syntax for levels and
//! targets without span/field matching, and without the regex engine behind it (~220 KiB of
//! code in each daemon, most of it paged in at start: SPEC §6's idle RSS).
//!
//! Needs no runtime: it is what the ingress takes from this crate.

use std::io::IsTerminal as _;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The filter when none is set, or when the one set does not parse.
const DEFAULT_FILTER: &str = "info";

/// The filter's variable.
const VAR: &str = "SKR8TR_LOG";
/// Its alias, the Rust ecosystem's usual name.
const ALIAS: &str = "RUST_LOG";
/// The format's variable: `text` (the default) or `json`.
const FORMAT_VAR: &str = "SKR8TR_LOG_FORMAT";

/// How each event is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// Human-readable lines, coloured when `ansi`.
    Text { ansi: bool },
    /// One JSON object per line.
    Json,
}

/// The format `SKR8TR_LOG_FORMAT` names (`None`: unset); `Err` with the text when it names none.
fn parse_format(value: Option<&str>, terminal: bool) -> Result<Format, String> {
    match value.map(str::trim) {
        None | Some("" | "text") => Ok(Format::Text { ansi: terminal }),
        Some("json") => Ok(Format::Json),
        Some(other) => Err(other.to_owned()),
    }
}

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
    let terminal = std::io::stderr().is_terminal();
    let format =
        parse_format(std::env::var(FORMAT_VAR).ok().as_deref(), terminal).unwrap_or_else(|other| {
            eprintln!("ignoring {FORMAT_VAR}={other:?}: not `text` or `json`");
            Format::Text { ansi: terminal }
        });
    let _ = subscriber(filter, format, std::io::stderr).try_init();
}

/// The registry with `filter` in front of the formatter `format` writing to `writer` (stderr).
/// The filter is the only level cap: `fmt()`'s builder would add its own, `info`, under it (so
/// `debug` never showed), and the process's maximum level is the filter's, which a disabled
/// `debug!` on a hot path checks first.
fn subscriber<W>(
    filter: Targets,
    format: Format,
    writer: W,
) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let (text, json) = match format {
        Format::Text { ansi } => (
            Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(writer)
                    .with_ansi(ansi)
                    .with_target(false),
            ),
            None,
        ),
        Format::Json => (
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false)
                    .with_writer(writer)
                    .with_target(false),
            ),
        ),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(text)
        .with(json)
}

#[cfg(test)]
mod tests {
    use tracing::Level;
    use tracing_subscriber::filter::LevelFilter;

    use std::sync::{Arc, Mutex, PoisonError};

    use super::{Format, chosen, parse_filter, parse_format, subscriber};

    /// A writer the tests read back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(
                self.0
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone(),
            )
            .expect("utf-8")
        }
    }

    /// What `format` writes for two events, one with fields.
    fn written(format: Format) -> String {
        let out = Captured::default();
        let writer = out.clone();
        let s = subscriber(parse_filter("info").expect("a filter"), format, move || {
            writer.clone()
        });
        tracing::subscriber::with_default(s, || {
            tracing::info!(listen = "127.0.0.1:7772", n = 3, "tower ready");
            tracing::warn!("quote \" and\nnewline");
            tracing::debug!("filtered out");
        });
        out.text()
    }

    #[test]
    fn json_is_one_object_per_line_with_the_fields_at_the_top() {
        let text = written(Format::Json);
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is a JSON object"))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["message"], "tower ready");
        assert_eq!(lines[0]["listen"], "127.0.0.1:7772");
        assert_eq!(lines[0]["n"], 3);
        assert!(lines[0]["timestamp"].is_string());
        assert_eq!(lines[1]["message"], "quote \" and\nnewline");
    }

    #[test]
    fn text_has_no_escape_codes_unless_on_a_terminal() {
        let plain = written(Format::Text { ansi: false });
        assert!(plain.contains("tower ready") && plain.contains("listen=\"127.0.0.1:7772\""));
        assert!(!plain.contains('\x1b'), "{plain:?}");
        assert!(written(Format::Text { ansi: true }).contains('\x1b'));
    }

    #[test]
    fn the_format_variable_chooses_text_or_json() {
        let table = [
            (None, false, Ok(Format::Text { ansi: false })),
            (None, true, Ok(Format::Text { ansi: true })),
            (Some("text"), true, Ok(Format::Text { ansi: true })),
            (Some(""), false, Ok(Format::Text { ansi: false })),
            (Some("json"), true, Ok(Format::Json)),
            (Some(" json\n"), false, Ok(Format::Json)),
            (Some("JSONL"), false, Err("JSONL".to_owned())),
        ];
        for (value, terminal, want) in table {
            assert_eq!(parse_format(value, terminal), want, "{value:?}");
        }
    }

    #[test]
    fn the_filter_alone_sets_the_level() {
        for (text, debug, hint) in [
            ("debug", true, LevelFilter::DEBUG),
            ("info", false, LevelFilter::INFO),
            ("warn,skr8tr_node=trace", false, LevelFilter::TRACE),
        ] {
            let s = subscriber(
                parse_filter(text).expect("a filter"),
                Format::Text { ansi: false },
                std::io::sink,
            );
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
