//! Train/validation split and the char-rnn batch layout.

use std::ops::Range;

use super::error::DataError;
use super::token_stream::TokenStream;

/// Splits `[0, n)` into train = `[0, n - n_val)` and val = `[n - n_val, n)` with
/// `n_val = floor(n * val_frac)`. `val_frac` must be in `[0, 1)`.
pub fn split_train_val(n_tokens: usize, val_frac: f64) -> Result<(Range<usize>, Range<usize>), DataError> {
    if !(0.0..1.0).contains(&val_frac) {
        return Err(DataError::InvalidValFrac { value: val_frac });
    }
    // In [0, n) because val_frac < 1; the `min` guards against rounding for huge n.
    let n_val = ((n_tokens as f64) * val_frac).floor() as usize;
    let n_val = n_val.min(n_tokens);
    let cut = n_tokens - n_val;
    Ok((0..cut, cut..n_tokens))
}

/// The most symbols of the held-out split that `train` validates on: its first 2^20 (1 MiB of
/// a byte corpus). On a large corpus a tenth is hundreds of millions of symbols, minutes of
/// evaluation each time; this part of it measures the loss to about ±0.002 nats. `eval
/// --val-frac` scores the whole split.
pub const MAX_VALIDATION_SYMBOLS: usize = 1 << 20;

/// The part of the held-out range `val` that training validates on: its first
/// [`MAX_VALIDATION_SYMBOLS`].
pub fn validation_part(val: Range<usize>) -> Range<usize> {
    val.start..val.end.min(val.start.saturating_add(MAX_VALIDATION_SYMBOLS))
}

/// Batches over a range of a [`TokenStream`] in the karpathy / TensorFlow char-rnn layout.
///
/// With `len = range.len()`, `num_batches = len / (B*T)`. The range cut to its first
/// `N = num_batches*B*T` tokens is laid out as `B` rows of `num_batches*T` tokens; batch `i`
/// covers columns `[i*T, (i+1)*T)` of every row, so row `b` of batch `i + 1` continues row `b`
/// of batch `i` (which is what makes carrying the recurrent state between batches correct).
/// Targets are the inputs shifted by one within the cut stream; the very last target wraps to
/// the first token of the cut stream. The stream is indexed in place, never copied.
#[derive(Debug, Clone)]
pub struct Batcher<'a> {
    stream: &'a TokenStream,
    start: usize,
    batch_size: usize,
    seq_len: usize,
    num_batches: usize,
    /// `num_batches * seq_len`: the length of one row.
    row_len: usize,
    /// `num_batches * batch_size * seq_len`: the cut stream length.
    cut_len: usize,
}

impl<'a> Batcher<'a> {
    /// A batcher over `stream[range]`; `label` (`"training"` or `"validation"`) names the split
    /// in the error when the range is too short for one batch.
    pub fn new(
        stream: &'a TokenStream,
        range: Range<usize>,
        batch_size: usize,
        seq_len: usize,
        label: &'static str,
    ) -> Result<Self, DataError> {
        if range.start > range.end || range.end > stream.len() {
            return Err(DataError::RangeOutOfBounds { start: range.start, end: range.end, len: stream.len() });
        }
        let need = match batch_size.checked_mul(seq_len) {
            Some(n) if n > 0 => n,
            _ => return Err(DataError::InvalidBatchShape { batch: batch_size, seq_len }),
        };
        let have = range.len();
        let num_batches = have / need;
        if num_batches == 0 {
            return Err(DataError::TooLittleData { what: label, have, need, batch: batch_size, seq_len });
        }
        Ok(Batcher {
            stream,
            start: range.start,
            batch_size,
            seq_len,
            num_batches,
            row_len: num_batches * seq_len,
            cut_len: num_batches * need,
        })
    }

    /// Batches per epoch.
    pub fn num_batches(&self) -> usize {
        self.num_batches
    }

    /// B.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// T.
    pub fn seq_len(&self) -> usize {
        self.seq_len
    }

    /// Tokens per batch (`B * T`).
    pub fn tokens_per_batch(&self) -> usize {
        self.batch_size * self.seq_len
    }

    /// Fills time-major buffers of length `T*B` for batch `i`: `inputs[t*B + b]` and
    /// `targets[t*B + b]`. Does not allocate.
    ///
    /// # Panics
    /// If `i >= num_batches()` or a buffer's length is not `T*B` (programmer errors).
    pub fn fill(&self, i: usize, inputs: &mut [u32], targets: &mut [u32]) {
        self.fill_rows(i, 0..self.batch_size, inputs, targets);
    }

    /// As [`Batcher::fill`] for rows `rows` of the batch only, the other entries left as they
    /// are: a process of a data-parallel run reads its own rows of the token file and no
    /// others. Does not allocate.
    ///
    /// # Panics
    /// As [`Batcher::fill`], or if `rows` is not within the batch.
    pub fn fill_rows(&self, i: usize, rows: Range<usize>, inputs: &mut [u32], targets: &mut [u32]) {
        let (bs, t_len) = (self.batch_size, self.seq_len);
        assert!(i < self.num_batches, "batch {i} out of {}", self.num_batches);
        assert!(rows.end <= bs, "rows {rows:?} of a batch of {bs}");
        assert_eq!(inputs.len(), bs * t_len, "inputs must hold T*B ids");
        assert_eq!(targets.len(), bs * t_len, "targets must hold T*B ids");
        let s = self.stream;
        let first = s.get(self.start);
        for b in rows {
            // Offset of (row b, column i*T) within the cut stream.
            let base = b * self.row_len + i * t_len;
            let mut next = s.get(self.start + base);
            for t in 0..t_len {
                let k = base + t;
                let cur = next;
                next = if k + 1 < self.cut_len { s.get(self.start + k + 1) } else { first };
                inputs[t * bs + b] = cur;
                targets[t * bs + b] = next;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::TokenWidth;
    use std::fs;

    /// Writes `ids` as a u16 token file and maps it.
    fn stream_of(dir: &tempfile::TempDir, ids: &[u32]) -> TokenStream {
        let p = dir.path().join("tokens.bin");
        let bytes: Vec<u8> = ids.iter().flat_map(|&id| u16::try_from(id).unwrap().to_le_bytes()).collect();
        fs::write(&p, bytes).unwrap();
        TokenStream::open(&p, TokenWidth::U16).unwrap()
    }

    /// `[B][T]` ids of one batch.
    type Grid = Vec<Vec<u32>>;

    /// karpathy/char-rnn TextLoader in plain Vec form: returns per batch the (x, y) arrays of
    /// shape [B][T] (batch-major, as numpy gives them).
    fn reference(tokens: &[u32], b: usize, t: usize) -> Vec<(Grid, Grid)> {
        let nb = tokens.len() / (b * t);
        let xdata: Vec<u32> = tokens[..nb * b * t].to_vec();
        let mut ydata = xdata.clone();
        // ydata[:-1] = xdata[1:]; ydata[-1] = xdata[0]
        let n = xdata.len();
        ydata[..n - 1].copy_from_slice(&xdata[1..]);
        ydata[n - 1] = xdata[0];
        // reshape(B, -1) then split into nb pieces along axis 1.
        let rows = |d: &[u32]| -> Grid { d.chunks(nb * t).map(|r| r.to_vec()).collect() };
        let (xr, yr) = (rows(&xdata), rows(&ydata));
        (0..nb)
            .map(|i| {
                let piece = |r: &Grid| -> Grid { r.iter().map(|row| row[i * t..(i + 1) * t].to_vec()).collect() };
                (piece(&xr), piece(&yr))
            })
            .collect()
    }

    #[test]
    fn fill_matches_the_numpy_reference() {
        let dir = tempfile::tempdir().unwrap();
        // Distinct-ish ids so misplacements show.
        let ids: Vec<u32> = (0..500u32).map(|k| (k * 7919 + 13) % 1000).collect();
        let stream = stream_of(&dir, &ids);
        for (b, t) in [(1, 1), (1, 7), (3, 5), (5, 3), (7, 11), (2, 1), (13, 2)] {
            for range in [0..500, 17..500, 3..331, 250..500, 101..102 + b * t] {
                let bt = Batcher::new(&stream, range.clone(), b, t, "training").unwrap();
                let expected = reference(&ids[range.clone()], b, t);
                assert_eq!(bt.num_batches(), expected.len(), "B={b} T={t} {range:?}");
                assert_eq!((bt.batch_size(), bt.seq_len()), (b, t));
                let mut x = vec![u32::MAX; b * t];
                let mut y = vec![u32::MAX; b * t];
                for (i, (ex, ey)) in expected.iter().enumerate() {
                    bt.fill(i, &mut x, &mut y);
                    for bb in 0..b {
                        for tt in 0..t {
                            assert_eq!(x[tt * b + bb], ex[bb][tt], "x B={b} T={t} {range:?} i={i}");
                            assert_eq!(y[tt * b + bb], ey[bb][tt], "y B={b} T={t} {range:?} i={i}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn last_target_wraps_to_first_token_of_the_cut_stream() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<u32> = (0..20).collect();
        let stream = stream_of(&dir, &ids);
        // Range 2..13 (11 tokens), B=2, T=2: 2 batches, cut = 8 tokens 2..10.
        let bt = Batcher::new(&stream, 2..13, 2, 2, "training").unwrap();
        assert_eq!(bt.num_batches(), 2);
        let (mut x, mut y) = ([0u32; 4], [0u32; 4]);
        // Rows: [2,3,4,5] and [6,7,8,9]. Batch 1 = columns 2..4, time-major.
        bt.fill(1, &mut x, &mut y);
        assert_eq!(x, [4, 8, 5, 9]);
        assert_eq!(y, [5, 9, 6, 2]);
    }

    /// Rows filled block by block give the whole batch, and nothing outside the block is
    /// written.
    #[test]
    fn fill_rows_writes_its_rows_only() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<u32> = (0..400u32).map(|k| (k * 31 + 7) % 97).collect();
        let stream = stream_of(&dir, &ids);
        let (b, t) = (7, 5);
        let bt = Batcher::new(&stream, 3..400, b, t, "training").unwrap();
        for i in 0..bt.num_batches() {
            let (mut x, mut y) = (vec![0; b * t], vec![0; b * t]);
            bt.fill(i, &mut x, &mut y);
            let (mut xs, mut ys) = (vec![u32::MAX; b * t], vec![u32::MAX; b * t]);
            for rows in [0..3, 3..4, 4..7] {
                bt.fill_rows(i, rows.clone(), &mut xs, &mut ys);
                for (k, &x) in xs.iter().enumerate() {
                    let filled = k % b < rows.end;
                    assert_eq!(x == u32::MAX, !filled, "batch {i} rows {rows:?} entry {k}");
                }
            }
            assert_eq!((xs, ys), (x, y), "batch {i}");
        }
    }

    #[test]
    fn too_little_data_explains_what_is_needed() {
        let dir = tempfile::tempdir().unwrap();
        let stream = stream_of(&dir, &[0; 100]);
        let err = Batcher::new(&stream, 0..99, 10, 10, "training").unwrap_err();
        assert!(matches!(
            err,
            DataError::TooLittleData { what: "training", have: 99, need: 100, batch: 10, seq_len: 10 }
        ));
        let msg = err.to_string();
        assert!(msg.contains("training") && msg.contains("99 tokens") && msg.contains("needs 100"), "{msg}");
        assert!(msg.contains("batch_size") && msg.contains("seq_len") && !msg.contains("val_frac"));
        let msg = Batcher::new(&stream, 95..100, 2, 3, "validation").unwrap_err().to_string();
        assert!(msg.contains("validation") && msg.contains("5 tokens") && msg.contains("needs 6"));
        assert!(msg.contains("val_frac"), "{msg}");
        // Exactly one batch is enough.
        assert_eq!(Batcher::new(&stream, 0..100, 10, 10, "training").unwrap().num_batches(), 1);
    }

    #[test]
    fn rejects_bad_shapes_and_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let stream = stream_of(&dir, &[0; 10]);
        assert!(matches!(Batcher::new(&stream, 0..10, 0, 2, "training"), Err(DataError::InvalidBatchShape { .. })));
        assert!(matches!(Batcher::new(&stream, 0..10, 2, 0, "training"), Err(DataError::InvalidBatchShape { .. })));
        assert!(matches!(
            Batcher::new(&stream, 0..10, usize::MAX, 2, "training"),
            Err(DataError::InvalidBatchShape { .. })
        ));
        assert!(matches!(Batcher::new(&stream, 0..11, 1, 1, "training"), Err(DataError::RangeOutOfBounds { .. })));
        #[allow(clippy::reversed_empty_ranges)]
        let backwards = 5..4;
        assert!(matches!(Batcher::new(&stream, backwards, 1, 1, "training"), Err(DataError::RangeOutOfBounds { .. })));
    }

    #[test]
    fn split_edge_cases() {
        assert_eq!(split_train_val(100, 0.0).unwrap(), (0..100, 100..100));
        assert_eq!(split_train_val(100, 0.05).unwrap(), (0..95, 95..100));
        // floor: 19 * 0.1 = 1.9 -> 1.
        assert_eq!(split_train_val(19, 0.1).unwrap(), (0..18, 18..19));
        assert_eq!(split_train_val(0, 0.5).unwrap(), (0..0, 0..0));
        assert_eq!(split_train_val(3, 0.999).unwrap(), (0..1, 1..3));
        assert_eq!(split_train_val(1, 0.999_999).unwrap(), (0..1, 1..1));
        let tinyshakespeare = split_train_val(1_115_394, 0.05).unwrap();
        assert_eq!(tinyshakespeare, (0..1_059_625, 1_059_625..1_115_394));
        for bad in [1.0, 1.5, -0.01, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let err = split_train_val(100, bad).unwrap_err();
            assert!(matches!(err, DataError::InvalidValFrac { .. }), "{bad}");
            assert!(err.to_string().contains("val_frac"));
        }
    }
}
