//! Each layer's recurrent weights prepared for the products that read them at every time step
//! ([`PreparedMatrix`]): `Wh` for the forward recurrence and `Whᵀ` for the backward one, in the
//! precision of the products (in bf16, the prepared copy is the bf16 copy of the weights; the
//! `f32` master weights stay in the model), in the form the kernels choose for the rows of a
//! pass.
//!
//! The trainer packs them once per step, right after Adam has updated the weights, for every
//! part of the batch at once (each part used to pack both for itself in its own passes);
//! `forward_logits` packs `Wh` once for weights that do not change. A pass reads them and never
//! packs.

use charrnn_kernels::gemm::Op;
use charrnn_kernels::prepared::PreparedMatrix;
use charrnn_kernels::{Float, Precision};
use rayon::prelude::*;

use crate::model::config::ModelConfig;
use crate::model::params::Model;
use crate::model::weight_drop::WeightDrop;

/// The packed recurrent weights of every layer.
#[derive(Clone, Debug)]
pub struct PackedWeights<F> {
    /// Each layer's `Wh` (`[H, G·H]`).
    wh: Vec<PreparedMatrix<F>>,
    /// Each layer's `Whᵀ` (`[G·H, H]`); empty when packed for inference.
    wh_t: Vec<PreparedMatrix<F>>,
    precision: Precision,
}

impl<F: Float> PackedWeights<F> {
    /// Room for `Wh` and `Whᵀ` of every layer, for passes of up to `rows` batch rows whose
    /// products are in `precision`.
    pub fn for_training(config: &ModelConfig, rows: usize, precision: Precision) -> PackedWeights<F> {
        Self::with(config, rows, precision, true)
    }

    /// Room for `Wh` of every layer (forward passes only).
    pub fn for_inference(config: &ModelConfig, rows: usize, precision: Precision) -> PackedWeights<F> {
        Self::with(config, rows, precision, false)
    }

    fn with(config: &ModelConfig, rows: usize, precision: Precision, training: bool) -> PackedWeights<F> {
        let (h, gh, layers) = (config.hidden_size, config.cell.gates() * config.hidden_size, config.num_layers);
        let wh = (0..layers).map(|_| PreparedMatrix::new(h, gh, precision, rows)).collect();
        let wh_t =
            (0..if training { layers } else { 0 }).map(|_| PreparedMatrix::new(gh, h, precision, rows)).collect();
        PackedWeights { wh, wh_t, precision }
    }

    /// Elements of `F` that [`PackedWeights::for_training`] (or, without `training`,
    /// [`PackedWeights::for_inference`]) allocates (memory estimates).
    pub fn allocation(config: &ModelConfig, training: bool) -> usize {
        let (h, gh) = (config.hidden_size, config.cell.gates() * config.hidden_size);
        let per_layer =
            PreparedMatrix::<F>::capacity(h, gh) + if training { PreparedMatrix::<F>::capacity(gh, h) } else { 0 };
        config.num_layers * per_layer
    }

    /// Packs the recurrent weights of `model`, every layer and both orientations at once (one
    /// task each on the pool). Allocates nothing.
    pub fn pack(&mut self, model: &Model<F>) {
        let (p, layers) = (&model.params, &model.layout.layers);
        self.pack_layers(model, |l| &p[layers[l].wh.clone()]);
    }

    /// Packs what a training step with weight drop reads: each layer's `Wh ⊙ mask` as `drop`
    /// last drew it ([`WeightDrop::draw`]); `model`'s own weights when `drop` drops nothing.
    pub fn pack_dropped(&mut self, model: &Model<F>, drop: &WeightDrop<F>) {
        if drop.is_active() {
            self.pack_layers(model, |l| drop.dropped(l));
        } else {
            self.pack(model);
        }
    }

    /// Packs `wh(l)` (`[H, G·H]`) as layer `l`'s `Wh` and `Whᵀ`, every layer and both
    /// orientations at once.
    fn pack_layers<'w>(&mut self, model: &Model<F>, wh: impl Fn(usize) -> &'w [F] + Sync)
    where
        F: 'w,
    {
        // `Wh` is stored `[H, G·H]`: it is `B` of the forward products and, transposed, of the
        // backward ones; its rows are G·H apart either way.
        let ld = model.config.cell.gates() * model.config.hidden_size;
        let forward = self.wh.par_iter_mut().enumerate().map(|(l, packed)| (Op::N, l, packed));
        let backward = self.wh_t.par_iter_mut().enumerate().map(|(l, packed)| (Op::T, l, packed));
        forward.chain(backward).for_each(|(op, l, packed)| packed.prepare(op, wh(l), ld));
    }

    /// Layer `l`'s packed `Wh`.
    pub fn wh(&self, l: usize) -> &PreparedMatrix<F> {
        &self.wh[l]
    }

    /// Layer `l`'s packed `Whᵀ`.
    ///
    /// # Panics
    /// If these weights were packed for inference.
    pub fn wh_t(&self, l: usize) -> &PreparedMatrix<F> {
        self.wh_t.get(l).expect("Whᵀ is packed for training only (PackedWeights::for_training)")
    }

    /// What the products that read these weights round their operands to.
    pub fn precision(&self) -> Precision {
        self.precision
    }
}
