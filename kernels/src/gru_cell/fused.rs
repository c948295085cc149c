//! Vector bodies of the fused GRU cell (one pass over each batch row), generic over the SIMD
//! level. Shapes are checked by the callers in `gru_cell.rs`.

use crate::math::{sigmoid, tanh};
use crate::simd::{Simd, SimdKernel};

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
        let hd = self.hidden;
        let l = S::LANES;
        let rows = self
            .gx
            .chunks_exact_mut(3 * hd)
            .zip(self.gh.chunks_exact(3 * hd))
            .zip(self.h_prev.chunks_exact(hd))
            .zip(self.h.chunks_exact_mut(hd))
            .take(self.batch);
        for (((xrow, hrow), hp), ho) in rows {
            let (xr, rest) = xrow.split_at_mut(hd);
            let (xz, xn) = rest.split_at_mut(hd);
            let (hr, rest) = hrow.split_at(hd);
            let (hz, hn) = rest.split_at(hd);
            let mut j = 0;
            while j + l <= hd {
                let gx = [s.load(&xr[j..]), s.load(&xz[j..]), s.load(&xn[j..])];
                let gh = [s.load(&hr[j..]), s.load(&hz[j..]), s.load(&hn[j..])];
                let (act, h) = forward_lanes(s, gx, gh, s.load(&hp[j..]));
                s.store(&mut xr[j..], act[0]);
                s.store(&mut xz[j..], act[1]);
                s.store(&mut xn[j..], act[2]);
                s.store(&mut ho[j..], h);
                j += l;
            }
            if j < hd {
                let gx = [s.load_tail(&xr[j..], 0.0), s.load_tail(&xz[j..], 0.0), s.load_tail(&xn[j..], 0.0)];
                let gh = [s.load_tail(&hr[j..], 0.0), s.load_tail(&hz[j..], 0.0), s.load_tail(&hn[j..], 0.0)];
                let (act, h) = forward_lanes(s, gx, gh, s.load_tail(&hp[j..], 0.0));
                s.store_tail(&mut xr[j..], act[0]);
                s.store_tail(&mut xz[j..], act[1]);
                s.store_tail(&mut xn[j..], act[2]);
                s.store_tail(&mut ho[j..], h);
            }
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
        let hd = self.hidden;
        let l = S::LANES;
        let rows = self
            .act
            .chunks_exact(3 * hd)
            .zip(self.gh.chunks_exact(3 * hd))
            .zip(self.dgx.chunks_exact_mut(3 * hd))
            .zip(self.dgh.chunks_exact_mut(3 * hd))
            .zip(self.h_prev.chunks_exact(hd))
            .zip(self.dh.chunks_exact(hd))
            .zip(self.dh_prev.chunks_exact_mut(hd))
            .take(self.batch);
        for ((((((arow, ghrow), dxrow), dghrow), hp), dhr), dhp) in rows {
            let (ar, rest) = arow.split_at(hd);
            let (az, an) = rest.split_at(hd);
            let ghn = &ghrow[2 * hd..];
            let (dxr, rest) = dxrow.split_at_mut(hd);
            let (dxz, dxn) = rest.split_at_mut(hd);
            let (dgr, rest) = dghrow.split_at_mut(hd);
            let (dgz, dgn) = rest.split_at_mut(hd);
            let mut j = 0;
            while j + l <= hd {
                let x = BackIn {
                    act: [s.load(&ar[j..]), s.load(&az[j..]), s.load(&an[j..])],
                    gh_n: s.load(&ghn[j..]),
                    h_prev: s.load(&hp[j..]),
                    dh: s.load(&dhr[j..]),
                };
                let (d, dghn, dprev) = backward_lanes(s, x);
                s.store(&mut dxr[j..], d[0]);
                s.store(&mut dxz[j..], d[1]);
                s.store(&mut dxn[j..], d[2]);
                s.store(&mut dgr[j..], d[0]);
                s.store(&mut dgz[j..], d[1]);
                s.store(&mut dgn[j..], dghn);
                s.store(&mut dhp[j..], dprev);
                j += l;
            }
            if j < hd {
                let x = BackIn {
                    act: [s.load_tail(&ar[j..], 0.0), s.load_tail(&az[j..], 0.0), s.load_tail(&an[j..], 0.0)],
                    gh_n: s.load_tail(&ghn[j..], 0.0),
                    h_prev: s.load_tail(&hp[j..], 0.0),
                    dh: s.load_tail(&dhr[j..], 0.0),
                };
                let (d, dghn, dprev) = backward_lanes(s, x);
                s.store_tail(&mut dxr[j..], d[0]);
                s.store_tail(&mut dxz[j..], d[1]);
                s.store_tail(&mut dxn[j..], d[2]);
                s.store_tail(&mut dgr[j..], d[0]);
                s.store_tail(&mut dgz[j..], d[1]);
                s.store_tail(&mut dgn[j..], dghn);
                s.store_tail(&mut dhp[j..], dprev);
            }
        }
    }
}
