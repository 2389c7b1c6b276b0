//! Which kernel a convolution runs: the direct kernels
//! ([`super::direct`]) for f32 with stride 1 and dilation 1 where the CPU
//! has AVX2 + FMA or AVX-512F (and `NNLAB_SIMD` or `NNLAB_CONV=im2col`
//! does not turn them off), else im2col + gemm.
//! The input gradient takes the direct path only when it is the forward
//! of `dy` padded by `K−1−pad` with the flipped kernel (`pad ≤ K−1`).
//! Inside the direct path, a 3×3 layer with 32 or more input and output
//! channels runs its forward and that input gradient by the Winograd
//! plan ([`super::winograd`]), which the `DirectConv` holds.

use std::sync::atomic::{AtomicU8, Ordering};

use super::direct::{self, DirectConv};
use super::im2col::Geometry;

/// A process-wide on/off switch of one kernel path: what [`Switch::set`]
/// stored last, else decided at first use from `NNLAB_CONV` (off when it
/// names `off_by`) and whether the CPU supports the path.
pub(super) struct Switch {
    /// 0: not decided yet, 1: on, 2: off.
    mode: AtomicU8,
    off_by: &'static str,
}

impl Switch {
    pub(super) const fn new(off_by: &'static str) -> Switch {
        Switch {
            mode: AtomicU8::new(0),
            off_by,
        }
    }

    /// Whether the path is on; `supported` is asked once, at first use.
    pub(super) fn on(&self, supported: fn() -> bool) -> bool {
        match self.mode.load(Ordering::Relaxed) {
            1 => true,
            2 => false,
            _ => {
                let wanted = std::env::var("NNLAB_CONV").map_or(true, |v| v != self.off_by);
                self.set(wanted && supported())
            }
        }
    }

    /// Turns the path on or off for the whole process; returns `on`.
    pub(super) fn set(&self, on: bool) -> bool {
        self.mode.store(if on { 1 } else { 2 }, Ordering::Relaxed);
        on
    }
}

/// The direct kernel for this convolution's forward and weight gradient
/// (f32, stride 1, dilation 1, an AVX2 or AVX-512 CPU), if it applies.
pub(super) fn direct_forward(g: &Geometry) -> Option<DirectConv> {
    if !direct::available() || g.stride != 1 || g.dilation != 1 {
        return None;
    }
    DirectConv::new(g.c, g.h, g.w, g.kh, g.kw, g.padding, g.padding)
}

/// The direct kernel for the input gradient: the forward of `dy` padded by
/// `K−1−pad` with the flipped kernel (needs `pad ≤ K−1`).
pub(super) fn direct_grad_input(g: &Geometry, o: usize) -> Option<DirectConv> {
    if !direct::available()
        || g.stride != 1
        || g.dilation != 1
        || g.padding >= g.kh
        || g.padding >= g.kw
    {
        return None;
    }
    let dc = DirectConv::new(
        o,
        g.oh,
        g.ow,
        g.kh,
        g.kw,
        g.kh - 1 - g.padding,
        g.kw - 1 - g.padding,
    )?;
    (dc.oh == g.h && dc.ow == g.w).then_some(dc)
}
