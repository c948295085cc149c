//! Model configuration: which cell, and the sizes that fix every buffer's shape.

pub use crate::model::cell::CellKind;
use crate::setting_names::{field_name, NamesSettings};
use serde::{Deserialize, Serialize};

/// Shape of a model: embedding `vocab_size → embed_size`, `num_layers` recurrent layers of
/// `hidden_size`, linear `hidden_size → vocab_size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// The recurrent cell.
    pub cell: CellKind,
    /// Number of symbols.
    pub vocab_size: usize,
    /// Width of the embedding (the first layer's input).
    pub embed_size: usize,
    /// Width of each recurrent layer's state.
    pub hidden_size: usize,
    /// Number of stacked recurrent layers.
    pub num_layers: usize,
}

/// The most stacked layers a model may have (checked before anything is sized by it).
pub const MAX_LAYERS: usize = 1024;

/// A configuration that cannot make a model.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{}", self.describe_with(&field_name))]
pub enum ConfigError {
    /// A size is zero.
    Zero {
        /// The field of [`ModelConfig`].
        field: &'static str,
    },
    /// More layers than [`MAX_LAYERS`].
    TooManyLayers {
        /// The number asked for.
        got: usize,
    },
    /// More parameters than the engine takes on.
    TooManyParameters {
        /// The largest count accepted.
        limit: usize,
    },
}

impl NamesSettings for ConfigError {
    fn describe_with(&self, name: &dyn Fn(&'static str) -> String) -> String {
        let text = match self {
            ConfigError::Zero { field } => format!("{} must be at least 1", name(field)),
            ConfigError::TooManyLayers { got } => {
                format!("{} must be at most {MAX_LAYERS} (got {got})", name("num_layers"))
            }
            ConfigError::TooManyParameters { limit } => format!(
                "the model would have more than {limit} parameters; reduce {}, {} or {}",
                name("hidden_size"),
                name("embed_size"),
                name("num_layers")
            ),
        };
        format!("invalid model configuration: {text}")
    }
}

impl ModelConfig {
    /// Checks that every size is positive and the model is not absurdly large.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let named = [
            ("vocab_size", self.vocab_size),
            ("embed_size", self.embed_size),
            ("hidden_size", self.hidden_size),
            ("num_layers", self.num_layers),
        ];
        if let Some((field, _)) = named.into_iter().find(|&(_, value)| value == 0) {
            return Err(ConfigError::Zero { field });
        }
        if self.num_layers > MAX_LAYERS {
            return Err(ConfigError::TooManyLayers { got: self.num_layers });
        }
        // 2^31 parameters is 8 GiB of f32 for weights alone, before gradients and moments.
        let limit = 1usize << 31;
        match self.checked_num_params() {
            Some(n) if n <= limit => Ok(()),
            _ => Err(ConfigError::TooManyParameters { limit }),
        }
    }

    /// The most columns of any product's result in a pass (embedding, hidden, gates or
    /// vocabulary width): what each thread's GEMM packing buffers are sized for.
    pub fn widest_product(&self) -> usize {
        [self.embed_size, self.hidden_size, self.cell.gates() * self.hidden_size, self.vocab_size]
            .into_iter()
            .max()
            .unwrap_or(1)
    }

    /// Width of the input of layer `layer`.
    pub fn layer_input_size(&self, layer: usize) -> usize {
        if layer == 0 {
            self.embed_size
        } else {
            self.hidden_size
        }
    }

    /// Total number of parameters.
    ///
    /// # Panics
    /// On overflow; call [`ModelConfig::validate`] first.
    pub fn num_params(&self) -> usize {
        self.checked_num_params().expect("validated model configuration")
    }

    /// Counts both recurrent biases (`b_ih`, `b_hh`), as [`crate::model::params::ParamLayout`] lays
    /// them out.
    fn checked_num_params(&self) -> Option<usize> {
        let gh = self.cell.gates().checked_mul(self.hidden_size)?;
        let mut total = self.vocab_size.checked_mul(self.embed_size)?;
        for layer in 0..self.num_layers {
            let per_layer =
                (self.layer_input_size(layer).checked_add(self.hidden_size)?.checked_add(2)?).checked_mul(gh)?;
            total = total.checked_add(per_layer)?;
        }
        total.checked_add(self.hidden_size.checked_add(1)?.checked_mul(self.vocab_size)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_have_names_gate_counts_and_serde_names() {
        for (cell, name, gates) in [(CellKind::Lstm, "lstm", 4), (CellKind::Rnn, "rnn", 1), (CellKind::Gru, "gru", 3)] {
            assert_eq!(cell.name(), name);
            assert_eq!(cell.gates(), gates);
            let json = serde_json::to_string(&cell).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<CellKind>(&json).unwrap(), cell);
        }
        let config = ModelConfig { cell: CellKind::Gru, vocab_size: 5, embed_size: 3, hidden_size: 4, num_layers: 2 };
        // Embedding, two layers of (in + H + 2 biases)·3H, decoder.
        assert_eq!(config.num_params(), 5 * 3 + (3 + 4 + 2) * 12 + (4 + 4 + 2) * 12 + 4 * 5 + 5);
        for cell in [CellKind::Lstm, CellKind::Rnn, CellKind::Gru] {
            let config = ModelConfig { cell, ..config };
            assert_eq!(config.num_params(), crate::model::params::ParamLayout::new(&config).total, "{cell:?}");
        }
    }
}
