//! Inverted dropout on the recurrent layers' outputs: between stacked layers, as char-rnn does
//! it, and, with its own probability, on the last layer's output before the output layer (as
//! Zaremba et al. 2014 drop every non-recurrent connection).
//!
//! In a training pass, the outputs of layer `l` (for every `l` but the last) are multiplied by
//! a mask `m` before they feed layer `l + 1`: `m = 1/(1 − p)` with probability `1 − p`, else 0
//! (so the expected input is unchanged and evaluation needs no rescaling). The last layer's
//! outputs are multiplied by a mask of probability `output_p` (boundary `num_layers − 1`)
//! before the output layer. Nothing is dropped on the embedding, in evaluation or in sampling.
//! The backward pass multiplies the gradient sent to layer `l`'s outputs by the same mask.
//!
//! # Masks are a pure function of `(seed, step, layer, t, row, unit)`
//! There is no hidden RNG state, so a run is reproducible and a resumed run draws exactly the
//! masks the uninterrupted one would have, and a batch split into parts (one per thread) draws
//! the same masks however it is split (each row is keyed by its row in the whole batch).
//! The bits of element `(t, row, j)` of boundary `layer` are the `j`-th output of a
//! SplitMix64 generator whose state is `k = absorb(absorb(absorb(absorb(absorb(0, seed),
//! step), layer), t), row)`, where `absorb(k, x) = mix64((k ^ x) + γ)`, `γ = 0x9E3779B97F4A7C15`
//! and `mix64` is SplitMix64's output function (Stafford's variant 13). An element is kept
//! when its 64 bits, read as an unsigned integer, are at least `⌊p·2⁶⁴⌋`: probability
//! `1 − p` up to 2⁻⁶⁴.

use charrnn_kernels::Float;

/// Dropout settings for one training pass, set on [`crate::Workspace::dropout`] by the trainer
/// before each step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dropout {
    /// Probability of dropping an element between layers, in `[0, 1)`; 0: none.
    pub p: f64,
    /// Probability of dropping an element of the last layer's output, in `[0, 1)`; 0: none.
    pub output_p: f64,
    /// Seed of the run's masks.
    pub seed: u64,
    /// The training step (1-based: the optimiser's step count once this step is done).
    pub step: u64,
    /// Row of the whole batch that the workspace's row 0 holds (a batch split into parts keys
    /// each row's mask by its row in the whole batch).
    pub first_row: usize,
}

impl Dropout {
    /// Whether any element can be dropped.
    pub fn is_active(&self) -> bool {
        self.p > 0.0 || self.output_p > 0.0
    }

    /// The settings of the mask on the last layer's output: `output_p` in the place of `p`.
    pub fn on_output(&self) -> Dropout {
        Dropout { p: self.output_p, ..*self }
    }
}

/// What one layer boundary keeps for the backward pass.
#[derive(Clone, Debug, Default)]
pub struct DropoutBuffers<F> {
    /// The mask `[T·B, H]`: `1/(1 − p)` or 0.
    pub mask: Vec<F>,
    /// The layer's outputs times the mask `[T·B, H]`: the next layer's input.
    pub dropped: Vec<F>,
}

const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function.
#[inline]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[inline]
fn absorb(key: u64, x: u64) -> u64 {
    mix64((key ^ x).wrapping_add(GAMMA))
}

/// Fills `mask` (`[seq_len·batch, hidden]`, time-major rows) for boundary `layer` (between
/// layers `layer` and `layer + 1`) of the pass `d` describes.
pub fn fill_mask<F: Float>(d: &Dropout, layer: usize, batch: usize, hidden: usize, mask: &mut [F]) {
    assert!((0.0..1.0).contains(&d.p), "dropout probability {} outside [0, 1)", d.p);
    assert!(batch > 0 && mask.len().is_multiple_of(batch * hidden.max(1)), "mask is not [T·B, H]");
    // p < 1, so p·2⁶⁴ < 2⁶⁴ (the cast saturates in any case).
    let threshold = (d.p * 18_446_744_073_709_551_616.0) as u64;
    let keep = F::from_f64(1.0 / (1.0 - d.p));
    let layer_key = absorb(absorb(absorb(0, d.seed), d.step), layer as u64);
    for (row_index, row) in mask.chunks_exact_mut(hidden.max(1)).enumerate() {
        let (t, b) = (row_index / batch, row_index % batch);
        let mut state = absorb(absorb(layer_key, t as u64), (d.first_row + b) as u64);
        for m in row {
            state = state.wrapping_add(GAMMA);
            *m = if mix64(state) >= threshold { keep } else { F::zero() };
        }
    }
}

/// `out = x ⊙ mask`.
pub fn apply_mask<F: Float>(x: &[F], mask: &[F], out: &mut [F]) {
    assert!(x.len() == mask.len() && out.len() == mask.len());
    for ((o, &a), &m) in out.iter_mut().zip(x).zip(mask) {
        *o = a * m;
    }
}

/// `x ⊙= mask`.
pub fn mask_in_place<F: Float>(x: &mut [F], mask: &[F]) {
    assert_eq!(x.len(), mask.len());
    for (a, &m) in x.iter_mut().zip(mask) {
        *a *= m;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(p: f64) -> Dropout {
        Dropout { p, output_p: 0.0, seed: 42, step: 7, first_row: 0 }
    }

    #[test]
    fn keep_rate_is_one_minus_p_and_kept_elements_are_scaled() {
        let (batch, seq_len, hidden) = (50, 50, 128);
        for p in [0.1, 0.25, 0.5, 0.9] {
            let mut mask = vec![0.0f32; batch * seq_len * hidden];
            fill_mask(&settings(p), 0, batch, hidden, &mut mask);
            let kept = mask.iter().filter(|&&m| m != 0.0).count() as f64 / mask.len() as f64;
            // 320 000 Bernoulli draws: the standard deviation of the rate is below 1e-3.
            assert!((kept - (1.0 - p)).abs() < 5e-3, "p = {p}: keep rate {kept}");
            let scale = (1.0 / (1.0 - p)) as f32;
            assert!(mask.iter().all(|&m| m == 0.0 || m == scale), "p = {p}");
            let mean = mask.iter().map(|&m| m as f64).sum::<f64>() / mask.len() as f64;
            assert!((mean - 1.0).abs() < 0.05, "p = {p}: mean {mean}");
        }
        let mut mask = vec![0.0f64; 1000];
        fill_mask(&settings(0.0), 1, 10, 10, &mut mask);
        assert!(mask.iter().all(|&m| m == 1.0), "p = 0 keeps everything");
    }

    #[test]
    fn masks_are_a_function_of_seed_step_layer_and_whole_batch_row() {
        let (batch, seq_len, hidden) = (6, 3, 5);
        let mask = |d: Dropout, layer: usize, rows: usize| {
            let mut m = vec![0.0f32; rows * seq_len * hidden];
            fill_mask(&d, layer, rows, hidden, &mut m);
            m
        };
        let whole = mask(settings(0.5), 0, batch);
        assert_eq!(whole, mask(settings(0.5), 0, batch), "deterministic");
        assert_ne!(whole, mask(Dropout { step: 8, ..settings(0.5) }, 0, batch));
        assert_ne!(whole, mask(Dropout { seed: 43, ..settings(0.5) }, 0, batch));
        assert_ne!(whole, mask(settings(0.5), 1, batch));
        // Rows 2..6 of the whole batch, drawn by a part that holds only them.
        let part = mask(Dropout { first_row: 2, ..settings(0.5) }, 0, batch - 2);
        for t in 0..seq_len {
            for b in 0..batch - 2 {
                let w = &whole[(t * batch + b + 2) * hidden..(t * batch + b + 3) * hidden];
                let p = &part[(t * (batch - 2) + b) * hidden..(t * (batch - 2) + b + 1) * hidden];
                assert_eq!(w, p, "t {t}, row {}", b + 2);
            }
        }
    }
}
