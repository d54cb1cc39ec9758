//! Argument parsing: every command, global options anywhere on the line, and refusals.

use clap::Parser;

use super::*;

/// The operator's commands under the global options, as the `skr8tr` binary parses them.
#[derive(Debug, Parser)]
#[command(name = "skr8tr")]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

fn parse(args: &[&str]) -> Cli {
    Cli::try_parse_from(std::iter::once("skr8tr").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn refused(args: &[&str]) -> bool {
    Cli::try_parse_from(std::iter::once("skr8tr").chain(args.iter().copied())).is_err()
}

#[test]
fn global_options_go_before_or_after_the_command() {
    let cli = parse(&[
        "--json",
        "status",
        "--conductor",
        "10.0.0.5:9",
        "--timeout-ms",
        "100",
    ]);
    assert!(cli.global.json);
    assert_eq!(cli.global.conductor, "10.0.0.5:9");
    assert_eq!(cli.global.timeout_ms, 100);
    assert!(matches!(cli.command, Command::Status { app: None }));
    let cli = parse(&["--tower", "[::1]:7000", "--key", "/k.sec", "lookup", "api"]);
    assert_eq!(cli.global.tower, "[::1]:7000");
    assert_eq!(cli.global.key, Some(PathBuf::from("/k.sec")));
    assert!(matches!(cli.command, Command::Lookup { service } if service.as_str() == "api"));
}

#[test]
fn mutating_commands() {
    match parse(&["up", "a.skr8tr", "b.skr8tr"]).command {
        Command::Up { files } => assert_eq!(files.len(), 2),
        other => panic!("{other:?}"),
    }
    assert!(refused(&["up"]));
    assert!(
        matches!(parse(&["down", "api"]).command, Command::Down { app } if app.as_str() == "api")
    );
    assert!(refused(&["down", "bad name"]));
    assert!(matches!(
        parse(&["scale", "api", "5"]).command,
        Command::Scale { replicas: 5, .. }
    ));
    assert!(refused(&["scale", "api", "10001"]));
    assert!(refused(&["scale", "api", "-1"]));
    match parse(&["rollout", "api.skr8tr"]).command {
        Command::Rollout {
            detach,
            wait_timeout_s,
            ..
        } => assert_eq!((detach, wait_timeout_s), (false, 300)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        parse(&["rollout", "api.skr8tr", "--detach", "--wait-timeout-s", "9"]).command,
        Command::Rollout {
            detach: true,
            wait_timeout_s: 9,
            ..
        }
    ));
    assert!(refused(&["rollout", "a", "--wait-timeout-s", "0"]));
}

#[test]
fn workload_commands() {
    match parse(&["logs", "api", "--replica", "api.g1.r2", "-f"]).command {
        Command::Logs {
            app,
            replica,
            follow,
        } => {
            assert_eq!(app.as_str(), "api");
            assert_eq!(replica.map(|r| r.to_string()).as_deref(), Some("api.g1.r2"));
            assert!(follow);
        }
        other => panic!("{other:?}"),
    }
    for args in [
        &["exec", "api", "--", "ls", "-l", "/data"][..],
        &["exec", "api", "ls", "-l", "/data"][..],
    ] {
        match parse(args).command {
            Command::Exec { app, command } => {
                assert_eq!(app.as_str(), "api");
                assert_eq!(command, ["ls", "-l", "/data"]);
            }
            other => panic!("{other:?}"),
        }
    }
    // Flags before the command words are the CLI's; after them, the command's.
    match parse(&["exec", "--json", "api", "sh", "--json"]).command {
        Command::Exec { command, .. } => assert_eq!(command, ["sh", "--json"]),
        other => panic!("{other:?}"),
    }
    assert!(refused(&["exec", "api"]));
}

#[test]
fn read_only_commands_and_names() {
    for (args, name) in [
        (&["nodes"][..], "nodes"),
        (&["list"][..], "list"),
        (&["ping"][..], "ping"),
        (&["status", "api"][..], "status"),
        (&["check", "x.skr8tr"][..], "check"),
        (&["sign", "k", "PING"][..], "sign"),
    ] {
        assert_eq!(parse(args).command.name(), name);
    }
    assert!(refused(&["lookup"]));
    assert!(refused(&["nodes", "extra"]));
}

#[test]
fn routes_takes_an_optional_ingress_and_the_global_options() {
    let cli = parse(&["routes", "--json", "--tower", "10.0.0.5"]);
    assert!(matches!(cli.command, Command::Routes { ingress: None }));
    assert!(cli.global.json);
    assert_eq!(cli.command.name(), "routes");
    assert!(refused(&["routes", "api"]));
    let cli = parse(&["routes", "--ingress", "edge-1:9180"]);
    assert!(matches!(
        cli.command,
        Command::Routes { ingress: Some(ref a) } if a == "edge-1:9180"
    ));
}
