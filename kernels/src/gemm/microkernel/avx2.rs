//! AVX2+FMA kernel, 6×16: 12 ymm accumulators (of 16 registers), two `B` vectors per `k`, `A`
//! broadcast. Two 256-bit FMA pipes with latency 4 need at least 8 independent accumulators.

use super::tile::{micro_kernel, F32Step, TileLevel};
use crate::simd::avx2::Avx2 as Ymm;

impl TileLevel for Ymm {}

micro_kernel!(Avx2 = Avx2 on Ymm, step F32Step, token Ymm::new_unchecked(), features "avx2,fma");
