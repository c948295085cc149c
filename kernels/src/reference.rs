//! Plain reference formulas of the kernels (test-only): the most direct formulas, computed in
//! `f64` where that makes them more exact. The kernels' tests compare with these.

use crate::adam::AdamHyper;
use crate::gemm::Op;
use crate::Float;

/// Triple-loop `C = alpha·op(A)·op(B) + beta·C` with the arguments of [`crate::gemm::Gemm`].
pub fn gemm<F: Float>(
    op_a: Op,
    op_b: Op,
    m: usize,
    n: usize,
    k: usize,
    alpha: F,
    a: &[F],
    lda: usize,
    b: &[F],
    ldb: usize,
    beta: F,
    c: &mut [F],
    ldc: usize,
) {
    let at = |i: usize, p: usize| match op_a {
        Op::N => a[i * lda + p],
        Op::T => a[p * lda + i],
    };
    let bt = |p: usize, j: usize| match op_b {
        Op::N => b[p * ldb + j],
        Op::T => b[j * ldb + p],
    };
    for i in 0..m {
        for j in 0..n {
            let mut acc = F::zero();
            for p in 0..k {
                acc += at(i, p) * bt(p, j);
            }
            let old = if beta == F::zero() { F::zero() } else { beta * c[i * ldc + j] };
            c[i * ldc + j] = alpha * acc + old;
        }
    }
}

/// Asserts that each of a cell's `f32` outputs, `fast` (a level's fast path), is within
/// `2e-6·(1 + |reference|)` of the `f64` reference `want` and `4e-6·(1 + |scalar|)` of the plain
/// twin's `scalar`; `ctx` and `names` say which in a failure.
pub fn assert_cell_outputs<const N: usize>(
    ctx: &str,
    names: [&str; N],
    fast: &[Vec<f32>; N],
    scalar: &[Vec<f32>; N],
    want: [&[f64]; N],
) {
    for k in 0..N {
        for (idx, ((&g, &sc), &w)) in fast[k].iter().zip(&scalar[k]).zip(want[k]).enumerate() {
            let ctx = format!("{ctx} {}[{idx}]", names[k]);
            assert!((g as f64 - w).abs() <= 2e-6 * (1.0 + w.abs()), "{ctx}: {g} vs f64 {w}");
            assert!((g - sc).abs() <= 4e-6 * (1.0 + sc.abs()), "{ctx}: {g} vs scalar {sc}");
        }
    }
}

/// The central difference `(f(x + ε·e) - f(x - ε·e)) / 2ε` of `objective` with respect to
/// element `idx` of `inputs[which]` (`e` that element's unit vector).
pub fn central_difference<const N: usize>(
    objective: impl Fn(&[Vec<f64>; N]) -> f64,
    inputs: &[Vec<f64>; N],
    which: usize,
    idx: usize,
    eps: f64,
) -> f64 {
    let (mut plus, mut minus) = (inputs.clone(), inputs.clone());
    plus[which][idx] += eps;
    minus[which][idx] -= eps;
    (objective(&plus) - objective(&minus)) / (2.0 * eps)
}

/// Results of [`lstm_cell`].
pub struct LstmCellRef {
    /// Activations `σ(i), σ(f), tanh(g), σ(o)`, `[batch, 4·hidden]`.
    pub gates: Vec<f64>,
    /// New cell state.
    pub c: Vec<f64>,
    /// New hidden state.
    pub h: Vec<f64>,
    /// Gradient with respect to the pre-activations.
    pub dgates: Vec<f64>,
    /// Gradient with respect to `c_prev`.
    pub dc_prev: Vec<f64>,
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// One LSTM step forward and backward, gate order `i, f, g, o`.
pub fn lstm_cell(batch: usize, hidden: usize, pre: &[f64], c_prev: &[f64], dh: &[f64], dc_next: &[f64]) -> LstmCellRef {
    let n = batch * hidden;
    let mut r = LstmCellRef {
        gates: vec![0.0; 4 * n],
        c: vec![0.0; n],
        h: vec![0.0; n],
        dgates: vec![0.0; 4 * n],
        dc_prev: vec![0.0; n],
    };
    for b in 0..batch {
        for j in 0..hidden {
            let base = b * 4 * hidden;
            let k = b * hidden + j;
            let i = sigmoid(pre[base + j]);
            let f = sigmoid(pre[base + hidden + j]);
            let g = pre[base + 2 * hidden + j].tanh();
            let o = sigmoid(pre[base + 3 * hidden + j]);
            let c = f * c_prev[k] + i * g;
            let h = o * c.tanh();
            r.gates[base + j] = i;
            r.gates[base + hidden + j] = f;
            r.gates[base + 2 * hidden + j] = g;
            r.gates[base + 3 * hidden + j] = o;
            r.c[k] = c;
            r.h[k] = h;
            // h = o·tanh(c); c = f·c_prev + i·g.
            let dc = dc_next[k] + dh[k] * o * (1.0 - c.tanh().powi(2));
            r.dgates[base + 3 * hidden + j] = dh[k] * c.tanh() * o * (1.0 - o);
            r.dgates[base + j] = dc * g * i * (1.0 - i);
            r.dgates[base + hidden + j] = dc * c_prev[k] * f * (1.0 - f);
            r.dgates[base + 2 * hidden + j] = dc * i * (1.0 - g * g);
            r.dc_prev[k] = dc * f;
        }
    }
    r
}

/// Results of [`gru_cell`].
pub struct GruCellRef {
    /// Activations `r, z, n`, `[batch, 3·hidden]`.
    pub act: Vec<f64>,
    /// New hidden state.
    pub h: Vec<f64>,
    /// Gradient with respect to the input-side pre-activations `x·Wx + b_ih`.
    pub dgx: Vec<f64>,
    /// Gradient with respect to the recurrent side `h_prev·Wh + b_hh`.
    pub dgh: Vec<f64>,
    /// Gradient reaching `h_prev` directly (through `z ⊙ h_prev`; not through `gh`).
    pub dh_prev: Vec<f64>,
}

/// One GRU step forward and backward, exactly PyTorch's `nn.GRU`, gate order `r, z, n`:
/// `r = σ(gx_r + gh_r)`, `z = σ(gx_z + gh_z)`, `n = tanh(gx_n + r·gh_n)`,
/// `h = (1 - z)·n + z·h_prev`; `dh` is the gradient reaching `h`.
pub fn gru_cell(batch: usize, hidden: usize, gx: &[f64], gh: &[f64], h_prev: &[f64], dh: &[f64]) -> GruCellRef {
    let n = batch * hidden;
    let mut out = GruCellRef {
        act: vec![0.0; 3 * n],
        h: vec![0.0; n],
        dgx: vec![0.0; 3 * n],
        dgh: vec![0.0; 3 * n],
        dh_prev: vec![0.0; n],
    };
    for b in 0..batch {
        for j in 0..hidden {
            let (ri, zi, ni) = (b * 3 * hidden + j, b * 3 * hidden + hidden + j, b * 3 * hidden + 2 * hidden + j);
            let k = b * hidden + j;
            let r = sigmoid(gx[ri] + gh[ri]);
            let z = sigmoid(gx[zi] + gh[zi]);
            let nn = (gx[ni] + r * gh[ni]).tanh();
            out.act[ri] = r;
            out.act[zi] = z;
            out.act[ni] = nn;
            out.h[k] = (1.0 - z) * nn + z * h_prev[k];
            // dL/dn = dh·(1 - z), dL/dz = dh·(h_prev - n), dL/dh_prev = dh·z (direct).
            let dn_pre = dh[k] * (1.0 - z) * (1.0 - nn * nn);
            let dz_pre = dh[k] * (h_prev[k] - nn) * z * (1.0 - z);
            let dr_pre = dn_pre * gh[ni] * r * (1.0 - r);
            out.dgx[ri] = dr_pre;
            out.dgx[zi] = dz_pre;
            out.dgx[ni] = dn_pre;
            out.dgh[ri] = dr_pre;
            out.dgh[zi] = dz_pre;
            out.dgh[ni] = dn_pre * r;
            out.dh_prev[k] = dh[k] * z;
        }
    }
    out
}

/// Vanilla RNN activation forward and backward: returns `(tanh(pre), dh·(1 - tanh²(pre)))`.
pub fn rnn_cell(pre: &[f64], dh: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let h: Vec<f64> = pre.iter().map(|x| x.tanh()).collect();
    let d = h.iter().zip(dh).map(|(h, d)| d * (1.0 - h * h)).collect();
    (h, d)
}

/// Summed cross-entropy of `softmax(logits)` against `targets`, and `scale·(softmax - onehot)`.
pub fn softmax_xent(rows: usize, vocab: usize, logits: &[f64], targets: &[u32], scale: f64) -> (f64, Vec<f64>) {
    let mut loss = 0.0;
    let mut d = vec![0.0; rows * vocab];
    for r in 0..rows {
        let row = &logits[r * vocab..(r + 1) * vocab];
        let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = row.iter().map(|x| (x - max).exp()).sum();
        let t = targets[r] as usize;
        loss += z.ln() + max - row[t];
        for j in 0..vocab {
            let p = (row[j] - max).exp() / z;
            d[r * vocab + j] = scale * (p - if j == t { 1.0 } else { 0.0 });
        }
    }
    (loss, d)
}

/// Adam, textbook form with bias-corrected moments `m̂ = m/(1-β1^t)`, `v̂ = v/(1-β2^t)` and
/// PyTorch's placement of ε: `p -= lr·m̂/(sqrt(v̂) + ε)`, after `AdamW`'s decoupled decay
/// `p *= 1 - lr·λ`.
pub fn adam_step(p: &mut [f64], g: &[f64], m: &mut [f64], v: &mut [f64], hyper: AdamHyper, step: u64) {
    let t = step as f64;
    for i in 0..p.len() {
        p[i] *= 1.0 - hyper.lr * hyper.weight_decay;
        m[i] = hyper.beta1 * m[i] + (1.0 - hyper.beta1) * g[i];
        v[i] = hyper.beta2 * v[i] + (1.0 - hyper.beta2) * g[i] * g[i];
        let m_hat = m[i] / (1.0 - hyper.beta1.powf(t));
        let v_hat = v[i] / (1.0 - hyper.beta2.powf(t));
        p[i] -= hyper.lr * m_hat / (v_hat.sqrt() + hyper.eps);
    }
}
