//! What a recurrent cell is, in one place: the [`Cell`] trait (in the shape of candle's `RNN`
//! trait: the state it carries and its step), one file per cell, and the list of cells that
//! [`CellKind`] and [`with_cell!`] are made from.
//!
//! What the rest of the engine knows of a cell is what [`Cell`] says: its gate count `G` (the
//! pre-activations are `[rows, G·H]`, its weights `[in, G·H]`), its state slabs (each
//! `[rows, H]`, `h` first: carried from batch to batch, kept for every step in training, saved
//! as `state.{name}.{layer}` in checkpoints), where its recurrent side `h_{t-1}·Wh + b_hh`
//! goes ([`RecurrentSide`]), its initial biases, and its forward and backward step over
//! borrowed slices, which call its fused kernel in `charrnn_kernels`. The three drivers (the
//! training recurrence, [`crate::model::recurrent`]; the inference step and the split step in
//! [`crate::inference`]) own the loops and the weight products and call the cell for the rest.
//!
//! Dispatch is static: the drivers are generic over `C: Cell`, and [`with_cell!`] picks `C`
//! from a [`CellKind`] with one `match` per layer (or per step), so each cell's per-step code
//! is compiled for it, with no call through a pointer.
//!
//! **Adding a cell** touches its file here (its type and `impl Cell`), its `mod` line and its
//! entry in [`cells!`] below, its fused kernel in `charrnn_kernels`, and the command line's
//! list of `--cell` values.

use charrnn_kernels::Float;
use serde::{Deserialize, Serialize};

pub(crate) mod gru;
pub(crate) mod lstm;
pub(crate) mod rnn;

/// Every cell, once: `Variant = module::Type`, with its description. Hands the list to
/// [`each_cell!`] with the request it was given (`declare`, or `dispatch` from
/// [`with_cell!`]).
macro_rules! cells {
    ($($request:tt)*) => {
        $crate::model::cell::each_cell! { ($($request)*)
            /// Long short-term memory, gates `i, f, g, o`.
            Lstm = lstm::Lstm,
            /// Vanilla tanh RNN, `h_t = tanh(U x_t + W h_{t-1} + b)`.
            Rnn = rnn::Rnn,
            /// Gated recurrent unit, gates `r, z, n`, exactly PyTorch's `nn.GRU`.
            Gru = gru::Gru,
        }
    };
}
pub(crate) use cells;

/// What [`cells!`] does with the list: `declare` the [`CellKind`] enum, or `dispatch` a
/// [`CellKind`] value to code generic over the cell.
macro_rules! each_cell {
    ((declare) $($(#[$doc:meta])* $variant:ident = $module:ident::$cell:ident,)*) => {
        /// The recurrent cell of every layer (see [`crate::model::cell`]).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum CellKind {
            $($(#[$doc])* $variant,)*
        }
    };
    ((dispatch $kind:expr, $C:ident => $body:expr) $($(#[$doc:meta])* $variant:ident = $module:ident::$cell:ident,)*) => {
        match $kind {
            $($crate::model::cell::CellKind::$variant => {
                type $C = $crate::model::cell::$module::$cell;
                $body
            })*
        }
    };
}
pub(crate) use each_cell;

cells!(declare);

/// `with_cell!(kind, C => body)`: `body` with the type `C` standing for the cell `kind` names
/// (one `match`, each arm compiled for its cell).
macro_rules! with_cell {
    ($kind:expr, $C:ident => $body:expr) => {
        $crate::model::cell::cells!(dispatch $kind, $C => $body)
    };
}
pub(crate) use with_cell;

/// Where a cell's recurrent side `h_{t-1}·Wh + b_hh` goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecurrentSide {
    /// Added onto the input side's pre-activations: the cell sees only the sum, so `b_hh` is
    /// folded into the input bias, and the gradient of the recurrent side is that of the gates
    /// (`dh_{t-1} = dgates·Whᵀ`). The LSTM, the RNN.
    Summed,
    /// Into a buffer of its own (`[rows, G·H]`, filled with `b_hh` first) that the cell reads
    /// beside the input side's, because a bias sits inside a gate (the GRU's `r ⊙ (h·W_hn +
    /// b_hn)`). Its gradient is apart too: the backward step writes the gradient reaching
    /// `h_{t-1}` directly into `dh_prev`, and the driver adds `drecurrent·Whᵀ`.
    Apart,
}

/// One entry per state slab of a cell, `h` first: `[T; n]`, built in place by the drivers
/// (nothing allocated), taken apart by the cell (`let [(h_prev, h), (c_prev, c)] = state;`).
pub trait SlabArray<T>: AsRef<[T]> + Sized {
    /// The first entries of `slabs`, in slab order.
    ///
    /// # Panics
    /// If `slabs` has fewer entries than the cell has slabs.
    fn from_slabs(slabs: impl IntoIterator<Item = T>) -> Self;
}

impl<T, const N: usize> SlabArray<T> for [T; N] {
    fn from_slabs(slabs: impl IntoIterator<Item = T>) -> Self {
        let mut slabs = slabs.into_iter();
        std::array::from_fn(|_| slabs.next().expect("an entry per state slab"))
    }
}

/// One step forward of cell `C` over `rows` rows of `hidden` units.
pub struct ForwardStep<'a, F, C: Cell> {
    /// Rows.
    pub rows: usize,
    /// Units `H`.
    pub hidden: usize,
    /// On entry the pre-activations `[rows, G·H]` (with the recurrent side added if
    /// [`RecurrentSide::Summed`]); on return what the backward step reads (the LSTM's and
    /// GRU's activations).
    pub gates: &'a mut [F],
    /// The recurrent side `[rows, G·H]` ([`RecurrentSide::Apart`]; empty otherwise).
    pub recurrent: &'a [F],
    /// Each state slab before the step, and room for it after.
    pub state: C::Slabs<(&'a [F], &'a mut [F])>,
}

/// One step backward of cell `C`, over what [`ForwardStep`] kept.
pub struct BackwardStep<'a, F, C: Cell> {
    /// Rows.
    pub rows: usize,
    /// Units `H`.
    pub hidden: usize,
    /// What the forward step left in its `gates`.
    pub gates: &'a [F],
    /// The recurrent side the forward step read ([`RecurrentSide::Apart`]; empty otherwise).
    pub recurrent: &'a [F],
    /// Each state slab before the step and after it.
    pub state: C::Slabs<(&'a [F], &'a [F])>,
    /// The whole gradient reaching `h` after the step.
    pub dh: &'a [F],
    /// The gradient reaching the slabs after `h` after the step (`[rows, H]` each, in slab
    /// order); receives the gradient reaching them before it.
    pub d_carried: &'a mut [F],
    /// Receives the gradient of the pre-activations (`[rows, G·H]`).
    pub dgates: &'a mut [F],
    /// Receives the gradient of the recurrent side ([`RecurrentSide::Apart`]; empty otherwise).
    pub drecurrent: &'a mut [F],
    /// [`RecurrentSide::Apart`]: receives the gradient reaching `h_{t-1}` other than through
    /// `Wh`. Not touched otherwise.
    pub dh_prev: &'a mut [F],
}

/// A recurrent cell: what it carries and how it steps. Its methods are associated functions:
/// a cell is a type, chosen by [`with_cell!`], never a value.
pub trait Cell: Sized {
    /// Its name (the command line's, the files').
    const NAME: &'static str;
    /// Gate blocks of width `H` per step.
    const GATES: usize;
    /// Its state slabs, `h` first: checkpoints name them `state.{name}.{layer}`.
    const STATE: &'static [&'static str];
    /// Where its recurrent side goes.
    const RECURRENT: RecurrentSide;
    /// One entry per slab of [`Cell::STATE`].
    type Slabs<T>: SlabArray<T>;

    /// After PyTorch's uniform initialisation: a forget gate's two biases set to sum to
    /// `forget_bias` (input bias `forget_bias`, recurrent bias 0). Cells without a forget gate
    /// ignore it.
    fn set_forget_bias<F: Float>(_forget_bias: f64, _hidden: usize, _bias_ih: &mut [F], _bias_hh: &mut [F]) {}

    /// One step: the state slabs after the step from those before it and the gates.
    fn forward<F: Float>(step: ForwardStep<'_, F, Self>);

    /// The step's gradients, from what the forward step kept.
    fn backward<F: Float>(step: BackwardStep<'_, F, Self>);
}

impl CellKind {
    /// Number of gate blocks of width `hidden` the cell computes per step.
    pub fn gates(self) -> usize {
        with_cell!(self, C => C::GATES)
    }

    /// Lowercase name, as on the command line.
    pub fn name(self) -> &'static str {
        with_cell!(self, C => C::NAME)
    }

    /// The names of its state slabs, `h` first.
    pub fn state_names(self) -> &'static [&'static str] {
        with_cell!(self, C => C::STATE)
    }

    /// Where its recurrent side goes.
    pub(crate) fn recurrent_side(self) -> RecurrentSide {
        with_cell!(self, C => C::RECURRENT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slab_indices<C: Cell>() -> Vec<usize> {
        <C::Slabs<usize> as SlabArray<usize>>::from_slabs(0..).as_ref().to_vec()
    }

    /// Each cell's slab array has one entry per state name, `h` first.
    #[test]
    fn slab_arrays_match_the_state_names() {
        for kind in [CellKind::Lstm, CellKind::Rnn, CellKind::Gru] {
            let slabs = with_cell!(kind, C => slab_indices::<C>());
            assert_eq!(slabs, (0..kind.state_names().len()).collect::<Vec<_>>(), "{kind:?}");
            assert_eq!(kind.state_names()[0], "h", "{kind:?}");
        }
        assert_eq!(CellKind::Lstm.state_names(), ["h", "c"]);
        assert_eq!(CellKind::Gru.recurrent_side(), RecurrentSide::Apart);
        assert_eq!(CellKind::Rnn.recurrent_side(), RecurrentSide::Summed);
    }
}
