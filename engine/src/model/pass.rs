//! The whole model's forward and backward pass over one batch, composed from the layers.
//!
//! The workspace holds buffers only; what a pass is asked to do comes with the call
//! ([`PassOptions`]: dropout between layers, applied in [`Pass::Train`] passes only, and the
//! loss denominator), and the time per phase goes to the caller's [`PhaseTimes`]. [`backward`]
//! takes the options of the forward pass it follows.

use std::time::Instant;

use charrnn_kernels::reduce::col_sums_accumulate;
use charrnn_kernels::{Float, Precision};

use crate::model::cell::{with_cell, CellKind, RecurrentSide};
use crate::model::config::ModelConfig;
use crate::model::decoder::{decoder_backward, decoder_logits, decoder_loss};
use crate::model::dropout::{apply_mask, fill_mask, mask_in_place, Dropout};
use crate::model::embedding::{input_table_backward, input_table_forward, input_table_gather, EmbeddingDims};
use crate::model::matmul::MatmulDims;
use crate::model::packed_weights::PackedWeights;
use crate::model::params::Model;
use crate::model::phase_times::{Phase, PhaseTimes};
use crate::model::recurrent::{
    input_projection, input_projection_backward, recurrent_backward, recurrent_forward, recurrent_weight_gradient,
    BackwardScratch, LayerDims,
};
use crate::model::workspace::{FrozenWeights, LayerActivations, State, Workspace};

/// Whether a forward pass prepares for a backward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// Also compute the gradient with respect to the logits.
    Train,
    /// Loss only.
    Eval,
}

/// What a pass is asked to do beyond its buffers.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PassOptions {
    /// Dropout between layers, in training passes (see [`crate::model::dropout`]).
    pub dropout: Option<Dropout>,
    /// Divides the summed loss (and scales its gradient); `None`: this batch's rows, the mean
    /// loss in nats per symbol. A trainer that splits a batch into parts passes the whole
    /// batch's rows.
    pub loss_rows: Option<usize>,
}

impl PassOptions {
    /// The dropout between layers a pass of kind `pass` over a model of `layers` layers
    /// applies.
    fn dropout_for(&self, pass: Pass, layers: usize) -> Option<Dropout> {
        self.dropout.filter(|d| pass == Pass::Train && d.p > 0.0 && layers > 1)
    }

    /// The dropout on the last layer's output a pass of kind `pass` applies.
    fn output_dropout_for(&self, pass: Pass) -> Option<Dropout> {
        self.dropout.map(|d| d.on_output()).filter(|d| pass == Pass::Train && d.p > 0.0)
    }
}

fn dims<F: Float>(cfg: &ModelConfig, ws: &Workspace<F>, layer: usize) -> LayerDims {
    LayerDims::of(cfg, layer, ws.batch, ws.seq_len, ws.precision())
}

/// The output layer's product `[rows, H]·[H, V]`.
fn decoder_dims(cfg: &ModelConfig, rows: usize, precision: Precision) -> MatmulDims {
    MatmulDims { precision, rows, input: cfg.hidden_size, output: cfg.vocab_size }
}

fn embedding_dims(cfg: &ModelConfig, precision: Precision) -> EmbeddingDims {
    let gates = cfg.cell.gates() * cfg.hidden_size;
    EmbeddingDims { vocab: cfg.vocab_size, embed: cfg.embed_size, gates, precision }
}

/// Runs the model over `ws.inputs` from `state`, which receives the final state; returns the
/// summed cross-entropy against `ws.targets` divided by `options.loss_rows`. `packed` holds the
/// model's recurrent weights, packed ([`PackedWeights::pack`]) since they last changed.
pub fn forward<F: Float>(
    model: &Model<F>,
    packed: &PackedWeights<F>,
    ws: &mut Workspace<F>,
    state: &mut State<F>,
    pass: Pass,
    options: &PassOptions,
    times: &mut PhaseTimes,
) -> f64 {
    let dropout = options.dropout_for(pass, model.config.num_layers);
    let output_dropout = options.output_dropout_for(pass);
    forward_layers(model, packed, ws, state, [dropout, output_dropout], false, times);
    let mut mark = Instant::now();
    let rows = ws.rows();
    let denominator = options.loss_rows.unwrap_or(rows);
    let dlogits = match pass {
        Pass::Train => Some(&mut ws.dlogits[..]),
        Pass::Eval => None,
    };
    let loss = decoder_loss(rows, denominator, model.config.vocab_size, &ws.logits, &ws.targets, dlogits);
    times.lap(Phase::OutputAndLoss, &mut mark);
    loss
}

/// The forward pass up to `ws.logits` (no loss, no dropout), the reference the inference step
/// ([`crate::inference::step`]) is tested against. The weights
/// are taken to be fixed: the packed recurrent weights (in `frozen`) and the folded embedding
/// table (in `ws`) are computed on the first call and reused.
pub fn forward_logits<F: Float>(
    model: &Model<F>,
    ws: &mut Workspace<F>,
    state: &mut State<F>,
    frozen: &mut FrozenWeights<F>,
    times: &mut PhaseTimes,
) {
    if !frozen.ready {
        frozen.packed.pack(model);
    }
    forward_logits_packed(model, &frozen.packed, ws, state, &mut frozen.ready, times);
}

/// [`forward_logits`] over weights the caller packed, which several workspaces may share (the
/// scoring of [`crate::evaluation`], one workspace per thread): the folded input table in `ws`
/// is computed when `table_ready` is false, which it then sets.
pub fn forward_logits_packed<F: Float>(
    model: &Model<F>,
    packed: &PackedWeights<F>,
    ws: &mut Workspace<F>,
    state: &mut State<F>,
    table_ready: &mut bool,
    times: &mut PhaseTimes,
) {
    forward_layers(model, packed, ws, state, [None, None], *table_ready, times);
    *table_ready = true;
}

/// The recurrent bias when the cell folds it into the input projections (its recurrent side
/// summed: it only sees `b_ih + b_hh`); `None` when it adds it on the recurrent side, apart.
fn folded_bias_hh<F>(cell: CellKind, bias_hh: &[F]) -> Option<&[F]> {
    match cell.recurrent_side() {
        RecurrentSide::Apart => None,
        RecurrentSide::Summed => Some(bias_hh),
    }
}

/// The layers' forward pass, with `[dropout between layers, dropout on the last layer's
/// output]`; with `reuse_table`, the folded input table in `ws` is taken to be that of these
/// weights already.
fn forward_layers<F: Float>(
    model: &Model<F>,
    packed: &PackedWeights<F>,
    ws: &mut Workspace<F>,
    state: &mut State<F>,
    [dropout, output_dropout]: [Option<Dropout>; 2],
    reuse_table: bool,
    times: &mut PhaseTimes,
) {
    assert_eq!(packed.precision(), ws.precision(), "packed weights for other products than the workspace's");
    let cfg = model.config;
    let bh = ws.batch * cfg.hidden_size;
    if dropout.is_some() || output_dropout.is_some() {
        // Allocates only if the trainer did not reserve the buffers up front.
        ws.reserve_dropout(&cfg);
    }
    let mut mark = Instant::now();
    if !reuse_table {
        input_table(model, ws.precision(), &mut ws.input_table);
    }
    for l in 0..cfg.num_layers {
        let d = dims(&cfg, ws, l);
        let (below, this_and_above) = ws.layers.split_at_mut(l);
        let act = &mut this_and_above[0];
        let input = match (l, dropout) {
            (0, _) => LayerInput::Symbols { table: &ws.input_table, ids: &ws.inputs },
            (_, Some(_)) => LayerInput::Below(&ws.dropout_buffers[l - 1].dropped[..]),
            (_, None) => LayerInput::Below(&below[l - 1].h[bh..]),
        };
        layer_input(model, d, l, input, &mut act.gates);
        times.lap(Phase::InputProjection, &mut mark);
        layer_recurrence(model, packed, d, l, act, &mut state.slabs[l]);
        times.lap(Phase::ForwardRecurrence, &mut mark);
        // The next layer's input (timed with the input projections).
        if let Some(settings) = &dropout {
            if l + 1 < cfg.num_layers {
                let buffers = &mut ws.dropout_buffers[l];
                fill_mask(settings, l, ws.batch, cfg.hidden_size, &mut buffers.mask);
                apply_mask(&act.h[bh..], &buffers.mask, &mut buffers.dropped);
            }
        }
    }
    let (last, precision) = (cfg.num_layers - 1, ws.precision());
    let top = match output_dropout {
        Some(settings) => {
            let buffers = &mut ws.dropout_buffers[last];
            fill_mask(&settings, last, ws.batch, cfg.hidden_size, &mut buffers.mask);
            apply_mask(&ws.layers[last].h[bh..], &buffers.mask, &mut buffers.dropped);
            &buffers.dropped[..]
        }
        None => &ws.layers[last].h[bh..],
    };
    output_logits(model, precision, top, &mut ws.logits);
    times.lap(Phase::OutputAndLoss, &mut mark);
}

/// Fills `table` (`[V, G·H]`) with layer 0's folded input table, `Emb·Wx0 + b_ih` (`+ b_hh`
/// where the cell sums its recurrent side), its product in `precision`.
pub(crate) fn input_table<F: Float>(model: &Model<F>, precision: Precision, table: &mut [F]) {
    let (p, lay, cfg) = (&model.params, &model.layout, &model.config);
    let r = &lay.layers[0];
    let bias_hh = folded_bias_hh(cfg.cell, &p[r.bias_hh.clone()]);
    let (emb, wx0, bias_ih) = (&p[lay.embedding.clone()], &p[r.wx.clone()], &p[r.bias_ih.clone()]);
    input_table_forward(embedding_dims(cfg, precision), emb, wx0, bias_ih, bias_hh, table);
}

/// What a layer reads over a chunk of steps.
#[derive(Clone, Copy, Debug)]
pub(crate) enum LayerInput<'a, F> {
    /// Layer 0: the symbols (`[T·B]`), read as rows of the folded input table ([`input_table`]).
    Symbols { table: &'a [F], ids: &'a [u32] },
    /// A layer above: the outputs of the layer below (`[T·B, H]`).
    Below(&'a [F]),
}

/// Fills `gates` (`[T·B, G·H]`) with layer `l`'s input side over a chunk (`d`): rows of the
/// folded table for layer 0; above it, one product over all `T·B` rows plus the biases.
pub(crate) fn layer_input<F: Float>(
    model: &Model<F>,
    d: LayerDims,
    l: usize,
    input: LayerInput<'_, F>,
    gates: &mut [F],
) {
    let (p, r) = (&model.params, &model.layout.layers[l]);
    match input {
        LayerInput::Symbols { table, ids } => input_table_gather(d.gates(), table, ids, gates),
        LayerInput::Below(x) => {
            let bias_hh = folded_bias_hh(model.config.cell, &p[r.bias_hh.clone()]);
            input_projection(d, x, &p[r.wx.clone()], &p[r.bias_ih.clone()], bias_hh, gates);
        }
    }
}

/// Layer `l`'s recurrence over a chunk (`d`), its input side already in `act.gates`: per step
/// `h·Wh` (`packed`) and the fused cell, from `carried` (the layer's state slabs), which
/// receives the final state.
pub(crate) fn layer_recurrence<F: Float>(
    model: &Model<F>,
    packed: &PackedWeights<F>,
    d: LayerDims,
    l: usize,
    act: &mut LayerActivations<F>,
    carried: &mut [Vec<F>],
) {
    let bias_hh = &model.params[model.layout.layers[l].bias_hh.clone()];
    with_cell!(model.config.cell, C => recurrent_forward::<C, F>(d, bias_hh, act, packed.wh(l), carried));
}

/// The output layer's logits (`[rows, V]`) for the rows of `top` (the top layer's outputs,
/// `[rows, H]`), its product in `precision`.
pub(crate) fn output_logits<F: Float>(model: &Model<F>, precision: Precision, top: &[F], logits: &mut [F]) {
    let (p, lay, cfg) = (&model.params, &model.layout, &model.config);
    let d = decoder_dims(cfg, top.len() / cfg.hidden_size, precision);
    decoder_logits(d, top, &p[lay.decoder_weight.clone()], &p[lay.decoder_bias.clone()], logits);
}

/// Gradient of the loss of the last [`Pass::Train`] forward, run with `options` and the same
/// `packed` weights (packed for training), with respect to every parameter, written into
/// `grads` (same layout as the parameters; overwritten).
pub fn backward<F: Float>(
    model: &Model<F>,
    packed: &PackedWeights<F>,
    ws: &mut Workspace<F>,
    grads: &mut [F],
    options: &PassOptions,
    times: &mut PhaseTimes,
) {
    let dropout_applied = options.dropout_for(Pass::Train, model.config.num_layers).is_some();
    let output_dropout_applied = options.output_dropout_for(Pass::Train).is_some();
    let cfg = model.config;
    let (rows, h, v) = (ws.rows(), cfg.hidden_size, cfg.vocab_size);
    let bh = ws.batch * h;
    let table_dims = embedding_dims(&cfg, ws.precision());
    let (p, lay) = (&model.params, &model.layout);
    let mut mark = Instant::now();
    grads.fill(F::zero());

    let (dw_dec, db_dec) = grads[lay.decoder_weight.start..lay.decoder_bias.end].split_at_mut(h * v);
    let last = cfg.num_layers - 1;
    let top = match output_dropout_applied {
        true => &ws.dropout_buffers[last].dropped[..],
        false => &ws.layers[last].h[bh..],
    };
    let d = decoder_dims(&cfg, rows, ws.precision());
    decoder_backward(d, top, &p[lay.decoder_weight.clone()], &ws.dlogits, dw_dec, db_dec, &mut ws.d_output);
    if output_dropout_applied {
        mask_in_place(&mut ws.d_output, &ws.dropout_buffers[last].mask);
    }
    times.lap(Phase::OutputAndLoss, &mut mark);

    // The embedding's gradient sits before the layers in the buffer; split it off first.
    let (d_emb, layer_grads) = grads[..lay.decoder_weight.start].split_at_mut(lay.embedding.end);
    for l in (0..cfg.num_layers).rev() {
        let d = dims(&cfg, ws, l);
        let r = &lay.layers[l];
        let g = &mut layer_grads[r.wx.start - lay.embedding.end..r.bias_hh.end - lay.embedding.end];
        let (dwx, rest) = g.split_at_mut(r.wx.len());
        let (dwh, biases) = rest.split_at_mut(r.wh.len());
        let (dbias_ih, dbias_hh) = biases.split_at_mut(r.bias_ih.len());
        let scratch = BackwardScratch { dh_next: &mut ws.dh_next, d_carried: &mut ws.d_carried };
        let (wh_t, act, d_out, dgates, d_recurrent) =
            (packed.wh_t(l), &ws.layers[l], &mut ws.d_output, &mut ws.dgates, &mut ws.d_recurrent);
        with_cell!(cfg.cell, C => recurrent_backward::<C, F>(d, wh_t, act, d_out, scratch, dgates, d_recurrent));
        times.lap(Phase::BackwardRecurrence, &mut mark);
        col_sums_accumulate(rows, d.gates(), &ws.dgates, dbias_ih);
        match cfg.cell.recurrent_side() {
            RecurrentSide::Apart => {
                // The recurrent side has its own gradient (the GRU's differs in the n block).
                recurrent_weight_gradient(d, &ws.layers[l], &ws.d_recurrent, dwh);
                col_sums_accumulate(rows, d.gates(), &ws.d_recurrent, dbias_hh);
            }
            RecurrentSide::Summed => {
                recurrent_weight_gradient(d, &ws.layers[l], &ws.dgates, dwh);
                // Both biases enter the pre-activations alike, so they get the same gradient.
                dbias_hh.copy_from_slice(dbias_ih);
            }
        }
        if l == 0 {
            input_table_backward(
                table_dims,
                &ws.inputs,
                &ws.dgates,
                &p[lay.embedding.clone()],
                &p[r.wx.clone()],
                &mut ws.d_input_table,
                dwx,
                d_emb,
            );
        } else {
            let x = match dropout_applied {
                true => &ws.dropout_buffers[l - 1].dropped[..],
                false => &ws.layers[l - 1].h[bh..],
            };
            input_projection_backward(d, x, &p[r.wx.clone()], &ws.dgates, dwx, &mut ws.d_input);
            if dropout_applied {
                mask_in_place(&mut ws.d_input, &ws.dropout_buffers[l - 1].mask);
            }
            // The gradient sent to this layer's inputs reaches the outputs of the layer below.
            std::mem::swap(&mut ws.d_output, &mut ws.d_input);
        }
        times.lap(Phase::WeightGradients, &mut mark);
    }
}
