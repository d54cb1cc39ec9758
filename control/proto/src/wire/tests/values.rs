//! The value types shared by messages, and the field helpers, on their own.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use proptest::prelude::*;

use super::strategy;
use crate::wire::fields::{FieldValue, parts, parts_around_ip};
use crate::wire::*;

fn cpu(raw: &str) -> Result<CpuPercent, WireError> {
    CpuPercent::parse_field("T", "cpu", raw)
}

#[test]
fn cpu_percent_text() {
    let h = |n| CpuPercent::from_hundredths(n).unwrap();
    for (raw, hundredths, canonical) in [
        ("0", 0, "0"),
        ("12.5", 1250, "12.5"),
        ("12.50", 1250, "12.5"),
        ("12.500000", 1250, "12.5"),
        ("12.05", 1205, "12.05"),
        ("12.059", 1205, "12.05"),
        ("0.01", 1, "0.01"),
        ("100", 10_000, "100"),
        ("350.0", 35_000, "350"),
        ("007", 700, "7"),
        ("1000000", 100_000_000, "1000000"),
        ("1000000.00", 100_000_000, "1000000"),
    ] {
        assert_eq!(cpu(raw), Ok(h(hundredths)), "{raw}");
        assert_eq!(h(hundredths).to_string(), canonical);
    }
    assert!(cpu("1000000.01").is_err());
    assert_eq!(CpuPercent::from_hundredths(100_000_001), None);
    assert_eq!(CpuPercent::from_f64(12.345), h(1235));
    assert_eq!(CpuPercent::from_f64(-3.0), CpuPercent::ZERO);
    assert_eq!(CpuPercent::from_f64(f64::NAN), CpuPercent::ZERO);
    assert_eq!(CpuPercent::from_f64(f64::INFINITY), CpuPercent::MAX);
    assert!((h(1250).as_f64() - 12.5).abs() < f64::EPSILON);
}

#[test]
fn backend_text() {
    let v4 = Backend::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)), 8080);
    let v6 = Backend::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 80);
    let mapped = Backend::new(IpAddr::V6(Ipv4Addr::new(1, 2, 3, 4).to_ipv6_mapped()), 1);
    assert_eq!(v4.to_string(), "10.0.0.5:8080");
    assert_eq!(v6.to_string(), "[::1]:80");
    assert_eq!(mapped.to_string(), "[::ffff:1.2.3.4]:1");
    for b in [v4, v6, mapped] {
        assert_eq!(Backend::from_str(&b.to_string()), Ok(b));
    }
    for bad in [
        "::1:80",
        "[::1]",
        "[::1]:",
        "10.0.0.5",
        "10.0.0.5:-1",
        "host:80",
        "",
        "[[::1]]:80",
    ] {
        assert!(Backend::from_str(bad).is_err(), "{bad}");
    }
}

#[test]
fn exit_text() {
    for (raw, exit) in [
        ("0", Exit::Code(0)),
        ("255", Exit::Code(255)),
        ("-9", Exit::Signal(9)),
        ("-0", Exit::Signal(0)),
    ] {
        assert_eq!(Exit::parse_field("T", "exit", raw), Ok(exit));
        assert_eq!(exit.to_string(), raw);
    }
    assert!(Exit::Code(0).success());
    assert!(!Exit::Signal(0).success());
}

#[test]
fn one_line_and_host_path_refuse_what_would_break_a_message() {
    assert!(OneLine::new("a|b: c").is_ok());
    assert!(OneLine::new("a\nb").is_err());
    assert!(OneLine::new("a\rb").is_err());
    assert_eq!(OneLine::lossy("a\r\nb\n").as_str(), "a  b ");
    assert_eq!(OneLine::empty().as_str(), "");
    assert!(HostPath::new("/opt/a|b.skr8tr").is_ok());
    assert!(HostPath::new("b64").is_ok());
    assert!(HostPath::new("").is_err());
    assert!(HostPath::new("b64:/x").is_err());
}

#[test]
fn keywords_round_trip() {
    for code in ErrorCode::ALL {
        assert_eq!(ErrorCode::from_str(code.keyword()), Ok(*code));
    }
    for state in ReplicaState::ALL {
        assert_eq!(state.to_string().parse::<ReplicaState>(), Ok(*state));
    }
    for state in RolloutState::ALL {
        assert_eq!(RolloutState::from_keyword(state.keyword()), Some(*state));
    }
    assert!("Healthy".parse::<ReplicaState>().is_err());
    assert_eq!(ErrorCode::from_keyword("not_found"), None);
}

#[test]
fn error_reply_display_and_lossy() {
    let err = ErrorReply::lossy(ErrorCode::NotFound, "no app\napi");
    assert_eq!(err.to_string(), "NOT_FOUND: no app api");
    assert_eq!(
        ErrorReply::new(ErrorCode::Busy, OneLine::empty()).to_string(),
        "BUSY"
    );
}

#[test]
fn drain_status_all() {
    let d = |acked, subscribers| DrainStatus {
        service: super::svc("api"),
        version: 1,
        acked,
        subscribers,
    };
    assert!(d(0, 0).all());
    assert!(d(2, 2).all());
    assert!(!d(1, 2).all());
}

#[test]
fn entry_splitting() {
    assert_eq!(parts::<3>("T", "e", "a:b:c"), Ok(["a", "b", "c"]));
    assert_eq!(parts::<3>("T", "e", "a::"), Ok(["a", "", ""]));
    assert!(parts::<3>("T", "e", "a:b").is_err());
    assert!(parts::<3>("T", "e", "a:b:c:d").is_err());
    assert_eq!(
        parts_around_ip::<1, 2>("T", "e", "n:::1:1:2"),
        Ok((["n"], "::1", ["1", "2"]))
    );
    assert_eq!(
        parts_around_ip::<1, 2>("T", "e", "n:10.0.0.1:1:2"),
        Ok((["n"], "10.0.0.1", ["1", "2"]))
    );
    assert_eq!(
        parts_around_ip::<1, 2>("T", "e", "n:fe80::1:2:3:1:2"),
        Ok((["n"], "fe80::1:2:3", ["1", "2"]))
    );
    assert_eq!(
        parts_around_ip::<1, 2>("T", "e", "n::1:2"),
        Ok((["n"], "", ["1", "2"]))
    );
    assert!(parts_around_ip::<1, 2>("T", "e", "n:1").is_err());
    assert!(parts_around_ip::<1, 2>("T", "e", "").is_err());
}

proptest! {
    #[test]
    fn cpu_percent_round_trips(c in strategy::cpu()) {
        prop_assert_eq!(cpu(&c.to_string()), Ok(c));
    }

    #[test]
    fn backends_round_trip(b in strategy::backend()) {
        prop_assert_eq!(Backend::from_str(&b.to_string()), Ok(b));
    }

    #[test]
    fn ips_in_the_middle_of_an_entry_round_trip(ip in strategy::ip(), a in 0_u32..9, b in 0_u32..9) {
        let entry = format!("n:{ip}:{a}:{b}");
        let ([n], mid, [x, y]) = parts_around_ip::<1, 2>("T", "e", &entry).unwrap();
        let expected = ("n".to_owned(), a.to_string(), b.to_string());
        prop_assert_eq!((n.to_owned(), x.to_owned(), y.to_owned()), expected);
        prop_assert_eq!(IpAddr::from_str(mid), Ok(ip));
    }

    #[test]
    fn lossy_text_is_one_line(s in ".*") {
        let line = OneLine::lossy(&s);
        prop_assert_eq!(OneLine::new(line.as_str()), Ok(line.clone()));
        prop_assert_eq!(line.as_str().chars().count(), s.chars().count());
    }
}
