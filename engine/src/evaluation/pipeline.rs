//! One stream's layers as a pipeline over chunks of `T` steps, a layer per thread.
//!
//! A stream is one row, so each step of a layer's recurrence is a matrix-vector product, bound
//! by the bytes of `Wh` it reads, and no step can start before the one before it. But layer
//! `l` over chunk `c` needs only layer `l − 1` over chunk `c` and layer `l` over chunk
//! `c − 1`. So the chunks go through in waves: in wave `w`, layer `l` runs chunk `w − l` (its
//! input projection as one product over the chunk, then its recurrence, as the training
//! pass's layer: [`layer_input`], [`layer_recurrence`]) and the output layer and the loss
//! chunk `w − L`, all of them at once on the thread pool; between waves each layer's outputs
//! are handed to the layer above by swapping buffers. Every layer does what it would do in the
//! layer-by-layer pass, on the same numbers, so the losses are the same bits on any number of
//! threads, and a model of `L` layers keeps up to `L` cores busy.

use charrnn_kernels::softmax_xent::SoftmaxXentRows;
use charrnn_kernels::{Float, Kernel, Precision};
use rayon::prelude::*;

use crate::model::packed_weights::PackedWeights;
use crate::model::params::Model;
use crate::model::pass::{input_table, layer_input, layer_recurrence, output_logits, LayerInput};
use crate::model::recurrent::LayerDims;
use crate::model::workspace::{LayerActivations, State};

/// One layer's stage: its activations over a chunk, its state carried from chunk to chunk,
/// and the outputs of the layer below over the same chunk.
struct LayerStage<F> {
    act: LayerActivations<F>,
    /// The layer's state slabs (`[H]` each), carried from its last chunk.
    carried: Vec<Vec<F>>,
    /// The layer below's outputs over this stage's chunk, laid out as `act.h` (`[(T+1), H]`,
    /// row 0 unused): handed up between waves. Empty for layer 0, which reads symbols.
    below: Vec<F>,
}

/// The output layer's stage: logits and each position's loss over its chunk.
struct OutputStage<F> {
    /// The top layer's outputs over this stage's chunk, laid out as a layer's `act.h`.
    below: Vec<F>,
    logits: Vec<F>,
    targets: Vec<u32>,
    /// Each position's negative log-likelihood.
    losses: Vec<f64>,
}

/// The stages of one stream and layer 0's folded input table, allocated once.
pub(crate) struct LayerPipeline<F> {
    layers: Vec<LayerStage<F>>,
    output: OutputStage<F>,
    /// Layer 0's folded input table (`[V, G·H]`).
    table: Vec<F>,
    /// The symbols of the chunk that enters layer 0 at the next wave (`[T]`).
    inputs: Vec<u32>,
    chunk: usize,
    precision: Precision,
}

impl<F: Float> LayerPipeline<F> {
    /// Stages of `chunk` steps for `model`, its products in `precision`, from a zero state.
    pub(crate) fn new(model: &Model<F>, chunk: usize, precision: Precision) -> LayerPipeline<F> {
        let cfg = &model.config;
        let slab = (chunk + 1) * cfg.hidden_size;
        let layers = State::zeros(cfg, 1)
            .slabs
            .into_iter()
            .enumerate()
            .map(|(l, carried)| LayerStage {
                act: LayerActivations::zeros(cfg, 1, chunk),
                carried,
                below: vec![F::zero(); if l == 0 { 0 } else { slab }],
            })
            .collect();
        let output = OutputStage {
            below: vec![F::zero(); slab],
            logits: vec![F::zero(); chunk * cfg.vocab_size],
            targets: vec![0; chunk],
            losses: vec![0.0; chunk],
        };
        let mut table = vec![F::zero(); cfg.vocab_size * cfg.cell.gates() * cfg.hidden_size];
        input_table(model, precision, &mut table);
        LayerPipeline { layers, output, table, inputs: vec![0; chunk], chunk, precision }
    }

    /// Steps `T` per chunk.
    pub(crate) fn chunk(&self) -> usize {
        self.chunk
    }

    /// Waves that take `chunks` chunks through every stage.
    pub(crate) fn waves(&self, chunks: usize) -> usize {
        chunks + self.layers.len()
    }

    /// The chunk that wave `wave` takes into layer 0, and the one whose losses it gives; `None`
    /// where the pipeline is filling or draining.
    pub(crate) fn chunks_of_wave(&self, wave: usize, chunks: usize) -> (Option<usize>, Option<usize>) {
        let entering = Some(wave).filter(|&c| c < chunks);
        let leaving = wave.checked_sub(self.layers.len()).filter(|&c| c < chunks);
        (entering, leaving)
    }

    /// Back to the zero state (a new stream).
    pub(crate) fn reset_state(&mut self) {
        for slab in self.layers.iter_mut().flat_map(|stage| &mut stage.carried) {
            slab.fill(F::zero());
        }
    }

    /// The entering chunk's symbols and the leaving chunk's targets, for the next wave.
    pub(crate) fn chunk_ends_mut(&mut self) -> (&mut [u32], &mut [u32]) {
        (&mut self.inputs, &mut self.output.targets)
    }

    /// Runs wave `wave` of a stream of `chunks` chunks (every stage whose chunk is in the
    /// stream, in parallel), then hands each layer's outputs to the stage above. Returns the
    /// losses of the chunk that left, if one did (its positions, padding included). `packed`
    /// holds the model's recurrent weights packed in this pipeline's precision. Allocates
    /// nothing but what the products' thread splits do.
    pub(crate) fn run_wave(
        &mut self,
        model: &Model<F>,
        packed: &PackedWeights<F>,
        wave: usize,
        chunks: usize,
    ) -> Option<&[f64]> {
        let leaving = self.chunks_of_wave(wave, chunks).1;
        let (chunk, precision, hidden) = (self.chunk, self.precision, model.config.hidden_size);
        let symbols = LayerInput::Symbols { table: &self.table, ids: &self.inputs };
        let (layers, output) = (&mut self.layers, &mut self.output);
        rayon::join(
            || {
                layers.par_iter_mut().enumerate().for_each(|(l, stage)| {
                    // Layer `l` runs chunk `wave − l`, if the stream has it.
                    if (l..chunks + l).contains(&wave) {
                        let d = LayerDims::of(&model.config, l, 1, chunk, precision);
                        let input = if l == 0 { symbols } else { LayerInput::Below(&stage.below[hidden..]) };
                        layer_input(model, d, l, input, &mut stage.act.gates);
                        layer_recurrence(model, packed, d, l, &mut stage.act, &mut stage.carried);
                    }
                })
            },
            || {
                if leaving.is_some() {
                    output.score(model, precision, hidden);
                }
            },
        );
        self.hand_up();
        leaving.map(|_| &self.output.losses[..])
    }

    /// Each layer's outputs become the input of the stage above (buffers swapped: the layer's
    /// next chunk writes over what the stage above read in this wave).
    fn hand_up(&mut self) {
        for l in 1..self.layers.len() {
            let (lower, upper) = self.layers.split_at_mut(l);
            std::mem::swap(&mut lower[l - 1].act.h, &mut upper[0].below);
        }
        if let Some(top) = self.layers.last_mut() {
            std::mem::swap(&mut top.act.h, &mut self.output.below);
        }
    }
}

impl<F: Float> OutputStage<F> {
    /// The logits and each position's loss of the chunk in `below`.
    fn score(&mut self, model: &Model<F>, precision: Precision, hidden: usize) {
        output_logits(model, precision, &self.below[hidden..], &mut self.logits);
        let (rows, vocab) = (self.targets.len(), model.config.vocab_size);
        SoftmaxXentRows { rows, vocab, logits: &self.logits, targets: &self.targets, losses: &mut self.losses }.run();
    }
}
