//! The gate blocks of one row of a recurrent cell's `[batch, G·hidden]` gate matrix (`i | f |
//! g | o` for the LSTM, `r | z | n` for the GRU), for the plain and the fused bodies alike.

/// The `G` blocks of `hidden` elements at the start of `row`.
///
/// # Panics
/// If `row` is shorter than `G·hidden`.
#[inline(always)]
pub(crate) fn gate_blocks<T, const G: usize>(row: &[T], hidden: usize) -> [&[T]; G] {
    std::array::from_fn(|g| &row[g * hidden..(g + 1) * hidden])
}

/// The `G` blocks of `hidden` elements at the start of `row`, mutable.
///
/// # Panics
/// If `row` is shorter than `G·hidden`.
#[inline(always)]
pub(crate) fn gate_blocks_mut<T, const G: usize>(row: &mut [T], hidden: usize) -> [&mut [T]; G] {
    let mut rest = row;
    std::array::from_fn(|_| {
        let (block, after) = std::mem::take(&mut rest).split_at_mut(hidden);
        rest = after;
        block
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_consecutive_runs_of_hidden() {
        let mut row = [0, 1, 2, 3, 4, 5, 6];
        assert_eq!(gate_blocks::<_, 3>(&row, 2), [&[0, 1][..], &[2, 3], &[4, 5]]);
        let [a, b] = gate_blocks_mut(&mut row, 3);
        a[0] = 10;
        b[2] = 50;
        assert_eq!(row, [10, 1, 2, 3, 4, 50, 6]);
    }
}
