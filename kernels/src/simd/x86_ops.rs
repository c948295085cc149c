//! What the two x86 levels' [`super::Simd`] impls have in common, in one table with a column
//! per level: their types, and the methods whose bodies differ only in the intrinsic they call.
//! The AVX2 and AVX-512 levels are thereby the same code by construction; their own files hold
//! only what differs (tails, masks, reductions, bit tricks).

/// Implements, inside `impl Simd for` the level (`avx2` or `avx512`), the table below with that
/// level's column: `LANES` and the types, the whole-vector `load` and `store`, `d_zero`, and the
/// operations that are one intrinsic on registers. The intrinsics resolve where it is invoked,
/// which imports `std::arch::x86_64::*`.
macro_rules! x86_shared_ops {
    ($level:ident) => {
        $crate::simd::x86_ops::x86_shared_ops! { @column $level
            //                                                AVX2+FMA                 AVX-512F
            LANES                                          => 8,                       16;
            V                                              => __m256,                  __m512;
            M                                              => __m256,                  __mmask16;
            D                                              => (__m256d, __m256d),      (__m512d, __m512d);
            load                                           => _mm256_loadu_ps,         _mm512_loadu_ps;
            store                                          => _mm256_storeu_ps,        _mm512_storeu_ps;
            d_zero                                         => _mm256_setzero_pd,       _mm512_setzero_pd;
            fn splat(x: f32) -> Self::V                    => _mm256_set1_ps,          _mm512_set1_ps;
            fn add(a: Self::V, b: Self::V) -> Self::V      => _mm256_add_ps,           _mm512_add_ps;
            fn sub(a: Self::V, b: Self::V) -> Self::V      => _mm256_sub_ps,           _mm512_sub_ps;
            fn mul(a: Self::V, b: Self::V) -> Self::V      => _mm256_mul_ps,           _mm512_mul_ps;
            fn div(a: Self::V, b: Self::V) -> Self::V      => _mm256_div_ps,           _mm512_div_ps;
            fn mul_add(a: Self::V, b: Self::V, c: Self::V) -> Self::V
                                                           => _mm256_fmadd_ps,         _mm512_fmadd_ps;
            fn neg_mul_add(a: Self::V, b: Self::V, c: Self::V) -> Self::V
                                                           => _mm256_fnmadd_ps,        _mm512_fnmadd_ps;
            fn max(a: Self::V, b: Self::V) -> Self::V      => _mm256_max_ps,           _mm512_max_ps;
            fn sqrt(a: Self::V) -> Self::V                 => _mm256_sqrt_ps,          _mm512_sqrt_ps;
            fn round(v: Self::V) -> Self::V
                => _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>,
                   _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>;
            fn lt(a: Self::V, b: Self::V) -> Self::M       => _mm256_cmp_ps::<_CMP_LT_OQ>,
                                                              _mm512_cmp_ps_mask::<_CMP_LT_OQ>;
        }
    };
    (@column $level:ident
        LANES => $lanes256:expr, $lanes512:expr;
        V => $v256:ty, $v512:ty;
        M => $m256:ty, $m512:ty;
        D => $d256:ty, $d512:ty;
        load => $load256:expr, $load512:expr;
        store => $store256:expr, $store512:expr;
        d_zero => $zero256:expr, $zero512:expr;
        $( fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty => $op256:expr, $op512:expr; )*
    ) => {
        const LANES: usize = $crate::simd::x86_ops::pick!($level, $lanes256, $lanes512);
        type V = $crate::simd::x86_ops::pick!($level, $v256, $v512);
        type M = $crate::simd::x86_ops::pick!($level, $m256, $m512);
        type D = $crate::simd::x86_ops::pick!($level, $d256, $d512);

        #[inline(always)]
        fn load(self, src: &[f32]) -> Self::V {
            let src = &src[..Self::LANES];
            // SAFETY: the level's features are present (`self`, as below); `src` has exactly
            // `LANES` elements to read.
            unsafe { $crate::simd::x86_ops::pick!($level, $load256, $load512)(src.as_ptr()) }
        }
        #[inline(always)]
        fn store(self, dst: &mut [f32], v: Self::V) {
            let dst = &mut dst[..Self::LANES];
            // SAFETY: the level's features are present (`self`); `dst` has exactly `LANES`
            // elements to write.
            unsafe { $crate::simd::x86_ops::pick!($level, $store256, $store512)(dst.as_mut_ptr(), v) }
        }
        #[inline(always)]
        fn d_zero(self) -> Self::D {
            // SAFETY: the level's features are present (`self`); the intrinsic only makes a zero
            // register.
            unsafe { $crate::simd::x86_ops::pick!($level, ($zero256(), $zero256()), ($zero512(), $zero512())) }
        }
        $(
            #[inline(always)]
            fn $name(self, $($arg: $ty),*) -> $ret {
                // SAFETY: a value of the level's token (`self`) exists only where its features
                // were detected (AVX2 and FMA, or AVX-512F), and the intrinsic computes on its
                // register arguments alone.
                unsafe { $crate::simd::x86_ops::pick!($level, $op256, $op512)($($arg),*) }
            }
        )*
    };
}

/// The entry of the level's column: the first of the two for `avx2`, the second for `avx512`.
macro_rules! pick {
    (avx2, $avx2:tt, $avx512:tt) => {
        $avx2
    };
    (avx512, $avx2:tt, $avx512:tt) => {
        $avx512
    };
}

pub(crate) use {pick, x86_shared_ops};
