//! The whole model's forward and backward pass over one batch, composed from the layers.

use charrnn_kernels::Float;

use crate::config::ModelConfig;
use crate::decoder::{decoder_backward, decoder_logits, decoder_loss};
use crate::embedding::{embedding_backward, embedding_forward};
use crate::params::Model;
use crate::recurrent::{recurrent_backward, recurrent_forward, BackwardScratch, LayerDims};
use crate::workspace::{State, Workspace};

/// Whether a forward pass prepares for a backward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// Also compute the gradient with respect to the logits.
    Train,
    /// Loss only.
    Eval,
}

fn dims(cfg: &ModelConfig, batch: usize, seq_len: usize, layer: usize) -> LayerDims {
    LayerDims {
        cell: cfg.cell,
        batch,
        seq_len,
        input: cfg.layer_input_size(layer),
        hidden: cfg.hidden_size,
    }
}

/// Runs the model over `ws.inputs` from `state`, which receives the final state; returns the
/// mean cross-entropy against `ws.targets` (nats per symbol).
pub fn forward<F: Float>(
    model: &Model<F>,
    ws: &mut Workspace<F>,
    state: &mut State<F>,
    pass: Pass,
) -> f64 {
    forward_logits(model, ws, state);
    let rows = ws.rows();
    let dlogits = match pass {
        Pass::Train => Some(&mut ws.dlogits[..]),
        Pass::Eval => None,
    };
    decoder_loss(
        rows,
        model.config.vocab_size,
        &ws.logits,
        &ws.targets,
        dlogits,
    )
}

/// The forward pass up to `ws.logits` (no loss): what sampling needs.
pub fn forward_logits<F: Float>(model: &Model<F>, ws: &mut Workspace<F>, state: &mut State<F>) {
    let cfg = model.config;
    let (rows, bh) = (ws.rows(), ws.batch * cfg.hidden_size);
    let p = &model.params;
    let lay = &model.layout;
    embedding_forward(
        &p[lay.embedding.clone()],
        cfg.embed_size,
        &ws.inputs,
        &mut ws.embedded,
    );
    for l in 0..cfg.num_layers {
        let (below, this_and_above) = ws.layers.split_at_mut(l);
        let x: &[F] = if l == 0 {
            &ws.embedded
        } else {
            &below[l - 1].h[bh..]
        };
        let r = &lay.layers[l];
        recurrent_forward(
            dims(&cfg, ws.batch, ws.seq_len, l),
            x,
            &p[r.wx.clone()],
            &p[r.wh.clone()],
            &p[r.bias_ih.clone()],
            &p[r.bias_hh.clone()],
            &mut this_and_above[0],
            &mut state.h[l],
            &mut state.c[l],
        );
    }
    let top = &ws.layers[cfg.num_layers - 1].h[bh..];
    let (h, v) = (cfg.hidden_size, cfg.vocab_size);
    decoder_logits(
        rows,
        h,
        v,
        top,
        &p[lay.decoder_weight.clone()],
        &p[lay.decoder_bias.clone()],
        &mut ws.logits,
    );
}

/// Gradient of the mean loss of the last [`Pass::Train`] forward with respect to every
/// parameter, written into `grads` (same layout as the parameters; overwritten).
pub fn backward<F: Float>(model: &Model<F>, ws: &mut Workspace<F>, grads: &mut [F]) {
    let cfg = model.config;
    let (rows, h, v) = (ws.rows(), cfg.hidden_size, cfg.vocab_size);
    let bh = ws.batch * h;
    let p = &model.params;
    let lay = &model.layout;
    grads.fill(F::zero());

    let (dw_dec, db_dec) =
        grads[lay.decoder_weight.start..lay.decoder_bias.end].split_at_mut(h * v);
    let top = &ws.layers[cfg.num_layers - 1].h[bh..];
    decoder_backward(
        rows,
        h,
        v,
        top,
        &p[lay.decoder_weight.clone()],
        &ws.dlogits,
        dw_dec,
        db_dec,
        &mut ws.d_output,
    );

    for l in (0..cfg.num_layers).rev() {
        let d = dims(&cfg, ws.batch, ws.seq_len, l);
        let r = &lay.layers[l];
        let x: &[F] = if l == 0 {
            &ws.embedded
        } else {
            &ws.layers[l - 1].h[bh..]
        };
        let layer_grads = &mut grads[r.all()];
        let (dwx, rest) = layer_grads.split_at_mut(r.wx.len());
        let (dwh, biases) = rest.split_at_mut(r.wh.len());
        let (dbias_ih, dbias_hh) = biases.split_at_mut(r.bias_ih.len());
        recurrent_backward(
            d,
            x,
            &p[r.wx.clone()],
            &p[r.wh.clone()],
            &ws.layers[l],
            &mut ws.d_output[..rows * h],
            BackwardScratch {
                dgates: &mut ws.dgates,
                dh_next: &mut ws.dh_next,
                dc_next: &mut ws.dc_next,
            },
            dwx,
            dwh,
            dbias_ih,
            &mut ws.d_input[..rows * d.input],
        );
        // Both biases enter the pre-activations alike, so they get the same gradient.
        dbias_hh.copy_from_slice(dbias_ih);
        // The gradient sent to this layer's inputs is the gradient reaching the outputs of
        // the layer below.
        std::mem::swap(&mut ws.d_output, &mut ws.d_input);
    }
    embedding_backward(
        &mut grads[lay.embedding.clone()],
        cfg.embed_size,
        &ws.inputs,
        &ws.d_output[..rows * cfg.embed_size],
    );
}
