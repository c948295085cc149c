//! The data caches of one core, as the CPU reports them (CPUID), and the GEMM's cache blocking
//! derived from them at start-up: the blocks of `A`, `B` and `C` that the driver keeps in L2 are
//! sized from this CPU's L2, not from the machine the kernels were first tuned on (a Zen 4 has
//! 1 MiB of L2 per core, a Sapphire/Emerald Rapids Xeon 2 MiB).

use std::sync::OnceLock;

/// Sizes in bytes of one core's level-1 data cache and its level-2 cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheSizes {
    /// Level-1 data cache.
    pub l1d: usize,
    /// Level-2 cache (unified).
    pub l2: usize,
    /// Whether the sizes came from the CPU (`false`: the defaults, where it does not say).
    pub reported: bool,
}

impl CacheSizes {
    /// What is assumed where the CPU does not report its caches: 32 KiB and 1 MiB, common to
    /// current x86-64 and Arm server cores.
    pub const DEFAULT: CacheSizes = CacheSizes { l1d: 32 << 10, l2: 1 << 20, reported: false };
}

/// This CPU's caches, read once per process.
pub fn cache_sizes() -> CacheSizes {
    static SIZES: OnceLock<CacheSizes> = OnceLock::new();
    *SIZES.get_or_init(|| reported_sizes().unwrap_or(CacheSizes::DEFAULT))
}

#[cfg(target_arch = "x86_64")]
fn reported_sizes() -> Option<CacheSizes> {
    use std::arch::x86_64::__cpuid_count;
    // A leaf above the CPU's maximum returns meaningless values: the maxima are read first and
    // the sizes checked for sense below.
    let cpuid = __cpuid_count;
    // Deterministic cache parameters: leaf 4 (Intel) or 0x8000_001D (AMD, with TOPOEXT), both in
    // the same format; the maximum leaves say which exist.
    let max_basic = cpuid(0, 0).eax;
    let max_extended = cpuid(0x8000_0000, 0).eax;
    let topoext = max_extended >= 0x8000_0001 && cpuid(0x8000_0001, 0).ecx & (1 << 22) != 0;
    let leaf = if topoext && max_extended >= 0x8000_001D {
        0x8000_001D
    } else if max_basic >= 4 {
        4
    } else {
        return None;
    };
    let (mut l1d, mut l2) = (None, None);
    for sub in 0..16 {
        let r = cpuid(leaf, sub);
        let kind = r.eax & 0x1F; // 0: no more caches, 1: data, 2: instruction, 3: unified
        if kind == 0 {
            break;
        }
        let level = (r.eax >> 5) & 0x7;
        let ways = ((r.ebx >> 22) & 0x3FF) as usize + 1;
        let partitions = ((r.ebx >> 12) & 0x3FF) as usize + 1;
        let line = (r.ebx & 0xFFF) as usize + 1;
        let sets = r.ecx as usize + 1;
        let size = ways * partitions * line * sets;
        match (level, kind) {
            (1, 1) => l1d = Some(size),
            (2, 1 | 3) => l2 = Some(size),
            _ => {}
        }
    }
    let sane = |size: usize| (4 << 10..=64 << 20).contains(&size);
    match (l1d, l2) {
        (Some(l1d), Some(l2)) if sane(l1d) && sane(l2) => Some(CacheSizes { l1d, l2, reported: true }),
        _ => None,
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn reported_sizes() -> Option<CacheSizes> {
    None
}

/// The GEMM driver's cache blocking (see `gemm::driver`), derived from one core's L2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocking {
    /// Depth of the blocks of deep products whose result stays in L2 (weight gradients): a
    /// block of `B` this deep and 512 columns wide fills at most half of L2, beside the block
    /// of `A` (256 for 1 MiB, 512 for 2 MiB).
    pub kc_deep: usize,
    /// Row panels per packed block of `A`: a block of `MR·mc_panels` rows (`MR ≤ 14`) and
    /// `KC_MAX` depths fills at most a third of L2 (12 for 1 MiB, 24 for 2 MiB).
    pub mc_panels: usize,
    /// A result of more floats than this (all of L2) is not kept in cache across blocks over `k`.
    pub c_cached: usize,
}

impl Blocking {
    /// The blocking for an L2 of `l2` bytes, for kernels of at most `max_mr` rows and blocks of
    /// at most `kc_max` depths.
    pub fn for_l2(l2: usize, max_mr: usize, kc_max: usize) -> Blocking {
        const FLOAT: usize = std::mem::size_of::<f32>();
        // Deep blocks are multiples of 64 (so pairs of depths never straddle one) and never
        // deeper than a whole block.
        let kc_deep = (l2 / 2 / (512 * FLOAT)).clamp(64, kc_max);
        let kc_deep = 1 << kc_deep.ilog2();
        let mc_panels = (l2 / 3 / (kc_max * FLOAT) / max_mr).clamp(4, 32);
        Blocking { kc_deep, mc_panels, c_cached: l2 / FLOAT }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_follows_the_l2() {
        // 1 MiB (Zen 4): the blocking first measured there.
        assert_eq!(Blocking::for_l2(1 << 20, 14, 512), Blocking { kc_deep: 256, mc_panels: 12, c_cached: 1 << 18 });
        // 2 MiB (Sapphire/Emerald Rapids): deeper and taller blocks.
        assert_eq!(Blocking::for_l2(2 << 20, 14, 512), Blocking { kc_deep: 512, mc_panels: 24, c_cached: 1 << 19 });
        // Small and huge caches stay within bounds.
        let small = Blocking::for_l2(256 << 10, 14, 512);
        assert_eq!((small.kc_deep, small.mc_panels), (64, 4));
        let huge = Blocking::for_l2(32 << 20, 14, 512);
        assert_eq!((huge.kc_deep, huge.mc_panels), (512, 32));
        // An odd size still gives a power of two.
        assert_eq!(Blocking::for_l2(1280 << 10, 14, 512).kc_deep, 256);
    }

    #[test]
    fn this_cpu_reports_plausible_caches() {
        let sizes = cache_sizes();
        assert!(sizes.l1d >= 4 << 10 && sizes.l2 > sizes.l1d, "{sizes:?}");
        #[cfg(target_arch = "x86_64")]
        assert!(sizes.reported, "x86-64 CPUs report their caches through CPUID: {sizes:?}");
    }
}
