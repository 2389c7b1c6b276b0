//! Winograd F(2×2, 3×3) for the direct convolution's 3×3 layers: each 2×2
//! block of outputs from the 4×4 block of (padded) input under it,
//!
//! ```text
//! Y = Aᵀ [ Σ_c (G g_c Gᵀ) ⊙ (Bᵀ d_c B) ] A
//!
//! Bᵀ = | 1  0 −1  0 |     G = | 1   0   0 |     Aᵀ = | 1  1  1  0 |
//!      | 0  1  1  0 |         | ½   ½   ½ |          | 0  1 −1 −1 |
//!      | 0 −1  1  0 |         | ½  −½   ½ |
//!      | 0  1  0 −1 |         | 0   0   1 |
//! ```
//!
//! so the sum over input channels is 16 matrix products, one per position
//! `ξ` of the 4×4 transformed block: `M[ξ][o][t] = Σ_c U[ξ][o][c]·V[ξ][c][t]`
//! with `U = G g Gᵀ` (the weight, transformed once per call in f64) and
//! `V = Bᵀ d B` (the input, per tile `t`). That is 16 multiply-adds per
//! 2×2 outputs and channel instead of 36: 2.25× fewer.
//!
//! The products run on the direct forward tile as a 1×1 convolution of
//! `V[ξ]` (`C` channels × `T` tiles). The transforms (`winograd/avx2.rs`, 8 tiles a vector,
//! and `winograd/avx512.rs`, 16) do the same additions in the same order,
//! so AVX2 and AVX-512 give the same bits, as the direct kernels do
//! (tested).
//!
//! For `fused_pool`'s 2×2 windows of stride 2 (even output sizes,
//! AVX-512) the output transform pools instead: each tile's four outputs
//! are one window, so it writes only their maximum (then ReLU) and its
//! position, picked as the pooling pass picks them (`forward_pooled`).
//!
//! The input is read unpadded: rows and columns of the zero border are
//! masked out of the loads (the padded copy the direct tile needs is not
//! made), with the values and the bits of reading a padded copy.
//!
//! Tiles go in bands of whole tile rows (a multiple of the forward tile's
//! 48 pixels where the image allows) whose `V` stays in the L2 cache; a
//! ragged last row or column of outputs reads zeros past the input and
//! writes only the outputs that exist.
//!
//! Used for 3×3 layers with at least [`MIN_CHANNELS`] input and
//! [`MIN_ROWS`] output channels: the forward and the input gradient (the
//! forward of `dy` with the flipped kernel); fewer channels make products
//! too short to pay for the transforms. The weight gradient stays on the
//! direct kernels: done this way too (`∂L/∂U = (A dy Aᵀ) ⊙ V`, 16 sums
//! over the tiles, then `Gᵀ · G`), it halved the weight-gradient tile's
//! time in a CIFAR10CNN epoch, but a second input transform and the
//! transform of `dy` took as much again (BENCHMARKS.md, stop 36).
//! `NNLAB_CONV=direct` turns this path off (the direct kernels alone), for
//! comparisons.

// Elsewhere than x86-64 there is no plan (the direct kernels need AVX2).
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code, unused_variables))]

use super::direct::{pack_with, DirectConv, Packed};
use super::kernel_choice::Switch;
use crate::simd::Simd;
use rayon::prelude::*;
use std::cell::RefCell;
use std::mem::MaybeUninit;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;

/// Input channels from which a 3×3 layer has a plan: with fewer, the
/// products are too short to pay for the transforms (BasicCNN's 16 → 32
/// layer ran 12 % slower an epoch this way).
pub const MIN_CHANNELS: usize = 32;

/// Output channels (rows of the weight) from which the plan is used.
pub const MIN_ROWS: usize = 32;

/// The most values of `V` in a band (`16·C·T`): 256 KiB, in L2 next to `M`.
const BAND_V: usize = 64 * 1024;

/// Tiles per block of the forward tile's products (3 slots of 16 pixels):
/// bands of a multiple of it keep every product's tile full.
const BLOCK: usize = 48;

/// On: 3×3 layers take this path; off: `NNLAB_CONV=direct`.
static SWITCH: Switch = Switch::new("direct");

/// Whether 3×3 layers take this path: `NNLAB_CONV` is not `direct` (nor
/// `im2col`, which turns the direct kernels off altogether) and
/// [`set_enabled`] did not turn it off.
pub(crate) fn enabled() -> bool {
    SWITCH.on(|| true)
}

/// Turns this path on or off for convolutions built from now on, for the
/// whole process; returns `on`. For benchmarks that compare it with the
/// direct kernels in one run.
pub fn set_enabled(on: bool) -> bool {
    SWITCH.set(on)
}

thread_local! {
    /// `V`, `M` and the rows of the transforms, reused by every call on
    /// this thread.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// One channel of a sample, `h × w` values, read as if padded by `ph`
/// rows and `pw` columns of zeros on each side.
#[derive(Clone, Copy, Debug)]
pub(super) struct Plane<'a> {
    data: &'a [f32],
    h: usize,
    w: usize,
    ph: usize,
    pw: usize,
}

impl Plane<'_> {
    /// Padded row `r` from padded column `from`: `(p, lead, avail)` with
    /// `p` where padded column `from` would lie in memory, and the input's
    /// values at lanes `lead .. avail` (`p[i]`, `lead ≤ i < avail`); the
    /// other lanes are the border's zeros. `None` for a border row.
    /// `p` itself may lie outside `data` (only its lanes `lead .. avail`
    /// may be read).
    fn row(&self, r: usize, from: usize) -> Option<(*const f32, usize, usize)> {
        if r < self.ph || r >= self.ph + self.h {
            return None;
        }
        let p = self.data[(r - self.ph) * self.w..]
            .as_ptr()
            .wrapping_add(from)
            .wrapping_sub(self.pw);
        Some((
            p,
            self.pw.saturating_sub(from),
            (self.pw + self.w).saturating_sub(from),
        ))
    }
}

/// The plan of one 3×3, stride-1 convolution of a `[C, H, W]` sample
/// padded by `(ph, pw)`.
#[derive(Clone, Debug)]
pub(crate) struct Winograd {
    /// AVX2 or AVX-512: which transforms run (the same bits either way)
    simd: Simd,
    c: usize,
    h: usize,
    w: usize,
    ph: usize,
    pw: usize,
    oh: usize,
    ow: usize,
    /// tile rows and columns: `⌈OH/2⌉ × ⌈OW/2⌉`
    th: usize,
    tw: usize,
    /// tile rows per band
    band: usize,
    /// the products of a full band and of the last one: 1×1 convolutions
    /// of `C` channels × `band·tw` (or the rest) tiles
    full: DirectConv,
    last: DirectConv,
}

impl Winograd {
    /// The plan at `simd` for a `[c, h, w]` input padded by `(ph, pw)`;
    /// `None` when the 3×3 kernel does not fit it.
    pub(crate) fn new(
        simd: Simd,
        c: usize,
        (h, w): (usize, usize),
        (ph, pw): (usize, usize),
    ) -> Option<Winograd> {
        let (hp, wp) = (h + 2 * ph, w + 2 * pw);
        if hp < 3 || wp < 3 || c == 0 {
            return None;
        }
        let (oh, ow) = (hp - 2, wp - 2);
        let (th, tw) = (oh.div_ceil(2), ow.div_ceil(2));
        // tile rows whose tiles fill whole blocks, as many as fit
        let unit = (BLOCK / gcd(BLOCK, tw)).min(th);
        let mut band = unit;
        while band + unit <= th && 16 * c * (band + unit) * tw <= BAND_V {
            band += unit;
        }
        let rest = match th % band {
            0 => band,
            r => r,
        };
        Some(Winograd {
            simd,
            c,
            h,
            w,
            ph,
            pw,
            oh,
            ow,
            th,
            tw,
            band,
            full: DirectConv::at_level(simd, c, 1, band * tw, 1, 1, 0, 0)?,
            last: DirectConv::at_level(simd, c, 1, rest * tw, 1, 1, 0, 0)?,
        })
    }

    /// `U[ξ] = (G g Gᵀ)[ξ]` for each of the 16 positions, packed for the
    /// forward tile as `rows × C`; `kernel(r, c)` is the 3×3 kernel from
    /// input channel `c` to output row `r`, row-major.
    pub(crate) fn pack(
        &self,
        rows: usize,
        kernel: impl Fn(usize, usize) -> [f32; 9] + Sync,
    ) -> Vec<Packed> {
        let c = self.c;
        let mut u = vec![0f32; rows * c * 16];
        // both steps a row (or a position) per task: they run between the
        // parallel passes of a step, on its critical path
        u.par_chunks_mut(c * 16).enumerate().for_each(|(r, ur)| {
            for ci in 0..c {
                let g = kernel(r, ci).map(f64::from);
                let mut t = [[0f64; 3]; 4];
                for q in 0..3 {
                    let col = g_times([g[q], g[3 + q], g[6 + q]]);
                    for (i, v) in col.into_iter().enumerate() {
                        t[i][q] = v;
                    }
                }
                let out = &mut ur[ci * 16..][..16];
                for (i, row) in t.iter().enumerate() {
                    for (j, v) in g_times(*row).into_iter().enumerate() {
                        out[i * 4 + j] = v as f32;
                    }
                }
            }
        });
        (0..16)
            .into_par_iter()
            .map(|xi| pack_with(rows, c, |r, ci| u[(r * c + ci) * 16 + xi]))
            .collect()
    }

    /// `y[o, ·] = b[o] + conv(x)[o, ·]` (then ReLU when asked) for one
    /// sample `x` (`C × H·W`, not padded), `u` from [`pack`](Self::pack),
    /// `y` of `rows × OH·OW`, every element of it written.
    pub(crate) fn forward(
        &self,
        x: &[f32],
        u: &[Packed],
        bias: Option<&[f32]>,
        relu: bool,
        y: &mut [MaybeUninit<f32>],
    ) {
        assert_eq!(u.len(), 16, "winograd: 16 transformed weights");
        assert_eq!(
            y.len(),
            u[0].rows() * self.oh * self.ow,
            "winograd: output size"
        );
        self.run(x, u, bias, Out::Full { y, relu });
    }

    /// Whether [`forward_pooled`](Self::forward_pooled) can run: AVX-512,
    /// and every 2×2 block of outputs is a whole tile (`OH`, `OW` even).
    pub(crate) fn can_pool(&self) -> bool {
        self.simd == Simd::Avx512 && self.oh.is_multiple_of(2) && self.ow.is_multiple_of(2)
    }

    /// [`forward`](Self::forward) then 2×2 max pooling with stride 2, as
    /// `fused_pool` does it, without the outputs ever being written: `y`
    /// (then ReLU when asked) and `arg` (each maximum's `r·2 + c`) of
    /// `rows × (OH/2)·(OW/2)`, every element written; needs
    /// [`can_pool`](Self::can_pool).
    pub(crate) fn forward_pooled(
        &self,
        x: &[f32],
        u: &[Packed],
        bias: Option<&[f32]>,
        relu: bool,
        (y, arg): (&mut [f32], &mut [u8]),
    ) {
        assert!(
            self.can_pool(),
            "winograd: pooled forward needs AVX-512 and even outputs"
        );
        assert_eq!(u.len(), 16, "winograd: 16 transformed weights");
        let len = u[0].rows() * self.th * self.tw;
        assert!(
            y.len() == len && arg.len() == len,
            "winograd: pooled output size"
        );
        self.run(x, u, bias, Out::Pooled { y, arg, relu });
    }

    /// The forward's bands: input transform, the 16 products, output transform.
    fn run(&self, x: &[f32], u: &[Packed], bias: Option<&[f32]>, mut out: Out) {
        let rows = u[0].rows();
        let (c, tw) = (self.c, self.tw);
        assert!(x.len() >= c * self.h * self.w, "winograd: input");
        if let Some(b) = bias {
            assert_eq!(b.len(), rows, "winograd: bias size");
        }
        let t_max = self.band * tw;
        let (vlen, mlen) = (16 * stride(c * t_max), 16 * stride(rows * t_max));
        let klen = self.kept_len();
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            if s.len() < vlen + mlen + klen {
                s.resize(vlen + mlen + klen, 0.0);
            }
            let (v, rest) = s.split_at_mut(vlen);
            let (m, kept) = rest.split_at_mut(mlen);
            for ti0 in (0..self.th).step_by(self.band) {
                let tb = self.band.min(self.th - ti0);
                let t = tb * tw;
                let inner = if tb == self.band {
                    &self.full
                } else {
                    &self.last
                };
                let (vs, ms) = (stride(c * t), stride(rows * t));
                let v = &mut v[..16 * vs];
                self.input_transform(x, ti0, tb, v, kept);
                for (xi, ux) in u.iter().enumerate() {
                    let mx = &mut m[xi * ms..][..rows * t];
                    inner.forward_packed(&v[xi * vs..][..c * t], ux, None, false, uninit(mx));
                }
                self.output_transform(&m[..16 * ms], rows, (ti0, tb), bias, &mut out);
            }
        });
    }

    /// Values of scratch for the rows the input transform keeps.
    fn kept_len(&self) -> usize {
        #[cfg(target_arch = "x86_64")]
        return if self.simd == Simd::Avx512 {
            self.tw.div_ceil(avx512::LANES) * avx512::KEPT
        } else {
            self.tw.div_ceil(avx2::LANES) * avx2::KEPT
        };
        #[cfg(not(target_arch = "x86_64"))]
        0
    }

    /// `V[ξ][c][t] = (Bᵀ d B)[ξ]` for the tiles of tile rows `ti0 .. ti0 + tb`.
    fn input_transform(&self, x: &[f32], ti0: usize, tb: usize, v: &mut [f32], kept: &mut [f32]) {
        let (c, h, w, tw) = (self.c, self.h, self.w, self.tw);
        let t = tb * tw;
        let vs = stride(c * t);
        assert_eq!(v.len(), 16 * vs, "winograd: V size");
        for ci in 0..c {
            let plane = Plane {
                data: &x[ci * h * w..(ci + 1) * h * w],
                h,
                w,
                ph: self.ph,
                pw: self.pw,
            };
            let at = v[ci * t..].as_mut_ptr();
            // SAFETY: the plan exists only where the CPU has `self.simd`
            // (`DirectConv::at_level`: AVX2 or AVX-512F); `V[ξ][ci][·]` ends
            // at `15·vs + (ci + 1)·T ≤ 16·vs = v.len()`; the transforms read
            // only the lanes `Plane::row` gives, inside the plane;
            // `kept` has `kept_len()` values.
            #[cfg(target_arch = "x86_64")]
            unsafe {
                if self.simd == Simd::Avx512 && tw <= avx512::PAIR_TILES {
                    avx512::input_plane_pairs(plane, (ti0, tb, tw), at, vs);
                } else if self.simd == Simd::Avx512 {
                    avx512::input_plane(plane, (ti0, tb, tw), at, vs, kept);
                } else {
                    avx2::input_plane(plane, (ti0, tb, tw), at, vs, kept);
                }
            }
        }
    }

    /// `y = Aᵀ M A + b` (then ReLU) for the outputs of tile rows
    /// `ti0 .. ti0 + tb`, from `M[ξ][o][t]`.
    fn output_transform(
        &self,
        m: &[f32],
        rows: usize,
        (ti0, tb): (usize, usize),
        bias: Option<&[f32]>,
        out: &mut Out,
    ) {
        let (oh, ow, tw) = (self.oh, self.ow, self.tw);
        let (l, t) = (oh * ow, tb * tw);
        let ms = stride(rows * t);
        assert_eq!(m.len(), 16 * ms, "winograd: M size");
        let (y, relu) = match out {
            Out::Full { y, relu } => (y, *relu),
            Out::Pooled { y, arg, relu } => {
                let pl = self.th * tw;
                assert!(
                    y.len() == rows * pl && arg.len() == rows * pl,
                    "winograd: pooled size"
                );
                for o in 0..rows {
                    let b = bias.map_or(0.0, |b| b[o]);
                    let at = m[o * t..].as_ptr();
                    let to = (y[o * pl..].as_mut_ptr(), arg[o * pl..].as_mut_ptr());
                    // SAFETY: `can_pool` (asserted by `forward_pooled`): AVX-512;
                    // `M[ξ][o][·]` as below; pooled rows `ti0 .. ti0 + tb`
                    // of this channel's `th × tw` values.
                    #[cfg(target_arch = "x86_64")]
                    unsafe {
                        avx512::pooled_channel(at, ms, (ti0, tb, tw), b, *relu, to);
                    }
                }
                return;
            }
        };
        assert_eq!(y.len(), rows * l, "winograd: output size");
        for o in 0..rows {
            let b = bias.map_or(0.0, |b| b[o]);
            let yo = y[o * l..(o + 1) * l].as_mut_ptr().cast::<f32>();
            let at = m[o * t..].as_ptr();
            // SAFETY: `self.simd` as above; `M[ξ][o][·]` ends at
            // `15·ms + (o + 1)·T ≤ 16·ms = m.len()`; rows `2·ti0 ..` of the
            // channel's `oh × ow` outputs, only those below `oh` written.
            #[cfg(target_arch = "x86_64")]
            unsafe {
                if self.simd == Simd::Avx512 && tw <= avx512::PAIR_TILES {
                    avx512::output_channel_pairs(at, ms, (ti0, tb, tw), b, relu, yo, (oh, ow));
                } else if self.simd == Simd::Avx512 {
                    avx512::output_channel(at, ms, (ti0, tb, tw), b, relu, yo, (oh, ow));
                } else {
                    avx2::output_channel(at, ms, (ti0, tb, tw), b, relu, yo, (oh, ow));
                }
            }
        }
    }
}

/// Where the output transform writes.
enum Out<'a> {
    /// every output (then ReLU when asked)
    Full {
        y: &'a mut [MaybeUninit<f32>],
        relu: bool,
    },
    /// each tile's 2×2 maximum (then ReLU) and its position
    Pooled {
        y: &'a mut [f32],
        arg: &'a mut [u8],
        relu: bool,
    },
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The distance from `V[ξ]` to `V[ξ + 1]` (or `M`'s) for `n` values each:
/// 16 values (a cache line) more than `n`, so that the 16 streams of a
/// transform do not all fall in one set of the L1 cache when `n` is a
/// multiple of 1 024 values (4 KiB).
fn stride(n: usize) -> usize {
    n + 16
}

/// `G·g` for one column (or row) `g` of a 3×3 kernel.
fn g_times([a, b, c]: [f64; 3]) -> [f64; 4] {
    [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c]
}

/// `s` as a buffer the kernels may write without reading.
fn uninit(s: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: `MaybeUninit<f32>` has the layout of `f32`, and every value
    // written through it is an initialised `f32`.
    unsafe { &mut *(s as *mut [f32] as *mut [MaybeUninit<f32>]) }
}
