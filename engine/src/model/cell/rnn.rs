//! The vanilla tanh RNN: one gate block (the pre-activation); one state slab, `h`; its
//! recurrent side summed onto the pre-activation.

use charrnn_kernels::rnn_cell::{RnnBackward, RnnForward};
use charrnn_kernels::{Float, Kernel};

use crate::model::cell::{BackwardStep, Cell, ForwardStep, RecurrentSide};

/// `h_t = tanh(x_t·Wx + h_{t-1}·Wh + b)`, PyTorch's `nn.RNN`.
pub struct Rnn;

impl Cell for Rnn {
    const NAME: &'static str = "rnn";
    const GATES: usize = 1;
    const STATE: &'static [&'static str] = &["h"];
    const RECURRENT: RecurrentSide = RecurrentSide::Summed;
    type Slabs<T> = [T; 1];

    fn forward<F: Float>(step: ForwardStep<'_, F, Self>) {
        let ForwardStep { gates, state: [(_, h)], .. } = step;
        RnnForward { pre: gates, h }.run();
    }

    fn backward<F: Float>(step: BackwardStep<'_, F, Self>) {
        let BackwardStep { state: [(_, h)], dh, dgates, .. } = step;
        RnnBackward { h, dh, dpre: dgates }.run();
    }
}
