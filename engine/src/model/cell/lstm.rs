//! The LSTM: gates `i, f, g, o`; two state slabs, `h` and the cell state `c`; its recurrent
//! side summed onto the gates (it sees only `b_ih + b_hh`).

use charrnn_kernels::lstm_cell::{LstmBackward, LstmForward};
use charrnn_kernels::{Float, Kernel};

use crate::model::cell::{BackwardStep, Cell, ForwardStep, RecurrentSide};

/// Long short-term memory, PyTorch's `nn.LSTM`.
pub struct Lstm;

impl Cell for Lstm {
    const NAME: &'static str = "lstm";
    const GATES: usize = 4;
    const STATE: &'static [&'static str] = &["h", "c"];
    const RECURRENT: RecurrentSide = RecurrentSide::Summed;
    type Slabs<T> = [T; 2];

    fn set_forget_bias<F: Float>(forget_bias: f64, hidden: usize, bias_ih: &mut [F], bias_hh: &mut [F]) {
        // Gate order i, f, g, o: the forget gate is the second block. The sum of the two
        // biases is what the cell sees.
        bias_ih[hidden..2 * hidden].fill(F::from_f64(forget_bias));
        bias_hh[hidden..2 * hidden].fill(F::zero());
    }

    fn forward<F: Float>(step: ForwardStep<'_, F, Self>) {
        let ForwardStep { rows: batch, hidden, gates, state: [(_, h), (c_prev, c)], .. } = step;
        LstmForward { batch, hidden, gates, c_prev, c, h }.run();
    }

    fn backward<F: Float>(step: BackwardStep<'_, F, Self>) {
        let BackwardStep { rows: batch, hidden, gates, state: [_, (c_prev, c)], dh, d_carried, dgates, .. } = step;
        LstmBackward { batch, hidden, gates, c_prev, c, dh, dc: d_carried, dgates }.run();
    }
}
