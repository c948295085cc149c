//! Where a trainer starts: weights alone, or a whole checkpoint.

use crate::files::checkpoint::Checkpoint;
use crate::model::config::ModelConfig;
use crate::model::params::Model;

/// The weights a trainer is built from: a model (fresh or `--init-from`), or a whole checkpoint
/// (a resumed run: optimiser and carried state too).
pub enum Origin {
    /// Weights alone; the optimiser and the carried state start fresh.
    Weights(Model<f32>),
    /// Everything a checkpoint holds.
    Checkpoint(Box<Checkpoint>),
}

impl Origin {
    /// The model's shape.
    pub fn config(&self) -> ModelConfig {
        match self {
            Origin::Weights(model) => model.config,
            Origin::Checkpoint(checkpoint) => checkpoint.model.config,
        }
    }
}

impl From<Model<f32>> for Origin {
    fn from(model: Model<f32>) -> Origin {
        Origin::Weights(model)
    }
}

impl From<Checkpoint> for Origin {
    fn from(checkpoint: Checkpoint) -> Origin {
        Origin::Checkpoint(Box::new(checkpoint))
    }
}
