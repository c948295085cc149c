//! Micro-kernels: one `MR×NR` tile of `C` from a packed `A` panel (`kc×MR`, `MR` values per
//! `k`) and a packed `B` panel (`kc×NR`, `NR` values per `k`), accumulated in registers over
//! the whole `kc` and written once as `C = alpha·AB + beta·C`. Every kernel runs the same
//! body ([`tile::register_tile`]), compiled for its level, tile shape and step along `k` (one
//! `f32` multiply-add, or a bf16 pair dot product: [`tile::TileStep`]) by
//! [`tile::micro_kernel!`]; the kernel files hold what differs per level.

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512_bf16;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512_columns;
pub(crate) mod portable;
pub(crate) mod tile;

#[cfg(doc)]
use super::pack::{pack_a, pack_b};
use super::pack::{Block, PackWord, Strided};

use crate::dispatch::CpuLevel;
use crate::Precision;

/// Which micro-kernel a product or a packed operand uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KernelId {
    /// AVX-512F, 10×32.
    Avx512Tall,
    /// AVX-512F, 5×64.
    Avx512Wide,
    /// AVX-512F, 14×16.
    Avx512Narrow,
    /// AVX2+FMA, 6×16.
    Avx2,
    /// `wide` vectors, 4×16.
    Portable,
    /// AVX512-BF16, 10×32, bf16 pairs (`Precision::Bf16` only).
    Avx512Bf16Tall,
    /// AVX512-BF16, 5×64, bf16 pairs.
    Avx512Bf16Wide,
    /// AVX512-BF16, 14×16, bf16 pairs.
    Avx512Bf16Narrow,
}

impl KernelId {
    /// The CPU level the kernel needs.
    pub const fn level(self) -> CpuLevel {
        match self {
            KernelId::Avx512Tall | KernelId::Avx512Wide | KernelId::Avx512Narrow => CpuLevel::Avx512,
            KernelId::Avx2 => CpuLevel::Avx2,
            KernelId::Portable => CpuLevel::Portable,
            KernelId::Avx512Bf16Tall | KernelId::Avx512Bf16Wide | KernelId::Avx512Bf16Narrow => CpuLevel::Avx512Bf16,
        }
    }

    /// Whether the kernel multiplies bf16 pairs (`vdpbf16ps`) rather than `f32` values: it
    /// computes `Precision::Bf16` products only.
    pub const fn native_bf16(self) -> bool {
        matches!(self, KernelId::Avx512Bf16Tall | KernelId::Avx512Bf16Wide | KernelId::Avx512Bf16Narrow)
    }

    /// Every kernel, of every level.
    pub const ALL: [KernelId; 8] = [
        KernelId::Portable,
        KernelId::Avx2,
        KernelId::Avx512Tall,
        KernelId::Avx512Wide,
        KernelId::Avx512Narrow,
        KernelId::Avx512Bf16Tall,
        KernelId::Avx512Bf16Wide,
        KernelId::Avx512Bf16Narrow,
    ];

    /// Rows and columns of its tile.
    pub const fn tile(self) -> (usize, usize) {
        match self {
            KernelId::Avx512Tall | KernelId::Avx512Bf16Tall => (10, 32),
            KernelId::Avx512Wide | KernelId::Avx512Bf16Wide => (5, 64),
            KernelId::Avx512Narrow | KernelId::Avx512Bf16Narrow => (14, 16),
            KernelId::Avx2 => (6, 16),
            KernelId::Portable => (4, 16),
        }
    }

    /// Most valid columns of a last panel that the kernel computes column by column
    /// ([`MicroKernel::columns`]) instead of as a full tile (0: never).
    pub const fn edge_columns(self) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            KernelId::Avx512Tall | KernelId::Avx512Wide | KernelId::Avx512Narrow => avx512_columns::EDGE_COLUMNS,
            _ => 0,
        }
    }

    /// Vector lanes of multiply-add work per `k` for an `m×n` result: full tiles cost `MR·NR`
    /// each; a last panel of few columns costs 16 lanes per column per row panel where the kernel
    /// computes it column by column.
    fn work_lanes(self, m: usize, n: usize) -> u128 {
        let (mr, nr) = self.tile();
        let row_panels = m.div_ceil(mr) as u128;
        let rest = n % nr;
        let (full_panels, rest_lanes) =
            if rest != 0 && rest <= self.edge_columns() { (n / nr, 16 * rest) } else { (n.div_ceil(nr), 0) };
        row_panels * (full_panels as u128 * (mr * nr) as u128 + rest_lanes as u128)
    }

    /// The kernel of `level` for products of `precision` that computes the least padding for an
    /// `m×n` result (ties go to the first candidate). Bf16 products take the bf16-pair kernels
    /// at `Avx512Bf16`, and below it the `f32` kernels of the level (on rounded operands).
    pub fn choose(level: CpuLevel, precision: Precision, m: usize, n: usize) -> KernelId {
        let native_bf16 = precision == Precision::Bf16 && level == CpuLevel::Avx512Bf16;
        // On a tie, 5×64 (9 loads per 20 multiply-adds, against 12 for 10×32) measured 3–4%
        // faster on results of 2048 columns ([5000×512]·[512×2048], the big recurrent step) and
        // 10×32 up to 4% faster on narrower ones (dG·Wᵀ with 128 and 256 columns, Xᵀ·dG with 512).
        let candidates: &[KernelId] = match level.f32_level() {
            CpuLevel::Avx512 if cfg!(target_arch = "x86_64") && native_bf16 && n >= WIDE_FIRST_COLUMNS => {
                &[KernelId::Avx512Bf16Wide, KernelId::Avx512Bf16Tall, KernelId::Avx512Bf16Narrow]
            }
            CpuLevel::Avx512 if cfg!(target_arch = "x86_64") && native_bf16 => {
                &[KernelId::Avx512Bf16Tall, KernelId::Avx512Bf16Wide, KernelId::Avx512Bf16Narrow]
            }
            CpuLevel::Avx512 if cfg!(target_arch = "x86_64") && n >= WIDE_FIRST_COLUMNS => {
                &[KernelId::Avx512Wide, KernelId::Avx512Tall, KernelId::Avx512Narrow]
            }
            CpuLevel::Avx512 if cfg!(target_arch = "x86_64") => {
                &[KernelId::Avx512Tall, KernelId::Avx512Wide, KernelId::Avx512Narrow]
            }
            CpuLevel::Avx2 if cfg!(target_arch = "x86_64") => &[KernelId::Avx2],
            _ => &[KernelId::Portable],
        };
        let mut best = candidates[0];
        for id in &candidates[1..] {
            if id.work_lanes(m, n) < best.work_lanes(m, n) {
                best = *id;
            }
        }
        best
    }
}

/// Results of at least this many columns prefer the 5×64 AVX-512 kernel on a tie.
const WIDE_FIRST_COLUMNS: usize = 1024;

/// Calls `$f::<K>($args)` with the micro-kernel type `K` named by a [`KernelId`].
macro_rules! with_kernel {
    ($id:expr, $f:ident $args:tt) => {
        $crate::gemm::microkernel::with_kernel!(@table $id, $f $args;
            Avx512Tall = avx512::Avx512,
            Avx512Wide = avx512::Avx512Wide,
            Avx512Narrow = avx512::Avx512Narrow,
            Avx2 = avx2::Avx2,
            Avx512Bf16Tall = avx512_bf16::Avx512Bf16,
            Avx512Bf16Wide = avx512_bf16::Avx512Bf16Wide,
            Avx512Bf16Narrow = avx512_bf16::Avx512Bf16Narrow,
        )
    };
    // The x86-64 kernels by id; everything else (and every id off x86-64) is the portable one.
    (@table $id:expr, $f:ident $args:tt; $($kernel:ident = $module:ident::$ty:ident,)*) => {
        match $id {
            $(
                #[cfg(target_arch = "x86_64")]
                $crate::gemm::microkernel::KernelId::$kernel => $f::<$crate::gemm::microkernel::$module::$ty> $args,
            )*
            _ => $f::<$crate::gemm::microkernel::portable::Portable> $args,
        }
    };
}
pub(crate) use with_kernel;

/// The largest `MR·NR` of any kernel (the size of the edge-tile buffer).
pub(crate) const MAX_TILE: usize = 512;

/// The largest `MR` and `NR` of any kernel (they bound the packing buffers).
pub(crate) const MAX_MR: usize = max_of_tiles(0);
pub(crate) const MAX_NR: usize = max_of_tiles(1);

const fn max_of_tiles(side: usize) -> usize {
    let mut max = 0;
    let mut i = 0;
    while i < KernelId::ALL.len() {
        let (mr, nr) = KernelId::ALL[i].tile();
        let x = if side == 0 { mr } else { nr };
        if x > max {
            max = x;
        }
        i += 1;
    }
    max
}

/// A thread's share of a product with kernel `K`, between [`MicroKernel::begin_thread`] (made
/// by [`ThreadTiles::begin`]) and [`MicroKernel::end_thread`] (when dropped, on a panic too).
/// Neither `Send` nor `Sync` (the raw pointer in its marker): it ends on the thread it began on.
pub(crate) struct ThreadTiles<K: MicroKernel>(std::marker::PhantomData<*const K>);

impl<K: MicroKernel> ThreadTiles<K> {
    /// Begins this thread's share.
    ///
    /// # Safety
    /// The CPU supports the kernel's target features.
    #[inline(always)]
    pub(crate) unsafe fn begin() -> ThreadTiles<K> {
        // SAFETY: the caller's contract.
        unsafe { K::begin_thread() };
        ThreadTiles(std::marker::PhantomData)
    }
}

impl<K: MicroKernel> Drop for ThreadTiles<K> {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: `begin` (the only way to make one) was called on this thread, under the
        // contract that the CPU supports the kernel's features; the guard cannot leave it.
        unsafe { K::end_thread() };
    }
}

/// Where a kernel reads the `MR` rows of `A` (words `W`, see [`PackWord`]) for one tile.
#[derive(Clone, Copy, Debug)]
pub(crate) enum APanel<W> {
    /// Packed ([`pack_a`]): `steps(kc)` groups of `MR` words, one group per step of `k`.
    Packed(*const W),
    /// In place, rows of words `lda` apart: row `i` at step `p` of `k` is `ptr + i·lda + p`.
    /// A full panel of a row-major `f32` `A` needs no copy for exact `f32` products; for bf16
    /// pairs its rows are converted once per block ([`super::pack::PackWord::convert_rows`]).
    Rows(*const W, usize),
}

/// Where a kernel writes its result and how: `C = alpha·AB + beta·C` at `ptr`, rows `ldc`
/// apart (`C` is not read when `beta == 0`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct CTile {
    pub ptr: *mut f32,
    pub ldc: usize,
    pub alpha: f32,
    pub beta: f32,
}

/// A register-blocked `MR×NR` kernel; [`tile::micro_kernel!`] writes the implementations.
pub(crate) trait MicroKernel {
    /// Which kernel this is: its tile shape and CPU level come from [`KernelId`].
    const ID: KernelId;
    /// What its packed panels hold per row and step of `k`.
    type Word: PackWord;
    /// Rows of a tile.
    const MR: usize = Self::ID.tile().0;
    /// Columns of a tile.
    const NR: usize = Self::ID.tile().1;

    /// `C[0..MR, 0..NR] = alpha · A·Bp + beta · C`.
    ///
    /// # Safety
    /// The CPU supports the kernel's target features; `a` is readable for `kc` values of `MR`
    /// rows (packed: `steps(kc)·MR` words; in place, `f32` words only: `ptr + i·lda + p` for
    /// `i < MR`, `p < kc`), `b` points to `steps(kc)·NR` readable words, and `c` to `MR` rows of
    /// `NR` writable `f32` with row stride `ldc` (non-overlapping rows: `ldc >= NR`).
    unsafe fn tile(kc: usize, a: APanel<Self::Word>, b: *const Self::Word, c: CTile);

    /// Most valid columns of a tile that [`MicroKernel::columns`] computes (0: none; such
    /// tiles go through a full local tile like any other cut tile).
    const EDGE_COLUMNS: usize = 0;

    /// `C[0..rows, 0..cols] = alpha · Ap·Bp[.., 0..cols] + beta · C` for a tile of few valid
    /// columns, one vector multiply-add per column per `k`.
    ///
    /// # Safety
    /// As [`MicroKernel::tile`] with a packed `A` (`kc·MR` floats at `a`), and `c` pointing to
    /// `rows ≤ MR` rows of `1 ≤ cols ≤ EDGE_COLUMNS` writable floats.
    unsafe fn columns(kc: usize, a: *const Self::Word, b: *const Self::Word, c: CTile, rows: usize, cols: usize) {
        let _ = (kc, a, b, c, rows, cols);
        unreachable!("a kernel without a few-column path (EDGE_COLUMNS = 0) was asked for one");
    }

    /// Readies the calling thread for this kernel's tiles: the driver calls it once per
    /// thread's share of a product, before the first tile ([`ThreadTiles`]). A kernel whose
    /// registers need configuring per thread does it here (AMX: load the tile configuration,
    /// `ldtilecfg`); every kernel today needs nothing, and the default compiles to nothing.
    ///
    /// # Safety
    /// The CPU supports the kernel's target features.
    #[inline(always)]
    unsafe fn begin_thread() {}

    /// Undoes [`MicroKernel::begin_thread`] after the thread's last tile of the product (AMX:
    /// `tilerelease`); nothing by default.
    ///
    /// # Safety
    /// As [`MicroKernel::begin_thread`], which this thread called for this share.
    #[inline(always)]
    unsafe fn end_thread() {}

    /// The CPU level whose features the kernel (and its packing) is compiled for.
    const LEVEL: CpuLevel = Self::ID.level();

    /// Whether this CPU has the kernel's features (cached detection).
    fn supported() -> bool {
        Self::LEVEL <= crate::dispatch::detected_level()
    }

    /// [`pack_a`] with this kernel's `MR` and words, the values rounded to `precision`.
    fn pack_a(a: Strided<'_>, block: Block, out: &mut [Self::Word], precision: Precision) -> usize;

    /// [`pack_b`] with this kernel's `NR` and words, the values rounded to `precision`.
    ///
    /// # Panics
    /// If the CPU lacks the kernel's features (the packing is compiled for them).
    fn pack_b(b: Strided<'_>, block: Block, out: &mut [Self::Word], precision: Precision) -> usize;
}
