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
//! once (bias, ReLU and all). The weight gradient runs the other way
//! round: `dy` transposed to pixel-major blocks of 32 channels, a tile of
//! 12 kernel entries × 32 channels in 24 registers, one input value
//! broadcast per entry and pixel, so no horizontal sums are needed. Im2col + gemm
//! instead writes a `K × L` column matrix, packs it again, and spent 35 % of
//! a CIFAR10CNN epoch doing so (BENCHMARKS.md).
//!
//! Used by the convolution ops ([`super`]) for f32 on CPUs with AVX-512F; elsewhere (and for
//! f64, strides and dilations) the im2col path runs. `NNLAB_CONV=im2col`
//! turns this path off, for comparisons.

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU8, Ordering};

/// Output channels per register tile of the forward.
pub(crate) const MR: usize = 8;
/// Slots (16-pixel vectors) per register tile of the forward.
const NV: usize = 3;
/// Pixels per vector.
const LANES: usize = 16;

/// 0: not decided yet, 1: direct, 2: im2col.
static MODE: AtomicU8 = AtomicU8::new(0);

/// Whether the direct kernels run: the CPU has AVX-512F and `NNLAB_SIMD`
/// does not cap it lower, `NNLAB_CONV` is not `im2col`, and [`set_enabled`]
/// did not turn them off.
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

/// AVX-512F is there and [`crate::simd::level`] allows it (`NNLAB_SIMD`).
fn cpu_has_avx512() -> bool {
    crate::simd::level() >= crate::simd::Simd::Avx512
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

    /// Elements of one padded sample (`scratch_len`, or the input's own size).
    pub(crate) fn padded_size(&self) -> usize {
        self.c * self.hp * self.wp
    }

    /// Adds one sample's weight gradient to `acc`:
    /// `dW[o, k] += Σ_pixels dy[o, ·]·xp[off(k) + ·]`, `xp` from
    /// [`padded`](Self::padded), `dy` the sample's `o × OH·OW`.
    ///
    /// The output rows are taken in bands of about [`BAND`] pixels; `dy` of
    /// a band is transposed to pixel-major blocks of 32 channels, and each
    /// tile of [`NK`] kernel entries × 32 channels sums the band in 24
    /// registers with the input broadcast one pixel at a time, so no
    /// horizontal reductions are needed.
    pub(crate) fn add_weight_grad(&self, xp: &[f32], dy: &[f32], acc: &mut WeightGrad) {
        let (k, l) = (self.k(), self.oh * self.ow);
        let o = acc.o;
        assert_eq!(acc.k, k, "direct conv: weight gradient width");
        assert!(xp.len() >= self.padded_size(), "direct conv: input");
        assert_eq!(dy.len(), o * l, "direct conv: output gradient size");
        let band_rows = (BAND / self.ow.max(1)).clamp(1, self.oh.max(1));
        for i0 in (0..self.oh).step_by(band_rows) {
            let rows = band_rows.min(self.oh - i0);
            let (p0, pn) = (i0 * self.ow, rows * self.ow);
            acc.transpose_band(dy, l, p0, pn);
            // SAFETY: `available()` checked AVX-512F. Offsets past `K` in
            // the last tile are 0 (a valid pixel) and land in the spare
            // rows of `dwt`; every pixel read is `i·Wp + j + off(k)` with
            // `i < OH`, `j < OW`, inside `xp`; `dyt` holds `pn` pixels per block.
            #[cfg(target_arch = "x86_64")]
            unsafe {
                for ob in (0..o).step_by(OB) {
                    let width = (o - ob).min(OB);
                    for k0 in (0..k).step_by(NK) {
                        let mut off = [0usize; NK];
                        let n = (k - k0).min(NK);
                        off[..n].copy_from_slice(&self.offs[k0..k0 + n]);
                        let t = GradTile {
                            offs: off,
                            x: xp.as_ptr().add(i0 * self.wp),
                            wp: self.wp,
                            rows,
                            ow: self.ow,
                            dyt: acc.dyt.as_ptr().add(ob * pn),
                            dwt: acc.dwt.as_mut_ptr().add(k0 * acc.op + ob),
                            op: acc.op,
                        };
                        match (width > 16, n) {
                            (true, 9..) => avx512::grad_tile::<2, 12>(&t),
                            (true, 5..=8) => avx512::grad_tile::<2, 8>(&t),
                            (true, _) => avx512::grad_tile::<2, 4>(&t),
                            (false, 9..) => avx512::grad_tile::<1, 12>(&t),
                            (false, 5..=8) => avx512::grad_tile::<1, 8>(&t),
                            (false, _) => avx512::grad_tile::<1, 4>(&t),
                        }
                    }
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            unreachable!("direct conv without AVX-512");
        }
    }
}

/// Output pixels per band of the weight gradient: `dy` of a band, transposed,
/// stays in L2 (32 channels × 1024 pixels = 128 KiB a block).
const BAND: usize = 1024;
/// Output channels per block of the weight gradient (two vectors).
const OB: usize = 32;
/// Kernel entries per weight-gradient tile (`NK × 2` accumulators).
const NK: usize = 12;

/// One thread's weight-gradient sum, kept transposed (`dwt: [K + NK][O']`,
/// `O'` = O rounded up to 16) so the kernel adds whole vectors of output
/// channels, and the scratch for one band of `dy` transposed into blocks of
/// 32 channels (`[O/32][pixels][32]`, the last block 16 wide when it has
/// ≤ 16 channels, padded channels 0).
pub(crate) struct WeightGrad {
    o: usize,
    k: usize,
    op: usize,
    dwt: Vec<f32>,
    dyt: Vec<f32>,
}

impl WeightGrad {
    /// A zero `o × k` weight gradient.
    pub(crate) fn new(o: usize, k: usize) -> WeightGrad {
        let op = o.next_multiple_of(LANES);
        WeightGrad {
            o,
            k,
            op,
            dwt: vec![0f32; (k + NK) * op],
            dyt: Vec::new(),
        }
    }

    /// Pixels `p0 .. p0 + pn` of `dy` (`o × l`) into `dyt`, 16 × 16 at a
    /// time in registers where both sides are whole vectors.
    fn transpose_band(&mut self, dy: &[f32], l: usize, p0: usize, pn: usize) {
        let o = self.o;
        let len = o.next_multiple_of(LANES) * pn;
        if o.is_multiple_of(LANES) {
            // every lane is written below
            self.dyt.resize(len, 0.0);
        } else {
            // the padded channels' lanes must read 0
            self.dyt.clear();
            self.dyt.resize(len, 0.0);
        }
        for ob in (0..o).step_by(OB) {
            let width = (o - ob).min(OB);
            let stride = if width > LANES { OB } else { LANES };
            let block = &mut self.dyt[ob * pn..];
            for c0 in (0..pn).step_by(LANES) {
                let cn = (pn - c0).min(LANES);
                if cn == LANES && width.is_multiple_of(LANES) {
                    for v in (0..width).step_by(LANES) {
                        let src = &dy[(ob + v) * l + p0 + c0..];
                        let dst = &mut block[c0 * stride + v..];
                        assert!(src.len() >= 15 * l + LANES && dst.len() >= 15 * stride + LANES);
                        // SAFETY: `transpose_band` runs only where `available()`
                        // found AVX-512F; the bounds are asserted above.
                        #[cfg(target_arch = "x86_64")]
                        unsafe {
                            avx512::transpose16(src.as_ptr(), l, dst.as_mut_ptr(), stride)
                        };
                    }
                    continue;
                }
                for oi in 0..width {
                    let src = &dy[(ob + oi) * l + p0 + c0..][..cn];
                    for (pi, &v) in src.iter().enumerate() {
                        block[(c0 + pi) * stride + oi] = v;
                    }
                }
            }
        }
    }

    /// The sum as `o × k` (the weight's layout).
    pub(crate) fn into_rows(self) -> Vec<f32> {
        let mut dw = vec![0f32; self.o * self.k];
        for (ki, row) in self.dwt.chunks_exact(self.op).take(self.k).enumerate() {
            for (oi, &v) in row[..self.o].iter().enumerate() {
                dw[oi * self.k + ki] = v;
            }
        }
        dw
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
struct GradTile {
    /// `off(k)` of the tile's entries (0 past `K`)
    offs: [usize; NK],
    /// the band's first padded input row
    x: *const f32,
    wp: usize,
    rows: usize,
    ow: usize,
    /// the band's `dy`, transposed: `[pixels][16·R]`
    dyt: *const f32,
    /// `dwt[k0][ob]`, rows `op` apart
    dwt: *mut f32,
    op: usize,
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

    /// `N` kernel entries × `16·R` output channels of the weight gradient,
    /// summed over the band's pixels in registers (the input broadcast, `dy`
    /// loaded as vectors of channels), then added to `dwt`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn grad_tile<const R: usize, const N: usize>(t: &GradTile) {
        let mut off = [0usize; N];
        off.copy_from_slice(&t.offs[..N]);
        let mut acc = [[_mm512_setzero_ps(); R]; N];
        let mut d = t.dyt;
        for i in 0..t.rows {
            let row = t.x.add(i * t.wp);
            for j in 0..t.ow {
                let px = row.add(j);
                let mut dv = [_mm512_setzero_ps(); R];
                for r in 0..R {
                    dv[r] = _mm512_loadu_ps(d.add(16 * r));
                }
                for n in 0..N {
                    let b = _mm512_set1_ps(*px.add(off[n]));
                    for r in 0..R {
                        acc[n][r] = _mm512_fmadd_ps(dv[r], b, acc[n][r]);
                    }
                }
                d = d.add(16 * R);
            }
        }
        for n in 0..N {
            for r in 0..R {
                let p = t.dwt.add(n * t.op + 16 * r);
                _mm512_storeu_ps(p, _mm512_add_ps(_mm512_loadu_ps(p), acc[n][r]));
            }
        }
    }

    /// `dst[j·ds + i] = src[i·ss + j]` for `i, j < 16`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn transpose16(src: *const f32, ss: usize, dst: *mut f32, ds: usize) {
        let mut r = [_mm512_setzero_ps(); 16];
        for (i, v) in r.iter_mut().enumerate() {
            *v = _mm512_loadu_ps(src.add(i * ss));
        }
        // pairs of rows interleaved by 32 bits, then by 64 bits …
        let mut t = [_mm512_setzero_ps(); 16];
        for i in 0..8 {
            t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
        }
        for i in 0..4 {
            let (a, b, c, d) = (
                _mm512_castps_pd(t[4 * i]),
                _mm512_castps_pd(t[4 * i + 1]),
                _mm512_castps_pd(t[4 * i + 2]),
                _mm512_castps_pd(t[4 * i + 3]),
            );
            r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
            r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
            r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
            r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
        }
        // … then 128-bit lanes across rows 4 apart and 8 apart
        for h in 0..2 {
            for i in 0..4 {
                t[8 * h + i] = _mm512_shuffle_f32x4::<0x88>(r[8 * h + i], r[8 * h + i + 4]);
                t[8 * h + i + 4] = _mm512_shuffle_f32x4::<0xdd>(r[8 * h + i], r[8 * h + i + 4]);
            }
        }
        for i in 0..8 {
            r[i] = _mm512_shuffle_f32x4::<0x88>(t[i], t[i + 8]);
            r[i + 8] = _mm512_shuffle_f32x4::<0xdd>(t[i], t[i + 8]);
        }
        for (j, v) in r.iter().enumerate() {
            _mm512_storeu_ps(dst.add(j * ds), *v);
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn transpose16_transposes() {
            if !super::super::cpu_has_avx512() {
                return;
            }
            let src: Vec<f32> = (0..16 * 20).map(|v| v as f32).collect();
            let mut dst = vec![-1f32; 16 * 18];
            // SAFETY: AVX-512F checked; 16 rows of 20 and 16 rows of 18 fit.
            unsafe { super::transpose16(src.as_ptr(), 20, dst.as_mut_ptr(), 18) };
            for i in 0..16 {
                for j in 0..16 {
                    assert_eq!(dst[j * 18 + i], src[i * 20 + j], "({i}, {j})");
                }
                assert_eq!(dst[i * 18 + 16], -1.0);
            }
        }
    }
}
