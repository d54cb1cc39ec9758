//! Values that several messages carry: one-line text, CPU percentages, exit statuses, replica
//! and rollout states, and backend addresses.
//!
//! Each type's text form is what goes on the wire, and each is built so that whatever value
//! exists can be written and read back unchanged: text that could break a message (a line break
//! in one-line text) is refused by the constructor, not discovered by the peer.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::error::{WireError, quote};
use super::fields::{FieldValue, bad, uint_in};

/// Text without a line break (`\n` or `\r`): an error detail, a log line, a status message.
///
/// On the wire it is always the last field of its message, so it may contain `|`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OneLine(String);

impl OneLine {
    /// Wraps `text` if it has no line break.
    ///
    /// # Errors
    /// [`WireError::Unencodable`] when `text` contains `\n` or `\r`.
    pub fn new(text: impl Into<String>) -> Result<Self, WireError> {
        let text = text.into();
        if text.contains(['\n', '\r']) {
            return Err(WireError::Unencodable {
                field: "text",
                reason: "contains a line break",
            });
        }
        Ok(Self(text))
    }

    /// Wraps `text`, turning every `\n` and `\r` into a space. Use for text from elsewhere (an
    /// error's `Display`, a child's output) that must fit on one line.
    #[must_use]
    pub fn lossy(text: &str) -> Self {
        Self(text.replace(['\n', '\r'], " "))
    }

    /// The empty text.
    #[must_use]
    pub fn empty() -> Self {
        Self(String::new())
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    #[must_use]
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for OneLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for OneLine {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FieldValue for OneLine {
    fn parse_field(verb: &'static str, field: &'static str, raw: &str) -> Result<Self, WireError> {
        Self::new(raw).map_err(|_| bad(verb, field, "contains a line break"))
    }
}

/// A CPU load in percent of one core, with two decimals: `12.5` is 12.5 %, a replica busy on
/// three cores shows `300`. Stored as hundredths, so it compares and round-trips exactly.
///
/// Written with no trailing zeros (`12`, `12.5`, `12.05`); read from digits with an optional
/// `.` and fraction, of which the first two digits count (`12.500000` from C's `%f` is 12.5).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CpuPercent(u32);

impl CpuPercent {
    /// The highest value accepted: 1,000,000 % (ten thousand busy cores).
    pub const MAX: Self = Self(100_000_000);
    pub const ZERO: Self = Self(0);

    /// `hundredths` / 100 percent, if at most [`Self::MAX`].
    #[must_use]
    pub fn from_hundredths(hundredths: u32) -> Option<Self> {
        (hundredths <= Self::MAX.0).then_some(Self(hundredths))
    }

    /// The nearest value to `percent`, clamped to `0..=MAX` (NaN is 0).
    #[must_use]
    pub fn from_f64(percent: f64) -> Self {
        let hundredths = (percent * 100.0).round();
        if hundredths.is_nan() || hundredths <= 0.0 {
            Self::ZERO
        } else if hundredths >= f64::from(Self::MAX.0) {
            Self::MAX
        } else {
            // A whole number in 1..MAX (checked above), so the cast is exact.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let hundredths = hundredths as u32;
            Self(hundredths)
        }
    }

    #[must_use]
    pub fn hundredths(self) -> u32 {
        self.0
    }

    #[must_use]
    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / 100.0
    }
}

impl fmt::Display for CpuPercent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, frac) = (self.0 / 100, self.0 % 100);
        match frac {
            0 => write!(f, "{whole}"),
            _ if frac % 10 == 0 => write!(f, "{whole}.{}", frac / 10),
            _ => write!(f, "{whole}.{frac:02}"),
        }
    }
}

impl FieldValue for CpuPercent {
    fn parse_field(verb: &'static str, field: &'static str, raw: &str) -> Result<Self, WireError> {
        let wrong = || {
            bad(
                verb,
                field,
                format!("expected a percentage like 12.5, found {:?}", quote(raw)),
            )
        };
        let (whole, frac) = raw.split_once('.').unwrap_or((raw, "0"));
        if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(wrong());
        }
        let whole: u32 = uint_in(verb, field, whole, 0..=u64::from(Self::MAX.0 / 100))?;
        let mut digits = frac.bytes().map(|b| u32::from(b - b'0'));
        let tenths = digits.next().unwrap_or(0);
        let hundredths = digits.next().unwrap_or(0);
        Self::from_hundredths(whole * 100 + tenths * 10 + hundredths)
            .ok_or_else(|| bad(verb, field, format!("{} is above the maximum", quote(raw))))
    }
}

/// How a process ended: an exit code, the signal that killed it, or the kernel's OOM killer
/// inside its memory limit. Written `N`, `-SIGNAL` or `oom-killed` (`0`, `1`, `-9`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exit {
    Code(u8),
    Signal(u8),
    /// Killed (SIGKILL) by the kernel for going over its memory limit.
    OomKilled,
}

impl Exit {
    #[must_use]
    pub fn success(self) -> bool {
        self == Self::Code(0)
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Code(code) => write!(f, "{code}"),
            Self::Signal(signal) => write!(f, "-{signal}"),
            Self::OomKilled => f.write_str(OOM_KILLED),
        }
    }
}

const OOM_KILLED: &str = "oom-killed";

impl FromStr for Exit {
    type Err = WireError;
    fn from_str(s: &str) -> Result<Self, WireError> {
        Self::parse_field("exit", "exit", s)
    }
}

impl FieldValue for Exit {
    fn parse_field(verb: &'static str, field: &'static str, raw: &str) -> Result<Self, WireError> {
        if raw == OOM_KILLED {
            return Ok(Self::OomKilled);
        }
        match raw.strip_prefix('-') {
            Some(signal) => uint_in(verb, field, signal, 0..=255).map(Self::Signal),
            None => uint_in(verb, field, raw, 0..=255).map(Self::Code),
        }
    }
}

/// Declares a keyword enum: `keyword()`, `from_keyword()`, `Display`, `FromStr` and
/// [`FieldValue`].
macro_rules! keyword_enum {
    ($(#[$doc:meta])* $ty:ident { $($(#[$vdoc:meta])* $variant:ident => $kw:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $ty {
            $($(#[$vdoc])* $variant,)*
        }

        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];

            /// The word used on the wire.
            #[must_use]
            pub fn keyword(self) -> &'static str {
                match self {
                    $(Self::$variant => $kw,)*
                }
            }

            /// The value written as `word` (exact, case-sensitive).
            #[must_use]
            pub fn from_keyword(word: &str) -> Option<Self> {
                match word {
                    $($kw => Some(Self::$variant),)*
                    _ => None,
                }
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.keyword())
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = $crate::wire::error::WireError;
            fn from_str(s: &str) -> Result<Self, $crate::wire::error::WireError> {
                <Self as $crate::wire::fields::FieldValue>::parse_field(stringify!($ty), "keyword", s)
            }
        }

        impl $crate::wire::fields::FieldValue for $ty {
            fn parse_field(
                verb: &'static str,
                field: &'static str,
                raw: &str,
            ) -> Result<Self, $crate::wire::error::WireError> {
                Self::from_keyword(raw).ok_or_else(|| {
                    $crate::wire::fields::bad(verb, field, format!(
                        "expected one of {}, found {:?}",
                        [$($kw),*].join(", "),
                        $crate::wire::error::quote(raw),
                    ))
                })
            }
        }
    };
}
pub(crate) use keyword_enum;

keyword_enum!(
    /// Where a replica is in its life, as nodes report it and `skr8tr status` shows it.
    ReplicaState {
        /// Placed, not yet started (waiting for a node, a back-off, or a build).
        Pending => "pending",
        /// Running, health not yet passed.
        Starting => "starting",
        /// Running and passing its health check (or running, when it has none).
        Healthy => "healthy",
        /// Running and failing its health check.
        Unhealthy => "unhealthy",
        /// Being stopped: deregistered, signalled, draining.
        Stopping => "stopping",
        /// Ended with exit code 0 (a finished job, or a stopped service).
        Exited => "exited",
        /// Ended with a non-zero code or a signal, or could not be launched.
        Failed => "failed",
    }
);

keyword_enum!(
    /// What enforces a replica's `ram`/`cpu` limits on its node (the one for `ram`, else the
    /// one for `cpu`), as heartbeats and `skr8tr status` say it.
    LimitMechanism {
        CgroupV2 => "cgroup-v2",
        CgroupV1 => "cgroup-v1",
        /// `RLIMIT_DATA`: memory only.
        Rlimit => "rlimit",
        /// No limit asked for, or none the kernel allows.
        None => "none",
    }
);

keyword_enum!(
    /// The state of an app's rollout.
    RolloutState {
        /// Replacing replicas one at a time.
        Running => "running",
        /// `rollout { canary N }`: N new replicas run beside the old set, waiting for
        /// PROMOTE (then it goes on as `running`) or ROLLBACK.
        Canary => "canary",
        /// Every replica runs the new generation.
        Complete => "complete",
        /// A new replica failed; restoring the previous generation.
        Reverting => "reverting",
        /// The previous generation is back.
        Reverted => "reverted",
        /// Stopped without completing or reverting (no auto-revert, or the revert failed).
        Failed => "failed",
        /// No rollout has happened for this app.
        None => "none",
    }
);

/// A backend of a service: where a replica listens.
///
/// Text form as in URLs: `10.0.0.5:8080` for IPv4, `[fd00::5]:8080` for IPv6 (the brackets
/// keep the port apart from the address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Backend {
    pub ip: IpAddr,
    pub port: u16,
}

impl Backend {
    #[must_use]
    pub fn new(ip: IpAddr, port: u16) -> Self {
        Self { ip, port }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            IpAddr::V4(ip) => write!(f, "{ip}:{}", self.port),
            IpAddr::V6(ip) => write!(f, "[{ip}]:{}", self.port),
        }
    }
}

impl FromStr for Backend {
    type Err = WireError;
    fn from_str(s: &str) -> Result<Self, WireError> {
        Self::parse_field("backend", "backend", s)
    }
}

impl FieldValue for Backend {
    fn parse_field(verb: &'static str, field: &'static str, raw: &str) -> Result<Self, WireError> {
        let wrong = || {
            bad(
                verb,
                field,
                format!("expected IPV4:PORT or [IPV6]:PORT, found {:?}", quote(raw)),
            )
        };
        let (ip, port) = match raw.strip_prefix('[') {
            Some(v6) => {
                let (ip, port) = v6.split_once("]:").ok_or_else(wrong)?;
                (
                    IpAddr::V6(Ipv6Addr::from_str(ip).map_err(|_| wrong())?),
                    port,
                )
            }
            None => {
                let (ip, port) = raw.rsplit_once(':').ok_or_else(wrong)?;
                (
                    IpAddr::V4(Ipv4Addr::from_str(ip).map_err(|_| wrong())?),
                    port,
                )
            }
        };
        Ok(Self {
            ip,
            port: u16::parse_field(verb, field, port)?,
        })
    }
}
