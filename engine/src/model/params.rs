//! Parameters in one contiguous buffer, and where each tensor lives in it.
//!
//! Layout, in order: `embedding [V, E]`; per layer `l`: `wx [in_l, G·H]`, `wh [H, G·H]`,
//! `bias [G·H]`; then `decoder.weight [H, V]`, `decoder.bias [V]`. Matrices are row-major and
//! stored input-major (`x · W`), so the forward products need no transposes. Gradients use a
//! buffer of the same layout, so clipping and Adam are single passes over flat slices.

use std::ops::Range;

use charrnn_kernels::Float;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Uniform};

use crate::model::cell::{with_cell, Cell};
use crate::model::config::ModelConfig;

/// Where one recurrent layer's tensors are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerRanges {
    /// Input weights `[in, G·H]`.
    pub wx: Range<usize>,
    /// Recurrent weights `[H, G·H]`.
    pub wh: Range<usize>,
    /// Input bias `[G·H]`.
    pub bias_ih: Range<usize>,
    /// Recurrent bias `[G·H]`. Two biases, as PyTorch has: the forward only uses their sum,
    /// but Adam updates each, so a single bias would train differently from PyTorch.
    pub bias_hh: Range<usize>,
}

impl LayerRanges {
    /// The whole layer (its four tensors are contiguous, in this order).
    pub fn all(&self) -> Range<usize> {
        self.wx.start..self.bias_hh.end
    }
}

/// Offsets of every tensor in the flat parameter (and gradient) buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamLayout {
    /// Embedding `[V, E]`.
    pub embedding: Range<usize>,
    /// One entry per recurrent layer.
    pub layers: Vec<LayerRanges>,
    /// Output weights `[H, V]`.
    pub decoder_weight: Range<usize>,
    /// Output bias `[V]`.
    pub decoder_bias: Range<usize>,
    /// Total length.
    pub total: usize,
}

/// A named tensor of the layout, for checkpoints and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// Name in our checkpoints.
    pub name: String,
    /// Row-major shape.
    pub shape: Vec<usize>,
    /// Position in the flat buffer.
    pub range: Range<usize>,
}

impl ParamLayout {
    /// Lays out the parameters of `config` (which must be valid).
    pub fn new(config: &ModelConfig) -> ParamLayout {
        let gh = config.cell.gates() * config.hidden_size;
        let mut offset = 0;
        let mut take = |len: usize| {
            let r = offset..offset + len;
            offset += len;
            r
        };
        let embedding = take(config.vocab_size * config.embed_size);
        let layers = (0..config.num_layers)
            .map(|l| LayerRanges {
                wx: take(config.layer_input_size(l) * gh),
                wh: take(config.hidden_size * gh),
                bias_ih: take(gh),
                bias_hh: take(gh),
            })
            .collect();
        let decoder_weight = take(config.hidden_size * config.vocab_size);
        let decoder_bias = take(config.vocab_size);
        ParamLayout { embedding, layers, decoder_weight, decoder_bias, total: offset }
    }

    /// Every tensor with its name and shape, in buffer order.
    pub fn tensors(&self, config: &ModelConfig) -> Vec<TensorInfo> {
        let gh = config.cell.gates() * config.hidden_size;
        let info =
            |name: String, shape: Vec<usize>, range: &Range<usize>| TensorInfo { name, shape, range: range.clone() };
        let mut out = vec![info("embedding".into(), vec![config.vocab_size, config.embed_size], &self.embedding)];
        for (l, layer) in self.layers.iter().enumerate() {
            out.push(info(format!("layers.{l}.wx"), vec![config.layer_input_size(l), gh], &layer.wx));
            out.push(info(format!("layers.{l}.wh"), vec![config.hidden_size, gh], &layer.wh));
            out.push(info(format!("layers.{l}.bias_ih"), vec![gh], &layer.bias_ih));
            out.push(info(format!("layers.{l}.bias_hh"), vec![gh], &layer.bias_hh));
        }
        out.push(info("decoder.weight".into(), vec![config.hidden_size, config.vocab_size], &self.decoder_weight));
        out.push(info("decoder.bias".into(), vec![config.vocab_size], &self.decoder_bias));
        out
    }
}

/// The LSTM forget-gate bias at initialisation: none set, PyTorch's uniform initialisation
/// kept. (A bias of 1, as char-rnn and Jozefowicz et al. suggest, measured worse on
/// tinyshakespeare after 2 epochs: 1.801 against 1.738 nats/char, seed 42.)
pub const DEFAULT_FORGET_BIAS: Option<f64> = None;

/// A model: its configuration, layout and parameters.
#[derive(Clone, Debug)]
pub struct Model<F> {
    /// Shape of the model.
    pub config: ModelConfig,
    /// Where each tensor is in `params`.
    pub layout: ParamLayout,
    /// All parameters, contiguous.
    pub params: Vec<F>,
}

impl<F: Float> Model<F> {
    /// A freshly initialised model, exactly as PyTorch initialises the same modules: embedding
    /// `N(0, 1)`; recurrent and output weights and biases `U(-1/√H, 1/√H)`. Deterministic for a
    /// given `seed`.
    pub fn new(config: ModelConfig, seed: u64) -> Model<F> {
        Self::with_forget_bias(config, seed, DEFAULT_FORGET_BIAS)
    }

    /// [`Model::new`], and when `forget_bias` is given the LSTM forget gate's two biases are set
    /// to sum to it (input bias `forget_bias`, recurrent bias 0). The RNN and GRU have no
    /// forget gate and ignore it.
    pub fn with_forget_bias(config: ModelConfig, seed: u64, forget_bias: Option<f64>) -> Model<F> {
        let layout = ParamLayout::new(&config);
        let mut params = vec![F::zero(); layout.total];
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let normal = Normal::new(0.0f64, 1.0).expect("unit normal");
        for p in &mut params[layout.embedding.clone()] {
            *p = F::from_f64(normal.sample(&mut rng));
        }
        let bound = 1.0 / (config.hidden_size as f64).sqrt();
        let uniform = Uniform::new_inclusive(-bound, bound).expect("finite bound");
        let mut fill = |range: Range<usize>, rng: &mut ChaCha8Rng| {
            for p in &mut params[range] {
                *p = F::from_f64(uniform.sample(rng));
            }
        };
        for layer in &layout.layers {
            fill(layer.wx.clone(), &mut rng);
            fill(layer.wh.clone(), &mut rng);
            fill(layer.bias_ih.clone(), &mut rng);
            fill(layer.bias_hh.clone(), &mut rng);
        }
        fill(layout.decoder_weight.clone(), &mut rng);
        fill(layout.decoder_bias.clone(), &mut rng);
        if let Some(forget_bias) = forget_bias {
            for layer in &layout.layers {
                // The two biases are adjacent: `bias_ih`, then `bias_hh`.
                let (bias_ih, bias_hh) =
                    params[layer.bias_ih.start..layer.bias_hh.end].split_at_mut(layer.bias_ih.len());
                let hidden = config.hidden_size;
                with_cell!(config.cell, C => C::set_forget_bias(forget_bias, hidden, bias_ih, bias_hh));
            }
        }
        Model { config, layout, params }
    }

    /// The same model in another precision.
    pub fn cast<G: Float>(&self) -> Model<G> {
        Model {
            config: self.config,
            layout: self.layout.clone(),
            params: self.params.iter().map(|&p| G::from_f64(p.to_f64())).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::CellKind;

    /// The GRU is initialised as `nn.GRU`: every recurrent weight and both biases uniform in
    /// `±1/√H`, no forget-gate bias.
    #[test]
    fn gru_initialises_every_recurrent_tensor_uniformly() {
        let config = ModelConfig { cell: CellKind::Gru, vocab_size: 6, embed_size: 5, hidden_size: 16, num_layers: 2 };
        let model = Model::<f64>::with_forget_bias(config, 3, Some(1.0));
        let bound = 0.25;
        for layer in &model.layout.layers {
            for range in [&layer.wx, &layer.wh, &layer.bias_ih, &layer.bias_hh] {
                let values = &model.params[range.clone()];
                assert!(values.iter().all(|x| x.abs() <= bound));
                // Spread over the interval, not a constant.
                let max = values.iter().fold(f64::MIN, |m, &x| m.max(x));
                let min = values.iter().fold(f64::MAX, |m, &x| m.min(x));
                assert!(max > 0.5 * bound && min < -0.5 * bound);
            }
        }
    }
}
