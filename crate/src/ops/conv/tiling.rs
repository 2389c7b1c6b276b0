//! How the convolution's work is cut, the same for every kernel:
//!
//! - samples: `0..N` in one contiguous block per thread ([`chunks`]:
//!   block `i` of `t` is `i·N/t .. (i+1)·N/t`), each block with its own
//!   scratch buffer ([`for_each_sample`]); with fewer samples than threads
//!   the matrix product splits instead;
//! - output rows: the im2col path builds and multiplies the column matrix a
//!   band of [`tile_rows`] output rows at a time (`K × rows·OW` values, at
//!   most [`TILE_ELEMS`]), so the product reads it from cache.

use rayon::prelude::*;

use super::im2col::Geometry;
use crate::float::Real;
use crate::ops::gemm::num_threads;

/// Elements of a column tile: `K × T` f32 values that stay in the L2 cache
/// next to the product's own packed copy (256 KiB).
const TILE_ELEMS: usize = 64 * 1024;

/// Output rows per column tile: the im2col matrix of a whole sample
/// (`K × L`, 1.2 MB for a 32-channel 3×3 conv on 32×32) is built and
/// multiplied a band of output rows at a time, so the product reads it from
/// cache instead of memory.
pub(super) fn tile_rows(g: &Geometry) -> usize {
    (TILE_ELEMS / (g.k() * g.ow).max(1)).clamp(1, g.oh.max(1))
}

/// `0..n` in bands of `t`.
pub(super) fn tiles(n: usize, t: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    (0..n).step_by(t.max(1)).map(move |a| a..(a + t).min(n))
}

/// Splits `n` samples into one contiguous range per thread.
pub(super) fn chunks(n: usize) -> Vec<(usize, usize)> {
    let t = num_threads().min(n).max(1);
    (0..t)
        .map(|i| (i * n / t, (i + 1) * n / t))
        .filter(|(a, b)| a < b)
        .collect()
}

/// Calls `f(sample, out, scratch, threads)` for each of `n` samples, where
/// `out` is the sample's `per` elements of `buf`. Samples go in one block
/// per thread, each block with its own `scratch_len` buffer; with fewer
/// samples than threads, `threads` tells the matrix product to split instead.
pub(super) fn for_each_sample<T: Real, U: Send>(
    n: usize,
    buf: &mut [U],
    per: usize,
    scratch_len: usize,
    f: impl Fn(usize, &mut [U], &mut [T], usize) + Sync,
) {
    let parts = chunks(n);
    let inner = if parts.len() < num_threads() {
        num_threads()
    } else {
        1
    };
    let mut outs = Vec::with_capacity(parts.len());
    let mut rest = buf;
    for (a, b) in &parts {
        let (head, tail) = rest.split_at_mut((b - a) * per);
        outs.push(head);
        rest = tail;
    }
    parts.par_iter().zip(outs).for_each(|(&(a, b), out)| {
        let mut scratch = vec![T::ZERO; scratch_len];
        for s in a..b {
            f(
                s,
                &mut out[(s - a) * per..(s - a + 1) * per],
                &mut scratch,
                inner,
            );
        }
    });
}
