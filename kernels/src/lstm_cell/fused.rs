//! Vector bodies of the fused LSTM cell (one pass over each batch row), generic over the SIMD
//! level, for the argument structs of `lstm_cell.rs` (which check the shapes).

use crate::gate_blocks::{gate_blocks, gate_blocks_mut};
use crate::math::{sigmoid, tanh};
use crate::simd::{for_each_vector, Simd, SimdKernel, VectorAt};

/// One vector of the forward step: activations `(i, f, g, o)`, then `c` and `h`.
#[inline(always)]
fn forward_lanes<S: Simd>(s: S, pre: [S::V; 4], c_prev: S::V) -> ([S::V; 4], S::V, S::V) {
    let i = sigmoid(s, pre[0]);
    let f = sigmoid(s, pre[1]);
    let g = tanh(s, pre[2]);
    let o = sigmoid(s, pre[3]);
    let c = s.mul_add(f, c_prev, s.mul(i, g));
    let h = s.mul(o, tanh(s, c));
    ([i, f, g, o], c, h)
}

impl SimdKernel for super::LstmForward<'_, f32> {
    type Output = ();
    #[inline(always)]
    fn run_with<S: Simd>(self, s: S) {
        let super::LstmForward { batch, hidden: hd, gates, c_prev, c, h } = self;
        let rows = gates
            .chunks_exact_mut(4 * hd)
            .zip(c_prev.chunks_exact(hd))
            .zip(c.chunks_exact_mut(hd))
            .zip(h.chunks_exact_mut(hd))
            .take(batch);
        for (((row, cp), cr), hr) in rows {
            let mut blocks = gate_blocks_mut::<_, 4>(row, hd);
            for_each_vector!(S, hd, |at| {
                let (act, c, h) = forward_lanes(s, at.load_each(s, &blocks), at.load(s, cp));
                at.store_each(s, &mut blocks, act);
                at.store(s, cr, c);
                at.store(s, hr, h);
            });
        }
    }
}

/// Inputs of one vector of the backward step.
struct BackIn<V> {
    act: [V; 4],
    c_prev: V,
    c: V,
    dh: V,
    dc_next: V,
}

/// One vector of the backward step: `(di, df, dg, do)` and the gradient for `c_prev`.
#[inline(always)]
fn backward_lanes<S: Simd>(s: S, x: BackIn<S::V>) -> ([S::V; 4], S::V) {
    let one = s.splat(1.0);
    let [i, f, g, o] = x.act;
    let tc = tanh(s, x.c);
    let dh_o = s.mul(x.dh, o);
    // dc = dc_next + dh·o·(1 - tanh²c)
    let dc = s.mul_add(dh_o, s.neg_mul_add(tc, tc, one), x.dc_next);
    // σ' = σ(1 - σ), tanh' = 1 - tanh².
    let d_o = s.mul(s.mul(dh_o, tc), s.sub(one, o));
    let d_i = s.mul(s.mul(dc, g), s.mul(i, s.sub(one, i)));
    let d_g = s.mul(s.mul(dc, i), s.neg_mul_add(g, g, one));
    let d_f = s.mul(s.mul(dc, x.c_prev), s.mul(f, s.sub(one, f)));
    ([d_i, d_f, d_g, d_o], s.mul(dc, f))
}

impl SimdKernel for super::LstmBackward<'_, f32> {
    type Output = ();
    #[inline(always)]
    fn run_with<S: Simd>(self, s: S) {
        let super::LstmBackward { batch, hidden: hd, gates, c_prev, c, dh, dc, dgates } = self;
        let rows = gates
            .chunks_exact(4 * hd)
            .zip(dgates.chunks_exact_mut(4 * hd))
            .zip(c_prev.chunks_exact(hd))
            .zip(c.chunks_exact(hd))
            .zip(dh.chunks_exact(hd))
            .zip(dc.chunks_exact_mut(hd))
            .take(batch);
        for (((((grow, drow), cp), cr), dhr), dcr) in rows {
            let act = gate_blocks::<_, 4>(grow, hd);
            let mut d_blocks = gate_blocks_mut(drow, hd);
            for_each_vector!(S, hd, |at| {
                let x = BackIn {
                    act: at.load_each(s, &act),
                    c_prev: at.load(s, cp),
                    c: at.load(s, cr),
                    dh: at.load(s, dhr),
                    dc_next: at.load(s, dcr),
                };
                let (d, dc_prev) = backward_lanes(s, x);
                at.store_each(s, &mut d_blocks, d);
                at.store(s, dcr, dc_prev);
            });
        }
    }
}
