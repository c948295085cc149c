//! Truncated-BPTT training: one step (forward, backward, clip, Adam) over preallocated
//! buffers, evaluation on the validation split, and the epoch loop with carried state.

use std::ops::Range;
use std::time::Instant;

use charrnn_kernels::adam::AdamHyper;
use charrnn_kernels::reduce::add_assign;
use charrnn_kernels::Precision;
use rayon::prelude::*;

use crate::data::Batcher;
use crate::files::checkpoint::{Checkpoint, TrainingSnapshot};
use crate::model::dropout::Dropout;
use crate::model::packed_weights::PackedWeights;
use crate::model::params::Model;
use crate::model::pass::{backward, forward, Pass, PassOptions};
use crate::model::phase_times::{Phase, PhaseTimes, Span};
use crate::model::weight_drop::WeightDrop;
use crate::model::workspace::{State, Workspace};
use crate::setting_names::{field_name, NamesSettings};
use crate::training::collective::{block_rows, Collective, Solo};
use crate::training::optim::{clip_global_norm, Adam};
use crate::training::origin::Origin;
use crate::training::state_reset::reset_rows;

/// Training hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainOptions {
    /// Rows per batch `B`.
    pub batch_size: usize,
    /// Steps per batch `T`.
    pub seq_len: usize,
    /// Adam hyper-parameters.
    pub adam: AdamHyper,
    /// Maximum global gradient norm; 0 disables clipping.
    pub clip: f64,
    /// Dropout probability between recurrent layers, in `[0, 1)` (0: none); training steps
    /// only. See [`crate::model::dropout`].
    pub dropout: f64,
    /// Dropout probability on the last layer's output, before the output layer, in `[0, 1)`
    /// (0: none); training steps only.
    pub output_dropout: f64,
    /// Probability of dropping a recurrent weight (DropConnect on `Wh`, the same mask for every
    /// row and time step of a step), in `[0, 1)` (0: none); training steps only. See
    /// [`crate::model::weight_drop`].
    pub weight_drop: f64,
    /// Probability of zeroing a row's carried state before a step, in `[0, 1)` (0: never):
    /// cold starts to learn from. See [`crate::training::state_reset`].
    pub state_reset: f64,
    /// Seed of the dropout masks (with the step number, it fixes them; the CLI passes `--seed`).
    pub dropout_seed: u64,
    /// What the matrix products round their operands to ([`Precision::Bf16`]: mixed
    /// precision; weights, gradients and Adam stay `f32`).
    pub precision: Precision,
}

/// The largest gradient norm Adam's f32 moments can take (see [`Trainer::step_loaded`]).
const MAX_ADAM_GRADIENT_NORM: f64 = 1.0e19;

/// Why training stopped early.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The loss became NaN or infinite.
    #[error("{}", self.describe_with(&field_name))]
    NonFiniteLoss {
        /// 1-based step.
        step: u64,
        /// The offending value.
        loss: f64,
    },
    /// A gradient became NaN or infinite.
    #[error("{}", self.describe_with(&field_name))]
    NonFiniteGradient {
        /// 1-based step.
        step: u64,
        /// The offending value.
        norm: f64,
    },
    /// The update made a weight NaN or infinite.
    #[error("{}", self.describe_with(&field_name))]
    NonFiniteWeights {
        /// 1-based step.
        step: u64,
    },
}

impl NamesSettings for TrainError {
    fn describe_with(&self, name: &dyn Fn(&'static str) -> String) -> String {
        let (step, what) = match self {
            TrainError::NonFiniteLoss { step, loss } => (step, format!("the loss is {loss}")),
            TrainError::NonFiniteGradient { step, norm } => (step, format!("the gradient norm is {norm}")),
            TrainError::NonFiniteWeights { step } => (step, "its update made weights infinite or NaN".to_owned()),
        };
        format!("training diverged at step {step}: {what}; try a lower {} or {}", name("lr"), name("clip"))
    }
}

/// What one training step measured.
#[derive(Clone, Copy, Debug)]
pub struct StepOutcome {
    /// Mean training loss of the batch (nats per symbol), before the update.
    pub loss: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
}

/// One slice of the batch (a contiguous range of its rows) with everything needed to run the
/// forward and backward passes over it alone: sequences are independent, so each part runs
/// its whole recurrence on one thread with no synchronisation per time step.
struct Part {
    /// Rows of the full batch this part holds.
    rows: Range<usize>,
    workspace: Workspace<f32>,
    state: State<f32>,
    /// Room for one state-reset draw per row.
    reset_draws: Vec<f32>,
    grads: Vec<f32>,
    loss: f64,
    /// Time per phase of this part's passes, until taken.
    times: PhaseTimes,
}

/// How a trainer's work is laid out: the processes that train the model together, and the
/// parts this process's rows of the batch are split into. The default: one process, one part
/// per thread of the current rayon pool.
pub struct Layout {
    /// Parts this process's rows are split into (at most one per row). Results are
    /// bit-identical for the same number of parts; a different number of parts sums the same
    /// terms in another order.
    pub parts: usize,
    /// The processes training this model together ([`Solo`]: this one alone). Each trains on
    /// its block of the batch's rows ([`block_rows`] of the group's size, at its rank), and
    /// their gradients, losses and carried states are combined through the group: with two
    /// processes of one part each, every step gives the bits of one process with two parts.
    pub group: Box<dyn Collective>,
}

impl Default for Layout {
    fn default() -> Layout {
        Layout { parts: rayon::current_num_threads(), group: Box::new(Solo) }
    }
}

/// A model with its optimiser state and every buffer a step needs.
pub struct Trainer {
    /// The model being trained. Its weights change through steps only: the packed copy of the
    /// recurrent weights the passes read is rewritten after each update, not on every read.
    model: Model<f32>,
    /// Gradients of the last step, same layout as the parameters (summed over parts, clipped).
    grads: Vec<f32>,
    /// Optimiser state.
    adam: Adam<f32>,
    /// Clip threshold.
    clip: f64,
    batch: usize,
    /// The rows of the batch this process trains on: all of them, or its block in a
    /// data-parallel run.
    rows: Range<usize>,
    /// The processes training this model together (one: [`Solo`]).
    group: Box<dyn Collective>,
    seq_len: usize,
    dropout: f64,
    output_dropout: f64,
    state_reset: f64,
    dropout_seed: u64,
    /// The batch being trained on, time-major `[T, B]`.
    inputs: Vec<u32>,
    targets: Vec<u32>,
    parts: Vec<Part>,
    /// The recurrent weights packed for every part's products: written after each update, or,
    /// with weight drop, at the start of each step (the step's masked copy).
    packed: PackedWeights<f32>,
    /// Whether `packed` holds the model's own weights (an evaluation's): false while it holds
    /// a step's masked copy.
    packed_holds_weights: bool,
    /// DropConnect on the recurrent weights: the step's masks and masked copies.
    weight_drop: WeightDrop<f32>,
    /// The optimiser's time (on the calling thread).
    optimiser_times: PhaseTimes,
}

impl Trainer {
    /// The one way to build a trainer: everything allocated for `options`, laid out as
    /// `layout` says, starting from `origin`: weights alone (a fresh optimiser and a zero
    /// state), or a checkpoint, whose optimiser state and carried state it continues with (the
    /// checkpoint holds every row's carried state, so any layout resumes it).
    ///
    /// # Panics
    /// If a probability of `options` (dropout, output dropout, weight drop, state reset) is not
    /// in `[0, 1)`, if the batch has fewer rows than the group has processes, or if a
    /// checkpoint's batch is not `options.batch_size` rows.
    pub fn new(origin: impl Into<Origin>, options: &TrainOptions, layout: Layout) -> Trainer {
        match origin.into() {
            Origin::Weights(model) => Self::allocate(model, options, layout),
            Origin::Checkpoint(checkpoint) => {
                let Checkpoint { model, adam_m, adam_v, adam_step, state, .. } = *checkpoint;
                let mut trainer = Self::allocate(model, options, layout);
                trainer.adam.m = adam_m;
                trainer.adam.v = adam_v;
                trainer.adam.step = adam_step;
                trainer.set_state(&state);
                trainer
            }
        }
    }

    /// A fresh optimiser and a zero state for `model`, and every buffer a step needs.
    fn allocate(model: Model<f32>, options: &TrainOptions, Layout { parts, group }: Layout) -> Trainer {
        let (batch, seq_len) = (options.batch_size, options.seq_len);
        for p in [options.dropout, options.output_dropout, options.weight_drop, options.state_reset] {
            assert!((0.0..1.0).contains(&p), "dropout probability {p} outside [0, 1)");
        }
        assert!(batch >= group.size(), "a batch of {batch} rows for {} processes", group.size());
        let rows = block_rows(batch, group.size(), group.rank());
        let n = model.params.len();
        let config = model.config;
        let count = parts.clamp(1, rows.len());
        // Size every pool thread's GEMM packing buffers now: which thread runs which part
        // varies from step to step, and a step must not allocate.
        let widest = config.widest_product();
        rayon::broadcast(|_| charrnn_kernels::gemm::reserve_scratch(widest));
        let parts = (0..count)
            .map(|p| {
                let within = block_rows(rows.len(), count, p);
                let rows = rows.start + within.start..rows.start + within.end;
                let mut workspace = Workspace::with_precision(&config, rows.len(), seq_len, options.precision);
                if options.dropout > 0.0 || options.output_dropout > 0.0 {
                    workspace.reserve_dropout(&config);
                }
                Part {
                    state: State::zeros(&config, rows.len()),
                    reset_draws: vec![0.0; rows.len()],
                    grads: vec![0.0; n],
                    workspace,
                    rows,
                    loss: 0.0,
                    times: PhaseTimes::default(),
                }
            })
            .collect();
        // Packed for the widest part (parts differ by at most one row).
        let mut packed = PackedWeights::for_training(&config, rows.len().div_ceil(count), options.precision);
        packed.pack(&model);
        Trainer {
            packed,
            packed_holds_weights: true,
            weight_drop: WeightDrop::new(&config, options.weight_drop, options.dropout_seed),
            grads: vec![0.0; n],
            adam: Adam::new(n, options.adam),
            clip: options.clip,
            batch,
            rows,
            group,
            seq_len,
            dropout: options.dropout,
            output_dropout: options.output_dropout,
            state_reset: options.state_reset,
            dropout_seed: options.dropout_seed,
            inputs: vec![0; batch * seq_len],
            targets: vec![0; batch * seq_len],
            parts,
            optimiser_times: PhaseTimes::default(),
            model,
        }
    }

    /// The batch the next [`Trainer::step_loaded`] trains on: `(inputs, targets)`, time-major
    /// `[T, B]`.
    pub fn batch_mut(&mut self) -> (&mut [u32], &mut [u32]) {
        (&mut self.inputs, &mut self.targets)
    }

    /// One training step on batch `index` of `batches`, continuing from the carried state.
    /// Allocates nothing.
    pub fn step(&mut self, batches: &Batcher<'_>, index: usize) -> Result<StepOutcome, TrainError> {
        batches.fill_rows(index, self.rows.clone(), &mut self.inputs, &mut self.targets);
        self.step_loaded()
    }

    /// One training step on the batch in [`Trainer::batch_mut`] (this process's rows of it):
    /// forward and backward over every part in parallel, the parts' gradients summed in a fixed
    /// order, then over the group's processes, clipping, Adam. Allocates nothing.
    pub fn step_loaded(&mut self) -> Result<StepOutcome, TrainError> {
        self.scatter_batch();
        // The masks depend on (seed, step, row of the whole batch) only: reproducible, the
        // same after a resume, and the same however the batch is split.
        let (p, output_p, seed, step) = (self.dropout, self.output_dropout, self.dropout_seed, self.adam.step + 1);
        let state_reset = self.state_reset;
        let loss_rows = Some(self.batch * self.seq_len);
        if self.weight_drop.is_active() {
            // This step's masks, the same for every part and every process of the group.
            self.weight_drop.draw(&self.model, step);
            self.packed.pack_dropped(&self.model, &self.weight_drop);
            self.packed_holds_weights = false;
        }
        let (model, packed) = (&self.model, &self.packed);
        self.parts.par_iter_mut().for_each(|part| {
            let dropout =
                Some(Dropout { p, output_p, seed, step, first_row: part.rows.start }).filter(Dropout::is_active);
            let options = PassOptions { dropout, loss_rows };
            reset_rows(state_reset, seed, step, part.rows.start, &mut part.state, &mut part.reset_draws);
            let times = &mut part.times;
            part.loss = forward(model, packed, &mut part.workspace, &mut part.state, Pass::Train, &options, times);
            backward(model, packed, &mut part.workspace, &mut part.grads, &options, times);
        });
        let mut mark = Instant::now();
        let mut loss = [self.parts.iter().map(|p| p.loss).sum::<f64>()];
        self.group.sum_f64(&mut loss);
        let loss = loss[0];
        let step = self.adam.step + 1;
        if !loss.is_finite() {
            return Err(TrainError::NonFiniteLoss { step, loss });
        }
        self.reduce_gradients();
        self.optimiser_times.lap(Phase::Optimiser, &mut mark);
        // Every process then holds the same sum, so each takes the same clip and update.
        self.group.sum_f32(&mut self.grads);
        self.optimiser_times.lap(Phase::GradientExchange, &mut mark);
        // The products read `Wh ⊙ mask`: the gradient of `Wh` itself is theirs times the mask.
        self.weight_drop.mask_gradient(&self.model.layout, &mut self.grads);
        let grad_norm = clip_global_norm(&mut self.grads, self.clip);
        // Adam squares each gradient in f32: past sqrt(f32::MAX) ≈ 1.8e19 (a bound on every
        // element of a gradient of this norm) the second moment turns infinite, the weight
        // freezes and the checkpoint could not be loaded again. Only reachable with --clip 0.
        let applied = if self.clip > 0.0 { grad_norm.min(self.clip) } else { grad_norm };
        if !grad_norm.is_finite() || applied > MAX_ADAM_GRADIENT_NORM {
            return Err(TrainError::NonFiniteGradient { step, norm: grad_norm });
        }
        self.adam.update(&mut self.model.params, &self.grads);
        // A finite gradient can still overflow the weights (a huge --lr): stop here, before a
        // checkpoint keeps weights that no model or resumed run could use. One pass over the
        // weights just written, against a step's passes over every activation.
        if !self.model.params.iter().all(|w| w.is_finite()) {
            return Err(TrainError::NonFiniteWeights { step });
        }
        // The products' copy of the recurrent weights (bf16 in bf16 runs), once for all parts;
        // with weight drop, the next step packs its own masked copy instead.
        if !self.weight_drop.is_active() {
            self.packed.pack(&self.model);
        }
        self.optimiser_times.lap(Phase::Optimiser, &mut mark);
        Ok(StepOutcome { loss, grad_norm })
    }

    /// Copies the time-major batch into each part's workspace (its rows, time-major); rows
    /// outside this process's block are not read.
    fn scatter_batch(&mut self) {
        let batch = self.batch;
        for part in &mut self.parts {
            let width = part.rows.len();
            let ws = &mut part.workspace;
            for t in 0..self.seq_len {
                let src = t * batch + part.rows.start..t * batch + part.rows.end;
                ws.inputs[t * width..(t + 1) * width].copy_from_slice(&self.inputs[src.clone()]);
                ws.targets[t * width..(t + 1) * width].copy_from_slice(&self.targets[src]);
            }
        }
    }

    /// `grads = Σ_p grads_p`, parts in order, in fixed-size chunks across threads: the result
    /// depends only on the number of parts, never on scheduling.
    fn reduce_gradients(&mut self) {
        const CHUNK: usize = 1 << 14;
        let parts = &self.parts;
        self.grads.par_chunks_mut(CHUNK).enumerate().for_each(|(i, out)| {
            let range = i * CHUNK..i * CHUNK + out.len();
            out.copy_from_slice(&parts[0].grads[range.clone()]);
            for part in &parts[1..] {
                add_assign(out, &part.grads[range.clone()]);
            }
        });
    }

    /// The carried state of the whole batch: in a group, every process's rows, gathered. A
    /// collective call: every process of the group makes it, at the same step.
    pub fn gather_state(&mut self) -> State<f32> {
        let config = &self.model.config;
        let h = config.hidden_size;
        let mut mine = State::zeros(config, self.rows.len());
        for part in &self.parts {
            let rows = (part.rows.start - self.rows.start) * h..(part.rows.end - self.rows.start) * h;
            for (slab, part_slab) in mine.all_mut().zip(part.state.all()) {
                slab[rows.clone()].copy_from_slice(part_slab);
            }
        }
        let size = self.group.size();
        if size == 1 {
            return mine;
        }
        let counts: Vec<usize> = (0..size).map(|r| block_rows(self.batch, size, r).len() * h).collect();
        let mut state = State::zeros(config, self.batch);
        for (slab, mine_slab) in state.all_mut().zip(mine.all()) {
            self.group.all_gather_f32(mine_slab, &counts, slab);
        }
        state
    }

    /// Replaces the carried state of the whole batch.
    ///
    /// # Panics
    /// If `state` is not shaped for this trainer's model and batch.
    pub fn set_state(&mut self, state: &State<f32>) {
        let h = self.model.config.hidden_size;
        for part in &mut self.parts {
            let rows = part.rows.start * h..part.rows.end * h;
            for (part_slab, slab) in part.state.all_mut().zip(state.all()) {
                part_slab.copy_from_slice(&slab[rows.clone()]);
            }
        }
    }

    /// Resets the carried state to zero (at an epoch start).
    pub fn reset_state(&mut self) {
        for part in &mut self.parts {
            part.state.reset();
        }
    }

    /// Time per phase summed over the parts (so with `P` parts in parallel, about `P` times
    /// the wall time of each phase), plus the optimiser's wall time; then resets the tallies.
    pub fn take_phase_times(&mut self) -> PhaseTimes {
        let mut total = PhaseTimes::default();
        for times in self.parts.iter_mut().map(|p| &mut p.times).chain([&mut self.optimiser_times]) {
            total.add(times);
            times.reset_totals();
        }
        total
    }

    /// Makes room to record `spans_per_track` timed spans on each track (one per batch part, then
    /// the optimiser's) for [`Trainer::drain_spans`]; steps then record their spans and still
    /// allocate nothing.
    pub fn record_spans(&mut self, spans_per_track: usize) {
        for times in self.parts.iter_mut().map(|p| &mut p.times).chain([&mut self.optimiser_times]) {
            times.record_spans(spans_per_track);
        }
    }

    /// Hands every span recorded since the last call to `each` with its track (part `p` is
    /// track `p`; the optimiser, which runs on the calling thread, is track
    /// [`Trainer::num_parts`]), and forgets them.
    pub fn drain_spans(&mut self, mut each: impl FnMut(usize, Span)) {
        for (track, times) in self.parts.iter_mut().map(|p| &mut p.times).chain([&mut self.optimiser_times]).enumerate()
        {
            times.drain_spans().for_each(|span| each(track, span));
        }
    }

    /// The training state to write a checkpoint from, the carried state gathered from every
    /// process ([`Trainer::gather_state`]). A collective call: every process of the group
    /// makes it, at the same step, though one alone writes the checkpoint.
    pub fn gather_snapshot(&mut self) -> TrainingSnapshot<'_> {
        let state = self.gather_state();
        TrainingSnapshot {
            model: &self.model,
            adam_m: &self.adam.m,
            adam_v: &self.adam.v,
            adam_step: self.adam.step,
            state,
        }
    }

    /// The model being trained (its weights change through steps only).
    pub fn model(&self) -> &Model<f32> {
        &self.model
    }

    /// Sets the learning rate of the next steps.
    pub fn set_learning_rate(&mut self, lr: f64) {
        self.adam.hyper.lr = lr;
    }

    /// What the step's matrix products round their operands to.
    pub fn precision(&self) -> Precision {
        self.parts[0].workspace.precision()
    }

    /// Number of parts this process's rows are split into.
    pub fn num_parts(&self) -> usize {
        self.parts.len()
    }

    /// The processes training this model together.
    pub fn group(&self) -> &dyn Collective {
        self.group.as_ref()
    }

    /// Mean loss over every batch of `batches`, from a zero state carried across them (the
    /// training state is untouched). Parts run in parallel; in a group, each process
    /// evaluates its rows and the batches' losses are summed over the processes.
    ///
    /// `stop` is polled before each batch (a stop request, local to this process): a long
    /// validation must not keep a Ctrl-C waiting. Once it says yes the evaluation is abandoned
    /// and `None` returned. In a group, whether any process abandoned rides along in the one
    /// sum that ends the evaluation, so every process returns `None` alike and none is left
    /// waiting for another.
    pub fn evaluate(&mut self, batches: &Batcher<'_>, stop: &dyn Fn() -> bool) -> Option<f64> {
        if !self.packed_holds_weights {
            // The last step's masked copy: an evaluation reads the weights themselves.
            self.packed.pack(&self.model);
            self.packed_holds_weights = true;
        }
        let saved: Vec<State<f32>> = self.parts.iter().map(|p| p.state.clone()).collect();
        self.reset_state();
        let n = batches.num_batches();
        // The batches' losses, then 1 when this process abandoned the evaluation.
        let mut sums = vec![0.0; n + 1];
        let loss_rows = Some(self.batch * self.seq_len);
        for i in 0..n {
            if stop() {
                sums[n] = 1.0;
                break;
            }
            batches.fill_rows(i, self.rows.clone(), &mut self.inputs, &mut self.targets);
            self.scatter_batch();
            let (model, packed) = (&self.model, &self.packed);
            self.parts.par_iter_mut().for_each(|part| {
                let options = PassOptions { dropout: None, loss_rows };
                let times = &mut part.times;
                part.loss = forward(model, packed, &mut part.workspace, &mut part.state, Pass::Eval, &options, times);
            });
            sums[i] = self.parts.iter().map(|p| p.loss).sum::<f64>();
        }
        for (part, state) in self.parts.iter_mut().zip(saved) {
            part.state = state;
        }
        self.group.sum_f64(&mut sums);
        let abandoned = sums[n] > 0.0;
        (!abandoned).then(|| sums[..n].iter().sum::<f64>() / n as f64)
    }
}
