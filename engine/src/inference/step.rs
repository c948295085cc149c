//! The forward step of a model whose weights do not change (sampling), over `R` independent
//! rows (streams, or beams) that each advance by one symbol per step.
//!
//! Training runs `T` steps per call and multiplies `[T·B, ·]` matrices; sampling runs one step
//! per symbol, so everything that does not depend on the state is prepared once, by
//! [`InferenceWeights::new`]: layer 0's folded input table (`Emb·Wx0 + b`, see
//! [`crate::model::embedding`]), every layer's summed biases, and every weight matrix as a
//! [`PreparedMatrix`] for products of `R` rows. A step ([`InferenceStep::step`]) is then, per
//! layer, one product for its input and one for its state, the fused cell, and the output
//! layer, each a [`PreparedProduct`]: the kernels choose a matrix-vector product for one row
//! where the precision is native (no thread pool; bf16 pairs read half the bytes) and the GEMM
//! otherwise, and sum every element in the same order either way, so a row's values do not
//! depend on how many rows a step has. A step allocates nothing.
//!
//! The prepared weights own their model through an [`Arc`] and are `Send + Sync`: one
//! preparation serves every step state that shares it (a server's engine loop, its primers).
//! A step state ([`InferenceStep`]) has a capacity and a number of active rows, the first ones:
//! rows are added at the end and removed by moving the last row into their place, so a step
//! always multiplies one contiguous block of rows.

use std::sync::Arc;

use charrnn_kernels::gemm::Op;
use charrnn_kernels::prepared::{PreparedMatrix, PreparedProduct};
use charrnn_kernels::reduce::broadcast_rows;
use charrnn_kernels::{Kernel, Precision};

use crate::model::cell::{with_cell, Cell, ForwardStep, RecurrentSide, SlabArray};
use crate::model::config::ModelConfig;
use crate::model::embedding::input_table_gather;
use crate::model::params::Model;
use crate::model::pass::input_table;
use crate::model::workspace::State;

/// One weight matrix of the step, row-major `[input, output]` in the model's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Matrix {
    /// Layer `l`'s input weights `Wx` (layers above the first: layer 0's are folded into the
    /// table).
    Input(usize),
    /// Layer `l`'s recurrent weights `Wh`.
    Recurrent(usize),
    /// The output layer.
    Decoder,
}

/// A model's weights, prepared for steps of up to `rows` rows whose products are in
/// `precision`; shared between threads behind an [`Arc`].
pub struct InferenceWeights {
    model: Arc<Model<f32>>,
    rows: usize,
    precision: Precision,
    /// Layer 0's input table `Emb·Wx0 + b` (`[V, G·H]`).
    table: Vec<f32>,
    /// Per layer, the bias the input side starts from: `b_ih + b_hh` for a cell whose recurrent
    /// side is summed (the LSTM and the RNN see only the sum), `b_ih` for one whose recurrent
    /// side is apart (the GRU) (layer 0's is in the table).
    input_bias: Vec<Vec<f32>>,
    /// The matrices prepared for products of up to `rows` rows, in the order of
    /// [`InferenceWeights::index`].
    prepared: Vec<PreparedMatrix<f32>>,
    /// For weights of several rows, the same matrices prepared for one row where that gives
    /// them a matrix-vector form (a step with one active row then reads them as one-row
    /// sampling does); empty otherwise.
    one_row: Vec<PreparedMatrix<f32>>,
}

impl InferenceWeights {
    /// Prepares `model` for steps of up to `rows` rows in `precision`.
    ///
    /// # Panics
    /// If `rows` is 0.
    pub fn new(model: Arc<Model<f32>>, rows: usize, precision: Precision) -> InferenceWeights {
        Self::with_rows_hint(model, rows, rows, precision)
    }

    /// Prepares `model` for steps of up to `rows` rows in `precision`, its products' panels
    /// chosen for steps of about `hint` rows (a server's steps seldom fill its rows: panels
    /// for the most rows can pad a step of fewer by a quarter). The values are the same
    /// whatever the hint.
    ///
    /// # Panics
    /// If `rows` or `hint` is 0.
    pub fn with_rows_hint(model: Arc<Model<f32>>, rows: usize, hint: usize, precision: Precision) -> InferenceWeights {
        assert!(rows > 0 && hint > 0, "an inference step needs at least one row");
        // Several rows need panels (a one-row form serves one row only).
        let hint = if rows > 1 { hint.max(2) } else { 1 };
        let cfg = model.config;
        let (p, lay) = (&model.params, &model.layout);
        let gh = cfg.cell.gates() * cfg.hidden_size;
        let input_bias: Vec<Vec<f32>> = lay
            .layers
            .iter()
            .map(|r| match cfg.cell.recurrent_side() {
                RecurrentSide::Apart => p[r.bias_ih.clone()].to_vec(),
                RecurrentSide::Summed => {
                    p[r.bias_ih.clone()].iter().zip(&p[r.bias_hh.clone()]).map(|(a, b)| a + b).collect()
                }
            })
            .collect();
        // Layer 0's input side folded into one row per symbol, as a training pass builds it.
        let mut table = vec![0.0; cfg.vocab_size * gh];
        input_table(&model, precision, &mut table);
        let mut weights =
            InferenceWeights { model, rows, precision, table, input_bias, prepared: Vec::new(), one_row: Vec::new() };
        weights.prepared = weights.prepare_for(hint);
        if rows > 1 {
            let one_row = weights.prepare_for(1);
            if one_row.iter().all(PreparedMatrix::matrix_vector) {
                weights.one_row = one_row;
            }
        }
        weights
    }

    /// Every matrix prepared for products of up to `rows` rows.
    fn prepare_for(&self, rows: usize) -> Vec<PreparedMatrix<f32>> {
        Self::matrices(&self.model.config)
            .map(|m| {
                let (input, output) = self.shape(m);
                let mut prepared = PreparedMatrix::new(input, output, self.precision, rows);
                prepared.prepare(Op::N, self.plain(m), output);
                prepared
            })
            .collect()
    }

    /// Most rows a step may have.
    pub fn capacity(&self) -> usize {
        self.rows
    }

    /// What the products round their operands to.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The model.
    pub fn model(&self) -> &Model<f32> {
        &self.model
    }

    /// The model, shared.
    pub fn shared_model(&self) -> &Arc<Model<f32>> {
        &self.model
    }

    /// Whether a step of one row runs matrix-vector products (the kernels' choice for one row
    /// in a precision the CPU multiplies natively) rather than GEMMs.
    pub fn matrix_vector(&self) -> bool {
        self.one_row_forms().iter().all(PreparedMatrix::matrix_vector)
    }

    /// The matrices a one-row product reads.
    fn one_row_forms(&self) -> &[PreparedMatrix<f32>] {
        if self.one_row.is_empty() {
            &self.prepared
        } else {
            &self.one_row
        }
    }

    /// Layer 0's folded input table (`[V, G·H]`).
    pub(crate) fn table(&self) -> &[f32] {
        &self.table
    }

    /// The bias layer `l`'s input side starts from.
    pub(crate) fn input_bias(&self, l: usize) -> &[f32] {
        &self.input_bias[l]
    }

    /// Every matrix a step multiplies, in the order of the prepared ones.
    fn matrices(cfg: &ModelConfig) -> impl Iterator<Item = Matrix> {
        let layers = cfg.num_layers;
        (1..layers).map(Matrix::Input).chain((0..layers).map(Matrix::Recurrent)).chain([Matrix::Decoder])
    }

    fn index(&self, m: Matrix) -> usize {
        let layers = self.model.config.num_layers;
        match m {
            Matrix::Input(l) => l - 1,
            Matrix::Recurrent(l) => layers - 1 + l,
            Matrix::Decoder => 2 * layers - 1,
        }
    }

    /// `(input, output)` of a matrix.
    fn shape(&self, m: Matrix) -> (usize, usize) {
        let cfg = &self.model.config;
        let gh = cfg.cell.gates() * cfg.hidden_size;
        match m {
            Matrix::Input(l) => (cfg.layer_input_size(l), gh),
            Matrix::Recurrent(_) => (cfg.hidden_size, gh),
            Matrix::Decoder => (cfg.hidden_size, cfg.vocab_size),
        }
    }

    /// The matrix as the model stores it, row-major `[input, output]`.
    fn plain(&self, m: Matrix) -> &[f32] {
        let (p, lay) = (&self.model.params, &self.model.layout);
        match m {
            Matrix::Input(l) => &p[lay.layers[l].wx.clone()],
            Matrix::Recurrent(l) => &p[lay.layers[l].wh.clone()],
            Matrix::Decoder => &p[lay.decoder_weight.clone()],
        }
    }

    /// `out[r] += x[r]·M` for the `rows` rows of `x` (`[rows, input]`) and `out`
    /// (`[rows, output]`).
    fn multiply_add(&self, m: Matrix, rows: usize, x: &[f32], out: &mut [f32]) {
        let (input, output) = self.shape(m);
        let forms = if rows == 1 { self.one_row_forms() } else { &self.prepared };
        let w = &forms[self.index(m)];
        PreparedProduct { m: rows, x, ldx: input, w, accumulate: true, y: out, ldy: output }.run();
    }
}

/// The buffers of a step over up to `capacity` rows, of which the first `active` take part:
/// the carried state and the activations of one step.
#[derive(Clone, Debug)]
pub struct InferenceStep {
    capacity: usize,
    active: usize,
    hidden: usize,
    vocab: usize,
    /// Each row's state, `[capacity, H]` per layer and slab (row `r` of every buffer is stream
    /// `r`).
    pub state: State<f32>,
    /// Each row's input symbol for the next step.
    pub inputs: Vec<u32>,
    /// The logits of the last step, `[capacity, V]`.
    pub logits: Vec<f32>,
    /// Gate pre-activations, then activations, `[capacity, G·H]`.
    gates: Vec<f32>,
    /// The recurrent side `h·Wh + b_hh`, `[capacity, G·H]`, of a cell that keeps it apart (the
    /// GRU; empty for the other cells).
    recurrent: Vec<f32>,
    /// The state slabs a cell writes while it reads the previous ones, `[capacity, H]` each;
    /// swapped in.
    next: Vec<Vec<f32>>,
}

impl InferenceStep {
    /// Zero state and buffers for `rows` rows of `config`, all active.
    pub fn new(config: &ModelConfig, rows: usize) -> InferenceStep {
        let mut step = InferenceStep::with_capacity(config, rows);
        step.active = rows;
        step
    }

    /// Zero state and buffers for up to `capacity` rows of `config`, none active.
    pub fn with_capacity(config: &ModelConfig, capacity: usize) -> InferenceStep {
        let (h, gh) = (config.hidden_size, config.cell.gates() * config.hidden_size);
        InferenceStep {
            capacity,
            active: 0,
            hidden: h,
            vocab: config.vocab_size,
            state: State::zeros(config, capacity),
            inputs: vec![0; capacity],
            logits: vec![0.0; capacity * config.vocab_size],
            gates: vec![0.0; capacity * gh],
            recurrent: if config.cell.recurrent_side() == RecurrentSide::Apart {
                vec![0.0; capacity * gh]
            } else {
                Vec::new()
            },
            next: vec![vec![0.0; capacity * h]; config.cell.state_names().len()],
        }
    }

    /// Most rows.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Rows that take part in a step (rows `0..active`).
    pub fn active(&self) -> usize {
        self.active
    }

    /// Row `r`'s logits.
    pub fn logits_of(&self, r: usize) -> &[f32] {
        let v = self.vocab;
        &self.logits[r * v..(r + 1) * v]
    }

    /// Adds a row at the end, from the zero state, and returns its index; `None` when every
    /// row is taken.
    pub fn add_row(&mut self) -> Option<usize> {
        if self.active == self.capacity {
            return None;
        }
        let r = self.active;
        self.active += 1;
        self.reset_row(r);
        Some(r)
    }

    /// Zeroes row `r`'s state (its input and logits are left as they are).
    pub fn reset_row(&mut self, r: usize) {
        self.state.reset_row(r, self.hidden);
    }

    /// Removes row `r`: the last active row moves into its place (state, input, logits), and
    /// its old index is returned; `None` when `r` was the last row and nothing moved.
    ///
    /// # Panics
    /// If `r` is not an active row.
    pub fn remove_row(&mut self, r: usize) -> Option<usize> {
        assert!(r < self.active, "row {r} of {} active rows", self.active);
        let last = self.active - 1;
        self.active = last;
        if r == last {
            return None;
        }
        let (h, v) = (self.hidden, self.vocab);
        for slab in self.state.all_mut() {
            slab.copy_within(last * h..(last + 1) * h, r * h);
        }
        self.logits.copy_within(last * v..(last + 1) * v, r * v);
        self.inputs[r] = self.inputs[last];
        Some(last)
    }

    /// Makes row `r` a copy of row `from` of `other` (a step of the same model): its state,
    /// its logits and its last input (a primed stream handed over).
    pub fn copy_row_from(&mut self, r: usize, other: &InferenceStep, from: usize) {
        let (h, v) = (self.hidden, self.vocab);
        for (to, source) in self.state.all_mut().zip(other.state.all()) {
            to[r * h..(r + 1) * h].copy_from_slice(&source[from * h..(from + 1) * h]);
        }
        self.logits[r * v..(r + 1) * v].copy_from_slice(other.logits_of(from));
        self.inputs[r] = other.inputs[from];
    }

    /// Advances every active row by its symbol in [`InferenceStep::inputs`]: the state moves
    /// on and [`InferenceStep::logits`] holds each row's scores for the symbol after it.
    ///
    /// # Panics
    /// If `weights` are for fewer rows than are active.
    pub fn step(&mut self, weights: &InferenceWeights) {
        assert!(self.active <= weights.rows, "inference weights prepared for fewer rows than are active");
        if self.active == 0 {
            return;
        }
        with_cell!(weights.model.config.cell, C => self.step_cell::<C>(weights))
    }

    /// [`InferenceStep::step`] for the model's cell `C`.
    fn step_cell<C: Cell>(&mut self, weights: &InferenceWeights) {
        let cfg = weights.model.config;
        let (rows, h) = (self.active, cfg.hidden_size);
        let gh = cfg.cell.gates() * h;
        let p = &weights.model.params;
        let gates = &mut self.gates[..rows * gh];
        let recurrent_len = if self.recurrent.is_empty() { 0 } else { rows * gh };
        let recurrent = &mut self.recurrent[..recurrent_len];
        for l in 0..cfg.num_layers {
            if l == 0 {
                input_table_gather(gh, &weights.table, &self.inputs[..rows], gates);
            } else {
                broadcast_rows(rows, gh, &weights.input_bias[l], gates);
                weights.multiply_add(Matrix::Input(l), rows, &self.state.h(l - 1)[..rows * h], gates);
            }
            let h_prev = &self.state.h(l)[..rows * h];
            match C::RECURRENT {
                RecurrentSide::Summed => weights.multiply_add(Matrix::Recurrent(l), rows, h_prev, gates),
                RecurrentSide::Apart => {
                    let bias_hh = &p[weights.model.layout.layers[l].bias_hh.clone()];
                    broadcast_rows(rows, gh, bias_hh, recurrent);
                    weights.multiply_add(Matrix::Recurrent(l), rows, h_prev, recurrent);
                }
            }
            let slabs = self.state.slabs[l]
                .iter()
                .zip(&mut self.next)
                .map(|(now, next)| (&now[..rows * h], &mut next[..rows * h]));
            let state = C::Slabs::from_slabs(slabs);
            C::forward(ForwardStep { rows, hidden: h, gates: &mut *gates, recurrent: &*recurrent, state });
            for (now, next) in self.state.slabs[l].iter_mut().zip(&mut self.next) {
                // The rows past the active ones are carried along: a row added later is reset.
                std::mem::swap(now, next);
            }
        }
        let v = cfg.vocab_size;
        let logits = &mut self.logits[..rows * v];
        broadcast_rows(rows, v, &p[weights.model.layout.decoder_bias.clone()], logits);
        weights.multiply_add(Matrix::Decoder, rows, &self.state.h(cfg.num_layers - 1)[..rows * h], logits);
    }

    /// Sets every active row to the state after `prime` from the zero state: its logits are
    /// then the distribution of the symbol after it, its input the prime's last symbol.
    pub fn prime(&mut self, weights: &InferenceWeights, prime: &[u32]) {
        for r in 0..self.active {
            self.reset_row(r);
        }
        for &token in prime {
            self.inputs[..self.active].fill(token);
            self.step(weights);
        }
    }

    /// Replaces the state by rows of itself: row `r` becomes row `sources[r]` (beam search
    /// keeps the continuations it chose). `scratch` must be a state of the same shape.
    pub fn gather_rows(&mut self, sources: &[u32], scratch: &mut State<f32>) {
        let h = self.hidden;
        for (from, to) in self.state.all().zip(scratch.all_mut()) {
            for (r, &s) in sources.iter().enumerate() {
                let s = s as usize;
                to[r * h..(r + 1) * h].copy_from_slice(&from[s * h..(s + 1) * h]);
            }
        }
        std::mem::swap(&mut self.state, scratch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::CellKind;
    use crate::model::pass::forward_logits;
    use crate::model::phase_times::PhaseTimes;
    use crate::model::workspace::{FrozenWeights, Workspace};

    fn config(cell: CellKind) -> ModelConfig {
        ModelConfig { cell, vocab_size: 11, embed_size: 5, hidden_size: 9, num_layers: 3 }
    }

    /// One row (matrix-vector products) gives the training code's forward pass bit for bit,
    /// for every cell, symbol after symbol.
    #[test]
    fn one_row_equals_the_forward_pass() {
        for cell in [CellKind::Lstm, CellKind::Rnn, CellKind::Gru] {
            let cfg = config(cell);
            let m = Arc::new(Model::<f32>::new(cfg, 5));
            let weights = InferenceWeights::new(m.clone(), 1, Precision::F32);
            let mut step = InferenceStep::new(&cfg, 1);
            let mut ws = Workspace::<f32>::new(&cfg, 1, 1);
            let mut state = State::zeros(&cfg, 1);
            let mut frozen = FrozenWeights::new(&cfg, 1, Precision::F32);
            for token in [3u32, 1, 4, 1, 5, 9, 2, 6, 10, 0] {
                step.inputs[0] = token;
                step.step(&weights);
                ws.inputs[0] = token;
                forward_logits(&m, &mut ws, &mut state, &mut frozen, &mut PhaseTimes::default());
                assert_eq!(step.logits, ws.logits, "{cell:?}");
                assert_eq!(step.state, state, "{cell:?}");
            }
        }
    }

    /// A row's values do not depend on the other rows, nor on how many there are: stream `r`
    /// of a 7-row step equals the same stream stepped alone and in 2 rows, in both precisions.
    #[test]
    fn rows_are_independent_of_the_batch() {
        for (cell, precision) in [(CellKind::Lstm, Precision::F32), (CellKind::Gru, Precision::Bf16)] {
            let cfg = config(cell);
            let m = Arc::new(Model::<f32>::new(cfg, 8));
            let symbols = |r: usize, t: usize| ((r * 7 + t * 3) % cfg.vocab_size) as u32;
            let run = |rows: usize, offset: usize| {
                let weights = InferenceWeights::new(m.clone(), rows, precision);
                let mut step = InferenceStep::new(&cfg, rows);
                let mut logits = Vec::new();
                for t in 0..12 {
                    for r in 0..rows {
                        step.inputs[r] = symbols(r + offset, t);
                    }
                    step.step(&weights);
                    logits.push(step.logits.clone());
                }
                logits
            };
            let seven = run(7, 0);
            let v = cfg.vocab_size;
            for (rows, offset) in [(1, 5), (2, 5)] {
                let few = run(rows, offset);
                for t in 0..12 {
                    assert_eq!(few[t][..v], seven[t][offset * v..(offset + 1) * v], "{cell:?} {rows} rows, step {t}");
                }
            }
        }
    }

    /// Weights whose panels are chosen for fewer rows than they serve (other micro-kernels)
    /// give the same values as weights prepared for every row.
    #[test]
    fn the_rows_hint_changes_no_value() {
        let cfg = ModelConfig { cell: CellKind::Lstm, vocab_size: 11, embed_size: 5, hidden_size: 40, num_layers: 2 };
        let m = Arc::new(Model::<f32>::new(cfg, 8));
        let rows = 40;
        let run = |hint: usize| {
            let weights = InferenceWeights::with_rows_hint(m.clone(), rows, hint, Precision::F32);
            let mut step = InferenceStep::new(&cfg, rows);
            let mut logits = Vec::new();
            for t in 0..6 {
                for r in 0..rows {
                    step.inputs[r] = ((r * 7 + t * 3) % cfg.vocab_size) as u32;
                }
                step.step(&weights);
                logits.extend_from_slice(&step.logits);
            }
            logits
        };
        let all = run(rows);
        for hint in [1, 3, 5, 10, 32] {
            assert_eq!(run(hint), all, "hint {hint}");
        }
    }

    /// Removing a row moves the last one into its place, whole; an added row starts from
    /// zero whatever the row held before.
    #[test]
    fn removing_and_adding_rows() {
        let cfg = config(CellKind::Lstm);
        let m = Arc::new(Model::<f32>::new(cfg, 2));
        let weights = InferenceWeights::new(m, 3, Precision::F32);
        let mut step = InferenceStep::with_capacity(&cfg, 3);
        assert_eq!((0..4).map(|_| step.add_row()).collect::<Vec<_>>(), [Some(0), Some(1), Some(2), None]);
        step.inputs.copy_from_slice(&[1, 2, 3]);
        step.step(&weights);
        let before = step.clone();
        assert_eq!(step.remove_row(0), Some(2));
        assert_eq!(step.remove_row(1), None);
        assert_eq!(step.active(), 1);
        let h = cfg.hidden_size;
        for (after, before) in step.state.all().zip(before.state.all()) {
            assert_eq!(after[..h], before[2 * h..3 * h]);
        }
        assert_eq!((step.logits_of(0), step.inputs[0]), (before.logits_of(2), 3));
        assert_eq!(step.add_row(), Some(1));
        assert!(step.state.all().all(|slab| slab[h..2 * h].iter().all(|&x| x == 0.0)));
    }

    #[test]
    fn gathering_rows_moves_whole_states() {
        let cfg = config(CellKind::Lstm);
        let m = Arc::new(Model::<f32>::new(cfg, 2));
        let weights = InferenceWeights::new(m.clone(), 3, Precision::F32);
        let mut step = InferenceStep::new(&cfg, 3);
        step.inputs.copy_from_slice(&[1, 2, 3]);
        step.step(&weights);
        let before = step.state.clone();
        let mut scratch = State::zeros(&cfg, 3);
        step.gather_rows(&[2, 2, 0], &mut scratch);
        let h = cfg.hidden_size;
        for (after, before) in step.state.all().zip(before.all()) {
            assert_eq!(after[..h], before[2 * h..3 * h]);
            assert_eq!(after[h..2 * h], before[2 * h..3 * h]);
            assert_eq!(after[2 * h..], before[..h]);
        }
    }
}
