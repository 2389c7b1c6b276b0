//! A convolution's backward on the direct kernels, one sample at a time:
//! the sample's output gradient `dz` (`O × OH·OW`) is made once, in a
//! per-thread buffer, and both gradients are taken from it while it is
//! still in the cache,
//!
//! ```text
//! dW += Σ_pixels dz[o, ·]·xp[off(k) + ·]          the weight-gradient tile
//! dx  = forward(pad(dz, K−1−pad), flipped W)       the input-gradient kernel
//! ```
//!
//! instead of a `dz` tensor for the whole batch that a ReLU-gradient pass
//! writes and three passes (bias, weight and input gradients) read back
//! from memory. What `dz` is belongs to the caller: `dy` scattered to the
//! pooling windows' maxima ([`super::fused_pool`]), `dy` masked by the
//! ReLU, or `dy` itself ([`super::forward`]).
//!
//! Samples go in one contiguous block per thread ([`chunks`]); the
//! per-thread weight gradients are added in thread order, so the numbers
//! are those of the separate gradient ops ([`super::grad`]).

use candle_core::{Layout, Storage, Tensor};
use rayon::prelude::*;

use super::direct::{DirectConv, WeightGrad, Weights};
use super::tiling::chunks;
use crate::ops::reduce::sum_partials;
use crate::ops::storage::operand;

/// An f32 operand of `op` on the CPU, contiguous, as a slice.
pub(super) fn cpu_f32<'a>(
    st: &'a Storage,
    l: &Layout,
    op: &str,
    what: &str,
) -> candle_core::Result<&'a [f32]> {
    match st {
        Storage::Cpu(c) => operand(c, l, op, what),
        _ => candle_core::bail!("{op}: the {what} is not on the CPU"),
    }
}

#[cfg(test)]
thread_local! {
    /// Backwards [`DirectBackward::run`] ran on this thread, for the tests
    /// to see the path was taken.
    pub(super) static RUNS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The input-gradient kernel and the flipped weight it runs with.
pub(super) struct InputGrad<'a> {
    dc: &'a DirectConv,
    flipped: Weights,
}

impl<'a> InputGrad<'a> {
    /// `dc` with the layer's weight `w` (`[O, C, KH, KW]`, `C = c`)
    /// flipped and packed for it.
    pub(super) fn new(dc: &'a DirectConv, w: &[f32], c: usize) -> InputGrad<'a> {
        InputGrad {
            dc,
            flipped: dc.pack_flipped(w, c),
        }
    }
}

/// One backward: the kernels, the operands it reads and what it makes.
pub(super) struct DirectBackward<'a> {
    /// the forward's kernel, whose weight-gradient tile runs
    pub(super) dc: &'a DirectConv,
    /// the input, `n × xs`, when the weight gradient is wanted
    pub(super) x: Option<&'a [f32]>,
    /// the input-gradient kernel, when the input gradient is wanted
    pub(super) dx: Option<InputGrad<'a>>,
    pub(super) n: usize,
    /// input values per sample (`C·H·W`)
    pub(super) xs: usize,
    /// output-gradient values per sample (`O·OH·OW`)
    pub(super) zs: usize,
    /// output channels and `K = C·KH·KW`: the weight gradient is `o × k`
    pub(super) o: usize,
    pub(super) k: usize,
}

/// What [`DirectBackward::run`] made: the input gradient (`n × xs`), the
/// weight gradient (`o × k`), and each thread's state, in thread order.
pub(super) struct Made<S> {
    pub(super) dx: Option<Vec<f32>>,
    pub(super) dw: Option<Vec<f32>>,
    pub(super) states: Vec<S>,
}

impl<S> Made<S> {
    /// The input and weight gradients as tensors shaped like `x` and `w`.
    pub(super) fn tensors(
        &mut self,
        x: &Tensor,
        w: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let dev = x.device();
        let dx = self
            .dx
            .take()
            .map(|dx| Tensor::from_vec(dx, x.shape(), dev))
            .transpose()?;
        let dw = self
            .dw
            .take()
            .map(|dw| Tensor::from_vec(dw, w.shape(), dev))
            .transpose()?;
        Ok((dx, dw))
    }
}

impl DirectBackward<'_> {
    /// Runs the backward. Each thread starts with `state(first, end)` for
    /// its samples `first..end`; for each sample `s`, `dz(s, buf, state)`
    /// returns the sample's output gradient (`zs` values), either a slice
    /// it already has or `None` after writing all of `buf`.
    pub(super) fn run<'d, S: Send>(
        &self,
        state: impl Fn(usize, usize) -> S + Sync,
        dz: impl Fn(usize, &mut [f32], &mut S) -> Option<&'d [f32]> + Sync,
    ) -> Made<S> {
        #[cfg(test)]
        RUNS.with(|r| r.set(r.get() + 1));
        let (n, xs, zs) = (self.n, self.xs, self.zs);
        let dx_len = if self.dx.is_some() { n * xs } else { 0 };
        let mut dx: Vec<f32> = Vec::with_capacity(dx_len);
        let mut jobs = Vec::new();
        let mut rest = &mut dx.spare_capacity_mut()[..dx_len];
        for (a, e) in chunks(n) {
            let len = if self.dx.is_some() { (e - a) * xs } else { 0 };
            let (head, tail) = rest.split_at_mut(len);
            jobs.push((a, e, head));
            rest = tail;
        }
        let parts: Vec<(Option<Vec<f32>>, S)> = jobs
            .into_par_iter()
            .map(|(a, e, dxc)| {
                let mut st = state(a, e);
                let mut acc = self.x.map(|_| WeightGrad::new(self.o, self.k));
                let mut buf = vec![0f32; zs];
                let mut xscratch = vec![0f32; self.x.map_or(0, |_| self.dc.scratch_len())];
                let mut dzscratch = vec![0f32; self.dx.as_ref().map_or(0, |d| d.dc.scratch_len())];
                for (i, s) in (a..e).enumerate() {
                    let given = dz(s, &mut buf, &mut st);
                    let dzs = given.unwrap_or(&buf);
                    assert_eq!(dzs.len(), zs, "direct backward: output gradient size");
                    if let (Some(x), Some(acc)) = (self.x, acc.as_mut()) {
                        let xp = self.dc.padded(&x[s * xs..(s + 1) * xs], &mut xscratch);
                        self.dc.add_weight_grad(xp, dzs, acc);
                    }
                    if let Some(d) = &self.dx {
                        let dxs = &mut dxc[i * xs..(i + 1) * xs];
                        d.dc.forward(dzs, &mut dzscratch, &d.flipped, None, false, dxs);
                    }
                }
                (acc.map(WeightGrad::into_rows), st)
            })
            .collect();
        let dx = self.dx.is_some().then(|| {
            // SAFETY: the input-gradient forward wrote all `xs` elements of every sample
            unsafe { dx.set_len(n * xs) };
            dx
        });
        let (dws, states): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
        let dw = self
            .x
            .is_some()
            .then(|| sum_partials(dws.into_iter().flatten().collect(), self.o * self.k));
        Made { dx, dw, states }
    }
}
