//! `--precision` (train, bench, sample), and the one line the command line says about it on
//! this CPU.

use charrnn_engine::Precision;
use clap::ValueEnum;

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum PrecisionArg {
    /// f32 products (PyTorch parity; resume is bit-exact)
    F32,
    /// Mixed precision: matrix products on bf16-rounded operands with f32 sums; weights,
    /// gradients, optimiser, cell state, softmax and checkpoints stay f32 (resume is bit-exact
    /// too)
    Bf16,
}

impl PrecisionArg {
    /// The flag's value for `precision`.
    pub fn of(precision: Precision) -> PrecisionArg {
        match precision {
            Precision::F32 => PrecisionArg::F32,
            Precision::Bf16 => PrecisionArg::Bf16,
        }
    }

    pub fn precision(self) -> Precision {
        match self {
            PrecisionArg::F32 => Precision::F32,
            PrecisionArg::Bf16 => Precision::Bf16,
        }
    }
}

/// For an `f32` training run on a CPU that multiplies bf16 natively: that bf16 would be faster.
pub fn bf16_hint(precision: Precision) -> Option<&'static str> {
    (precision == Precision::F32 && Precision::Bf16.is_native()).then_some(
        "hint: this CPU multiplies bf16 natively; --precision bf16 (bf16 products, f32 weights and \
         optimiser) trains faster",
    )
}

/// For a bf16 run on a CPU without native bf16: that it will not be faster.
pub fn slow_bf16_note(precision: Precision) -> Option<&'static str> {
    (precision == Precision::Bf16 && !Precision::Bf16.is_native()).then_some(
        "note: this CPU has no native bf16: --precision bf16 rounds the operands to bf16 and multiplies \
         them in f32, which is not faster than --precision f32",
    )
}
