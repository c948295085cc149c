//! PyTorch's names and layouts for our parameters, so that a model moves between
//! `charrnn-fast` and a PyTorch `nn.Embedding` + `nn.LSTM`/`nn.GRU`/`nn.RNN` + `nn.Linear` module
//! (attributes `embedding`, `rnn`, `decoder`) through `state_dict` / `load_state_dict`.
//!
//! | PyTorch name          | PyTorch shape   | ours                         |
//! |-----------------------|-----------------|------------------------------|
//! | `embedding.weight`    | `[V, E]`        | `embedding` as is            |
//! | `rnn.weight_ih_l{k}`  | `[G·H, in]`     | `layers.k.wx [in, G·H]`, transposed |
//! | `rnn.weight_hh_l{k}`  | `[G·H, H]`      | `layers.k.wh [H, G·H]`, transposed  |
//! | `rnn.bias_ih_l{k}`    | `[G·H]`         | `layers.k.bias_ih`           |
//! | `rnn.bias_hh_l{k}`    | `[G·H]`         | `layers.k.bias_hh`           |
//! | `decoder.weight`      | `[V, H]`        | `decoder.weight [H, V]`, transposed |
//! | `decoder.bias`        | `[V]`           | `decoder.bias`               |
//!
//! Gate order is PyTorch's on both sides: `i, f, g, o` (LSTM), `r, z, n` (GRU). The conversion lives here, at the file
//! edge; inside, the weights stay input-major so the forward products need no transposes.

use charrnn_kernels::Float;

use crate::model::config::ModelConfig;
use crate::model::params::ParamLayout;

/// A tensor under its PyTorch name, in PyTorch's layout.
#[derive(Clone, Debug, PartialEq)]
pub struct TorchTensor<F> {
    /// `state_dict` key.
    pub name: String,
    /// PyTorch shape.
    pub shape: Vec<usize>,
    /// Row-major data.
    pub data: Vec<F>,
}

/// How a tensor of ours maps to PyTorch's.
enum Map {
    /// Same layout.
    Same,
    /// Ours is `[rows, cols]`, PyTorch's is `[cols, rows]`.
    Transposed { rows: usize, cols: usize },
}

/// `(PyTorch name, PyTorch shape, our range, mapping)` for every tensor.
fn mapping(config: &ModelConfig, layout: &ParamLayout) -> Vec<(String, Vec<usize>, std::ops::Range<usize>, Map)> {
    let (v, e, h) = (config.vocab_size, config.embed_size, config.hidden_size);
    let gh = config.cell.gates() * h;
    let mut out = vec![("embedding.weight".to_owned(), vec![v, e], layout.embedding.clone(), Map::Same)];
    for (k, layer) in layout.layers.iter().enumerate() {
        let input = config.layer_input_size(k);
        out.push((
            format!("rnn.weight_ih_l{k}"),
            vec![gh, input],
            layer.wx.clone(),
            Map::Transposed { rows: input, cols: gh },
        ));
        out.push((format!("rnn.weight_hh_l{k}"), vec![gh, h], layer.wh.clone(), Map::Transposed { rows: h, cols: gh }));
        out.push((format!("rnn.bias_ih_l{k}"), vec![gh], layer.bias_ih.clone(), Map::Same));
        out.push((format!("rnn.bias_hh_l{k}"), vec![gh], layer.bias_hh.clone(), Map::Same));
    }
    out.push((
        "decoder.weight".to_owned(),
        vec![v, h],
        layout.decoder_weight.clone(),
        Map::Transposed { rows: h, cols: v },
    ));
    out.push(("decoder.bias".to_owned(), vec![v], layout.decoder_bias.clone(), Map::Same));
    out
}

/// Our flat buffer (parameters, or gradients of the same layout) as PyTorch tensors.
pub fn to_torch<F: Float>(config: &ModelConfig, layout: &ParamLayout, flat: &[F]) -> Vec<TorchTensor<F>> {
    mapping(config, layout)
        .into_iter()
        .map(|(name, shape, range, map)| {
            let ours = &flat[range];
            let data = match map {
                Map::Same => ours.to_vec(),
                Map::Transposed { rows, cols } => transpose(ours, rows, cols),
            };
            TorchTensor { name, shape, data }
        })
        .collect()
}

/// Builds our flat buffer from PyTorch tensors, which `get(name, shape)` returns (row-major,
/// exactly `shape`'s element count) or explains why it cannot.
pub fn from_torch<F: Float>(
    config: &ModelConfig,
    layout: &ParamLayout,
    mut get: impl FnMut(&str, &[usize]) -> Result<Vec<F>, String>,
) -> Result<Vec<F>, String> {
    let mut flat = vec![F::zero(); layout.total];
    for (name, shape, range, map) in mapping(config, layout) {
        let data = get(&name, &shape)?;
        if data.len() != range.len() {
            return Err(format!("tensor '{name}' has {} elements, expected {}", data.len(), range.len()));
        }
        match map {
            Map::Same => flat[range].copy_from_slice(&data),
            // PyTorch's [cols, rows] back to our [rows, cols].
            Map::Transposed { rows, cols } => flat[range].copy_from_slice(&transpose(&data, cols, rows)),
        }
    }
    Ok(flat)
}

/// Names of every tensor PyTorch's module has, in `state_dict` order.
pub fn torch_names(config: &ModelConfig, layout: &ParamLayout) -> Vec<String> {
    mapping(config, layout).into_iter().map(|(name, ..)| name).collect()
}

/// `[rows, cols]` → `[cols, rows]`.
fn transpose<F: Float>(x: &[F], rows: usize, cols: usize) -> Vec<F> {
    let mut out = vec![F::zero(); x.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = x[r * cols + c];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::CellKind;
    use crate::model::params::Model;

    #[test]
    fn round_trips_and_transposes() {
        for cell in [CellKind::Lstm, CellKind::Rnn, CellKind::Gru] {
            let config = ModelConfig { cell, vocab_size: 5, embed_size: 3, hidden_size: 4, num_layers: 2 };
            let model = Model::<f32>::new(config, 1);
            let torch = to_torch(&config, &model.layout, &model.params);
            let wih = torch.iter().find(|t| t.name == "rnn.weight_ih_l0").unwrap();
            let gh = cell.gates() * 4;
            assert_eq!(wih.shape, vec![gh, 3]);
            // PyTorch's [g, i] is our wx[i, g].
            let wx = &model.params[model.layout.layers[0].wx.clone()];
            assert_eq!(wih.data[2 * 3 + 1], wx[gh + 2]);
            let back = from_torch(&config, &model.layout, |name, shape| {
                let t = torch.iter().find(|t| t.name == name).ok_or("missing")?;
                assert_eq!(t.shape, shape);
                Ok(t.data.clone())
            })
            .unwrap();
            assert_eq!(back, model.params);
        }
    }
}
