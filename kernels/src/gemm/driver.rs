//! The `f32` GEMM: BLIS-ordered blocked loops around a micro-kernel, the split across threads,
//! and the choice of kernel by CPU level. One driver for every kernel and precision: the
//! packed panels hold the kernel's words ([`PackWord`]: `f32`, exact or bf16-rounded, or bf16
//! pairs along `k`), and a bf16 `A` is always packed (rounded), never read in place.
//!
//! Loop order: columns of `C` in blocks of `NC`; the inner dimension in blocks of
//! [`depth_block`] (pack that block of `B` once); rows in blocks of `MC` (pack that block of
//! `A`, unless `A` is row-major: its full panels are then read in place); then every `MR×NR`
//! tile. With the forward shapes (`k ≤ 512`, `n ≤ 4096`) `B` is packed
//! once per call, or never when the caller pre-packed it ([`super::PackedB`]).

use std::cell::RefCell;
use std::ops::Range;
use std::sync::OnceLock;

use super::microkernel::{with_kernel, APanel, CTile, KernelId, MicroKernel, ThreadTiles, MAX_MR, MAX_NR, MAX_TILE};
use super::pack::{Block, PackWord, Strided};
use crate::cpu_caches::{cache_sizes, Blocking};
use crate::dispatch::detected_level;
use crate::Precision;

/// Deepest packed block: a product over `k ≤ KC_MAX` runs as one block, so `C` is written once
/// (measured on `[5000×512]·[512×2048]` and `dG·Wᵀ` with k = 512: +4–9% over 256-deep blocks).
pub(crate) const KC_MAX: usize = 512;

/// The cache blocking of this CPU, from its L2 ([`Blocking::for_l2`]): the depth of the blocks
/// of deeper products whose result stays in cache (weight gradients, `k = T·B`), the row panels
/// per packed block of `A`, and the largest result kept in cache across blocks over `k`.
pub(crate) fn blocking() -> Blocking {
    static BLOCKING: OnceLock<Blocking> = OnceLock::new();
    *BLOCKING.get_or_init(|| Blocking::for_l2(cache_sizes().l2, MAX_MR, KC_MAX))
}

/// Depth of the blocks over `k` for a product whose part of `C` has `c_len` elements. Packing
/// and multiplying must agree on it: a pre-packed `B` ([`pack_b_whole`]) does not know the
/// result, and is packed and used with `c_len = 0`. A result too large to stay in L2 costs a
/// pass of `C` through memory per block, and `KC_MAX`-deep blocks halve those passes; one that
/// stays takes blocks of `B` that fit in L2 beside the block of `A`.
pub(crate) fn depth_block(k: usize, c_len: usize) -> usize {
    if k <= KC_MAX {
        k.max(1)
    } else if c_len > blocking().c_cached {
        KC_MAX
    } else {
        blocking().kc_deep
    }
}

/// Columns per packed block of `B`.
const NC: usize = 4096;
/// Below this many multiply-adds a product runs on the calling thread.
const PARALLEL_MIN_WORK: usize = 1 << 21;

/// Where the `B` panels come from.
#[derive(Clone, Copy)]
pub(crate) enum BSource<'a> {
    /// Pack from a strided view while multiplying.
    Strided(Strided<'a>),
    /// Already packed for this kernel and the product's precision over all of `k` (see
    /// [`packed_len`]), the kernel's words in `f32` storage.
    Packed(&'a [f32]),
}

/// One product `C = alpha·op(A)·B + beta·C` but its `C`: `op(A)` is `m×k`, `B` is `k×n`.
#[derive(Clone, Copy)]
pub(crate) struct Product<'a> {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub alpha: f32,
    pub a: Strided<'a>,
    pub b: BSource<'a>,
    pub beta: f32,
    /// What `A` and `B` are rounded to before they are multiplied.
    pub precision: Precision,
}

/// Length of a whole `k×n` matrix packed for panels of width `nr` (words of one depth; pairs
/// take less).
pub(crate) fn packed_len(k: usize, n: usize, nr: usize) -> usize {
    k * n.div_ceil(nr) * nr
}

/// Packs all of `op(B)` (`k×n`) for `kernel` at `precision`: [`depth_block`]-deep blocks, each
/// a run of `NR`-wide panels. Returns the length used.
pub(crate) fn pack_b_whole(
    kernel: KernelId,
    precision: Precision,
    b: Strided<'_>,
    (k, n): (usize, usize),
    out: &mut [f32],
) -> usize {
    assert!(kernel.level() <= detected_level(), "kernel {kernel:?} is not supported by this CPU");
    with_kernel!(kernel, pack_b_whole_for(precision, b, k, n, out))
}

fn pack_b_whole_for<K: MicroKernel>(
    precision: Precision,
    b: Strided<'_>,
    k: usize,
    n: usize,
    out: &mut [f32],
) -> usize {
    let out = K::Word::words_mut(out);
    let mut used = 0;
    let kc_block = depth_block(k, 0);
    for p0 in (0..k).step_by(kc_block) {
        let kc = kc_block.min(k - p0);
        used += K::pack_b(b, Block { first: 0, len: n, p0, kc }, &mut out[used..], precision);
    }
    used
}

/// `C = alpha·op(A)·B + beta·C` (`C` row-major with leading dimension `ldc`, bounds already
/// checked by the caller) with the given micro-kernel (`B` packed for it if pre-packed).
///
/// # Panics
/// If the kernel needs a CPU level this CPU does not support, or multiplies bf16 pairs for
/// an `f32` product.
pub(crate) fn gemm_f32(kernel: KernelId, product: Product<'_>, c: &mut [f32], ldc: usize) {
    // The kernel calls made below are sound only when the level's features are present.
    assert!(kernel.level() <= detected_level(), "kernel {kernel:?} is not supported by this CPU");
    assert!(!kernel.native_bf16() || product.precision == Precision::Bf16, "{kernel:?} for an f32 product");
    with_kernel!(kernel, split(product, c, ldc))
}

/// Splits the rows of `C` into one contiguous block per thread (multiples of `MR`) while the
/// work is large; every element of `C` is computed by one serial call over the full `k`, with
/// the same arithmetic whatever the block it falls in (see [`cut_tile`]), so results do not
/// depend on the thread count.
fn split<K: MicroKernel>(product: Product<'_>, c: &mut [f32], ldc: usize) {
    let Product { m, n, k, a, .. } = product;
    let threads = rayon::current_num_threads();
    let parts = if m * n * k >= PARALLEL_MIN_WORK { threads.min(m / (4 * K::MR)) } else { 1 };
    if parts <= 1 {
        serial::<K>(product, c, ldc);
        return;
    }
    let rows_per_part = m.div_ceil(parts).div_ceil(K::MR) * K::MR;
    rayon::scope(|scope| {
        let mut rest = c;
        for first in (0..m).step_by(rows_per_part) {
            let rows = rows_per_part.min(m - first);
            let (mine, others) = rest.split_at_mut((rows * ldc).min(rest.len()));
            rest = others;
            let part = Product { m: rows, a: Strided { data: &a.data[first * a.rs..], ..a }, ..product };
            scope.spawn(move |_| serial::<K>(part, mine, ldc));
        }
    });
}

thread_local! {
    /// Packing buffers of this thread, grown on first use and reused: no allocation in steady
    /// state (a training step allocates nothing after the first).
    static SCRATCH: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Sizes this thread's packing buffers for every product with `n` up to `max_n` columns, so
/// that later products allocate nothing.
pub(crate) fn reserve_scratch(max_n: usize) {
    let (len_a, len_b) = scratch_lens(max_n);
    SCRATCH.with(|cell| {
        let mut scratch = cell.borrow_mut();
        let (buf_a, buf_b) = &mut *scratch;
        grow(buf_a, len_a);
        grow(buf_b, len_b);
    });
}

/// Lengths of one thread's packing buffers for `A` and `B` for products of up to `max_n`
/// columns, in floats: for every kernel and precision (a panel of bf16 pairs takes half the
/// words of an `f32` one, plus one step for an odd depth: never more).
pub(crate) fn scratch_lens(max_n: usize) -> (usize, usize) {
    (MAX_MR * blocking().mc_panels * KC_MAX, KC_MAX * NC.min(max_n.div_ceil(MAX_NR) * MAX_NR))
}

fn grow(v: &mut Vec<f32>, len: usize) {
    if v.len() < len {
        v.resize(len, 0.0);
    }
}

/// One thread's share of a product: the kernel's per-thread set-up ([`ThreadTiles`]), then the
/// blocked loops over columns of `C` (`NC`) and depth ([`depth_block`]), each with its block
/// of `B` panels, then the row blocks of `A`.
fn serial<K: MicroKernel>(product: Product<'_>, c: &mut [f32], ldc: usize) {
    let Product { m, n, k, b, precision, .. } = product;
    let mc_max = K::MR * blocking().mc_panels;
    // SAFETY: the kernel's features are present (checked in `gemm_f32`, the only way here).
    let _tiles = unsafe { ThreadTiles::<K>::begin() };
    SCRATCH.with(|cell| {
        let mut scratch = cell.borrow_mut();
        let (buf_a, buf_b) = &mut *scratch;
        let kc_block = match b {
            BSource::Strided(_) => depth_block(k, m * n),
            BSource::Packed(_) => depth_block(k, 0),
        };
        // Packed panels of `A`, or (bf16 pairs) converted rows and one packed cut panel.
        grow(buf_a, (mc_max * kc_block).max((mc_max + K::MR) * kc_block.div_ceil(2)));
        if let BSource::Strided(_) = b {
            grow(buf_b, kc_block * NC.min(n.div_ceil(K::NR) * K::NR));
        }
        let (buf_a, buf_b) = (K::Word::words_mut(buf_a), K::Word::words_mut(buf_b));
        for jc in (0..n).step_by(NC) {
            let nc = NC.min(n - jc);
            for pc in (0..k).step_by(kc_block) {
                let kc = kc_block.min(k - pc);
                let block = Block { first: jc, len: nc, p0: pc, kc };
                let block_b = BPanels { panels: b_panels::<K>(b, block, n, precision, buf_b), block };
                let beta = if pc == 0 { product.beta } else { 1.0 };
                for ic in (0..m).step_by(mc_max) {
                    let rows = ic..mc_max.min(m - ic) + ic;
                    row_block::<K>(&product, rows, &block_b, buf_a, CBlock { c, ldc, beta });
                }
            }
        }
    });
}

/// The `B` panels of one block (`block.len` columns from `block.first`, depths `block.p0..`
/// `+ block.kc`): `steps(kc)·NR` words per panel.
struct BPanels<'p, W> {
    panels: &'p [W],
    block: Block,
}

/// Where a row block writes: all of `C` (rows `ldc` apart), with the `beta` of this depth block
/// (the product's for the first, 1 after it).
struct CBlock<'c> {
    c: &'c mut [f32],
    ldc: usize,
    beta: f32,
}

/// The panels of `B` for `block`: packed into `buf_b` now, or the block's part of a pre-packed
/// `B` (`n` columns in all).
fn b_panels<'p, K: MicroKernel>(
    b: BSource<'p>,
    block: Block,
    n: usize,
    precision: Precision,
    buf_b: &'p mut [K::Word],
) -> &'p [K::Word] {
    match b {
        BSource::Strided(bs) => {
            let used = K::pack_b(bs, block, buf_b, precision);
            &buf_b[..used]
        }
        // The blocks before `p0` are whole (an even depth), `steps(p0)` words deep.
        BSource::Packed(data) => {
            let n_pad = n.div_ceil(K::NR) * K::NR;
            let kw = K::Word::steps(block.kc);
            &K::Word::words(data)[K::Word::steps(block.p0) * n_pad + (block.first / K::NR) * kw * K::NR..]
        }
    }
}

/// Rows `rows` of `C` (at most `MR·mc_panels`) over one block of `B`: the rows of `A` made
/// ready (read in place, converted or packed), then every tile.
fn row_block<K: MicroKernel>(
    product: &Product<'_>,
    rows: Range<usize>,
    b: &BPanels<'_, K::Word>,
    buf_a: &mut [K::Word],
    c: CBlock<'_>,
) {
    let (a, mr, Block { len: nc, p0: pc, kc, .. }) = (product.a, K::MR, b.block);
    let kw = K::Word::steps(kc);
    // A row-major `A` is read in place by full panels (no copy: measured +12% on `dG·Wᵀ`
    // [2500×512]·[512×128]); only a cut last panel is packed. Blocks with cut column panels pack
    // all of `A`, which their edge paths read. For bf16 pairs, the full panels' rows are first
    // converted, whole rows at a time, into the start of the buffer (a vector conversion, where
    // packing pairs converts value by value); an `f32` `A` to round to bf16 is always packed
    // (rounded).
    let pairs = K::Word::KSTEP == 2;
    // Pairs have no few-column edge path: their cut column panels read the rows too.
    let in_place = a.cs == 1 && (pairs || (nc.is_multiple_of(K::NR) && product.precision == Precision::F32));
    let in_place_panels = if in_place { rows.len() / mr } else { 0 };
    let packed_from = rows.start + in_place_panels * mr;
    // Words of converted rows before the packed panels.
    let converted = if pairs { (packed_from - rows.start) * kw } else { 0 };
    if converted > 0 {
        // SAFETY: pairs are the words of the AVX512-BF16 kernels, whose features are present
        // (checked in `gemm_f32`).
        unsafe { K::Word::convert_rows(a, rows.start..packed_from, pc, kc, &mut buf_a[..converted], kw) };
    }
    let (rows_a, buf_a) = buf_a.split_at_mut(converted);
    K::pack_a(a, Block { first: packed_from, len: rows.end - packed_from, p0: pc, kc }, buf_a, product.precision);
    let block_a = ARows { a, rows_a, packed: buf_a, in_place_panels };
    tiles::<K>(product.alpha, &block_a, rows, b, c);
}

/// The rows of `A` of one row block, ready for the kernel: the first `in_place_panels` panels
/// in place (`f32`, in `a`) or converted (`rows_a`, pairs), the rest packed (`packed`, from
/// panel 0).
struct ARows<'a, 'w, W> {
    a: Strided<'a>,
    rows_a: &'w [W],
    packed: &'w [W],
    in_place_panels: usize,
}

/// Every `MR×NR` tile of a row block over one block of `B`.
fn tiles<K: MicroKernel>(
    alpha: f32,
    a: &ARows<'_, '_, K::Word>,
    rows: Range<usize>,
    b: &BPanels<'_, K::Word>,
    out: CBlock<'_>,
) {
    let (mr, nr) = (K::MR, K::NR);
    let Block { first: jc, len: nc, p0: pc, kc } = b.block;
    let CBlock { c, ldc, beta } = out;
    let kw = K::Word::steps(kc);
    let pairs = K::Word::KSTEP == 2;
    let mc = rows.len();
    for jr in 0..nc.div_ceil(nr) {
        let cols = nr.min(nc - jr * nr);
        let bp = &b.panels[jr * kw * nr..(jr + 1) * kw * nr];
        for ir in 0..mc.div_ceil(mr) {
            let tile_rows = mr.min(mc - ir * mr);
            let (row, col) = (rows.start + ir * mr, jc + jr * nr);
            // Panels read in place are whole (rows and columns); the packed ones start at panel 0
            // of the buffer.
            let packed = ir.checked_sub(a.in_place_panels).map(|q| &a.packed[q * kw * mr..(q + 1) * kw * mr]);
            if tile_rows == mr && cols == nr {
                let a_panel = match packed {
                    Some(ap) => APanel::Packed(ap.as_ptr()),
                    None if pairs => APanel::Rows(a.rows_a[ir * mr * kw..][..mr * kw].as_ptr(), kw),
                    None => {
                        let a_rows = K::Word::words(&a.a.data[row * a.a.rs + pc..]);
                        assert!(a_rows.len() >= (mr - 1) * a.a.rs + kc);
                        APanel::Rows(a_rows.as_ptr(), a.a.rs)
                    }
                };
                let c_tile = &mut c[row * ldc + col..(row + mr - 1) * ldc + col + nr];
                let out = CTile { ptr: c_tile.as_mut_ptr(), ldc, alpha, beta };
                // SAFETY: the level's features are present (checked in `gemm_f32`); a packed
                // panel holds kw·MR words (sliced above); rows read in place hold row i, step p
                // at i·lda + p for i < MR, p < kw: converted pair rows are MR rows of kw words
                // (sliced above), `f32` rows lie in `A` (asserted above); `bp` holds kw·NR
                // words; `c_tile` spans MR rows of NR columns at stride `ldc` (sliced above, so
                // in bounds), and `ldc >= n >= NR` keeps the rows apart.
                unsafe { K::tile(kc, a_panel, bp.as_ptr(), out) };
            } else {
                let a_panel = match packed {
                    Some(ap) => CutPanel::Packed(ap),
                    None if pairs => CutPanel::Rows(&a.rows_a[ir * mr * kw..][..mr * kw]),
                    None => unreachable!("f32 panels read in place are whole: rows and columns"),
                };
                let cut = CutTile { c: &mut c[row * ldc + col..], ldc, rows: tile_rows, cols };
                cut_tile::<K>(kc, a_panel, bp, cut, alpha, beta);
            }
        }
    }
}

/// The valid `rows×cols` part of a tile cut by the edge of `C`, from the start of `c`, rows
/// `ldc` apart.
struct CutTile<'c> {
    c: &'c mut [f32],
    ldc: usize,
    rows: usize,
    cols: usize,
}

/// A tile cut by the edge of `C`. A last panel of few columns is computed column by column
/// ([`MicroKernel::columns`]) where the kernel can; otherwise the valid part of `C` is copied
/// into a full-size local tile, the kernel runs on it with the same `alpha`/`beta` as
/// everywhere else (so an element gets the same rounding whether its tile is cut or not), and
/// the part is copied back.
fn cut_tile<K: MicroKernel>(
    kc: usize,
    a: CutPanel<'_, K::Word>,
    bp: &[K::Word],
    cut: CutTile<'_>,
    alpha: f32,
    beta: f32,
) {
    let ap = match a {
        CutPanel::Packed(ap) => ap,
        CutPanel::Rows(rows_a) => {
            // Converted pair rows (the pair kernels have no few-column path): the full tile
            // on a local copy of the cut part of `C`, as below.
            debug_assert!(K::EDGE_COLUMNS == 0 && cut.rows == K::MR);
            return local_tile::<K>(kc, APanel::Rows(rows_a.as_ptr(), rows_a.len() / K::MR), bp, cut, alpha, beta);
        }
    };
    let CutTile { c, ldc, rows, cols } = cut;
    if cols <= K::EDGE_COLUMNS {
        // The kernel writes through a pointer: the cut must lie inside `c` whatever the caller
        // computed (one comparison per cut tile).
        assert!(rows <= K::MR && (rows == 0 || (rows - 1) * ldc + cols <= c.len()), "cut tile outside C");
        // SAFETY: features present (checked in `gemm_f32`); `ap`/`bp` hold steps(kc)·MR /
        // steps(kc)·NR words (sliced by the caller); `c` holds `rows ≤ MR` rows of
        // `cols ≤ EDGE_COLUMNS` columns at stride `ldc` (asserted just above).
        unsafe {
            K::columns(kc, ap.as_ptr(), bp.as_ptr(), CTile { ptr: c.as_mut_ptr(), ldc, alpha, beta }, rows, cols)
        };
        return;
    }
    local_tile::<K>(kc, APanel::Packed(ap.as_ptr()), bp, CutTile { c, ldc, rows, cols }, alpha, beta);
}

/// Where a cut tile reads `A`: a packed panel, or `MR` converted rows of pairs, `len / MR` words
/// apart.
enum CutPanel<'a, W> {
    Packed(&'a [W]),
    Rows(&'a [W]),
}

/// The kernel's full tile on a local copy of the cut part of `C`, copied back: an element gets
/// the same rounding whether its tile is cut or not. `a` must hold `steps(kc)` words for each
/// of `MR` rows (a packed panel, or rows in place).
fn local_tile<K: MicroKernel>(kc: usize, a: APanel<K::Word>, bp: &[K::Word], cut: CutTile<'_>, alpha: f32, beta: f32) {
    let CutTile { c, ldc, rows, cols } = cut;
    let mut tile = [0.0f32; MAX_TILE];
    debug_assert!(K::MR * K::NR <= MAX_TILE);
    if beta != 0.0 {
        for i in 0..rows {
            tile[i * K::NR..i * K::NR + cols].copy_from_slice(&c[i * ldc..i * ldc + cols]);
        }
    }
    let out = CTile { ptr: tile.as_mut_ptr(), ldc: K::NR, alpha, beta };
    // SAFETY: features present (checked in `gemm_f32`); `a` holds steps(kc) words for each of MR
    // rows and `bp` steps(kc)·NR words (sliced by the callers); `tile` holds MR rows of NR floats
    // at stride NR (MR·NR ≤ MAX_TILE).
    unsafe { K::tile(kc, a, bp.as_ptr(), out) };
    for i in 0..rows {
        c[i * ldc..i * ldc + cols].copy_from_slice(&tile[i * K::NR..i * K::NR + cols]);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::gemm::microkernel::portable::Portable;

    static BEGUN: AtomicUsize = AtomicUsize::new(0);
    static ENDED: AtomicUsize = AtomicUsize::new(0);

    thread_local! {
        /// Whether this thread is between `begin_thread` and `end_thread`.
        static SET_UP: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    /// The portable kernel with a per-thread set-up that counts its calls (what AMX's tile
    /// configuration would do there).
    struct Counting;

    impl MicroKernel for Counting {
        const ID: KernelId = Portable::ID;
        type Word = <Portable as MicroKernel>::Word;

        unsafe fn tile(kc: usize, a: APanel<Self::Word>, b: *const Self::Word, c: CTile) {
            assert!(SET_UP.get(), "a tile ran on a thread not set up");
            // SAFETY: the caller's contract, which is the portable kernel's.
            unsafe { Portable::tile(kc, a, b, c) }
        }

        unsafe fn begin_thread() {
            assert!(!SET_UP.replace(true), "a thread set up twice");
            BEGUN.fetch_add(1, Ordering::SeqCst);
        }

        unsafe fn end_thread() {
            assert!(SET_UP.replace(false), "a thread ended without being set up");
            ENDED.fetch_add(1, Ordering::SeqCst);
        }

        fn pack_a(a: Strided<'_>, block: Block, out: &mut [Self::Word], precision: Precision) -> usize {
            Portable::pack_a(a, block, out, precision)
        }

        fn pack_b(b: Strided<'_>, block: Block, out: &mut [Self::Word], precision: Precision) -> usize {
            Portable::pack_b(b, block, out, precision)
        }
    }

    /// Each thread's share of a product sets its thread up once, before its tiles, and ends it
    /// after them: two shares on two threads, and one for a product too small to split; the
    /// results are the portable kernel's.
    #[test]
    fn every_share_of_a_product_sets_its_thread_up_once() {
        let (m, n, k) = (64, 256, 160);
        assert!(m * n * k >= PARALLEL_MIN_WORK && m / (4 * Portable::MR) >= 2);
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 - 3.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.5).collect();
        let product = |m: usize| Product {
            m,
            n,
            k,
            alpha: 1.0,
            a: Strided { data: &a, rs: k, cs: 1 },
            b: BSource::Strided(Strided { data: &b, rs: n, cs: 1 }),
            beta: 0.0,
            precision: Precision::F32,
        };
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("thread pool");
        for (rows, shares) in [(m, 2), (4, 1)] {
            let (mut counted, mut plain) = (vec![0.0f32; rows * n], vec![0.0f32; rows * n]);
            let before = BEGUN.load(Ordering::SeqCst);
            pool.install(|| {
                split::<Counting>(product(rows), &mut counted, n);
                split::<Portable>(product(rows), &mut plain, n);
            });
            assert_eq!(BEGUN.load(Ordering::SeqCst) - before, shares, "{rows} rows");
            assert_eq!(ENDED.load(Ordering::SeqCst), BEGUN.load(Ordering::SeqCst), "{rows} rows");
            assert_eq!(counted, plain, "{rows} rows");
        }
    }
}
