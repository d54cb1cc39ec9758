//! The range every manifest value must fall in: one table shared by the parser (which checks),
//! the printer's tests and the proptest generators (which must produce only valid values).
//!
//! Durations are in milliseconds, sizes in bytes, CPU in millicores.

use std::ops::RangeInclusive;

use super::model::MAX_REPLICAS;

const HOUR_MS: u64 = 3_600_000;
const MIB: u64 = 1 << 20;
const TIB: u64 = 1 << 40;

pub(crate) const PORT: RangeInclusive<u64> = 1..=65_535;
pub(crate) const REPLICAS: RangeInclusive<u64> = 0..=MAX_REPLICAS as u64;
/// At least a byte, at most 1024 TiB.
pub(crate) const RAM: RangeInclusive<u64> = 1..=1024 * TIB;
/// More than zero, at most 1024 cores.
pub(crate) const CPU_MILLICORES: RangeInclusive<u64> = 1..=1_024_000;
pub(crate) const GPU: RangeInclusive<u64> = 0..=64;
pub(crate) const DRAIN_MS: RangeInclusive<u64> = 0..=HOUR_MS;
/// `serve { cache }`: up to a year, the longest max-age caches honour.
pub(crate) const CACHE_MS: RangeInclusive<u64> = 0..=365 * 24 * HOUR_MS;

pub(crate) const HEALTH_INTERVAL_MS: RangeInclusive<u64> = 100..=HOUR_MS;
/// Also strictly below the interval.
pub(crate) const HEALTH_TIMEOUT_MS: RangeInclusive<u64> = 10..=HOUR_MS;
pub(crate) const HEALTH_RETRIES: RangeInclusive<u64> = 1..=100;
pub(crate) const HTTP_STATUS: RangeInclusive<u64> = 100..=599;

pub(crate) const SCALE_MIN: RangeInclusive<u64> = 0..=MAX_REPLICAS as u64;
/// Also at least `min`.
pub(crate) const SCALE_MAX: RangeInclusive<u64> = 1..=MAX_REPLICAS as u64;
/// `cpu-below` must also be strictly below `cpu-above`.
pub(crate) const PERCENT: RangeInclusive<u64> = 1..=100;
pub(crate) const COOLDOWN_MS: RangeInclusive<u64> = 1_000..=HOUR_MS;

pub(crate) const SETTLE_MS: RangeInclusive<u64> = 0..=HOUR_MS;
pub(crate) const HEALTHY_DEADLINE_MS: RangeInclusive<u64> = 1_000..=HOUR_MS;
/// `rollout { canary N }`: new replicas run beside the old set until promoted.
pub(crate) const CANARY: RangeInclusive<u64> = 1..=super::model::MAX_REPLICAS as u64;

pub(crate) const VCPUS: RangeInclusive<u64> = 1..=256;
pub(crate) const VM_MEMORY: RangeInclusive<u64> = MIB..=16 * TIB;
/// Default `vcpus` of a `vm` block.
pub(crate) const DEFAULT_VCPUS: u32 = 1;
/// Default `memory` of a `vm` block: 512 MiB.
pub(crate) const DEFAULT_VM_MEMORY: u64 = 512 * MIB;
/// Default `cpu-above` of a `scale` block.
pub(crate) const DEFAULT_CPU_ABOVE: u8 = 80;
/// Default `cpu-below` of a `scale` block.
pub(crate) const DEFAULT_CPU_BELOW: u8 = 20;

/// Environment variables the node sets for every replica; a manifest cannot set them.
pub(crate) const RESERVED_ENV: [&str; 3] = ["PORT", "SKR8TR_APP", "SKR8TR_REPLICA"];
