//! Vector bodies of the fused GRU cell (one pass over each batch row), generic over the SIMD
//! level. Shapes are checked by the callers in `gru_cell.rs`.

use crate::gate_blocks::{gate_blocks, gate_blocks_mut};
use crate::math::{sigmoid, tanh};
use crate::simd::{for_each_vector, Simd, SimdKernel, VectorAt};

/// One vector of the forward step: activations `(r, z, n)` and `h`.
#[inline(always)]
fn forward_lanes<S: Simd>(s: S, gx: [S::V; 3], gh: [S::V; 3], h_prev: S::V) -> ([S::V; 3], S::V) {
    let one = s.splat(1.0);
    let r = sigmoid(s, s.add(gx[0], gh[0]));
    let z = sigmoid(s, s.add(gx[1], gh[1]));
    let n = tanh(s, s.mul_add(r, gh[2], gx[2]));
    // (1 - z)·n + z·h_prev: exact at z = 0 and z = 1, as the scalar twin.
    let h = s.mul_add(z, h_prev, s.mul(s.sub(one, z), n));
    ([r, z, n], h)
}

impl SimdKernel for super::GruForward<'_, f32> {
    type Output = ();
    #[inline(always)]
    fn run_with<S: Simd>(self, s: S) {
        let super::GruForward { batch, hidden: hd, gx, gh, h_prev, h } = self;
        let rows = gx
            .chunks_exact_mut(3 * hd)
            .zip(gh.chunks_exact(3 * hd))
            .zip(h_prev.chunks_exact(hd))
            .zip(h.chunks_exact_mut(hd))
            .take(batch);
        for (((xrow, hrow), hp), ho) in rows {
            let mut gx = gate_blocks_mut::<_, 3>(xrow, hd);
            let gh = gate_blocks::<_, 3>(hrow, hd);
            for_each_vector!(S, hd, |at| {
                let (act, h) = forward_lanes(s, at.load_each(s, &gx), at.load_each(s, &gh), at.load(s, hp));
                at.store_each(s, &mut gx, act);
                at.store(s, ho, h);
            });
        }
    }
}

/// Inputs of one vector of the backward step.
struct BackIn<V> {
    act: [V; 3],
    gh_n: V,
    h_prev: V,
    dh: V,
}

/// One vector of the backward step: `(dr, dz, dn)` of the pre-activations, the recurrent `n`
/// block's gradient `dn ⊙ r`, and the direct gradient for `h_prev`.
#[inline(always)]
fn backward_lanes<S: Simd>(s: S, x: BackIn<S::V>) -> ([S::V; 3], S::V, S::V) {
    let one = s.splat(1.0);
    let [r, z, n] = x.act;
    // σ' = σ(1 - σ), tanh' = 1 - tanh².
    let dn = s.mul(s.mul(x.dh, s.sub(one, z)), s.neg_mul_add(n, n, one));
    let dz = s.mul(s.mul(x.dh, s.sub(x.h_prev, n)), s.mul(z, s.sub(one, z)));
    let dr = s.mul(s.mul(dn, x.gh_n), s.mul(r, s.sub(one, r)));
    ([dr, dz, dn], s.mul(dn, r), s.mul(x.dh, z))
}

impl SimdKernel for super::GruBackward<'_, f32> {
    type Output = ();
    #[inline(always)]
    fn run_with<S: Simd>(self, s: S) {
        let super::GruBackward { batch, hidden: hd, act, gh, h_prev, dh, dgx, dgh, dh_prev } = self;
        let rows = act
            .chunks_exact(3 * hd)
            .zip(gh.chunks_exact(3 * hd))
            .zip(dgx.chunks_exact_mut(3 * hd))
            .zip(dgh.chunks_exact_mut(3 * hd))
            .zip(h_prev.chunks_exact(hd))
            .zip(dh.chunks_exact(hd))
            .zip(dh_prev.chunks_exact_mut(hd))
            .take(batch);
        for ((((((arow, ghrow), dxrow), dghrow), hp), dhr), dhp) in rows {
            let act = gate_blocks::<_, 3>(arow, hd);
            let ghn = &ghrow[2 * hd..];
            let mut dx = gate_blocks_mut(dxrow, hd);
            let mut dgh = gate_blocks_mut(dghrow, hd);
            for_each_vector!(S, hd, |at| {
                let x = BackIn {
                    act: at.load_each(s, &act),
                    gh_n: at.load(s, ghn),
                    h_prev: at.load(s, hp),
                    dh: at.load(s, dhr),
                };
                let (d, dghn, dprev) = backward_lanes(s, x);
                at.store_each(s, &mut dx, d);
                at.store_each(s, &mut dgh, [d[0], d[1], dghn]);
                at.store(s, dhp, dprev);
            });
        }
    }
}
