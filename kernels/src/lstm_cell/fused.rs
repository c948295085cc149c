//! Vector bodies of the fused LSTM cell (one pass over each batch row), generic over the SIMD
//! level, for the argument structs of `lstm_cell.rs` (which check the shapes).

use crate::math::{sigmoid, tanh};
use crate::simd::{Simd, SimdKernel};

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
        let hd = self.hidden;
        let l = S::LANES;
        let rows = self
            .gates
            .chunks_exact_mut(4 * hd)
            .zip(self.c_prev.chunks_exact(hd))
            .zip(self.c.chunks_exact_mut(hd))
            .zip(self.h.chunks_exact_mut(hd))
            .take(self.batch);
        for (((row, cp), cr), hr) in rows {
            let (ig, rest) = row.split_at_mut(hd);
            let (fg, rest) = rest.split_at_mut(hd);
            let (gg, og) = rest.split_at_mut(hd);
            let mut j = 0;
            while j + l <= hd {
                let pre = [s.load(&ig[j..]), s.load(&fg[j..]), s.load(&gg[j..]), s.load(&og[j..])];
                let (act, c, h) = forward_lanes(s, pre, s.load(&cp[j..]));
                s.store(&mut ig[j..], act[0]);
                s.store(&mut fg[j..], act[1]);
                s.store(&mut gg[j..], act[2]);
                s.store(&mut og[j..], act[3]);
                s.store(&mut cr[j..], c);
                s.store(&mut hr[j..], h);
                j += l;
            }
            if j < hd {
                let pre = [
                    s.load_tail(&ig[j..], 0.0),
                    s.load_tail(&fg[j..], 0.0),
                    s.load_tail(&gg[j..], 0.0),
                    s.load_tail(&og[j..], 0.0),
                ];
                let (act, c, h) = forward_lanes(s, pre, s.load_tail(&cp[j..], 0.0));
                s.store_tail(&mut ig[j..], act[0]);
                s.store_tail(&mut fg[j..], act[1]);
                s.store_tail(&mut gg[j..], act[2]);
                s.store_tail(&mut og[j..], act[3]);
                s.store_tail(&mut cr[j..], c);
                s.store_tail(&mut hr[j..], h);
            }
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
        let hd = self.hidden;
        let l = S::LANES;
        let rows = self
            .gates
            .chunks_exact(4 * hd)
            .zip(self.dgates.chunks_exact_mut(4 * hd))
            .zip(self.c_prev.chunks_exact(hd))
            .zip(self.c.chunks_exact(hd))
            .zip(self.dh.chunks_exact(hd))
            .zip(self.dc.chunks_exact_mut(hd))
            .take(self.batch);
        for (((((grow, drow), cp), cr), dhr), dcr) in rows {
            let (ig, rest) = grow.split_at(hd);
            let (fg, rest) = rest.split_at(hd);
            let (gg, og) = rest.split_at(hd);
            let (di, rest) = drow.split_at_mut(hd);
            let (df, rest) = rest.split_at_mut(hd);
            let (dg, dout) = rest.split_at_mut(hd);
            let mut j = 0;
            while j + l <= hd {
                let x = BackIn {
                    act: [s.load(&ig[j..]), s.load(&fg[j..]), s.load(&gg[j..]), s.load(&og[j..])],
                    c_prev: s.load(&cp[j..]),
                    c: s.load(&cr[j..]),
                    dh: s.load(&dhr[j..]),
                    dc_next: s.load(&dcr[j..]),
                };
                let (d, dc_prev) = backward_lanes(s, x);
                s.store(&mut di[j..], d[0]);
                s.store(&mut df[j..], d[1]);
                s.store(&mut dg[j..], d[2]);
                s.store(&mut dout[j..], d[3]);
                s.store(&mut dcr[j..], dc_prev);
                j += l;
            }
            if j < hd {
                let x = BackIn {
                    act: [
                        s.load_tail(&ig[j..], 0.0),
                        s.load_tail(&fg[j..], 0.0),
                        s.load_tail(&gg[j..], 0.0),
                        s.load_tail(&og[j..], 0.0),
                    ],
                    c_prev: s.load_tail(&cp[j..], 0.0),
                    c: s.load_tail(&cr[j..], 0.0),
                    dh: s.load_tail(&dhr[j..], 0.0),
                    dc_next: s.load_tail(&dcr[j..], 0.0),
                };
                let (d, dc_prev) = backward_lanes(s, x);
                s.store_tail(&mut di[j..], d[0]);
                s.store_tail(&mut df[j..], d[1]);
                s.store_tail(&mut dg[j..], d[2]);
                s.store_tail(&mut dout[j..], d[3]);
                s.store_tail(&mut dcr[j..], dc_prev);
            }
        }
    }
}
