//! Parity with PyTorch: `fixtures/torch_parity.safetensors`, written by
//! `benches/reference/torch_charrnn.py fixture` (PyTorch's nn.Embedding + nn.LSTM/nn.RNN/nn.GRU +
//! nn.Linear, CrossEntropyLoss, Adam, clip_grad_norm_, in float64), holds initial weights under
//! PyTorch's names, 20 batches, a carried-in state, the first step's logits, loss and every
//! gradient, and the losses of 20 Adam steps with clipping and carried state.
//!
//! Our f64 path must agree to rounding (1e-9 relative); our f32 training path within: logits
//! and loss 1e-5 relative, each gradient 1e-4 (max-abs error over the tensor divided by its
//! max-abs), each of the 20 losses 1e-4 absolute.

use std::collections::HashMap;

use charrnn_engine::pass::{backward, forward, Pass, PassOptions};
use charrnn_engine::phase_times::PhaseTimes;
use charrnn_engine::torch_layout::{from_torch, to_torch};
use charrnn_engine::train::{TrainOptions, Trainer};
use charrnn_engine::{CellKind, Model, ModelConfig, State, Workspace};
use charrnn_kernels::adam::AdamHyper;
use charrnn_kernels::{Float, Precision};
use safetensors::tensor::Dtype;
use safetensors::SafeTensors;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/torch_parity.safetensors");
const CELLS: [CellKind; 3] = [CellKind::Lstm, CellKind::Rnn, CellKind::Gru];

/// One cell's part of the fixture.
struct Case {
    config: ModelConfig,
    batch: usize,
    seq_len: usize,
    steps: usize,
    lr: f64,
    clip: f64,
    tensors: HashMap<String, (Vec<usize>, Vec<f64>)>,
    inputs: Vec<u32>,
    targets: Vec<u32>,
}

impl Case {
    fn load(cell: CellKind) -> Case {
        let bytes = std::fs::read(FIXTURE).expect("fixture present (committed)");
        let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
        let meta = meta.metadata().as_ref().unwrap();
        let cfg: serde_json::Value = serde_json::from_str(&meta["config"]).unwrap();
        let n = |k: &str| cfg[k].as_u64().unwrap() as usize;
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let prefix = format!("{}.", cell.name());
        let mut tensors = HashMap::new();
        let (mut inputs, mut targets) = (vec![], vec![]);
        for (name, view) in st.tensors() {
            let Some(short) = name.strip_prefix(&prefix) else {
                continue;
            };
            match view.dtype() {
                Dtype::F64 => {
                    let data = view.data().chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect();
                    tensors.insert(short.to_owned(), (view.shape().to_vec(), data));
                }
                Dtype::I32 => {
                    let data: Vec<u32> =
                        view.data().chunks_exact(4).map(|b| i32::from_le_bytes(b.try_into().unwrap()) as u32).collect();
                    if short == "inputs" {
                        inputs = data;
                    } else {
                        targets = data;
                    }
                }
                other => panic!("unexpected dtype {other:?} for {name}"),
            }
        }
        Case {
            config: ModelConfig {
                cell,
                vocab_size: n("vocab"),
                embed_size: n("embed"),
                hidden_size: n("hidden"),
                num_layers: n("layers"),
            },
            batch: n("batch"),
            seq_len: n("seq_len"),
            steps: n("steps"),
            lr: cfg["lr"].as_f64().unwrap(),
            clip: cfg["clip"].as_f64().unwrap(),
            tensors,
            inputs,
            targets,
        }
    }

    fn tensor(&self, name: &str) -> &[f64] {
        &self.tensors.get(name).unwrap_or_else(|| panic!("fixture lacks {name}")).1
    }

    /// The initial weights, through the same PyTorch-name conversion the checkpoints use.
    fn model<F: Float>(&self) -> Model<F> {
        let mut model = Model::<F>::new(self.config, 0);
        model.params = from_torch(&self.config, &model.layout, |name, shape| {
            let (s, data) = self.tensors.get(&format!("init.{name}")).ok_or(format!("missing {name}"))?;
            assert_eq!(s.as_slice(), shape, "{name}");
            Ok(data.iter().map(|&x| F::from_f64(x)).collect())
        })
        .unwrap();
        model
    }

    /// The carried-in state of the first step: PyTorch's `[L, B, H]` is our per-layer `[B, H]`.
    fn state<F: Float>(&self) -> State<F> {
        let mut state = State::zeros(&self.config, self.batch);
        let bh = self.batch * self.config.hidden_size;
        for l in 0..self.config.num_layers {
            for (dst, &src) in state.h[l].iter_mut().zip(&self.tensor("h0")[l * bh..(l + 1) * bh]) {
                *dst = F::from_f64(src);
            }
            if let Some(c) = &mut state.c {
                for (dst, &src) in c[l].iter_mut().zip(&self.tensor("c0")[l * bh..(l + 1) * bh]) {
                    *dst = F::from_f64(src);
                }
            }
        }
        state
    }

    fn load_batch<F: Float>(&self, step: usize, ws: &mut Workspace<F>) {
        let m = self.batch * self.seq_len;
        ws.inputs.copy_from_slice(&self.inputs[step * m..(step + 1) * m]);
        ws.targets.copy_from_slice(&self.targets[step * m..(step + 1) * m]);
    }
}

/// Compares the first step of `model` with PyTorch's: loss, logits, and every gradient.
fn compare_first_step<F: Float>(case: &Case, model: &Model<F>, value_tol: f64, grad_tol: f64) -> Result<(), String> {
    let mut ws = Workspace::<F>::new(&case.config, case.batch, case.seq_len);
    case.load_batch(0, &mut ws);
    let (options, mut times) = (PassOptions::default(), PhaseTimes::default());
    let loss = forward(model, &mut ws, &mut case.state(), Pass::Train, &options, &mut times);
    let mut grads = vec![F::zero(); model.params.len()];
    backward(model, &mut ws, &mut grads, &options, &mut times);

    let want_loss = case.tensor("step0.loss")[0];
    if (loss - want_loss).abs() > value_tol * want_loss.abs() {
        return Err(format!("loss {loss} vs PyTorch {want_loss}"));
    }
    let want_logits = case.tensor("step0.logits");
    let scale = want_logits.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    for (i, (&got, &want)) in ws.logits.iter().zip(want_logits).enumerate() {
        if (got.to_f64() - want).abs() > value_tol * scale {
            return Err(format!("logit {i}: {} vs PyTorch {want}", got.to_f64()));
        }
    }
    for t in to_torch(&case.config, &model.layout, &grads) {
        let want = case.tensor(&format!("step0.grad.{}", t.name));
        let max = want.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let err = t.data.iter().zip(want).fold(0.0f64, |m, (&g, &w)| m.max((g.to_f64() - w).abs()));
        if err > grad_tol * max {
            return Err(format!("gradient of {}: max error {err:e} vs max-abs {max:e}", t.name));
        }
    }
    Ok(())
}

#[test]
fn first_step_matches_pytorch_in_f64_and_f32() {
    for cell in CELLS {
        let case = Case::load(cell);
        compare_first_step::<f64>(&case, &case.model(), 1e-9, 1e-9).unwrap_or_else(|e| panic!("{cell:?} f64: {e}"));
        compare_first_step::<f32>(&case, &case.model(), 1e-5, 1e-4).unwrap_or_else(|e| panic!("{cell:?} f32: {e}"));
    }
}

#[test]
fn twenty_adam_steps_with_clipping_and_carried_state_match_pytorch() {
    for cell in CELLS {
        let case = Case::load(cell);
        let options = TrainOptions {
            batch_size: case.batch,
            seq_len: case.seq_len,
            adam: AdamHyper { lr: case.lr, ..AdamHyper::default() },
            clip: case.clip,
            dropout: 0.0,
            dropout_seed: 0,
            precision: Precision::F32,
        };
        let mut trainer = Trainer::new(case.model(), &options);
        trainer.set_state(&case.state());
        let want = case.tensor("losses");
        let norms = case.tensor("grad_norms");
        let mut worst = 0.0f64;
        for step in 0..case.steps {
            let m = case.batch * case.seq_len;
            let (inputs, targets) = trainer.batch_mut();
            inputs.copy_from_slice(&case.inputs[step * m..(step + 1) * m]);
            targets.copy_from_slice(&case.targets[step * m..(step + 1) * m]);
            let out = trainer.step_loaded().unwrap();
            worst = worst.max((out.loss - want[step]).abs());
            assert!(
                (out.loss - want[step]).abs() < 1e-4,
                "{cell:?} step {step}: loss {} vs PyTorch {}",
                out.loss,
                want[step]
            );
            assert!((out.grad_norm - norms[step]).abs() < 1e-4 * norms[step], "{cell:?} step {step}: grad norm");
        }
        println!("{cell:?}: largest loss difference over {} steps {worst:e}", case.steps);
    }
}

/// The comparison is sharp enough to notice a single gate bias off by 1e-3.
#[test]
fn a_perturbed_gate_bias_fails_the_comparison() {
    for cell in CELLS {
        let case = Case::load(cell);
        let mut model = case.model::<f32>();
        let h = case.config.hidden_size;
        let layer = &model.layout.layers[0];
        // Layer 0: the forget gate's first unit for the LSTM (gate order i, f, g, o); for the
        // GRU the recurrent bias of the new gate (order r, z, n), the one inside r ⊙ (…).
        let index = match cell {
            CellKind::Lstm => layer.bias_ih.start + h,
            CellKind::Rnn => layer.bias_ih.start,
            CellKind::Gru => layer.bias_hh.start + 2 * h,
        };
        model.params[index] += 1e-3;
        assert!(compare_first_step::<f32>(&case, &model, 1e-5, 1e-4).is_err(), "{cell:?}: perturbation went unnoticed");
    }
}
