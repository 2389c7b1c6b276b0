//! Direct convolution, stride 1 and dilation 1, in f32 with AVX-512: the
//! products are taken straight from the (zero-padded) image, with no column
//! matrix and no packing of it.
//!
//! For one sample with the input padded to `xp: [C, Hp, Wp]`:
//!
//! ```text
//! forward      y[o, i, j]  = b[o] + Σ_k  w[o, k] · xp[off(k) + i·Wp + j]
//! grad weight  dW[o, k]   += Σ_{i,j} dy[o, i, j] · xp[off(k) + i·Wp + j]
//! grad input   dx = the forward with dy padded by (KH−1−pad, KW−1−pad) and
//!              the kernel flipped and transposed: w'[c, (o, p, q)] = w[o, c, KH−1−p, KW−1−q]
//! ```
//!
//! with `k = (c, p, q)` and `off(k) = c·Hp·Wp + p·Wp + q`. The output is cut
//! into *slots* of up to 16 consecutive pixels of one row (one 512-bit
//! vector, masked at the row's end). The forward keeps an 8-channel × 3-slot
//! tile of outputs in 24 registers for the whole sum over `k` and writes it
//! once (bias, ReLU and all); the weight gradient keeps a 4 × 5 tile of
//! `(o, k)` partial sums across all the slots of a sample. Im2col + gemm
//! instead writes a `K × L` column matrix, packs it again, and spent 35 % of
//! a CIFAR10CNN epoch doing so (BENCHMARKS.md).
//!
//! Used by [`super::conv`] for f32 on CPUs with AVX-512F; elsewhere (and for
//! f64, strides and dilations) the im2col path runs. `NNLAB_CONV=im2col`
//! turns this path off, for comparisons.

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU8, Ordering};

/// Output channels per register tile of the forward.
pub(crate) const MR: usize = 8;
/// Slots (16-pixel vectors) per register tile of the forward.
const NV: usize = 3;
/// Output channels × kernel entries per register tile of the weight gradient.
const GO: usize = 4;
const GK: usize = 4;
/// Pixels per vector.
const LANES: usize = 16;

/// 0: not decided yet, 1: direct, 2: im2col.
static MODE: AtomicU8 = AtomicU8::new(0);

/// Whether the direct kernels run: the CPU has AVX-512F, `NNLAB_CONV` is not
/// `im2col`, and [`set_enabled`] did not turn them off.
pub(crate) fn available() -> bool {
    match MODE.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let wanted = std::env::var("NNLAB_CONV").map_or(true, |v| v != "im2col");
            set_enabled(wanted);
            MODE.load(Ordering::Relaxed) == 1
        }
    }
}

/// Turns the direct kernels on (where the CPU has AVX-512F) or off
/// (im2col + gemm everywhere), for the whole process; returns whether they
/// are on now. For benchmarks that compare the two paths in one run.
pub fn set_enabled(on: bool) -> bool {
    let on = on && cpu_has_avx512();
    MODE.store(if on { 1 } else { 2 }, Ordering::Relaxed);
    on
}

#[cfg(target_arch = "x86_64")]
fn cpu_has_avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

#[cfg(not(target_arch = "x86_64"))]
fn cpu_has_avx512() -> bool {
    false
}

/// Up to 16 pixels of one output row: where the first one's window starts
/// in the padded input (`i·Wp + j`), where it goes in the output (`i·OW + j`),
/// and which lanes are pixels.
#[derive(Clone, Copy, Debug)]
struct Slot {
    at_in: usize,
    at_out: usize,
    mask: u16,
}

/// One stride-1 convolution of a `[C, H, W]` sample padded by `(ph, pw)`
/// with a `KH × KW` kernel: `[C, H, W] → [·, OH, OW]`.
#[derive(Clone, Debug)]
pub(crate) struct DirectConv {
    c: usize,
    h: usize,
    w: usize,
    ph: usize,
    pw: usize,
    hp: usize,
    wp: usize,
    pub(crate) oh: usize,
    pub(crate) ow: usize,
    /// `off(k)` for `k = (c, p, q)` in the weight's own order.
    offs: Vec<usize>,
    slots: Vec<Slot>,
}

impl DirectConv {
    /// `None` when the kernel does not fit the padded input.
    pub(crate) fn new(
        c: usize,
        h: usize,
        w: usize,
        kh: usize,
        kw: usize,
        ph: usize,
        pw: usize,
    ) -> Option<DirectConv> {
        let (hp, wp) = (h + 2 * ph, w + 2 * pw);
        if kh == 0 || kw == 0 || hp < kh || wp < kw {
            return None;
        }
        let (oh, ow) = (hp - kh + 1, wp - kw + 1);
        let mut offs = Vec::with_capacity(c * kh * kw);
        for ci in 0..c {
            for p in 0..kh {
                for q in 0..kw {
                    offs.push(ci * hp * wp + p * wp + q);
                }
            }
        }
        let mut slots = Vec::with_capacity(oh * ow.div_ceil(LANES));
        for i in 0..oh {
            for j in (0..ow).step_by(LANES) {
                let lanes = (ow - j).min(LANES);
                slots.push(Slot {
                    at_in: i * wp + j,
                    at_out: i * ow + j,
                    mask: if lanes == LANES {
                        u16::MAX
                    } else {
                        (1u16 << lanes) - 1
                    },
                });
            }
        }
        Some(DirectConv {
            c,
            h,
            w,
            ph,
            pw,
            hp,
            wp,
            oh,
            ow,
            offs,
            slots,
        })
    }

    /// `K = C·KH·KW`.
    pub(crate) fn k(&self) -> usize {
        self.offs.len()
    }

    /// Elements of the padded input (0 without padding: the input is used as is).
    pub(crate) fn scratch_len(&self) -> usize {
        if self.ph == 0 && self.pw == 0 {
            0
        } else {
            self.c * self.hp * self.wp
        }
    }

    /// The padded input: `x` itself, or `x` copied into `scratch` inside a
    /// zero border (every element of the used part is written).
    pub(crate) fn padded<'a>(&self, x: &'a [f32], scratch: &'a mut [f32]) -> &'a [f32] {
        assert_eq!(x.len(), self.c * self.h * self.w, "direct conv: input size");
        if self.scratch_len() == 0 {
            return x;
        }
        let xp = &mut scratch[..self.scratch_len()];
        let (h, w, wp) = (self.h, self.w, self.wp);
        for (plane, src) in xp.chunks_exact_mut(self.hp * wp).zip(x.chunks_exact(h * w)) {
            plane[..self.ph * wp].fill(0.0);
            plane[(self.ph + h) * wp..].fill(0.0);
            for (row, s) in plane[self.ph * wp..(self.ph + h) * wp]
                .chunks_exact_mut(wp)
                .zip(src.chunks_exact(w))
            {
                row[..self.pw].fill(0.0);
                row[self.pw..self.pw + w].copy_from_slice(s);
                row[self.pw + w..].fill(0.0);
            }
        }
        xp
    }

    /// Forward for one sample: `y[o, ·] = b[o] + Σ_k w[o, k]·xp[off(k) + ·]`
    /// (then ReLU when asked), `xp` from [`padded`](Self::padded), `w` from
    /// [`pack`], `y` of `o × OH·OW`, every element of it written (it may
    /// start uninitialised).
    pub(crate) fn forward(
        &self,
        xp: &[f32],
        w: &Packed,
        bias: Option<&[f32]>,
        relu: bool,
        y: &mut [MaybeUninit<f32>],
    ) {
        let l = self.oh * self.ow;
        assert_eq!(w.k, self.k(), "direct conv: packed weight width");
        assert!(xp.len() >= self.c * self.hp * self.wp, "direct conv: input");
        assert_eq!(y.len(), w.rows * l, "direct conv: output size");
        if let Some(b) = bias {
            assert_eq!(b.len(), w.rows, "direct conv: bias size");
        }
        // SAFETY: `available()` checked AVX-512F; every index below is in
        // bounds: slot + offset loads stay inside `xp` (masked lanes are not
        // read), stores stay inside `y` (rows < w.rows, masked).
        #[cfg(target_arch = "x86_64")]
        unsafe {
            for (g, a) in w.data.chunks_exact(MR * w.k).enumerate() {
                let rows = (w.rows - g * MR).min(MR);
                let mut init = [0f32; MR];
                if let Some(b) = bias {
                    init[..rows].copy_from_slice(&b[g * MR..g * MR + rows]);
                }
                let yg = y[g * MR * l..].as_mut_ptr().cast::<f32>();
                for block in self.slots.chunks(NV) {
                    let t = Tile {
                        offs: &self.offs,
                        a: a.as_ptr(),
                        x: xp.as_ptr(),
                        y: yg,
                        l,
                        rows,
                        init,
                        relu,
                    };
                    match block.len() {
                        3 => avx512::forward_tile::<3>(&t, block),
                        2 => avx512::forward_tile::<2>(&t, block),
                        _ => avx512::forward_tile::<1>(&t, block),
                    }
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("direct conv without AVX-512");
    }

    /// Samples whose weight gradients are summed in one pass: enough for
    /// 64 slots, so that each register tile runs long before its sums are
    /// reduced (16 slots a sample on a 16×16 output).
    pub(crate) fn grad_group(&self) -> usize {
        64usize.div_ceil(self.slots.len().max(1))
    }

    /// Elements of one padded sample (`scratch_len`, or the input's own size).
    pub(crate) fn padded_size(&self) -> usize {
        self.c * self.hp * self.wp
    }

    /// Weight gradient of `g` samples, added to `dw` (`o × K`, the weight's
    /// layout): `dw[o, k] += Σ_samples Σ_pixels dy[o, ·]·xp[off(k) + ·]`,
    /// `xp` the padded samples one after another ([`padded_size`](Self::padded_size)
    /// apart), `dy` theirs (`o × OH·OW` each).
    pub(crate) fn add_weight_grad(
        &self,
        xp: &[f32],
        dy: &[f32],
        g: usize,
        o: usize,
        dw: &mut [f32],
    ) {
        let (k, l, ps) = (self.k(), self.oh * self.ow, self.padded_size());
        assert!(xp.len() >= g * ps, "direct conv: input");
        assert_eq!(dy.len(), g * o * l, "direct conv: output gradient size");
        assert_eq!(dw.len(), o * k, "direct conv: weight gradient size");
        let slots: Vec<Slot> = (0..g)
            .flat_map(|s| {
                self.slots.iter().map(move |t| Slot {
                    at_in: s * ps + t.at_in,
                    at_out: s * o * l + t.at_out,
                    mask: t.mask,
                })
            })
            .collect();
        // SAFETY: as in `forward`; `dy` rows `o0..o0+GO` and `dw` entries
        // `(o0.., k0..)` are in bounds by the asserts above.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            for o0 in (0..o).step_by(GO) {
                for k0 in (0..k).step_by(GK) {
                    let t = GradTile {
                        offs: &self.offs[k0..(k0 + GK).min(k)],
                        x: xp.as_ptr(),
                        dy: dy[o0 * l..].as_ptr(),
                        l,
                        slots: &slots,
                        dw: dw[o0 * k + k0..].as_mut_ptr(),
                        k,
                    };
                    match ((o - o0).min(GO), (k - k0).min(GK)) {
                        (4, 4) => avx512::grad_tile::<4, 4>(&t),
                        (4, 3) => avx512::grad_tile::<4, 3>(&t),
                        (4, 2) => avx512::grad_tile::<4, 2>(&t),
                        (4, _) => avx512::grad_tile::<4, 1>(&t),
                        (3, 4) => avx512::grad_tile::<3, 4>(&t),
                        (2, 4) => avx512::grad_tile::<2, 4>(&t),
                        (1, 4) => avx512::grad_tile::<1, 4>(&t),
                        (r, c) => {
                            // ragged corner: one (o, k) entry at a time
                            for ri in 0..r {
                                for ci in 0..c {
                                    let one = GradTile {
                                        offs: &t.offs[ci..ci + 1],
                                        dy: t.dy.add(ri * l),
                                        dw: t.dw.add(ri * k + ci),
                                        ..t
                                    };
                                    avx512::grad_tile::<1, 1>(&one);
                                }
                            }
                        }
                    }
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("direct conv without AVX-512");
    }
}

/// A weight `[rows, K]` rearranged for the forward tile: blocks of `MR`
/// rows, each stored column by column (`[K][MR]`, rows past the end zero).
pub(crate) struct Packed {
    data: Vec<f32>,
    rows: usize,
    k: usize,
}

/// Packs a row-major `rows × k` weight.
pub(crate) fn pack(w: &[f32], rows: usize, k: usize) -> Packed {
    pack_with(rows, k, |r, j| w[r * k + j])
}

/// Packs the grad-input kernel of a `[O, C, KH, KW]` weight:
/// `w'[c, (o, p, q)] = w[o, c, KH−1−p, KW−1−q]`, `C` rows of `O·KH·KW`.
pub(crate) fn pack_flipped(w: &[f32], o: usize, c: usize, kh: usize, kw: usize) -> Packed {
    let kk = kh * kw;
    pack_with(c, o * kk, |ci, j| {
        let (oi, pq) = (j / kk, j % kk);
        let (p, q) = (pq / kw, pq % kw);
        w[((oi * c + ci) * kh + kh - 1 - p) * kw + kw - 1 - q]
    })
}

fn pack_with(rows: usize, k: usize, at: impl Fn(usize, usize) -> f32) -> Packed {
    let groups = rows.div_ceil(MR);
    let mut data = vec![0f32; groups * MR * k];
    for g in 0..groups {
        for j in 0..k {
            for r in 0..MR {
                let row = g * MR + r;
                if row < rows {
                    data[(g * k + j) * MR + r] = at(row, j);
                }
            }
        }
    }
    Packed { data, rows, k }
}

/// What one forward tile reads and writes.
struct Tile<'a> {
    offs: &'a [usize],
    /// packed weight block `[K][MR]`
    a: *const f32,
    x: *const f32,
    /// output row of this block's first channel
    y: *mut f32,
    l: usize,
    rows: usize,
    init: [f32; MR],
    relu: bool,
}

/// What one weight-gradient tile reads and adds to.
#[derive(Clone, Copy)]
struct GradTile<'a> {
    offs: &'a [usize],
    x: *const f32,
    dy: *const f32,
    l: usize,
    slots: &'a [Slot],
    dw: *mut f32,
    k: usize,
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{GradTile, Slot, Tile, MR};
    use std::arch::x86_64::*;

    /// `MR × S` outputs (channels × slots) summed over all of `K` in registers.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn forward_tile<const S: usize>(t: &Tile, slots: &[Slot]) {
        let mut base = [0usize; S];
        let mut mask = [0u16; S];
        for v in 0..S {
            base[v] = slots[v].at_in;
            mask[v] = slots[v].mask;
        }
        let mut acc = [[_mm512_setzero_ps(); S]; MR];
        for r in 0..MR {
            let b = _mm512_set1_ps(t.init[r]);
            for v in 0..S {
                acc[r][v] = b;
            }
        }
        let mut a = t.a;
        for &off in t.offs {
            let mut xv = [_mm512_setzero_ps(); S];
            for v in 0..S {
                xv[v] = _mm512_maskz_loadu_ps(mask[v], t.x.add(base[v] + off));
            }
            for r in 0..MR {
                let w = _mm512_set1_ps(*a.add(r));
                for v in 0..S {
                    acc[r][v] = _mm512_fmadd_ps(w, xv[v], acc[r][v]);
                }
            }
            a = a.add(MR);
        }
        let zero = _mm512_setzero_ps();
        for r in 0..t.rows {
            for v in 0..S {
                let mut z = acc[r][v];
                if t.relu {
                    // 0 where z ≤ 0, z otherwise (NaN stays NaN), like relu_in_place
                    let keep = _mm512_cmp_ps_mask::<_CMP_NLE_UQ>(z, zero);
                    z = _mm512_maskz_mov_ps(keep, z);
                }
                _mm512_mask_storeu_ps(t.y.add(r * t.l + slots[v].at_out), mask[v], z);
            }
        }
    }

    /// `R × C` weight-gradient entries `(o, k)`, each summed over every
    /// slot in a vector of 16 partial sums, then reduced and added.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn grad_tile<const R: usize, const C: usize>(t: &GradTile) {
        let mut off = [0usize; C];
        off.copy_from_slice(&t.offs[..C]);
        let mut acc = [[_mm512_setzero_ps(); C]; R];
        for s in t.slots {
            let mut d = [_mm512_setzero_ps(); R];
            for r in 0..R {
                d[r] = _mm512_maskz_loadu_ps(s.mask, t.dy.add(r * t.l + s.at_out));
            }
            for c in 0..C {
                let xv = _mm512_maskz_loadu_ps(s.mask, t.x.add(s.at_in + off[c]));
                for r in 0..R {
                    acc[r][c] = _mm512_fmadd_ps(d[r], xv, acc[r][c]);
                }
            }
        }
        for r in 0..R {
            for c in 0..C {
                *t.dw.add(r * t.k + c) += _mm512_reduce_add_ps(acc[r][c]);
            }
        }
    }
}
