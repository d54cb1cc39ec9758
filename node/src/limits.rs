//! Enforcing an app's `ram` and `cpu` limits, with the strongest mechanism the kernel allows:
//! cgroup v2, else cgroup v1, else `RLIMIT_DATA` (RAM only; an rlimit cannot cap a CPU *rate*,
//! only total CPU seconds, so `cpu` is then not enforced) — and recording which one applied, so
//! `status` can say it. `RLIMIT_DATA` rather than `RLIMIT_AS`: runtimes such as Go, the JVM and
//! V8 reserve far more address space than they use, and fail to start under an address-space
//! cap near the memory they actually need; the data limit counts only what is writable.
//!
//! ```text
//! detect (once, at engine start): /proc/self/mountinfo + /proc/self/cgroup
//!     → CgroupBackend::{V2 { parent }, V1 { memory, cpu }, Unavailable}
//! prepare (per process):  mkdir PARENT/REPLICA, write memory.max / cpu.max (or v1 files),
//!     open cgroup.procs → the child writes "0" into it before exec (see sys::ChildSetup)
//! release (after the process is reaped): rmdir PARENT/REPLICA
//! ```
//! The parent directory is `skr8tr/` under the agent's own cgroup, or at the hierarchy's root
//! when that is not usable. This module owns the cgroup directories it creates; it never moves
//! or limits the agent itself.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use skr8tr_proto::manifest::{ByteSize, CpuLimit};
use skr8tr_proto::name::ReplicaId;

/// The CFS period the node uses for `cpu` limits, in microseconds.
pub const CPU_PERIOD_US: u64 = 100_000;

/// Which mechanism enforces one limit of a replica.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub enum LimitEnforcement {
    CgroupV2,
    CgroupV1,
    Rlimit,
    /// Not enforced: none was asked for, or the kernel allowed no mechanism.
    #[default]
    None,
}

impl LimitEnforcement {
    /// The word `status` shows.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CgroupV2 => "cgroup-v2",
            Self::CgroupV1 => "cgroup-v1",
            Self::Rlimit => "rlimit",
            Self::None => "none",
        }
    }
}

/// How each of a replica's limits is enforced.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub struct AppliedLimits {
    pub ram: LimitEnforcement,
    pub cpu: LimitEnforcement,
}

impl AppliedLimits {
    /// The one mechanism to show in a status column: the one that applies to `ram`, else `cpu`.
    #[must_use]
    pub fn method(&self) -> LimitEnforcement {
        if self.ram == LimitEnforcement::None {
            self.cpu
        } else {
            self.ram
        }
    }
}

/// Why a cgroup could not be set up for a replica (the caller then falls back to an rlimit).
#[derive(Debug, thiserror::Error)]
pub enum LimitsError {
    #[error("cannot create cgroup {path}")]
    CreateCgroup {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {value:?} to {path}")]
    WriteControl {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },
}

/// Whether the engine may use cgroups at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CgroupMode {
    /// Detect v2, then v1, from the running system.
    #[default]
    Auto,
    /// Never touch cgroups (rlimit only).
    Disabled,
}

/// The cgroup hierarchy the node creates replica cgroups in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupBackend {
    /// One unified hierarchy; replica cgroups are created under `parent`.
    V2 {
        parent: PathBuf,
    },
    /// Separate hierarchies per controller; either may be missing.
    V1 {
        memory: Option<PathBuf>,
        cpu: Option<PathBuf>,
    },
    Unavailable,
}

/// A replica's cgroups, created and ready for its next process.
#[derive(Debug)]
pub struct CgroupLease {
    dirs: Vec<PathBuf>,
    procs: Vec<File>,
    applied: AppliedLimits,
}

impl CgroupLease {
    /// The `cgroup.procs` descriptors the child must write itself into (valid while `self` is).
    #[must_use]
    pub fn procs_fds(&self) -> Vec<RawFd> {
        self.procs.iter().map(AsRawFd::as_raw_fd).collect()
    }

    #[must_use]
    pub fn applied(&self) -> AppliedLimits {
        self.applied
    }

    /// The cgroup directories, kept in the replica's record so an adopted replica's cgroups can
    /// be removed when it ends.
    #[must_use]
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Closes the `cgroup.procs` files (the child has joined; the parent needs them no more).
    pub fn close_procs(&mut self) {
        self.procs.clear();
    }
}

/// Removes cgroup directories once their processes are gone. Best effort, traced on failure
/// (a v1 cgroup can stay busy for a moment after its last task was reaped).
pub fn remove_cgroup_dirs(dirs: &[PathBuf]) {
    for dir in dirs {
        if let Err(e) = fs::remove_dir(dir)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::debug!(dir = %dir.display(), error = %e, "cannot remove cgroup");
        }
    }
}

/// Whether the kernel's OOM killer killed a process in one of these cgroups: the `oom_kill`
/// counter of v2 `memory.events` or v1 `memory.oom_control`. Read after the process ended and
/// before its cgroups are removed (each process of a replica gets fresh ones).
#[must_use]
pub fn oom_killed(dirs: &[PathBuf]) -> bool {
    dirs.iter().any(|dir| {
        ["memory.events", "memory.oom_control"].iter().any(|file| {
            fs::read_to_string(dir.join(file)).is_ok_and(|text| oom_kill_count(&text) > 0)
        })
    })
}

/// The `oom_kill N` line of a `memory.events` (v2) or `memory.oom_control` (v1) text; 0 when
/// there is none (kernels before 4.13 do not count).
#[must_use]
pub fn oom_kill_count(text: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

impl CgroupBackend {
    /// Finds a usable hierarchy by reading `/proc/self/mountinfo` and `/proc/self/cgroup`.
    #[must_use]
    pub fn detect(mode: CgroupMode) -> Self {
        if mode == CgroupMode::Disabled {
            return Self::Unavailable;
        }
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let mounts = parse_mountinfo(&mountinfo);
        let memberships = parse_proc_cgroup(&own);
        if let Some(parent) = detect_v2(&mounts, &memberships) {
            return Self::V2 { parent };
        }
        let memory = v1_parent(&mounts, &memberships, "memory");
        let cpu = v1_parent(&mounts, &memberships, "cpu");
        if memory.is_none() && cpu.is_none() {
            Self::Unavailable
        } else {
            Self::V1 { memory, cpu }
        }
    }

    /// Creates (or reuses) the replica's cgroups and writes its limits. `Ok(None)` when no limit
    /// is asked for or no hierarchy offers a needed controller.
    ///
    /// # Errors
    /// [`LimitsError`] when a directory or control file cannot be written; whatever was created
    /// is removed again.
    pub fn prepare(
        &self,
        replica: &ReplicaId,
        ram: Option<ByteSize>,
        cpu: Option<CpuLimit>,
    ) -> Result<Option<CgroupLease>, LimitsError> {
        if ram.is_none() && cpu.is_none() {
            return Ok(None);
        }
        let mut lease = CgroupLease {
            dirs: Vec::new(),
            procs: Vec::new(),
            applied: AppliedLimits::default(),
        };
        let result = self.prepare_into(&mut lease, replica, ram, cpu);
        if let Err(e) = result {
            remove_cgroup_dirs(&lease.dirs);
            return Err(e);
        }
        Ok((!lease.dirs.is_empty()).then_some(lease))
    }

    fn prepare_into(
        &self,
        lease: &mut CgroupLease,
        replica: &ReplicaId,
        ram: Option<ByteSize>,
        cpu: Option<CpuLimit>,
    ) -> Result<(), LimitsError> {
        match self {
            Self::Unavailable => {}
            Self::V2 { parent } => {
                let dir = create_cgroup(parent, replica)?;
                lease.dirs.push(dir.clone());
                // A controller not enabled for the parent has no control file: that limit
                // stays unenforced (reported as such) rather than failing the others.
                let memory_max = dir.join("memory.max");
                if let Some(ram) = ram.filter(|_| memory_max.exists()) {
                    write_control(&memory_max, &ram.0.to_string())?;
                    lease.applied.ram = LimitEnforcement::CgroupV2;
                }
                let cpu_max = dir.join("cpu.max");
                if let Some(cpu) = cpu.filter(|_| cpu_max.exists()) {
                    write_control(&cpu_max, &cpu_max_v2(cpu))?;
                    lease.applied.cpu = LimitEnforcement::CgroupV2;
                }
                lease.procs.push(open_procs(&dir)?);
            }
            Self::V1 {
                memory,
                cpu: cpu_root,
            } => {
                if let (Some(ram), Some(root)) = (ram, memory) {
                    let dir = create_cgroup(root, replica)?;
                    lease.dirs.push(dir.clone());
                    write_control(&dir.join("memory.limit_in_bytes"), &ram.0.to_string())?;
                    lease.applied.ram = LimitEnforcement::CgroupV1;
                    lease.procs.push(open_procs(&dir)?);
                }
                if let (Some(cpu), Some(root)) = (cpu, cpu_root) {
                    let dir = create_cgroup(root, replica)?;
                    lease.dirs.push(dir.clone());
                    write_control(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
                    write_control(
                        &dir.join("cpu.cfs_quota_us"),
                        &cpu_quota_us(cpu).to_string(),
                    )?;
                    lease.applied.cpu = LimitEnforcement::CgroupV1;
                    lease.procs.push(open_procs(&dir)?);
                }
            }
        }
        Ok(())
    }
}

fn create_cgroup(parent: &Path, replica: &ReplicaId) -> Result<PathBuf, LimitsError> {
    let dir = parent.join(replica.as_str());
    match fs::create_dir(&dir) {
        Ok(()) => Ok(dir),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(dir),
        Err(source) => Err(LimitsError::CreateCgroup { path: dir, source }),
    }
}

fn write_control(path: &Path, value: &str) -> Result<(), LimitsError> {
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|source| LimitsError::WriteControl {
            path: path.to_path_buf(),
            value: value.to_owned(),
            source,
        })
}

fn open_procs(dir: &Path) -> Result<File, LimitsError> {
    let path = dir.join("cgroup.procs");
    OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|source| LimitsError::WriteControl {
            path,
            value: "0".to_owned(),
            source,
        })
}

/// CFS quota for `cpu`, in microseconds per [`CPU_PERIOD_US`] (at least 1 ms, the kernel's
/// minimum).
#[must_use]
pub fn cpu_quota_us(cpu: CpuLimit) -> u64 {
    (u64::from(cpu.millicores) * CPU_PERIOD_US / 1000).max(1000)
}

/// The cgroup v2 `cpu.max` line for `cpu`.
#[must_use]
pub fn cpu_max_v2(cpu: CpuLimit) -> String {
    format!("{} {CPU_PERIOD_US}", cpu_quota_us(cpu))
}

/// One cgroup filesystem mount from `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    /// The path inside the hierarchy that is mounted (field 4, usually `/`).
    pub root: String,
    pub mount_point: PathBuf,
    /// `true` for `cgroup2`.
    pub unified: bool,
    /// v1 controllers from the super options (`memory`, `cpu`, `cpuacct`…).
    pub controllers: Vec<String>,
}

/// The cgroup mounts in a `mountinfo` text.
#[must_use]
pub fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let mut right = right.split(' ');
            let fstype = right.next()?;
            let _source = right.next()?;
            let super_options = right.next().unwrap_or("");
            let unified = match fstype {
                "cgroup2" => true,
                "cgroup" => false,
                _ => return None,
            };
            let controllers = if unified {
                Vec::new()
            } else {
                super_options
                    .split(',')
                    .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains('='))
                    .map(str::to_owned)
                    .collect()
            };
            Some(CgroupMount {
                root: unescape_mount_path(left.get(3)?),
                mount_point: PathBuf::from(unescape_mount_path(left.get(4)?)),
                unified,
                controllers,
            })
        })
        .collect()
}

/// `\040`-style octal escapes in mountinfo paths.
fn unescape_mount_path(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let oct = &bytes[i + 1..i + 4];
            let value = oct.iter().try_fold(0u16, |acc, b| {
                (b'0'..=b'7')
                    .contains(b)
                    .then(|| acc * 8 + u16::from(b - b'0'))
            });
            if let Some(byte) = value.and_then(|v| u8::try_from(v).ok()) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One line of `/proc/self/cgroup`: `ID:CONTROLLERS:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMembership {
    /// Empty for the v2 line (`0::/path`) and for named hierarchies' real controllers.
    pub controllers: Vec<String>,
    pub path: String,
}

/// The lines of a `/proc/PID/cgroup` text.
#[must_use]
pub fn parse_proc_cgroup(text: &str) -> Vec<CgroupMembership> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            Some(CgroupMembership {
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect(),
                path: path.to_owned(),
            })
        })
        .collect()
}

/// The filesystem directory of `cgroup_path` in a hierarchy mounted as `mount`.
fn cgroup_dir(mount: &CgroupMount, cgroup_path: &str) -> Option<PathBuf> {
    let root = mount.root.trim_end_matches('/');
    let rel = cgroup_path.strip_prefix(root)?;
    let rel = rel.trim_start_matches('/');
    Some(if rel.is_empty() {
        mount.mount_point.clone()
    } else {
        mount.mount_point.join(rel)
    })
}

/// Candidate parents: `skr8tr/` under the agent's own cgroup, then at the mount's root.
fn candidates(mount: &CgroupMount, own_path: Option<&str>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(own) = own_path.and_then(|p| cgroup_dir(mount, p)) {
        out.push(own.join("skr8tr"));
    }
    let root = mount.mount_point.join("skr8tr");
    if !out.contains(&root) {
        out.push(root);
    }
    out
}

fn ensure_dir(dir: &Path) -> bool {
    match fs::create_dir(dir) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => dir.is_dir(),
        Err(_) => false,
    }
}

fn detect_v2(mounts: &[CgroupMount], memberships: &[CgroupMembership]) -> Option<PathBuf> {
    let mount = mounts.iter().find(|m| m.unified)?;
    let own = memberships
        .iter()
        .find(|m| m.controllers.is_empty())
        .map(|m| m.path.as_str());
    let has = |dir: &Path, file: &str, want: &str| {
        fs::read_to_string(dir.join(file)).is_ok_and(|s| s.split_whitespace().any(|c| c == want))
    };
    // Controllers must be offered at the mount's root at all (a hybrid system's v2 mount
    // often has none).
    if !has(&mount.mount_point, "cgroup.controllers", "memory") {
        return None;
    }
    // The agent's own cgroup holds processes (the agent), so v2's "no internal processes"
    // rule forbids enabling controllers below it unless it is the root; try the root first.
    let mut cands = candidates(mount, own);
    cands.reverse();
    cands.into_iter().find(|parent| {
        let Some(grand) = parent.parent() else {
            return false;
        };
        // Failures are fine here: the controllers may already be enabled, and the check below
        // is what decides.
        let _ = write_control(&grand.join("cgroup.subtree_control"), "+memory +cpu");
        if !ensure_dir(parent) {
            return false;
        }
        let _ = write_control(&parent.join("cgroup.subtree_control"), "+memory +cpu");
        has(parent, "cgroup.subtree_control", "memory")
    })
}

fn v1_parent(
    mounts: &[CgroupMount],
    memberships: &[CgroupMembership],
    controller: &str,
) -> Option<PathBuf> {
    let mount = mounts
        .iter()
        .find(|m| !m.unified && m.controllers.iter().any(|c| c == controller))?;
    let own = memberships
        .iter()
        .find(|m| m.controllers.iter().any(|c| c == controller))
        .map(|m| m.path.as_str());
    candidates(mount, own).into_iter().find(|p| ensure_dir(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
35 25 0:30 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
36 35 0:31 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw,nsdelegate
40 35 0:35 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:15 - cgroup cgroup rw,cpu,cpuacct
41 35 0:36 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
42 35 0:37 / /sys/fs/cgroup/my\\040dir rw - cgroup cgroup rw,name=systemd
50 20 8:1 / / rw - ext4 /dev/sda1 rw
";

    #[test]
    fn oom_kills_are_counted_in_v1_and_v2_texts() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
        let v2 = "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(oom_kill_count(v1), 2);
        assert_eq!(oom_kill_count(v2), 1);
        assert_eq!(
            oom_kill_count("oom_kill_disable 0\nunder_oom 0\n"),
            0,
            "old kernels"
        );
        assert_eq!(oom_kill_count("oom_group_kill 3\n"), 0);
    }

    #[test]
    fn mountinfo_lists_cgroup_mounts() {
        let m = parse_mountinfo(MOUNTINFO);
        assert_eq!(m.len(), 4);
        assert!(m[0].unified && m[0].mount_point == Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(m[1].controllers, ["cpu", "cpuacct"]);
        assert_eq!(m[2].root, "/docker/abc");
        assert_eq!(m[3].mount_point, Path::new("/sys/fs/cgroup/my dir"));
        assert!(m[3].controllers.is_empty());
    }

    #[test]
    fn proc_cgroup_lines() {
        let c = parse_proc_cgroup("4:memory:/docker/abc/x\n1:cpu,cpuacct:/\n0::/user.slice\n");
        assert_eq!(c[0].controllers, ["memory"]);
        assert_eq!(c[0].path, "/docker/abc/x");
        assert_eq!(c[1].controllers, ["cpu", "cpuacct"]);
        assert!(c[2].controllers.is_empty());
        assert_eq!(c[2].path, "/user.slice");
    }

    #[test]
    fn cgroup_paths_map_through_the_mount_root() {
        let m = &parse_mountinfo(MOUNTINFO)[2];
        assert_eq!(
            cgroup_dir(m, "/docker/abc/x"),
            Some(PathBuf::from("/sys/fs/cgroup/memory/x"))
        );
        assert_eq!(
            cgroup_dir(m, "/docker/abc"),
            Some(PathBuf::from("/sys/fs/cgroup/memory"))
        );
        assert_eq!(
            candidates(m, Some("/docker/abc/x")),
            [
                PathBuf::from("/sys/fs/cgroup/memory/x/skr8tr"),
                PathBuf::from("/sys/fs/cgroup/memory/skr8tr")
            ]
        );
        assert_eq!(
            candidates(m, None),
            [PathBuf::from("/sys/fs/cgroup/memory/skr8tr")]
        );
    }

    #[test]
    fn cpu_values() {
        let c = |m| CpuLimit { millicores: m };
        assert_eq!(cpu_quota_us(c(500)), 50_000);
        assert_eq!(cpu_quota_us(c(2000)), 200_000);
        assert_eq!(cpu_quota_us(c(1)), 1000, "kernel minimum");
        assert_eq!(cpu_max_v2(c(250)), "25000 100000");
    }

    #[test]
    fn method_prefers_ram() {
        let l = AppliedLimits {
            ram: LimitEnforcement::Rlimit,
            cpu: LimitEnforcement::None,
        };
        assert_eq!(l.method(), LimitEnforcement::Rlimit);
        let l = AppliedLimits {
            ram: LimitEnforcement::None,
            cpu: LimitEnforcement::CgroupV1,
        };
        assert_eq!(l.method().as_str(), "cgroup-v1");
    }

    #[test]
    fn prepare_without_limits_does_nothing() {
        let backend = CgroupBackend::V2 {
            parent: PathBuf::from("/nonexistent/skr8tr"),
        };
        let r = ReplicaId::new("r").unwrap();
        assert!(backend.prepare(&r, None, None).unwrap().is_none());
        assert!(backend.prepare(&r, Some(ByteSize(1 << 20)), None).is_err());
    }
}
