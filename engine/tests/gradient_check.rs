//! Analytic gradients of every parameter against central finite differences, in f64, on a tiny
//! model (V=7, E=5, H=6, L=2, B=3, T=4) for every cell (LSTM, RNN, GRU), starting from a
//! non-zero carried state; and again with dropout between layers (L=3, so two boundaries):
//! with the masks fixed by `(seed, step)`, the training loss is a deterministic function of
//! the parameters, and its gradient is checked the same way; and with DropConnect on the
//! recurrent weights (weight drop), whose masks `(seed, step)` fix too.
//!
//! Bound: for every element, |analytic − numeric| ≤ 1e-6 · max(|analytic|, |numeric|) + 1e-9.
//! Central differences with ε = 1e-5 in f64 have a truncation error of order ε² ≈ 1e-10 and
//! a rounding error of order 1e-16/ε ≈ 1e-11, well inside that bound; a wrong term in any
//! gradient is orders of magnitude outside it.

use charrnn_engine::model::dropout::Dropout;
use charrnn_engine::model::pass::{backward, forward, Pass, PassOptions};
use charrnn_engine::model::phase_times::PhaseTimes;
use charrnn_engine::model::weight_drop::WeightDrop;
use charrnn_engine::{CellKind, Model, ModelConfig, PackedWeights, State, Workspace};
use charrnn_kernels::Float;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const BATCH: usize = 3;
const SEQ_LEN: usize = 4;
const CELLS: [CellKind; 3] = [CellKind::Lstm, CellKind::Rnn, CellKind::Gru];

fn tiny(cell: CellKind) -> ModelConfig {
    ModelConfig { cell, vocab_size: 7, embed_size: 5, hidden_size: 6, num_layers: 2 }
}

/// Dropout settings of the checks (a fixed seed and step fix the masks).
fn dropout(p: f64) -> Dropout {
    Dropout { p, output_p: p, seed: 17, step: 3, first_row: 0 }
}

/// What a pass drops: units (between layers and on the last layer's output) and, with this
/// probability (0: none), recurrent weights, whose masks are those of seed 17 and step 3.
#[derive(Clone, Copy)]
struct Drops {
    units: Option<Dropout>,
    weights: f64,
}

impl From<Option<Dropout>> for Drops {
    fn from(units: Option<Dropout>) -> Drops {
        Drops { units, weights: 0.0 }
    }
}

/// The weight masks of the checks, drawn for `m`'s current weights.
fn weight_drop<F: Float>(m: &Model<F>, p: f64) -> WeightDrop<F> {
    let mut drop = WeightDrop::new(&m.config, p, 17);
    drop.draw(m, 3);
    drop
}

/// A model, a batch and a carried-in state, all random.
fn setup(cell: CellKind, seed: u64) -> (Model<f64>, Workspace<f64>, State<f64>) {
    setup_config(tiny(cell), seed)
}

fn setup_config(config: ModelConfig, seed: u64) -> (Model<f64>, Workspace<f64>, State<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut model = Model::<f64>::new(config, seed);
    // Spread the biases so no gate sits at its initial value.
    for p in &mut model.params {
        *p += rng.random_range(-0.3..0.3);
    }
    let mut ws = Workspace::new(&config, BATCH, SEQ_LEN);
    for (x, y) in ws.inputs.iter_mut().zip(ws.targets.iter_mut()) {
        *x = rng.random_range(0..config.vocab_size as u32);
        *y = rng.random_range(0..config.vocab_size as u32);
    }
    let mut state = State::zeros(&config, BATCH);
    // Slab after slab (every layer's `h`, then every layer's `c`), each layer in turn.
    let slabs = config.cell.state_names().len();
    for (l, s) in (0..slabs).flat_map(|s| (0..config.num_layers).map(move |l| (l, s))) {
        for x in &mut state.slabs[l][s] {
            *x = rng.random_range(-0.8..0.8);
        }
    }
    (model, ws, state)
}

/// A forward pass with `drops` (mean loss over this batch), timing discarded.
fn fwd<F: Float>(m: &Model<F>, ws: &mut Workspace<F>, st: &mut State<F>, pass: Pass, drops: impl Into<Drops>) -> f64 {
    let drops = drops.into();
    let options = PassOptions { dropout: drops.units, loss_rows: None };
    forward(m, &packed(m, ws, drops.weights), ws, st, pass, &options, &mut PhaseTimes::default())
}

/// The backward pass after [`fwd`] with the same `drops`: the gradient of the weights
/// themselves (with weight drop, the products' gradient times the mask).
fn bwd<F: Float>(m: &Model<F>, ws: &mut Workspace<F>, grads: &mut [F], drops: impl Into<Drops>) {
    let drops = drops.into();
    let options = PassOptions { dropout: drops.units, loss_rows: None };
    backward(m, &packed(m, ws, drops.weights), ws, grads, &options, &mut PhaseTimes::default());
    weight_drop(m, drops.weights).mask_gradient(&m.layout, grads);
}

/// The recurrent weights of `m` packed for passes over `ws` (anew: the checks change weights),
/// with a fraction `weight_drop` of them dropped.
fn packed<F: Float>(m: &Model<F>, ws: &Workspace<F>, weight_drop_p: f64) -> PackedWeights<F> {
    let mut packed = PackedWeights::for_training(&m.config, ws.batch, ws.precision());
    packed.pack_dropped(m, &weight_drop(m, weight_drop_p));
    packed
}

fn check(cell: CellKind) {
    check_config(tiny(cell), None, 0.0);
}

/// Checks every gradient of `config`'s model, with dropout `p` between layers and on the last
/// layer's output when given
/// (the finite differences then use training passes, which draw the same masks).
/// and a fraction `weights` of the recurrent weights dropped.
fn check_config(config: ModelConfig, p: Option<f64>, weights: f64) {
    let cell = config.cell;
    let (mut model, mut ws, state) = setup_config(config, 5);
    let drop = Drops { units: p.map(dropout), weights };
    let probe = if p.is_some() { Pass::Train } else { Pass::Eval };
    let mut grads = vec![0.0f64; model.params.len()];
    fwd(&model, &mut ws, &mut state.clone(), Pass::Train, drop);
    bwd(&model, &mut ws, &mut grads, drop);
    if let Some(p) = p {
        let masks = &ws.dropout_buffers;
        assert_eq!(masks.len(), config.num_layers, "a mask between layers and one on the output");
        for (l, mask) in masks.iter().enumerate() {
            let dropped = mask.mask.iter().filter(|&&m| m == 0.0).count();
            assert!(dropped > 0 && p > 0.0, "{cell:?}: the mask after layer {l} drops nothing");
        }
    }
    if weights > 0.0 {
        let drop = weight_drop(&model, weights);
        for l in 0..config.num_layers {
            let wh = &model.params[model.layout.layers[l].wh.clone()];
            let dropped = drop.dropped(l).iter().zip(wh).filter(|&(&d, &w)| d == 0.0 && w != 0.0).count();
            assert!(dropped > 0, "{cell:?}: layer {l}'s recurrent weights: none dropped");
        }
    }

    let eps = 1e-5;
    let mut worst = 0.0f64;
    for tensor in model.layout.tensors(&model.config) {
        let mut nonzero = 0;
        for idx in tensor.range.clone() {
            let saved = model.params[idx];
            model.params[idx] = saved + eps;
            let plus = fwd(&model, &mut ws, &mut state.clone(), probe, drop);
            model.params[idx] = saved - eps;
            let minus = fwd(&model, &mut ws, &mut state.clone(), probe, drop);
            model.params[idx] = saved;
            let numeric = (plus - minus) / (2.0 * eps);
            let analytic = grads[idx];
            let scale = analytic.abs().max(numeric.abs());
            let err = (analytic - numeric).abs();
            assert!(
                err <= 1e-6 * scale + 1e-9,
                "{cell:?} {}[{}]: analytic {analytic:e}, numeric {numeric:e}",
                tensor.name,
                idx - tensor.range.start
            );
            if scale > 1e-6 {
                worst = worst.max(err / scale);
                nonzero += 1;
            }
        }
        // Every tensor must actually receive gradient (the embedding only in used rows).
        assert!(nonzero > 0, "{cell:?} {}: gradient is zero everywhere", tensor.name);
    }
    println!("{cell:?} (dropout {p:?}, weight drop {weights}): worst relative error {worst:e}");
}

#[test]
fn lstm_gradients_match_finite_differences() {
    check(CellKind::Lstm);
}

#[test]
fn rnn_gradients_match_finite_differences() {
    check(CellKind::Rnn);
}

#[test]
fn gru_gradients_match_finite_differences() {
    check(CellKind::Gru);
}

/// Dropout between three layers (two boundaries) and on the last layer's output, p = 0.4,
/// every cell; and on one layer's output alone.
#[test]
fn gradients_with_dropout_match_finite_differences() {
    for cell in CELLS {
        check_config(ModelConfig { num_layers: 3, ..tiny(cell) }, Some(0.4), 0.0);
        check_config(ModelConfig { num_layers: 1, ..tiny(cell) }, Some(0.4), 0.0);
    }
}

/// DropConnect on the recurrent weights, p = 0.4, every cell: alone over two layers, and with
/// dropout between and after three.
#[test]
fn gradients_with_weight_drop_match_finite_differences() {
    for cell in CELLS {
        check_config(tiny(cell), None, 0.4);
        check_config(ModelConfig { num_layers: 3, ..tiny(cell) }, Some(0.4), 0.4);
    }
}

/// Dropout with p = 0 is no dropout, bit for bit; evaluation and sampling never drop; a
/// training pass with p > 0 does.
#[test]
fn dropout_is_off_at_zero_in_evaluation_and_in_sampling() {
    for cell in CELLS {
        let (model, mut ws, state) = setup(cell, 21);
        let mut run = |settings: Option<Dropout>, pass: Pass| {
            let mut grads = vec![0.0f64; model.params.len()];
            let loss = fwd(&model, &mut ws, &mut state.clone(), pass, settings);
            if pass == Pass::Train {
                bwd(&model, &mut ws, &mut grads, settings);
            }
            (loss.to_bits(), grads.iter().map(|g| g.to_bits()).collect::<Vec<_>>(), ws.logits.clone())
        };
        let plain = run(None, Pass::Train);
        assert_eq!(plain, run(Some(dropout(0.0)), Pass::Train), "{cell:?}: p = 0 differs from no dropout");
        let eval = run(None, Pass::Eval);
        assert_eq!(eval.0, plain.0, "{cell:?}");
        assert_eq!(run(Some(dropout(0.5)), Pass::Eval), eval, "{cell:?}: evaluation dropped");
        let dropped = run(Some(dropout(0.5)), Pass::Train);
        assert_ne!(dropped.0, plain.0, "{cell:?}: training with p = 0.5 dropped nothing");
        assert_eq!(dropped, run(Some(dropout(0.5)), Pass::Train), "{cell:?}: masks are not reproducible");

        // Sampling's forward pass (`forward_logits`) takes no dropout at all.
    }
}

/// The f32 path (sgemm, f32 kernels) agrees with the f64 analytic gradients.
#[test]
fn f32_gradients_match_f64() {
    for (cell, p) in CELLS.into_iter().flat_map(|c| [(c, None), (c, Some(0.3))]) {
        let (model64, mut ws64, state64) = setup(cell, 9);
        let drop = p.map(dropout);
        let mut g64 = vec![0.0f64; model64.params.len()];
        let loss64 = fwd(&model64, &mut ws64, &mut state64.clone(), Pass::Train, drop);
        bwd(&model64, &mut ws64, &mut g64, drop);

        let model32: Model<f32> = model64.cast();
        let mut ws32 = Workspace::<f32>::new(&model32.config, BATCH, SEQ_LEN);
        ws32.inputs.copy_from_slice(&ws64.inputs);
        ws32.targets.copy_from_slice(&ws64.targets);
        let mut state32 = State::<f32> {
            slabs: state64
                .slabs
                .iter()
                .map(|layer| layer.iter().map(|v| v.iter().map(|&x| x as f32).collect()).collect())
                .collect(),
        };
        let mut g32 = vec![0.0f32; model32.params.len()];
        let loss32 = fwd(&model32, &mut ws32, &mut state32, Pass::Train, drop);
        bwd(&model32, &mut ws32, &mut g32, drop);
        assert!((loss32 - loss64).abs() < 1e-6, "{cell:?} (dropout {p:?}) loss {loss32} vs {loss64}");
        for tensor in model64.layout.tensors(&model64.config) {
            let max = tensor.range.clone().map(|i| g64[i].abs()).fold(0.0, f64::max);
            for i in tensor.range.clone() {
                let err = (g32[i] as f64 - g64[i]).abs();
                assert!(err <= 1e-5 * max + 1e-7, "{cell:?} ({p:?}) {}: {} vs {}", tensor.name, g32[i], g64[i]);
            }
        }
    }
}

/// Carrying the state across two chunks of T equals one pass over 2T (truncated BPTT changes
/// only the backward pass, never the forward).
#[test]
fn carried_state_forward_equals_one_long_pass() {
    for cell in CELLS {
        let (model, _, state) = setup(cell, 3);
        let mut long = Workspace::<f64>::new(&model.config, BATCH, 2 * SEQ_LEN);
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        for (x, y) in long.inputs.iter_mut().zip(long.targets.iter_mut()) {
            *x = rng.random_range(0..7);
            *y = rng.random_range(0..7);
        }
        let mut long_state = state.clone();
        let long_loss = fwd(&model, &mut long, &mut long_state, Pass::Eval, None);

        let mut short = Workspace::<f64>::new(&model.config, BATCH, SEQ_LEN);
        let mut short_state = state.clone();
        let mut total = 0.0;
        let half = BATCH * SEQ_LEN;
        for chunk in 0..2 {
            short.inputs.copy_from_slice(&long.inputs[chunk * half..(chunk + 1) * half]);
            short.targets.copy_from_slice(&long.targets[chunk * half..(chunk + 1) * half]);
            total += fwd(&model, &mut short, &mut short_state, Pass::Eval, None);
        }
        assert!((total / 2.0 - long_loss).abs() < 1e-12, "{cell:?}");
        assert_eq!(short_state, long_state);
    }
}
