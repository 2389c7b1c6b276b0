//! Channel sums `s[c] = Σ_n Σ_l t[n, c, l]` of a tensor viewed as `[N, C, L]`:
//! the bias gradient of a convolution (`L = H·W`) or of a linear layer
//! (`L = 1`), in one pass. Candle reduces over several axes of a strided
//! view element by element; here each thread sums a block of samples and
//! the partial sums are added.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::gemm::num_threads;
use super::storage::{float_dispatch, operand};
use crate::float::Real;

/// `t` (any shape with `n·c·l` elements, `c` at the second position of the
/// `[n, c, l]` view) → `[c]`.
pub(crate) fn channel_sum(t: &Tensor, n: usize, c: usize, l: usize) -> candle_core::Result<Tensor> {
    if !t.device().is_cpu() {
        return t.reshape((n, c, l))?.sum(2)?.sum(0);
    }
    t.contiguous()?.apply_op1_no_bwd(&ChannelSum { n, c, l })
}

#[derive(Clone, Copy, Debug)]
struct ChannelSum {
    n: usize,
    c: usize,
    l: usize,
}

impl ChannelSum {
    fn run<T: Real>(&self, t: &[T]) -> Vec<T> {
        let (c, l) = (self.c, self.l);
        let per = c * l;
        if self.n == 0 || per == 0 {
            return vec![T::ZERO; c];
        }
        let partial: Vec<Vec<T>> = t[..self.n * per]
            .par_chunks(sum_block(self.n) * per)
            .map(|samples| {
                let mut s = vec![T::ZERO; c];
                for sample in samples.chunks(per) {
                    for (acc, row) in s.iter_mut().zip(sample.chunks(l)) {
                        *acc += row_sum(row);
                    }
                }
                s
            })
            .collect();
        sum_partials(partial, c)
    }
}

/// Samples per block of [`channel_sum`]'s partial sums: one block a thread.
fn sum_block(n: usize) -> usize {
    let parts = num_threads().min(n).max(1);
    n.div_ceil(parts).max(1)
}

/// One channel's sum over one sample, as [`channel_sum`] takes it: four
/// running sums (shorter dependency chains, vectorizable), then the rest.
pub(crate) fn row_sum<T: Real>(row: &[T]) -> T {
    let mut q = [T::ZERO; 4];
    let mut it = row.chunks_exact(4);
    for v in &mut it {
        q[0] += v[0];
        q[1] += v[1];
        q[2] += v[2];
        q[3] += v[3];
    }
    let mut r = (q[0] + q[1]) + (q[2] + q[3]);
    for &v in it.remainder() {
        r += v;
    }
    r
}

/// [`channel_sum`] from each sample's [`row_sum`]s (`sums`: `n × c`,
/// sample-major), added in its blocks and order: the same bits.
pub(crate) fn channel_sum_of_rows<T: Real>(sums: &[T], n: usize, c: usize) -> Vec<T> {
    if n == 0 || c == 0 {
        return vec![T::ZERO; c];
    }
    let partial: Vec<Vec<T>> = sums[..n * c]
        .chunks(sum_block(n) * c)
        .map(|samples| {
            let mut s = vec![T::ZERO; c];
            for sample in samples.chunks(c) {
                for (acc, &r) in s.iter_mut().zip(sample) {
                    *acc += r;
                }
            }
            s
        })
        .collect();
    sum_partials(partial, c)
}

/// The elementwise sum of per-thread partial results of length `len`
/// (zeros when there are none).
pub(crate) fn sum_partials<T: Real>(partial: Vec<Vec<T>>, len: usize) -> Vec<T> {
    let mut it = partial.into_iter();
    let mut s = it.next().unwrap_or_else(|| vec![T::ZERO; len]);
    for p in it {
        for (a, b) in s.iter_mut().zip(p) {
            *a += b;
        }
    }
    s
}

impl CustomOp1 for ChannelSum {
    fn name(&self) -> &'static str {
        "nnlab-channel-sum"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let out = float_dispatch!("channel sum", s, |T| T::storage(self.run::<T>(operand(
            s,
            l,
            "channel sum",
            "input"
        )?)));
        Ok((out, Shape::from(self.c)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_util::{max_diff, rand};

    #[test]
    fn equals_candles_sum_over_samples_and_positions() -> crate::TestResult {
        for &(n, c, l) in &[(1, 1, 1), (3, 5, 7), (64, 10, 1), (5, 4, 33), (2, 3, 0)] {
            let t = rand(&[n, c, l], (n * 100 + c * 10 + l) as u64);
            let got = channel_sum(&t, n, c, l)?;
            assert_eq!(got.dims(), &[c]);
            let want = t.sum(2)?.sum(0)?;
            assert!(max_diff(&got, &want) < 1e-12, "({n}, {c}, {l})");
            let t32 = t.to_dtype(candle_core::DType::F32)?;
            let got32 = channel_sum(&t32, n, c, l)?.to_dtype(candle_core::DType::F64)?;
            assert!(max_diff(&got32, &want) < 1e-4, "f32 ({n}, {c}, {l})");
        }
        Ok(())
    }
}
