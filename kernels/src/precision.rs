//! The precision of a product's operands: `f32`, or bf16 (the standard mixed-precision recipe,
//! as oneDNN's bf16 RNN primitives and PyTorch's CPU autocast run it: operands rounded to bf16
//! with round-to-nearest-even, products accumulated in `f32`; everything else stays `f32`).

/// What the operands of a matrix product are rounded to before they are multiplied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Precision {
    /// As stored: `f32` (or `f64` in gradient checks).
    #[default]
    F32,
    /// Rounded to bf16 (8 bits of significand), products accumulated in `f32`.
    Bf16,
}

impl Precision {
    /// Lowercase name, as `--precision` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }

    /// The precision named `name` (`f32` or `bf16`).
    pub fn parse(name: &str) -> Option<Precision> {
        match name {
            "f32" => Some(Precision::F32),
            "bf16" => Some(Precision::Bf16),
            _ => None,
        }
    }

    /// Whether this process multiplies operands of this precision in the CPU's own instructions
    /// at the level the kernels use ([`crate::dispatch::cpu_level`]): `f32` always; bf16 with
    /// AVX512-BF16 (`vdpbf16ps`). Below it a bf16 product rounds its operands and multiplies
    /// them in `f32`, no faster than an `f32` one, and has no matrix-vector kernel of its own.
    pub fn is_native(self) -> bool {
        self.is_native_at(crate::dispatch::cpu_level())
    }

    /// [`Precision::is_native`] at `level`.
    pub fn is_native_at(self, level: crate::dispatch::CpuLevel) -> bool {
        match self {
            Precision::F32 => true,
            Precision::Bf16 => level >= crate::dispatch::CpuLevel::Avx512Bf16,
        }
    }

    /// `x` rounded to this precision, still as an `f32`.
    #[inline(always)]
    pub fn round(self, x: f32) -> f32 {
        match self {
            Precision::F32 => x,
            Precision::Bf16 => f32::from_bits(u32::from(bf16_bits(x)) << 16),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The bf16 nearest to `x` (ties to even), as its 16 bits: the upper half of `x` rounded on the
/// lower half, as `vcvtneps2bf16` computes it. A NaN stays a NaN (quieted, so that rounding
/// cannot carry it into infinity); infinities and overflow to infinity follow IEEE rounding.
#[inline(always)]
pub fn bf16_bits(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return ((bits >> 16) | 0x0040) as u16;
    }
    let round = 0x7fff + ((bits >> 16) & 1);
    (bits.wrapping_add(round) >> 16) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for p in [Precision::F32, Precision::Bf16] {
            assert_eq!(Precision::parse(p.name()), Some(p));
        }
        assert_eq!(Precision::parse("fp16"), None);
    }

    #[test]
    fn only_bf16_needs_a_native_level() {
        use crate::dispatch::CpuLevel;
        for level in CpuLevel::ALL {
            assert!(Precision::F32.is_native_at(level));
            assert_eq!(Precision::Bf16.is_native_at(level), level == CpuLevel::Avx512Bf16, "{}", level.name());
        }
        assert_eq!(Precision::Bf16.is_native(), crate::dispatch::cpu_level() == CpuLevel::Avx512Bf16);
    }

    #[test]
    fn bf16_rounds_to_nearest_even() {
        let bf16 = Precision::Bf16;
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to the even significand (1).
        assert_eq!(bf16.round(1.0 + 2f32.powi(-8)), 1.0);
        // 1 + 3·2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties to even (1 + 2^-6).
        assert_eq!(bf16.round(1.0 + 3.0 * 2f32.powi(-8)), 1.0 + 2f32.powi(-6));
        // Just above halfway rounds up.
        assert_eq!(bf16.round(1.0 + 2f32.powi(-8) + 2f32.powi(-20)), 1.0 + 2f32.powi(-7));
        assert_eq!(bf16.round(-3.0), -3.0);
        assert_eq!(bf16.round(f32::MAX), f32::INFINITY);
        assert_eq!(bf16.round(f32::NEG_INFINITY), f32::NEG_INFINITY);
        assert!(bf16.round(f32::NAN).is_nan());
        // A NaN whose payload sits in the low half only must not round into infinity.
        assert!(bf16.round(f32::from_bits(0x7f80_0001)).is_nan());
        assert_eq!(Precision::F32.round(1.0 + 2f32.powi(-8)), 1.0 + 2f32.powi(-8));
    }

    #[test]
    fn bf16_error_is_within_half_an_ulp() {
        let mut x = 1.0e-3f32;
        while x < 1.0e3 {
            let r = Precision::Bf16.round(x);
            // Half a unit in the last of 8 significant bits: at most 2^-8 of x.
            assert!(((r - x) / x).abs() <= 2f32.powi(-8), "{x} -> {r}");
            x *= 1.0123;
        }
    }
}
