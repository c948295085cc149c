//! What scoring a text measured.

/// The summed loss of the predicted symbols.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score {
    /// Σ −ln p(symbol), in nats.
    pub nats: f64,
    /// How many symbols were predicted.
    pub predicted: usize,
}

impl Score {
    /// Mean loss in nats per symbol.
    pub fn mean_nats(&self) -> f64 {
        self.nats / self.predicted as f64
    }

    /// Mean loss in bits per symbol (per character, or per byte for a byte vocabulary).
    pub fn mean_bits(&self) -> f64 {
        self.mean_nats() / std::f64::consts::LN_2
    }
}
