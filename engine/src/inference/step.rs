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

use charrnn_kernels::gemm::Op;
use charrnn_kernels::prepared::{PreparedMatrix, PreparedProduct};
use charrnn_kernels::reduce::broadcast_rows;
use charrnn_kernels::{Kernel, Precision};

use crate::model::cell::{with_cell, Cell, ForwardStep, RecurrentSide, SlabArray};
use crate::model::config::ModelConfig;
use crate::model::embedding::{input_table_forward, input_table_gather, EmbeddingDims};
use crate::model::params::Model;
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

/// A model's weights, prepared for steps of `rows` rows whose products are in `precision`.
pub struct InferenceWeights<'m> {
    model: &'m Model<f32>,
    rows: usize,
    precision: Precision,
    /// Layer 0's input table `Emb·Wx0 + b` (`[V, G·H]`).
    table: Vec<f32>,
    /// Per layer, the bias the input side starts from: `b_ih + b_hh` for a cell whose recurrent
    /// side is summed (the LSTM and the RNN see only the sum), `b_ih` for one whose recurrent
    /// side is apart (the GRU) (layer 0's is in the table).
    input_bias: Vec<Vec<f32>>,
    /// The matrices prepared for products of `rows` rows, in the order of
    /// [`InferenceWeights::index`].
    prepared: Vec<PreparedMatrix<f32>>,
}

impl<'m> InferenceWeights<'m> {
    /// Prepares `model` for steps of `rows` rows in `precision`.
    ///
    /// # Panics
    /// If `rows` is 0.
    pub fn new(model: &'m Model<f32>, rows: usize, precision: Precision) -> InferenceWeights<'m> {
        assert!(rows > 0, "an inference step needs at least one row");
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
        let mut table = vec![0.0; cfg.vocab_size * gh];
        let dims = EmbeddingDims { vocab: cfg.vocab_size, embed: cfg.embed_size, gates: gh, precision };
        let r0 = &lay.layers[0];
        let bias_hh = (cfg.cell.recurrent_side() == RecurrentSide::Summed).then(|| &p[r0.bias_hh.clone()]);
        input_table_forward(
            dims,
            &p[lay.embedding.clone()],
            &p[r0.wx.clone()],
            &p[r0.bias_ih.clone()],
            bias_hh,
            &mut table,
        );
        let mut weights = InferenceWeights { model, rows, precision, table, input_bias, prepared: Vec::new() };
        weights.prepared = Self::matrices(&cfg)
            .map(|m| {
                let (input, output) = weights.shape(m);
                let mut prepared = PreparedMatrix::new(input, output, precision, rows);
                prepared.prepare(Op::N, weights.plain(m), output);
                prepared
            })
            .collect();
        weights
    }

    /// What the products round their operands to.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The model.
    pub fn model(&self) -> &'m Model<f32> {
        self.model
    }

    /// Whether a step runs matrix-vector products (the kernels' choice for one row in a
    /// precision the CPU multiplies natively) rather than GEMMs.
    pub fn matrix_vector(&self) -> bool {
        self.prepared.iter().all(PreparedMatrix::matrix_vector)
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
    fn plain(&self, m: Matrix) -> &'m [f32] {
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
        let w = &self.prepared[self.index(m)];
        PreparedProduct { m: rows, x, ldx: input, w, accumulate: true, y: out, ldy: output }.run();
    }
}

/// The buffers of a step over `rows` rows: the carried state and the activations of one step.
#[derive(Clone, Debug)]
pub struct InferenceStep {
    rows: usize,
    /// Each row's state, `[rows, H]` per layer and slab (row `r` of every buffer is stream `r`).
    pub state: State<f32>,
    /// Each row's input symbol for the next step.
    pub inputs: Vec<u32>,
    /// The logits of the last step, `[rows, V]`.
    pub logits: Vec<f32>,
    /// Gate pre-activations, then activations, `[rows, G·H]`.
    gates: Vec<f32>,
    /// The recurrent side `h·Wh + b_hh`, `[rows, G·H]`, of a cell that keeps it apart (the
    /// GRU; empty for the other cells).
    recurrent: Vec<f32>,
    /// The state slabs a cell writes while it reads the previous ones, `[rows, H]` each;
    /// swapped in.
    next: Vec<Vec<f32>>,
}

impl InferenceStep {
    /// Zero state and buffers for `rows` rows of `config`.
    pub fn new(config: &ModelConfig, rows: usize) -> InferenceStep {
        let (h, gh) = (config.hidden_size, config.cell.gates() * config.hidden_size);
        InferenceStep {
            rows,
            state: State::zeros(config, rows),
            inputs: vec![0; rows],
            logits: vec![0.0; rows * config.vocab_size],
            gates: vec![0.0; rows * gh],
            recurrent: if config.cell.recurrent_side() == RecurrentSide::Apart {
                vec![0.0; rows * gh]
            } else {
                Vec::new()
            },
            next: vec![vec![0.0; rows * h]; config.cell.state_names().len()],
        }
    }

    /// Row `r`'s logits.
    pub fn logits_of(&self, r: usize) -> &[f32] {
        let v = self.logits.len() / self.rows;
        &self.logits[r * v..(r + 1) * v]
    }

    /// Advances every row by its symbol in [`InferenceStep::inputs`]: the state moves on and
    /// [`InferenceStep::logits`] holds each row's scores for the symbol after it.
    ///
    /// # Panics
    /// If `weights` are for another number of rows.
    pub fn step(&mut self, weights: &InferenceWeights<'_>) {
        assert_eq!(weights.rows, self.rows, "inference weights prepared for another number of rows");
        with_cell!(weights.model.config.cell, C => self.step_cell::<C>(weights))
    }

    /// [`InferenceStep::step`] for the model's cell `C`.
    fn step_cell<C: Cell>(&mut self, weights: &InferenceWeights<'_>) {
        let cfg = weights.model.config;
        let (rows, h) = (self.rows, cfg.hidden_size);
        let gh = cfg.cell.gates() * h;
        let p = &weights.model.params;
        for l in 0..cfg.num_layers {
            let gates = &mut self.gates[..];
            if l == 0 {
                input_table_gather(gh, &weights.table, &self.inputs, gates);
            } else {
                broadcast_rows(rows, gh, &weights.input_bias[l], gates);
                weights.multiply_add(Matrix::Input(l), rows, self.state.h(l - 1), gates);
            }
            let h_prev = self.state.h(l);
            match C::RECURRENT {
                RecurrentSide::Summed => weights.multiply_add(Matrix::Recurrent(l), rows, h_prev, gates),
                RecurrentSide::Apart => {
                    let bias_hh = &p[weights.model.layout.layers[l].bias_hh.clone()];
                    broadcast_rows(rows, gh, bias_hh, &mut self.recurrent);
                    weights.multiply_add(Matrix::Recurrent(l), rows, h_prev, &mut self.recurrent);
                }
            }
            let slabs = self.state.slabs[l].iter().zip(&mut self.next).map(|(now, next)| (&now[..], &mut next[..]));
            let state = C::Slabs::from_slabs(slabs);
            let recurrent = &self.recurrent;
            C::forward(ForwardStep { rows, hidden: h, gates, recurrent, state });
            for (now, next) in self.state.slabs[l].iter_mut().zip(&mut self.next) {
                std::mem::swap(now, next);
            }
        }
        let v = cfg.vocab_size;
        broadcast_rows(rows, v, &p[weights.model.layout.decoder_bias.clone()], &mut self.logits);
        weights.multiply_add(Matrix::Decoder, rows, self.state.h(cfg.num_layers - 1), &mut self.logits);
    }

    /// Replaces the state by rows of itself: row `r` becomes row `sources[r]` (beam search
    /// keeps the continuations it chose). `scratch` must be a state of the same shape.
    pub fn gather_rows(&mut self, sources: &[u32], scratch: &mut State<f32>) {
        let h = self.next[0].len() / self.rows;
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
            let m = Model::<f32>::new(cfg, 5);
            let weights = InferenceWeights::new(&m, 1, Precision::F32);
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
            let m = Model::<f32>::new(cfg, 8);
            let symbols = |r: usize, t: usize| ((r * 7 + t * 3) % cfg.vocab_size) as u32;
            let run = |rows: usize, offset: usize| {
                let weights = InferenceWeights::new(&m, rows, precision);
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

    #[test]
    fn gathering_rows_moves_whole_states() {
        let cfg = config(CellKind::Lstm);
        let m = Model::<f32>::new(cfg, 2);
        let weights = InferenceWeights::new(&m, 3, Precision::F32);
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
