//! Timing full training steps (forward, backward, clip, Adam), as `bench` reports them: the
//! loop over warm-up and timed steps, the tokens/s of each, where the time went by phase, and
//! the standard FLOP count a rate is turned into GFLOP/s by. A front end only prints.

use std::time::Instant;

use crate::data::TokenStream;
use crate::model::config::ModelConfig;
use crate::model::phase_times::{Phase, PhaseTimes, Span};
use crate::training::trainer::{TrainError, Trainer};

/// The standard count of floating-point operations per token of a training step: forward
/// `2·G·H·(E_l + H)` per layer and `2·H·V` for the output, times 3 for forward and backward. It
/// is the work of the plain algorithm, not the work done here (the folded embedding skips most
/// of layer 0's input side), so that rates compare across implementations.
pub fn standard_flops_per_token(config: &ModelConfig) -> f64 {
    let gates = config.cell.gates() as f64;
    let (h, v) = (config.hidden_size as f64, config.vocab_size as f64);
    let layers: f64 = (0..config.num_layers).map(|l| 2.0 * gates * h * (config.layer_input_size(l) as f64 + h)).sum();
    3.0 * (layers + 2.0 * h * v)
}

/// What the timed steps measured.
pub struct TimedSteps {
    /// Tokens per second of each timed step, in increasing order.
    pub rates: Vec<f64>,
    /// The timed steps' phases, summed over steps and batch parts.
    pub phases: PhaseTimes,
    /// The batch parts that ran in parallel.
    pub parts: usize,
}

impl TimedSteps {
    /// The median rate (the upper one of an even count).
    pub fn median(&self) -> f64 {
        self.rates[self.rates.len() / 2]
    }

    /// Mean milliseconds per step of each phase: a phase the batch parts run in parallel is
    /// averaged over the parts, a phase run once per step is not.
    pub fn phase_ms_per_step(&self) -> Vec<(Phase, f64)> {
        let (steps, parts) = (self.rates.len() as f64, self.parts as f64);
        self.phases
            .each()
            .iter()
            .map(|&(phase, d)| (phase, d.as_secs_f64() * 1e3 / steps / if phase.once_per_step() { 1.0 } else { parts }))
            .collect()
    }
}

/// Runs `warmup` untimed then `steps` timed training steps (at least one) on consecutive
/// windows of `stream` (the layout does not matter for speed), and hands each timed step's
/// spans, if the trainer records them, to `on_span(step, track, span)` (steps from 1).
///
/// # Panics
/// If `steps` is 0 or the stream holds fewer than 2 tokens.
pub fn time_steps(
    trainer: &mut Trainer,
    stream: &TokenStream,
    warmup: u32,
    steps: u32,
    mut on_span: impl FnMut(u32, usize, Span),
) -> Result<TimedSteps, TrainError> {
    assert!(steps > 0 && stream.len() >= 2, "time_steps: no step to time, or no pair of tokens");
    let mut cursor = 0usize;
    let mut rates = Vec::with_capacity(steps as usize);
    let mut phases = PhaseTimes::default();
    for i in 0..warmup + steps {
        let (inputs, targets) = trainer.batch_mut();
        let tokens_per_step = inputs.len();
        for (j, (x, y)) in inputs.iter_mut().zip(targets.iter_mut()).enumerate() {
            let p = (cursor + j) % (stream.len() - 1);
            *x = stream.get(p);
            *y = stream.get(p + 1);
        }
        cursor += tokens_per_step;
        let started = Instant::now();
        trainer.step_loaded()?;
        let seconds = started.elapsed().as_secs_f64();
        let step_phases = trainer.take_phase_times();
        let timed_step = i.checked_sub(warmup).map(|s| s + 1);
        trainer.drain_spans(|track, span| {
            if let Some(step) = timed_step {
                on_span(step, track, span);
            }
        });
        if timed_step.is_some() {
            rates.push(tokens_per_step as f64 / seconds);
            phases.add(&step_phases);
        }
    }
    rates.sort_by(f64::total_cmp);
    Ok(TimedSteps { rates, phases, parts: trainer.num_parts() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::CellKind;

    /// The default model's count: 3 × (2 layers of 2·4·128·(128+128) + 2·128·65).
    #[test]
    fn the_standard_count_of_the_default_model() {
        let config =
            ModelConfig { cell: CellKind::Lstm, vocab_size: 65, embed_size: 128, hidden_size: 128, num_layers: 2 };
        let expected = 3.0 * (2.0 * (2.0 * 4.0 * 128.0 * 256.0) + 2.0 * 128.0 * 65.0);
        assert_eq!(standard_flops_per_token(&config), expected);
        let gru = ModelConfig { cell: CellKind::Gru, embed_size: 64, num_layers: 1, ..config };
        assert_eq!(standard_flops_per_token(&gru), 3.0 * (2.0 * 3.0 * 128.0 * (64.0 + 128.0) + 2.0 * 128.0 * 65.0));
    }
}
