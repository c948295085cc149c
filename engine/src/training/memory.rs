//! What a training run needs in memory, computed before anything is allocated, and what the
//! machine has available: a run that cannot fit is refused at once instead of swapping or
//! being killed by the kernel after minutes.

use std::fmt;
use std::path::Path;

use crate::model::config::ModelConfig;
use crate::model::packed_weights::PackedWeights;
use crate::model::weight_drop::WeightDrop;
use crate::model::workspace::{State, Workspace};
use crate::training::collective::block_rows;

/// The bytes a [`crate::training::Trainer`] allocates, by purpose, for `f32` training.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrainingMemory {
    /// The parameters (`P` floats).
    pub params: u64,
    /// The summed gradient plus one gradient per batch part (`(1 + parts)·P` floats).
    pub grads: u64,
    /// Adam's two moments (`2·P` floats).
    pub optimiser: u64,
    /// Every part's activations, scratch and carried state, the batch, and each thread's GEMM
    /// packing buffers.
    pub workspace: u64,
    /// Held only while a checkpoint is written: the weights in PyTorch's layout and the
    /// serialised file (weights, two moments, carried state) before it goes to disk.
    pub checkpoint_write: u64,
}

impl TrainingMemory {
    /// The peak: everything at once, as during a checkpoint write.
    pub fn total(&self) -> u64 {
        self.params + self.grads + self.optimiser + self.workspace + self.checkpoint_write
    }
}

/// What training `config` with batches of `batch`×`seq_len` split into `parts` parts on
/// `threads` threads needs. Mirrors [`crate::training::Trainer::new`] and
/// [`crate::files::checkpoint::save_checkpoint`]; `engine/tests/memory_estimate.rs` holds it to the
/// bytes a counting allocator sees.
pub fn training_memory(
    config: &ModelConfig,
    batch: usize,
    seq_len: usize,
    parts: usize,
    threads: usize,
    dropout: bool,
    weight_drop: bool,
) -> TrainingMemory {
    let f32_bytes = std::mem::size_of::<f32>() as u64;
    let p = config.num_params() as u64;
    let parts = parts.clamp(1, batch.max(1));
    let mut workspace = 2 * (batch * seq_len) as u64 * 4; // the batch's inputs and targets (u32)
    let mut state_floats = 0u64;
    for part in 0..parts {
        let rows = block_rows(batch, parts, part).len();
        let (floats, ids) = Workspace::<f32>::allocation(config, rows, seq_len, dropout);
        let state = State::<f32>::len(config, rows) as u64;
        state_floats += state;
        // The part's workspace, its carried state and one state-reset draw per row.
        workspace += (floats as u64 + state + rows as u64) * f32_bytes + ids as u64 * 4;
    }
    // The recurrent weights packed once for all parts.
    workspace += PackedWeights::<f32>::allocation(config, true) as u64 * f32_bytes;
    // Weight drop's masks and masked copies of `Wh`.
    workspace += WeightDrop::<f32>::allocation(config, weight_drop) as u64 * f32_bytes;
    let widest = config.widest_product();
    workspace += (threads.max(1) * charrnn_kernels::gemm::scratch_bytes(widest)) as u64;
    TrainingMemory {
        params: p * f32_bytes,
        grads: (1 + parts as u64) * p * f32_bytes,
        optimiser: 2 * p * f32_bytes,
        workspace,
        checkpoint_write: (p + 3 * p + state_floats) * f32_bytes,
    }
}

/// What bounds the memory available to this process, and how much it leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Available {
    /// Bytes this process may still allocate.
    pub bytes: u64,
    /// What sets that bound.
    pub limit: MemoryLimit,
}

/// What sets a bound of [`available_memory`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryLimit {
    /// The kernel's `MemAvailable`.
    Machine,
    /// The memory limit of this process's cgroup or one above it.
    Cgroup,
    /// `RLIMIT_AS` (`ulimit -v`), less the address space already mapped (`VmSize`).
    AddressSpace,
    /// `RLIMIT_DATA` (`ulimit -d`), less the data already mapped (`VmData`).
    DataSize,
}

impl fmt::Display for MemoryLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MemoryLimit::Machine => "available",
            MemoryLimit::Cgroup => "left under this process's cgroup memory limit",
            MemoryLimit::AddressSpace => "left under this process's address-space limit (ulimit -v)",
            MemoryLimit::DataSize => "left under this process's data-size limit (ulimit -d)",
        })
    }
}

/// Every bound on the memory available to this process that can be read: the kernel's
/// `MemAvailable`; what the limits of this process's cgroup (v2 or v1) and of every cgroup
/// above it leave; what its resource limits on address space and data size (`ulimit -v`,
/// `ulimit -d`) leave beyond what it already maps (thread stacks and memory-mapped files
/// count toward the first). The first two are shared with the other processes on the
/// machine, the last two are this process's own. Empty where none can be read (then nothing
/// is refused).
pub fn available_memory() -> Vec<Available> {
    let at = |bytes: Option<u64>, limit| bytes.map(|bytes| Available { bytes, limit });
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| parse_meminfo_available(&s));
    let cgroup = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|s| cgroup_headroom(Path::new("/sys/fs/cgroup"), &s));
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let (address_space, data) = rlimit_headroom(&limits, &status);
    [
        at(meminfo, MemoryLimit::Machine),
        at(cgroup, MemoryLimit::Cgroup),
        at(address_space, MemoryLimit::AddressSpace),
        at(data, MemoryLimit::DataSize),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// What the soft limits on address space and data size (`/proc/self/limits`: "Max address
/// space", "Max data size", in bytes or "unlimited") leave beyond the address space and data
/// this process maps now (`/proc/self/status`: `VmSize`, `VmData`, in kB). `None` for a limit
/// that is unlimited or unreadable.
pub fn rlimit_headroom(proc_self_limits: &str, proc_self_status: &str) -> (Option<u64>, Option<u64>) {
    let soft_limit = |name: &str| -> Option<u64> {
        let rest = proc_self_limits.lines().find_map(|l| l.strip_prefix(name))?;
        rest.split_whitespace().next()?.parse().ok()
    };
    let in_use = |name: &str| -> u64 {
        let kib = proc_self_status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok());
        kib.unwrap_or(0).saturating_mul(1024)
    };
    let headroom = |limit: &str, usage: &str| soft_limit(limit).map(|l| l.saturating_sub(in_use(usage)));
    (headroom("Max address space", "VmSize:"), headroom("Max data size", "VmData:"))
}

/// `MemAvailable` of a `/proc/meminfo` text, in bytes.
pub fn parse_meminfo_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let mut fields = line.split_whitespace().skip(1);
    let value: u64 = fields.next()?.parse().ok()?;
    match fields.next() {
        Some("kB") => value.checked_mul(1024),
        None => Some(value),
        Some(_) => None,
    }
}

/// The least headroom (limit − usage) over this process's cgroup and its ancestors, named in
/// `proc_self_cgroup` and looked up under `root`: v2 (`0::/PATH`, `memory.max` and
/// `memory.current`) or v1 (`N:memory:/PATH`, `memory/…/memory.limit_in_bytes` and
/// `memory.usage_in_bytes`). `None` when no limit is set on any of them.
fn cgroup_headroom(root: &Path, proc_self_cgroup: &str) -> Option<u64> {
    let v1 = proc_self_cgroup.lines().find_map(|l| {
        let (controllers, path) = l.split_once(':')?.1.split_once(':')?;
        controllers
            .split(',')
            .any(|c| c == "memory")
            .then(|| (root.join("memory"), path, "memory.limit_in_bytes", "memory.usage_in_bytes"))
    });
    let v2 = proc_self_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|path| (root.to_path_buf(), path, "memory.max", "memory.current"));
    let (base, own, limit_file, usage_file) = v1.or(v2)?;
    let mut dir = base.join(own.trim().trim_start_matches('/'));
    let mut least: Option<u64> = None;
    loop {
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok()?.trim().parse::<u64>().ok();
        if let (Some(limit), Some(usage)) = (read(limit_file), read(usage_file)) {
            let headroom = limit.saturating_sub(usage);
            least = Some(least.map_or(headroom, |l| l.min(headroom)));
        }
        if dir == base || !dir.pop() || !dir.starts_with(&base) {
            return least;
        }
    }
}

/// Bytes as a short decimal figure: `41.2 GB`, `312.0 MB`.
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0 as f64;
        if b >= 1e9 {
            write!(f, "{:.1} GB", b / 1e9)
        } else if b >= 1e6 {
            write!(f, "{:.1} MB", b / 1e6)
        } else {
            write!(f, "{:.1} kB", b / 1e3)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::CellKind;

    #[test]
    fn meminfo_is_read_in_bytes() {
        let text = "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   23100000 kB\n";
        assert_eq!(parse_meminfo_available(text), Some(23_100_000 * 1024));
        assert_eq!(parse_meminfo_available("MemFree: 1 kB\n"), None);
        assert_eq!(parse_meminfo_available("MemAvailable: x kB\n"), None);
    }

    #[test]
    fn the_tightest_cgroup_limit_on_the_path_counts() {
        let root = tempfile::tempdir().unwrap();
        let leaf = root.path().join("a/b");
        std::fs::create_dir_all(&leaf).unwrap();
        // No limit at the root ("max" does not parse), 1000 left in a, 300 left in a/b.
        std::fs::write(root.path().join("memory.max"), "max\n").unwrap();
        std::fs::write(root.path().join("a/memory.max"), "5000\n").unwrap();
        std::fs::write(root.path().join("a/memory.current"), "4000\n").unwrap();
        std::fs::write(leaf.join("memory.max"), "800\n").unwrap();
        std::fs::write(leaf.join("memory.current"), "500\n").unwrap();
        assert_eq!(cgroup_headroom(root.path(), "0::/a/b\n"), Some(300));
        assert_eq!(cgroup_headroom(root.path(), "0::/a\n"), Some(1000));
        assert_eq!(cgroup_headroom(root.path(), "0::/\n"), None);
        // v1: the memory controller's own hierarchy.
        let v1 = root.path().join("memory/job");
        std::fs::create_dir_all(&v1).unwrap();
        std::fs::write(v1.join("memory.limit_in_bytes"), "2000\n").unwrap();
        std::fs::write(v1.join("memory.usage_in_bytes"), "1500\n").unwrap();
        assert_eq!(cgroup_headroom(root.path(), "4:memory:/job\n0::/\n"), Some(500));
        assert_eq!(cgroup_headroom(root.path(), "4:cpu,memory:/none\n"), None);
    }

    #[test]
    fn resource_limits_leave_the_limit_less_what_is_mapped() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              unlimited            unlimited            seconds   \n\
                      Max data size             unlimited            unlimited            bytes     \n\
                      Max address space         204800000            unlimited            bytes     \n";
        let status = "Name:\tcharrnn-fast\nVmPeak:\t   90000 kB\nVmSize:\t   80000 kB\nVmData:\t   30000 kB\n";
        assert_eq!(rlimit_headroom(limits, status), (Some(204_800_000 - 80_000 * 1024), None));
        let data = limits.replace("Max data size             unlimited", "Max data size             50000000 ");
        assert_eq!(rlimit_headroom(&data, status).1, Some(50_000_000 - 30_000 * 1024));
        // Already past the limit: nothing left, not an overflow.
        assert_eq!(rlimit_headroom(limits, "VmSize:\t 900000 kB\n").0, Some(0));
        assert_eq!(rlimit_headroom("", status), (None, None));
    }

    #[test]
    fn the_issue_configuration_needs_tens_of_gigabytes() {
        // `train --hidden 12000`: 1.7·10⁹ parameters, 4 bytes each, at least 6 copies.
        let config =
            ModelConfig { cell: CellKind::Lstm, vocab_size: 65, embed_size: 128, hidden_size: 12000, num_layers: 2 };
        let need = training_memory(&config, 50, 50, 2, 2, false, false);
        let p = config.num_params() as u64;
        assert_eq!(need.params, 4 * p);
        assert_eq!(need.grads, 12 * p);
        assert!(need.total() > 40_000_000_000, "{}", Bytes(need.total()));
        assert_eq!(Bytes(41_234_000_000).to_string(), "41.2 GB");
        assert_eq!(Bytes(312_000_000).to_string(), "312.0 MB");
        assert_eq!(Bytes(52_300).to_string(), "52.3 kB");
    }
}
