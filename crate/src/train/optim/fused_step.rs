//! The fused CPU step: one loop over (parameter, gradient, buffers) that
//! updates a CPU parameter's storage in place, split into blocks on the
//! thread pool for large parameters and compiled for AVX-512 or AVX2 + FMA
//! where the CPU has it and `NNLAB_SIMD` allows it ([`crate::simd`]). No
//! temporary tensors.

use super::rule::{Ctx, Rule};
use super::slots::Bufs;
use super::Real;
use candle_core::{CpuStorage, Layout};
use rayon::prelude::*;
use std::cell::RefCell;

/// The fused CPU step: mutates the parameter's storage in place.
pub(super) struct HostStep<'a, R: Rule> {
    pub(super) rule: &'a R,
    pub(super) k: Ctx,
    pub(super) bufs: RefCell<&'a mut Bufs>,
}

impl<R: Rule> candle_core::InplaceOp2 for HostStep<'_, R> {
    fn name(&self) -> &'static str {
        "nnlab-optimizer-step"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<()> {
        let (Some((a, b)), Some((c, d))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            candle_core::bail!("optimizer step: parameter and gradient must be contiguous")
        };
        let mut bufs = self.bufs.borrow_mut();
        match (s1, s2, &mut **bufs) {
            (CpuStorage::F64(p), CpuStorage::F64(g), Bufs::F64(bs)) => {
                host_step(self.rule, self.k, &mut p[a..b], &g[c..d], bs)
            }
            (CpuStorage::F32(p), CpuStorage::F32(g), Bufs::F32(bs)) => {
                host_step(self.rule, self.k, &mut p[a..b], &g[c..d], bs)
            }
            _ => candle_core::bail!("optimizer step: parameter, gradient and state dtypes differ"),
        }
        Ok(())
    }
}

/// Elements per block of a parameter's update when it is split over threads.
pub(super) const STEP_BLOCK: usize = 1 << 15;

/// `rule.host` on one parameter, in blocks of [`STEP_BLOCK`] elements on
/// the thread pool when it has more than two, each compiled for the SIMD
/// level of [`crate::simd::level`] (the rules are elementwise: every block is updated
/// exactly as the whole would be; the f32 arithmetic is the same, only
/// wider). An MLP5 epoch spent 9 % of its time in a one-thread SSE Adam.
fn host_step<T: Real, R: Rule>(rule: &R, k: Ctx, p: &mut [T], g: &[T], bufs: &mut [Vec<T>]) {
    if p.len() <= 2 * STEP_BLOCK {
        let mut b: Vec<&mut [T]> = bufs.iter_mut().map(|v| &mut v[..]).collect();
        return host_block(rule, k, p, g, &mut b);
    }
    let mut blocks: Vec<Vec<&mut [T]>> = (0..p.len().div_ceil(STEP_BLOCK))
        .map(|_| Vec::with_capacity(bufs.len()))
        .collect();
    for buf in bufs.iter_mut() {
        for (i, c) in buf.chunks_mut(STEP_BLOCK).enumerate() {
            blocks[i].push(c);
        }
    }
    p.par_chunks_mut(STEP_BLOCK)
        .zip(g.par_chunks(STEP_BLOCK))
        .zip(blocks.into_par_iter())
        .for_each(|((p, g), mut b)| host_block(rule, k, p, g, &mut b));
}

fn host_block<T: Real, R: Rule>(rule: &R, k: Ctx, p: &mut [T], g: &[T], bufs: &mut [&mut [T]]) {
    #[cfg(target_arch = "x86_64")]
    match crate::simd::level() {
        // SAFETY: the CPU has AVX-512F (simd::level never exceeds the CPU's).
        crate::simd::Simd::Avx512 => return unsafe { host_block_avx512(rule, k, p, g, bufs) },
        // SAFETY: the CPU has AVX2 and FMA (as above).
        crate::simd::Simd::Avx2 => return unsafe { host_block_avx2(rule, k, p, g, bufs) },
        crate::simd::Simd::Scalar => {}
    }
    rule.host(k, p, g, bufs)
}

/// The same loop with AVX-512 enabled (the rules' `host` is inlined here).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn host_block_avx512<T: Real, R: Rule>(
    rule: &R,
    k: Ctx,
    p: &mut [T],
    g: &[T],
    bufs: &mut [&mut [T]],
) {
    rule.host(k, p, g, bufs)
}

/// The same loop with AVX2 and FMA enabled. Rust never fuses a multiply and
/// an add on its own, so every level computes the same bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn host_block_avx2<T: Real, R: Rule>(
    rule: &R,
    k: Ctx,
    p: &mut [T],
    g: &[T],
    bufs: &mut [&mut [T]],
) {
    rule.host(k, p, g, bufs)
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::train::optim::{Adam, AdamW, RmsProp, Sgd};

    /// Every rule's step, compiled for AVX2 + FMA and for AVX-512, gives the
    /// bits of the portable loop (f32 and f64, 1000 elements: whole vectors
    /// and a ragged tail).
    #[test]
    fn simd_levels_step_the_same_bits_as_the_portable_loop() {
        fn check<T: Real + std::fmt::Debug, R: Rule>(rule: &R, name: &str) {
            let n = 1000;
            let p0: Vec<T> = (0..n)
                .map(|i| T::from_f64((i as f64 * 0.37).sin()))
                .collect();
            let g: Vec<T> = (0..n)
                .map(|i| T::from_f64((i as f64 * 0.11).cos() * 0.1))
                .collect();
            let run = |level: u8| {
                let mut p = p0.clone();
                let mut bufs: Vec<Vec<T>> = rule
                    .buffers()
                    .iter()
                    .map(|&(_, v)| vec![T::from_f64(v); n])
                    .collect();
                for step in 1..=3 {
                    let k = Ctx { step, lr: 0.01 };
                    let mut b: Vec<&mut [T]> = bufs.iter_mut().map(|v| &mut v[..]).collect();
                    match level {
                        // SAFETY: each level runs only where the CPU has it (checked below).
                        2 => unsafe { host_block_avx512(rule, k, &mut p, &g, &mut b) },
                        1 => unsafe { host_block_avx2(rule, k, &mut p, &g, &mut b) },
                        _ => rule.host(k, &mut p, &g, &mut b),
                    }
                }
                p
            };
            let portable = run(0);
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                assert_eq!(run(1), portable, "{name}: AVX2");
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                assert_eq!(run(2), portable, "{name}: AVX-512");
            }
        }
        let adam = Adam::new(1e-3).amsgrad(true);
        let adamw = AdamW::new(1e-3);
        let rms = RmsProp::new(1e-2);
        let sgd = Sgd::new(0.1).momentum(0.9).nesterov(true);
        check::<f32, _>(&adam, "Adam amsgrad");
        check::<f64, _>(&adam, "Adam amsgrad");
        check::<f32, _>(&adamw, "AdamW");
        check::<f32, _>(&rms, "RMSprop");
        check::<f32, _>(&sgd, "SGD nesterov");
    }
}
