//! One stream's step split across cores: each of `P` threads owns a contiguous range of every
//! layer's hidden units (the columns of each gate block that make them) and of the output
//! symbols, and multiplies only those columns of the weights.
//!
//! One stream's step is bound by reading the weights (the default model's 0.8 MB of `f32`, from
//! L2, at every symbol), not by arithmetic. Split by columns, each core reads its own part, which
//! stays in its own L2, so the step gets the L2 bandwidth of `P` cores. The threads meet at a
//! spinning barrier after each layer (the next layer needs every unit of this one) and after the
//! output layer; they are spawned once for a whole run of symbols, never a thread-pool task per
//! step. A layer's new state is published through atomics (the engine has no `unsafe`), in two
//! buffers used in turn, so that a thread still reading the previous state never sees the new
//! one being written. Every element is computed as in [`crate::inference::step`]'s one-row step (the
//! same matrix-vector sums over the same columns, the same fused cells), so the split run is
//! bit-identical to it.
//!
//! A step is short (a few microseconds), so what the cores pass to each other decides its
//! speed: every buffer a thread writes during the run (its cell states, its products, what it
//! publishes) is [`LineAligned`], on cache lines no other thread writes, and the weights are
//! aligned for the vector loads. Left to where the allocator put them, a part's buffers shared
//! lines with another's and its weights got whatever offset the heap gave: changes elsewhere
//! that only reshuffled the allocations cost one-stream sampling 9%. Nothing outside those
//! buffers is written during the run (the cell states alternate between two buffers by the
//! step's parity, as the published state does, rather than being swapped in their lists).

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use charrnn_kernels::gemm::Op;
use charrnn_kernels::line_aligned::{LineAligned, LINE_PAIR};
use charrnn_kernels::prepared::{PreparedMatrix, PreparedProduct};
use charrnn_kernels::{Kernel, Precision};

use crate::inference::step::InferenceWeights;
use crate::model::cell::{with_cell, Cell, ForwardStep, RecurrentSide, SlabArray};
use crate::model::workspace::State;

/// Columns a part's ranges are aligned to (a vector of the widest level).
const ALIGN: usize = 16;
/// Fewest hidden units per part: below it, the barriers cost more than the split saves.
const MIN_UNITS_PER_PART: usize = 64;
/// Fewest bytes of weights a step must read for a split to pay.
const MIN_WEIGHT_BYTES: usize = 256 << 10;

/// How many parts a one-row step of `weights` should be split into with `threads` threads:
/// 1 (no split) for small models or one thread.
pub fn parts_for(weights: &InferenceWeights<'_>, threads: usize) -> usize {
    if !weights.matrix_vector() {
        return 1;
    }
    let cfg = weights.model().config;
    let (h, gh) = (cfg.hidden_size, cfg.cell.gates() * cfg.hidden_size);
    // Per layer `Wh`, and `Wx` above layer 0 (whose input is a row of the folded table).
    let rows_read = h * cfg.num_layers + h * (cfg.num_layers - 1);
    let element_bytes = match weights.precision() {
        Precision::F32 => 4,
        Precision::Bf16 => 2,
    };
    let bytes = element_bytes * (rows_read * gh + h * cfg.vocab_size);
    if bytes < MIN_WEIGHT_BYTES {
        return 1;
    }
    threads.min(cfg.hidden_size / MIN_UNITS_PER_PART).max(1)
}

/// `0..n` cut into `parts` contiguous ranges, their bounds multiples of [`ALIGN`] where `n`
/// allows (the last range takes the rest).
/// A range is empty (no work for that part) where `n` is smaller than `parts`; bounds are
/// rounded to the nearest multiple of [`ALIGN`] when every part can have one.
fn split(n: usize, parts: usize) -> Vec<Range<usize>> {
    let aligned = n >= ALIGN * parts;
    let bound = |i: usize| {
        let even = i * n / parts;
        if aligned {
            ((even + ALIGN / 2) / ALIGN * ALIGN).min(n)
        } else {
            even
        }
    };
    let bounds: Vec<usize> = (0..=parts).map(|i| if i == parts { n } else { bound(i) }).collect();
    bounds.windows(2).map(|w| w[0]..w[1]).collect()
}

/// Spins at a meeting point before a wait yields the core (about 20–50 µs).
const SPINS_BEFORE_YIELD: u32 = 1 << 12;
/// Yields before a wait sleeps (the thread waited for is writing output that blocks, say).
const YIELDS_BEFORE_SLEEP: u32 = 1 << 10;
/// How long each sleep of a long wait is.
const SLEEP: std::time::Duration = std::time::Duration::from_micros(200);

/// A counter on its own pair of cache lines: one per thread, written by it alone.
#[repr(align(128))]
struct Progress(AtomicUsize);

const _: () = assert!(align_of::<Progress>() == LINE_PAIR && align_of::<Shared>() == LINE_PAIR);

/// What the threads share. Aligned so that the caller's other locals are not on its lines:
/// during the run only `token` (and the progress, on lines of their own) change on them.
#[repr(align(128))]
struct Shared {
    /// Per layer, the published hidden state, in two buffers used in turn (`[2][H]` as bits).
    /// Parts' ranges begin on a line where the split is aligned (every model that is split).
    h: Vec<[LineAligned<AtomicU32>; 2]>,
    /// The logits of the last step (as bits).
    logits: LineAligned<AtomicU32>,
    /// The symbol the next step reads.
    token: AtomicU32,
    /// Per thread, how many meeting points it has passed.
    progress: Vec<Progress>,
    /// Set (before a meeting point) to end the helpers.
    stop: AtomicBool,
}

impl Shared {
    /// Marks meeting point `point` as reached by thread `part`, and waits for every thread.
    fn meet(&self, part: usize, point: usize) {
        self.progress[part].0.store(point, Ordering::Release);
        for other in &self.progress {
            let mut waits = 0u32;
            while other.0.load(Ordering::Acquire) < point {
                // Spin (the others are a fraction of a microsecond away), but give the core up
                // after a while: a busy machine may have descheduled the thread waited for;
                // and sleep once the wait is long (the calling thread's output is blocked).
                waits = waits.saturating_add(1);
                if waits < SPINS_BEFORE_YIELD {
                    std::hint::spin_loop();
                } else if waits < SPINS_BEFORE_YIELD + YIELDS_BEFORE_SLEEP {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(SLEEP);
                }
            }
        }
    }
}

fn publish(to: &[AtomicU32], from: &[f32]) {
    for (t, &v) in to.iter().zip(from) {
        t.store(v.to_bits(), Ordering::Relaxed);
    }
}

fn read(from: &[AtomicU32], to: &mut [f32]) {
    for (t, f) in to.iter_mut().zip(from) {
        *t = f32::from_bits(f.load(Ordering::Relaxed));
    }
}

/// A part's columns of one weight matrix, prepared for one-row products (in the matrix-vector
/// form: a split step runs only where the kernels multiply one row so).
struct Columns(PreparedMatrix<f32>);

impl Columns {
    /// The columns `cols` of the row-major `k×ldw` matrix `w`, copied and prepared as a
    /// `k×cols.len()` matrix for products in `precision`.
    fn of(w: &[f32], k: usize, ldw: usize, cols: &[usize], precision: Precision) -> Columns {
        let mut out = Vec::with_capacity(k * cols.len());
        for row in w.chunks_exact(ldw).take(k) {
            out.extend(cols.iter().map(|&c| row[c]));
        }
        let mut prepared = PreparedMatrix::new(k, cols.len(), precision, 1);
        prepared.prepare(Op::N, &out, cols.len());
        Columns(prepared)
    }

    /// `y += xᵀ·W` over these columns.
    fn multiply_add(&self, x: &[f32], y: &mut [f32]) {
        let w = &self.0;
        PreparedProduct { m: 1, x, ldx: w.k(), w, accumulate: true, y, ldy: w.n() }.run();
    }
}

/// One thread's part: its units and output symbols, its columns of the weights, its cell
/// states, its buffers.
struct Part {
    /// Which part (the calling thread is 0).
    index: usize,
    /// Per layer, the columns of `Wx` (none for layer 0) and `Wh` that make its units' gates
    /// (`g·H + u` for each gate block `g` and unit `u`, in that order), copied together: a
    /// core reads one contiguous run, and the product is one matrix-vector product of
    /// `G·|U|` columns rather than `G` narrow ones.
    wx: Vec<Option<Columns>>,
    wh: Vec<Columns>,
    /// Its columns of the output layer.
    wd: Columns,
    units: Range<usize>,
    symbols: Range<usize>,
    /// Per layer, the state slabs of its units (`h`, and the LSTM's `c`; `[|U|]` each), each
    /// in two buffers used in turn like the published state: step `t` reads `[t % 2]` and
    /// writes `[(t + 1) % 2]`.
    state: Vec<Vec<[LineAligned<f32>; 2]>>,
    /// The layer's input and previous state, whole (`[H]` each; layer 0 has no input vector).
    x: LineAligned<f32>,
    h_prev: LineAligned<f32>,
    /// The gate blocks of its units (`[G·|U|]`), and the recurrent side of a cell that keeps
    /// it apart (the GRU; empty otherwise).
    gates: LineAligned<f32>,
    recurrent: LineAligned<f32>,
    logits: LineAligned<f32>,
}

/// A slab's buffer before step `step` and the one the step writes (see [`Part::state`]).
fn before_and_after(buffers: &mut [LineAligned<f32>; 2], step: usize) -> (&[f32], &mut [f32]) {
    let [even, odd] = buffers;
    if step.is_multiple_of(2) {
        (even, odd)
    } else {
        (odd, even)
    }
}

/// Ends the run when its thread leaves it, however (done, an error, a panic): sets `stop` and
/// passes every meeting point for part `part`, so that no thread waits for it again; the
/// helpers go on to the next step's start, see `stop` and return, and the calling thread
/// stops at its next meeting point.
struct StopOnDrop<'s> {
    shared: &'s Shared,
    part: usize,
    /// The meeting points this thread has passed.
    point: usize,
}

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.progress[self.part].0.store(usize::MAX, Ordering::Release);
    }
}

/// Runs steps of one stream split across `parts` threads (the calling thread is part 0).
pub struct SplitStep<'w, 'm> {
    weights: &'w InferenceWeights<'m>,
    parts: usize,
}

impl<'w, 'm> SplitStep<'w, 'm> {
    /// Steps of `weights` (prepared for one `f32` row) across `parts` threads.
    ///
    /// # Panics
    /// If `weights` are not for one row, or `parts` is 0 or more than the hidden units.
    pub fn new(weights: &'w InferenceWeights<'m>, parts: usize) -> SplitStep<'w, 'm> {
        assert!(weights.matrix_vector(), "a split step is one stream's, of matrix-vector products");
        let hidden = weights.model().config.hidden_size;
        assert!(parts >= 1 && parts <= hidden, "{parts} parts of {hidden} units");
        SplitStep { weights, parts }
    }

    /// From `state` and `logits` (a one-row step's, after the last symbol fed), calls `choose`
    /// with each step's logits for the next symbol, and feeds that symbol, `length` times.
    /// `state` and `logits` are left as after the last symbol. `choose` may fail, which ends
    /// the run.
    pub fn run<E>(
        &self,
        state: &mut State<f32>,
        logits: &mut [f32],
        length: usize,
        mut choose: impl FnMut(&[f32]) -> Result<u32, E>,
    ) -> Result<(), E> {
        let cfg = self.weights.model().config;
        let (h, layers) = (cfg.hidden_size, cfg.num_layers);
        let atomics = |n: usize, from: Option<&[f32]>| {
            LineAligned::from_fn(n, |i| AtomicU32::new(from.map_or(0, |f| f[i].to_bits())))
        };
        let shared = Shared {
            h: state.slabs.iter().map(|s| [atomics(h, Some(&s[0])), atomics(h, None)]).collect(),
            logits: atomics(cfg.vocab_size, None),
            token: AtomicU32::new(0),
            progress: (0..self.parts).map(|_| Progress(AtomicUsize::new(0))).collect(),
            stop: AtomicBool::new(false),
        };
        let precision = self.weights.precision();
        let units = split(h, self.parts);
        let symbols = split(cfg.vocab_size, self.parts);
        let mut parts: Vec<Part> = units
            .into_iter()
            .zip(symbols)
            .enumerate()
            .map(|(index, (units, symbols))| {
                let n = units.len();
                let gn = cfg.cell.gates() * n;
                let own = |layer: &Vec<Vec<f32>>| {
                    let slab = |s: &Vec<f32>| [LineAligned::from_fn(n, |i| s[units.start + i]), LineAligned::new(n)];
                    layer.iter().map(slab).collect()
                };
                let apart = cfg.cell.recurrent_side() == RecurrentSide::Apart;
                let model = self.weights.model();
                let p = &model.params;
                let gate_columns: Vec<usize> =
                    (0..cfg.cell.gates()).flat_map(|g| units.clone().map(move |u| g * h + u)).collect();
                let gh = cfg.cell.gates() * h;
                let layer = |l: usize| &model.layout.layers[l];
                let wx = (0..layers)
                    .map(|l| (l > 0).then(|| Columns::of(&p[layer(l).wx.clone()], h, gh, &gate_columns, precision)))
                    .collect();
                let wh = (0..layers)
                    .map(|l| Columns::of(&p[layer(l).wh.clone()], h, gh, &gate_columns, precision))
                    .collect();
                let symbol_columns: Vec<usize> = symbols.clone().collect();
                let wd =
                    Columns::of(&p[model.layout.decoder_weight.clone()], h, cfg.vocab_size, &symbol_columns, precision);
                Part {
                    index,
                    wx,
                    wh,
                    wd,
                    state: state.slabs.iter().map(own).collect(),
                    x: LineAligned::new(h),
                    h_prev: LineAligned::new(h),
                    gates: LineAligned::new(gn),
                    recurrent: LineAligned::new(if apart { gn } else { 0 }),
                    logits: LineAligned::new(symbols.len()),
                    units,
                    symbols,
                }
            })
            .collect();
        let steps_per_symbol = layers + 2;
        let cell = cfg.cell;
        let result = std::thread::scope(|scope| {
            let (first, helpers) = parts.split_first_mut().expect("at least one part");
            for part in helpers.iter_mut() {
                let shared = &shared;
                scope.spawn(move || {
                    let mut stop = StopOnDrop { shared, part: part.index, point: 0 };
                    for step in 0.. {
                        stop.point += 1;
                        shared.meet(part.index, stop.point);
                        if shared.stop.load(Ordering::Acquire) {
                            return;
                        }
                        with_cell!(cell, C => self.part_step::<C>(part, shared, step, &mut stop.point));
                    }
                });
            }
            let mut stop = StopOnDrop { shared: &shared, part: 0, point: 0 };
            let mut result = Ok(());
            let mut done = 0;
            for step in 0..length {
                let token = match choose(logits) {
                    Ok(token) => token,
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                };
                shared.token.store(token, Ordering::Relaxed);
                stop.point += 1;
                shared.meet(0, stop.point);
                with_cell!(cell, C => self.part_step::<C>(first, &shared, step, &mut stop.point));
                if shared.stop.load(Ordering::Acquire) {
                    // A helper ended (it panicked): leaving the scope re-raises its panic.
                    break;
                }
                read(&shared.logits, logits);
                done += 1;
            }
            debug_assert!(shared.stop.load(Ordering::Acquire) || stop.point == done * steps_per_symbol);
            (result, done)
        });
        let (result, done) = result;
        // Copy the state back from each part's units, from the buffers the last step wrote
        // (its `h` is what it published last).
        for part in &parts {
            for (slab, own) in state.all_mut().zip(part.state.iter().flatten()) {
                slab[part.units.clone()].copy_from_slice(&own[done % 2]);
            }
        }
        result
    }

    /// Thread `part`'s share of step `step` (the symbol is in `shared.token`): every layer,
    /// then its output symbols, meeting the other threads after each.
    fn part_step<C: Cell>(&self, part: &mut Part, shared: &Shared, step: usize, point: &mut usize) {
        let w = self.weights;
        let model = w.model();
        let cfg = model.config;
        let (h, gates_n) = (cfg.hidden_size, cfg.cell.gates());
        let gh = gates_n * h;
        let p = &model.params;
        let (old, new) = (step % 2, (step + 1) % 2);
        let n = part.units.len();
        for l in 0..cfg.num_layers {
            let r = &model.layout.layers[l];
            read(&shared.h[l][old], &mut part.h_prev);
            // The gate blocks of this part's units: columns g·H + units of every row.
            let blocks = |g: usize| g * h + part.units.start..g * h + part.units.end;
            if l == 0 {
                let row = shared.token.load(Ordering::Relaxed) as usize * gh;
                for g in 0..gates_n {
                    part.gates[g * n..(g + 1) * n].copy_from_slice(&w.table()[row + g * h..][..h][part.units.clone()]);
                }
            } else {
                read(&shared.h[l - 1][new], &mut part.x);
                for g in 0..gates_n {
                    part.gates[g * n..(g + 1) * n].copy_from_slice(&w.input_bias(l)[blocks(g)]);
                }
                part.wx[l]
                    .as_ref()
                    .expect("layers above the first have input columns")
                    .multiply_add(&part.x, &mut part.gates);
            }
            let (wh, h_prev) = (&part.wh[l], &part.h_prev);
            match C::RECURRENT {
                RecurrentSide::Summed => wh.multiply_add(h_prev, &mut part.gates),
                RecurrentSide::Apart => {
                    let bias_hh = &p[r.bias_hh.clone()];
                    for g in 0..gates_n {
                        part.recurrent[g * n..(g + 1) * n].copy_from_slice(&bias_hh[blocks(g)]);
                    }
                    wh.multiply_add(h_prev, &mut part.recurrent);
                }
            }
            // Its units' slabs: `h` is its units of `h_prev`, as published.
            let slabs = part.state[l].iter_mut().map(|buffers| before_and_after(buffers, step));
            let state = C::Slabs::from_slabs(slabs);
            let (gates, recurrent) = (&mut part.gates[..], &part.recurrent[..]);
            C::forward(ForwardStep { rows: 1, hidden: n, gates, recurrent, state });
            publish(&shared.h[l][new][part.units.clone()], &part.state[l][0][new]);
            *point += 1;
            shared.meet(part.index, *point);
        }
        read(&shared.h[cfg.num_layers - 1][new], &mut part.x);
        let symbols = part.symbols.clone();
        part.logits.copy_from_slice(&p[model.layout.decoder_bias.clone()][symbols.clone()]);
        part.wd.multiply_add(&part.x, &mut part.logits);
        publish(&shared.logits[symbols], &part.logits);
        *point += 1;
        shared.meet(part.index, *point);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::step::InferenceStep;
    use crate::model::config::CellKind;
    use crate::model::config::ModelConfig;
    use crate::model::params::Model;
    use charrnn_kernels::Precision;

    /// Split across 1, 2, 3 and 5 threads, on odd widths (parts that are not whole vectors),
    /// more parts than output symbols, every cell gives the one-row step's logits and state bit
    /// for bit, symbol after symbol,
    /// in `f32` and, where the CPU has native bf16 products, in bf16.
    #[test]
    fn equals_the_one_row_step() {
        let precisions = [Precision::F32, Precision::Bf16];
        let runs = precisions.into_iter().flat_map(|p| [CellKind::Lstm, CellKind::Gru, CellKind::Rnn].map(|c| (c, p)));
        for (cell, precision) in runs {
            for (hidden, vocab) in [(37, 11), (130, 67), (37, 3)] {
                let config = ModelConfig { cell, vocab_size: vocab, embed_size: 7, hidden_size: hidden, num_layers: 3 };
                let m = Model::<f32>::new(config, 4);
                let weights = InferenceWeights::new(&m, 1, precision);
                if !weights.matrix_vector() {
                    continue;
                }
                let symbol = |t: usize, logits: &[f32]| ((t * 5 + (logits[0].to_bits() as usize % 3)) % vocab) as u32;
                let mut one = InferenceStep::new(&config, 1);
                one.inputs[0] = 2;
                one.step(&weights);
                let start = one.clone();
                let mut want = Vec::new();
                for t in 0..25 {
                    one.inputs[0] = symbol(t, &one.logits);
                    one.step(&weights);
                    want.push(one.logits.clone());
                }
                for parts in [1, 2, 3, 5] {
                    let (mut state, mut logits) = (start.state.clone(), start.logits.clone());
                    let mut got = Vec::new();
                    let mut t = 0;
                    let run = SplitStep::new(&weights, parts).run(&mut state, &mut logits, 25, |logits| {
                        if t > 0 {
                            got.push(logits.to_vec());
                        }
                        t += 1;
                        Ok::<u32, ()>(symbol(t - 1, logits))
                    });
                    assert_eq!(run, Ok(()));
                    got.push(logits.clone());
                    assert_eq!(got, want, "{cell:?} {precision}, H {hidden}, {parts} parts: logits");
                    assert_eq!(state, one.state, "{cell:?} {precision}, H {hidden}, {parts} parts: final state");
                }
            }
        }
    }

    /// An error from the caller ends the run at once (the helpers stop), and the state is the
    /// one after the symbols fed before it.
    #[test]
    fn an_error_ends_the_run() {
        let config = ModelConfig { cell: CellKind::Lstm, vocab_size: 9, embed_size: 4, hidden_size: 64, num_layers: 2 };
        let m = Model::<f32>::new(config, 4);
        let weights = InferenceWeights::new(&m, 1, Precision::F32);
        let mut one = InferenceStep::new(&config, 1);
        one.step(&weights);
        let (mut state, mut logits) = (one.state.clone(), one.logits.clone());
        let mut calls = 0;
        let run = SplitStep::new(&weights, 3).run(&mut state, &mut logits, 100, |_| {
            calls += 1;
            if calls == 4 {
                Err("stop")
            } else {
                Ok(1)
            }
        });
        assert_eq!((run, calls), (Err("stop"), 4));
        for _ in 0..3 {
            one.inputs[0] = 1;
            one.step(&weights);
        }
        assert_eq!(state, one.state);
    }

    #[test]
    fn parts_are_aligned_and_cover_everything() {
        assert_eq!(split(128, 2), [0..64, 64..128]);
        assert_eq!(split(65, 2), [0..32, 32..65]);
        assert_eq!(split(37, 3), [0..12, 12..24, 24..37]);
        assert_eq!(split(512, 3), [0..176, 176..336, 336..512]);
        assert_eq!(split(5, 8), [0..0, 0..1, 1..1, 1..2, 2..3, 3..3, 3..4, 4..5]);
        for (n, parts) in [(65, 5), (130, 4), (7, 3), (1, 2), (1000, 7)] {
            let ranges = split(n, parts);
            assert_eq!((ranges.len(), ranges[0].start, ranges[parts - 1].end), (parts, 0, n));
            assert!(ranges.windows(2).all(|w| w[0].end == w[1].start && w[0].start <= w[0].end), "{ranges:?}");
            assert!(ranges.iter().all(|r| r.len() <= n.div_ceil(parts) + ALIGN), "{n} in {parts}: {ranges:?}");
        }
    }
}
