//! One thread's part of a split step: its units and output symbols, its columns of everything
//! a step reads (the weights, the folded input table, the biases), its cell states and its
//! buffers, and its share of a step.
//!
//! A part holds all it reads but the published state: a helper builds its own part in its own
//! thread, so that its memory is its thread's (the allocator's per-thread arena, first touched
//! by its core) and nothing it reads at every step shares a cache line with what another
//! thread writes. What it writes at every step is [`LineAligned`].

use std::ops::Range;
use std::sync::atomic::Ordering;

use charrnn_kernels::gemm::Op;
use charrnn_kernels::line_aligned::LineAligned;
use charrnn_kernels::prepared::{PreparedMatrix, PreparedProduct};
use charrnn_kernels::{Kernel, Precision};

use super::meeting::{publish, read, Shared};
use crate::inference::step::InferenceWeights;
use crate::model::cell::{Cell, ForwardStep, RecurrentSide, SlabArray};
use crate::model::workspace::State;

/// A part's columns of one weight matrix, prepared for one-row products (in the matrix-vector
/// form: a split step runs only where the kernels multiply one row so).
struct Columns(PreparedMatrix<f32>);

impl Columns {
    /// The columns `cols` of the row-major `k×ldw` matrix `w`, copied and prepared as a
    /// `k×cols.len()` matrix for products in `precision`.
    fn of(w: &[f32], k: usize, ldw: usize, cols: &[usize], precision: Precision) -> Columns {
        let mut prepared = PreparedMatrix::new(k, cols.len(), precision, 1);
        prepared.prepare(Op::N, &pick(w, k, ldw, cols), cols.len());
        Columns(prepared)
    }

    /// `y += xᵀ·W` over these columns.
    fn multiply_add(&self, x: &[f32], y: &mut [f32]) {
        let w = &self.0;
        PreparedProduct { m: 1, x, ldx: w.k(), w, accumulate: true, y, ldy: w.n() }.run();
    }
}

/// The columns `cols` of the first `rows` rows of the row-major matrix `w` (leading dimension
/// `ldw`), row after row.
fn pick(w: &[f32], rows: usize, ldw: usize, cols: &[usize]) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows * cols.len());
    for row in w.chunks_exact(ldw).take(rows) {
        out.extend(cols.iter().map(|&c| row[c]));
    }
    out
}

/// One thread's part (see the module documentation).
pub(super) struct Part {
    /// Which part (the calling thread is 0).
    index: usize,
    pub(super) units: Range<usize>,
    symbols: Range<usize>,
    /// Layer 0's input: its columns of the folded table `Emb·Wx0 + b` (`[V, G·|U|]`).
    table: Vec<f32>,
    /// Per layer, its columns of the bias the input side starts from (none for layer 0, whose
    /// bias is in the table), and of `b_hh` where the recurrent side is apart (none otherwise).
    input_bias: Vec<Vec<f32>>,
    recurrent_bias: Vec<Vec<f32>>,
    /// Per layer, the columns of `Wx` (none for layer 0) and `Wh` that make its units' gates
    /// (`g·H + u` for each gate block `g` and unit `u`, in that order), copied together: a
    /// core reads one contiguous run, and the product is one matrix-vector product of
    /// `G·|U|` columns rather than `G` narrow ones.
    wx: Vec<Option<Columns>>,
    wh: Vec<Columns>,
    /// Its columns of the output layer, and of its bias.
    wd: Columns,
    decoder_bias: Vec<f32>,
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

impl Part {
    /// Part `index` of `weights`' steps: the units `units` of every layer and the output
    /// symbols `symbols`, from the state `state`.
    pub(super) fn new(
        weights: &InferenceWeights,
        state: &State<f32>,
        index: usize,
        units: Range<usize>,
        symbols: Range<usize>,
    ) -> Part {
        let model = weights.model();
        let (cfg, p) = (model.config, &model.params);
        let (h, gates_n, precision) = (cfg.hidden_size, cfg.cell.gates(), weights.precision());
        let gh = gates_n * h;
        let (n, gn) = (units.len(), gates_n * units.len());
        let apart = cfg.cell.recurrent_side() == RecurrentSide::Apart;
        let gate_columns: Vec<usize> = (0..gates_n).flat_map(|g| units.clone().map(move |u| g * h + u)).collect();
        let symbol_columns: Vec<usize> = symbols.clone().collect();
        let layer = |l: usize| &model.layout.layers[l];
        let own = |slab: &Vec<f32>| [LineAligned::from_fn(n, |i| slab[units.start + i]), LineAligned::new(n)];
        Part {
            index,
            table: pick(weights.table(), cfg.vocab_size, gh, &gate_columns),
            input_bias: (0..cfg.num_layers)
                .map(|l| if l > 0 { pick(weights.input_bias(l), 1, gh, &gate_columns) } else { Vec::new() })
                .collect(),
            recurrent_bias: (0..cfg.num_layers)
                .map(|l| if apart { pick(&p[layer(l).bias_hh.clone()], 1, gh, &gate_columns) } else { Vec::new() })
                .collect(),
            wx: (0..cfg.num_layers)
                .map(|l| (l > 0).then(|| Columns::of(&p[layer(l).wx.clone()], h, gh, &gate_columns, precision)))
                .collect(),
            wh: (0..cfg.num_layers)
                .map(|l| Columns::of(&p[layer(l).wh.clone()], h, gh, &gate_columns, precision))
                .collect(),
            wd: Columns::of(&p[model.layout.decoder_weight.clone()], h, cfg.vocab_size, &symbol_columns, precision),
            decoder_bias: p[model.layout.decoder_bias.clone()][symbols.clone()].to_vec(),
            state: state.slabs.iter().map(|layer| layer.iter().map(own).collect()).collect(),
            x: LineAligned::new(h),
            h_prev: LineAligned::new(h),
            gates: LineAligned::new(gn),
            recurrent: LineAligned::new(if apart { gn } else { 0 }),
            logits: LineAligned::new(symbols.len()),
            units,
            symbols,
        }
    }

    /// This part's share of step `step` of cell `C` (the symbol is in `shared.token`): every
    /// layer, then its output symbols, meeting the other threads after each (`point` counts
    /// the meeting points passed).
    pub(super) fn step<C: Cell>(&mut self, shared: &Shared, step: usize, point: &mut usize) {
        let (old, new) = (step % 2, (step + 1) % 2);
        let (n, gn) = (self.units.len(), self.gates.len());
        let layers = self.wh.len();
        for l in 0..layers {
            read(shared.h(l, old), &mut self.h_prev);
            if l == 0 {
                let token = shared.token.load(Ordering::Relaxed) as usize;
                self.gates.copy_from_slice(&self.table[token * gn..][..gn]);
            } else {
                read(shared.h(l - 1, new), &mut self.x);
                self.gates.copy_from_slice(&self.input_bias[l]);
                let wx = self.wx[l].as_ref().expect("layers above the first have input columns");
                wx.multiply_add(&self.x, &mut self.gates);
            }
            match C::RECURRENT {
                RecurrentSide::Summed => self.wh[l].multiply_add(&self.h_prev, &mut self.gates),
                RecurrentSide::Apart => {
                    self.recurrent.copy_from_slice(&self.recurrent_bias[l]);
                    self.wh[l].multiply_add(&self.h_prev, &mut self.recurrent);
                }
            }
            // Its units' slabs: `h` is its units of `h_prev`, as published.
            let state = C::Slabs::from_slabs(self.state[l].iter_mut().map(|buffers| before_and_after(buffers, step)));
            let (gates, recurrent) = (&mut self.gates[..], &self.recurrent[..]);
            C::forward(ForwardStep { rows: 1, hidden: n, gates, recurrent, state });
            publish(&shared.h(l, new)[self.units.clone()], &self.state[l][0][new]);
            *point += 1;
            shared.meet(self.index, *point);
        }
        read(shared.h(layers - 1, new), &mut self.x);
        self.logits.copy_from_slice(&self.decoder_bias);
        self.wd.multiply_add(&self.x, &mut self.logits);
        publish(&shared.logits[self.symbols.clone()], &self.logits);
        *point += 1;
        shared.meet(self.index, *point);
    }

    /// Copies its units' state after `steps` steps into `state`.
    pub(super) fn copy_state_into(&self, state: &mut State<f32>, steps: usize) {
        for (slab, own) in state.all_mut().zip(self.state.iter().flatten()) {
            slab[self.units.clone()].copy_from_slice(&own[steps % 2]);
        }
    }
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
