//! Resource figures from `/proc` for heartbeats, autoscale and `status`: the node's CPU% and
//! memory, and each replica's CPU% and RSS summed over its process group; and the node's GPUs
//! (NVIDIA device files in `/dev`), for placement of `gpu N` apps.
//!
//! The parsers are pure functions of the file text (tested on samples); the samplers keep the
//! previous reading, since a CPU percentage is a difference of two counters. CPU% of a replica
//! is in percent of one core (a replica busy on two cores shows 200).

use std::collections::HashMap;
use std::fs;
use std::time::Instant;

/// How many GPUs `names` (the entries of `/dev`) show: one `nvidiaN` device file per NVIDIA
/// GPU (`nvidiactl`, `nvidia-uvm`… are not GPUs).
#[must_use]
pub fn count_gpus<'a>(names: impl IntoIterator<Item = &'a str>) -> u32 {
    let gpus = names
        .into_iter()
        .filter(|n| {
            n.strip_prefix("nvidia")
                .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        })
        .count();
    u32::try_from(gpus).unwrap_or(u32::MAX)
}

/// The GPUs of this machine, from `/dev` (0 when it cannot be read).
#[must_use]
pub fn node_gpus() -> u32 {
    let Ok(entries) = fs::read_dir("/dev") else {
        return 0;
    };
    let names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    count_gpus(names.iter().map(String::as_str))
}

/// The aggregate `cpu` line of `/proc/stat`, in ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTimes {
    pub total: u64,
    /// `idle + iowait`.
    pub idle: u64,
}

/// The first (`cpu `) line of a `/proc/stat` text.
#[must_use]
pub fn parse_proc_stat(text: &str) -> Option<CpuTimes> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    if values.len() < 4 {
        return None;
    }
    // guest and guest_nice (9th, 10th) are already counted in user and nice.
    let total = values.iter().take(8).sum();
    let idle = values[3] + values.get(4).copied().unwrap_or(0);
    Some(CpuTimes { total, idle })
}

/// Busy percentage (0–100) of all CPUs between two readings.
#[must_use]
pub fn cpu_busy_percent(prev: CpuTimes, now: CpuTimes) -> f32 {
    let total = now.total.saturating_sub(prev.total);
    let idle = now.idle.saturating_sub(prev.idle);
    if total == 0 {
        return 0.0;
    }
    let busy = total.saturating_sub(idle) as f64 / total as f64;
    (busy * 100.0).clamp(0.0, 100.0) as f32
}

/// `MemTotal` and `MemAvailable` of `/proc/meminfo`, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemInfo {
    pub total_bytes: u64,
    pub available_bytes: u64,
}

/// Parses a `/proc/meminfo` text (`MemFree` stands in for `MemAvailable` on kernels before 3.14).
#[must_use]
pub fn parse_meminfo(text: &str) -> Option<MemInfo> {
    let mut total = None;
    let mut available = None;
    let mut free = None;
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let kib = || rest.split_whitespace().next()?.parse::<u64>().ok();
        match key {
            "MemTotal" => total = kib(),
            "MemAvailable" => available = kib(),
            "MemFree" => free = kib(),
            _ => {}
        }
    }
    Some(MemInfo {
        total_bytes: total? * 1024,
        available_bytes: available.or(free)? * 1024,
    })
}

/// The fields the node uses from `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub state: char,
    pub ppid: u32,
    pub pgrp: u32,
    /// `utime + stime`, in clock ticks.
    pub cpu_ticks: u64,
    /// Start time after boot, in clock ticks: with the pid, the identity of a process.
    pub start_time: u64,
    /// Resident set size, in pages.
    pub rss_pages: u64,
}

/// Parses one `/proc/PID/stat` line. The command name (field 2) may contain spaces and
/// parentheses, so fields are counted from the last `)`.
#[must_use]
pub fn parse_pid_stat(text: &str) -> Option<ProcStat> {
    let after = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // f[0] is field 3 (state); field n is f[n - 3].
    let field = |n: usize| f.get(n - 3).copied();
    let num = |n: usize| field(n)?.parse::<u64>().ok();
    Some(ProcStat {
        state: field(3)?.chars().next()?,
        ppid: u32::try_from(num(4)?).ok()?,
        pgrp: u32::try_from(num(5)?).ok()?,
        cpu_ticks: num(14)? + num(15)?,
        start_time: num(22)?,
        rss_pages: num(24)?,
    })
}

/// Reads `/proc/PID/stat`; `None` when the process does not exist (any more).
#[must_use]
pub fn read_pid_stat(pid: u32) -> Option<ProcStat> {
    parse_pid_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// `pid` is alive (not a zombie) and started at `start_time`: it is the process we recorded.
#[must_use]
pub fn is_same_process(pid: u32, start_time: u64) -> bool {
    read_pid_stat(pid).is_some_and(|s| s.start_time == start_time && !matches!(s.state, 'Z' | 'X'))
}

/// CPU ticks and RSS pages of every process, summed per process group, from one pass over
/// `/proc`.
#[must_use]
pub fn usage_by_group() -> HashMap<u32, (u64, u64)> {
    let mut out: HashMap<u32, (u64, u64)> = HashMap::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(stat) = read_pid_stat(pid) {
            let slot = out.entry(stat.pgrp).or_default();
            slot.0 += stat.cpu_ticks;
            slot.1 += stat.rss_pages;
        }
    }
    out
}

/// The node's figures for a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct NodeStats {
    /// Busy percentage of all CPUs since the previous sample (0 on the first).
    pub cpu_percent: f32,
    pub mem_total_bytes: u64,
    pub mem_available_bytes: u64,
}

/// Keeps the previous `/proc/stat` reading.
#[derive(Debug, Default)]
pub struct NodeSampler {
    prev: Option<CpuTimes>,
}

impl NodeSampler {
    /// Reads `/proc/stat` and `/proc/meminfo` (zeros where unreadable).
    pub fn sample(&mut self) -> NodeStats {
        let cpu = fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|t| parse_proc_stat(&t));
        let cpu_percent = match (self.prev, cpu) {
            (Some(prev), Some(now)) => cpu_busy_percent(prev, now),
            _ => 0.0,
        };
        if cpu.is_some() {
            self.prev = cpu;
        }
        let mem = fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|t| parse_meminfo(&t))
            .unwrap_or_default();
        NodeStats {
            cpu_percent,
            mem_total_bytes: mem.total_bytes,
            mem_available_bytes: mem.available_bytes,
        }
    }
}

/// Keeps each process group's previous CPU ticks, to turn them into percentages.
#[derive(Debug)]
pub struct GroupSampler {
    ticks_per_second: u64,
    page_size: u64,
    prev: HashMap<u32, (u64, Instant)>,
}

impl Default for GroupSampler {
    fn default() -> Self {
        Self {
            ticks_per_second: crate::sys::clock_ticks_per_second(),
            page_size: crate::sys::page_size(),
            prev: HashMap::new(),
        }
    }
}

impl GroupSampler {
    /// CPU% (of one core) and RSS bytes per group in `groups`, from one pass over `/proc`.
    /// A group seen for the first time shows 0% until the next call.
    pub fn sample(&mut self, groups: &[u32]) -> HashMap<u32, (f32, u64)> {
        if groups.is_empty() {
            self.prev.clear();
            return HashMap::new();
        }
        let usage = usage_by_group();
        let now = Instant::now();
        let mut out = HashMap::new();
        let mut next = HashMap::new();
        for &pgid in groups {
            let (ticks, pages) = usage.get(&pgid).copied().unwrap_or_default();
            let pct = match self.prev.get(&pgid) {
                Some(&(prev_ticks, at)) => group_cpu_percent(
                    ticks.saturating_sub(prev_ticks),
                    now.duration_since(at).as_secs_f64(),
                    self.ticks_per_second,
                ),
                None => 0.0,
            };
            out.insert(pgid, (pct, pages * self.page_size));
            next.insert(pgid, (ticks, now));
        }
        self.prev = next;
        out
    }
}

/// `ticks` of CPU over `seconds` of wall time, in percent of one core.
#[must_use]
pub fn group_cpu_percent(ticks: u64, seconds: f64, ticks_per_second: u64) -> f32 {
    if seconds <= 0.0 || ticks_per_second == 0 {
        return 0.0;
    }
    (ticks as f64 / ticks_per_second as f64 / seconds * 100.0) as f32
}

#[cfg(test)]
mod tests {
    #[test]
    fn gpus_are_the_numbered_nvidia_devices() {
        let dev = [
            "null",
            "nvidia0",
            "nvidia1",
            "nvidiactl",
            "nvidia-uvm",
            "nvidia-modeset",
            "nvidia",
            "nvidia12",
            "nvidia1a",
        ];
        assert_eq!(count_gpus(dev), 3);
        assert_eq!(count_gpus(["tty", "sda"]), 0);
    }

    use super::*;

    #[test]
    fn proc_stat_cpu_line() {
        let text = "cpu  100 5 50 800 40 3 2 0 7 0\ncpu0 50 2 25 400 20 1 1 0 0 0\nintr 1 2\n";
        assert_eq!(
            parse_proc_stat(text),
            Some(CpuTimes {
                total: 1000,
                idle: 840
            })
        );
        assert_eq!(parse_proc_stat("cpu0 1 2 3 4\n"), None);
        assert_eq!(parse_proc_stat("cpu  1 x 3 4\n"), None);
        assert_eq!(parse_proc_stat("cpu  1 2\n"), None);
    }

    #[test]
    fn busy_percent_between_readings() {
        let a = CpuTimes {
            total: 1000,
            idle: 800,
        };
        let b = CpuTimes {
            total: 1200,
            idle: 850,
        };
        assert!((cpu_busy_percent(a, b) - 75.0).abs() < 0.01);
        assert_eq!(cpu_busy_percent(a, a), 0.0);
        assert_eq!(
            cpu_busy_percent(b, a),
            0.0,
            "counters going back do not panic"
        );
    }

    #[test]
    fn meminfo() {
        let text = "MemTotal:       16318480 kB\nMemFree:         1000000 kB\nMemAvailable:   12000000 kB\n";
        assert_eq!(
            parse_meminfo(text),
            Some(MemInfo {
                total_bytes: 16_318_480 * 1024,
                available_bytes: 12_000_000 * 1024
            })
        );
        let old = "MemTotal: 100 kB\nMemFree: 40 kB\n";
        assert_eq!(
            parse_meminfo(old).map(|m| m.available_bytes),
            Some(40 * 1024)
        );
        assert_eq!(parse_meminfo("MemFree: 40 kB\n"), None);
    }

    #[test]
    fn pid_stat_with_a_hostile_command_name() {
        let text = "4242 (my (weird) cmd) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    25 17 0 0 20 0 1 0 987654 10000000 321 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
        assert_eq!(
            parse_pid_stat(text),
            Some(ProcStat {
                state: 'S',
                ppid: 1,
                pgrp: 4242,
                cpu_ticks: 42,
                start_time: 987_654,
                rss_pages: 321
            })
        );
        assert_eq!(parse_pid_stat("4242 (x) S 1 2"), None);
        assert_eq!(parse_pid_stat("no paren"), None);
    }

    #[test]
    fn own_process_is_readable() {
        let me = std::process::id();
        let s = read_pid_stat(me).unwrap();
        assert!(is_same_process(me, s.start_time));
        assert!(!is_same_process(me, s.start_time + 1));
        assert!(usage_by_group().contains_key(&s.pgrp));
    }

    #[test]
    fn group_percent() {
        assert!((group_cpu_percent(50, 1.0, 100) - 50.0).abs() < 0.01);
        assert!((group_cpu_percent(400, 2.0, 100) - 200.0).abs() < 0.01);
        assert_eq!(group_cpu_percent(5, 0.0, 100), 0.0);
    }
}
