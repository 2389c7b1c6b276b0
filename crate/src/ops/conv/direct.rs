//! Direct convolution, stride 1 and dilation 1, in f32 with AVX-512 or
//! AVX2 + FMA: the products are taken straight from the (zero-padded)
//! image, with no column matrix and no packing of it.
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
//! into *slots* of up to one vector of consecutive pixels of one row (16
//! with AVX-512, 8 with AVX2; masked at the row's end). The forward keeps a
//! tile of outputs in registers for the whole sum over `k` and writes it
//! once (bias, ReLU and all): 8 channels × 3 slots in 24 of AVX-512's 32
//! registers, 4 channels × 2 slots in 8 of AVX2's 16. The weight gradient
//! runs the other way round: `dy` transposed to pixel-major blocks of 32
//! channels, a tile of kernel entries × channels in registers (12 × 32 with
//! AVX-512, 6 × 16 with AVX2), one input value broadcast per entry and
//! pixel, so no horizontal sums are needed. Im2col + gemm instead writes a
//! `K × L` column matrix, packs it again, and spent 35 % of a CIFAR10CNN
//! epoch doing so (BENCHMARKS.md).
//!
//! The kernels are in `direct/avx512.rs` and `direct/avx2.rs`; which one runs is the
//! [`crate::simd::level`] when the `DirectConv` is built. Used by the
//! convolution ops ([`super`]) for f32 on CPUs with AVX2 + FMA or AVX-512F;
//! elsewhere (and for f64, strides and dilations) the im2col path runs.
//! `NNLAB_CONV=im2col` turns this path off, for comparisons. A 3×3 layer
//! with 32 or more channels in and out runs its forward and input gradient
//! by Winograd F(2×2, 3×3) instead ([`super::winograd`]), whose 16 products
//! are this forward tile as a 1×1 convolution.

// Elsewhere than x86-64 nothing here runs (the im2col path does).
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code, unused_variables))]

use super::kernel_choice::Switch;
use super::winograd::{self, Winograd};
use crate::simd::Simd;
use std::mem::MaybeUninit;

/// Output channels per block of the packed weight (the AVX-512 forward
/// tile; the AVX2 one takes a block as two halves of [`HALF`]).
pub(crate) const MR: usize = 8;
/// Output channels per AVX2 forward tile.
const HALF: usize = 4;
/// Slots (vectors of pixels) per register tile of the forward.
const NV: usize = 3;
/// Slots per AVX2 forward tile: 4 × 3 would need all 16 registers and
/// spills; 4 × 2 keeps 8 accumulators and is still FMA-bound (6 loads per 8 FMAs).
const NV_AVX2: usize = 2;
/// `f32` lanes of an AVX-512 vector: also the channel granule of the
/// weight gradient's transposed `dy` and sum (`O` rounded up to it).
const LANES: usize = 16;

/// On: the direct kernels; off: im2col + gemm (`NNLAB_CONV=im2col`).
static SWITCH: Switch = Switch::new("im2col");

/// Whether the CPU runs the direct kernels (AVX2 + FMA or AVX-512F, not
/// capped lower by `NNLAB_SIMD`).
fn supported() -> bool {
    crate::simd::level() >= Simd::Avx2
}

/// Whether the direct kernels run: the CPU has AVX2 + FMA or AVX-512F and
/// `NNLAB_SIMD` does not cap it lower, `NNLAB_CONV` is not `im2col`, and
/// [`set_enabled`] did not turn them off.
pub(crate) fn available() -> bool {
    SWITCH.on(supported)
}

/// Turns the direct kernels on (where the CPU has AVX2 + FMA or AVX-512F)
/// or off (im2col + gemm everywhere), for the whole process; returns
/// whether they are on now. For benchmarks that compare the two paths in
/// one run.
pub fn set_enabled(on: bool) -> bool {
    SWITCH.set(on && supported())
}

/// `slots` in blocks of `nv` for the forward tile, except that with
/// AVX-512 (`nv` = 3) a last block of 1 is avoided: `…, 3, 1` becomes
/// `…, 2, 2`. A one-slot tile has only 8 accumulators, too few chains of
/// FMAs to hide their latency; the sums (and their bits) do not change.
fn slot_blocks(slots: &[Slot], nv: usize) -> impl Iterator<Item = &[Slot]> {
    let n = slots.len();
    let split = if nv == 3 && n >= 4 && n % 3 == 1 {
        n - 4
    } else {
        n
    };
    let (head, tail) = slots.split_at(split);
    head.chunks(nv).chain(tail.chunks(2))
}

/// Up to one vector of pixels of one output row: where the first one's
/// window starts in the padded input (`i·Wp + j`), where it goes in the
/// output (`i·OW + j`), and which lanes are pixels.
#[derive(Clone, Copy, Debug)]
struct Slot {
    at_in: usize,
    at_out: usize,
    mask: u16,
}

/// One stride-1 convolution of a `[C, H, W]` sample padded by `(ph, pw)`
/// with a `KH × KW` kernel: `[C, H, W] → [·, OH, OW]`, run by the kernels
/// of one SIMD level.
#[derive(Clone, Debug)]
pub(crate) struct DirectConv {
    simd: Simd,
    c: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    ph: usize,
    pw: usize,
    hp: usize,
    wp: usize,
    pub(crate) oh: usize,
    pub(crate) ow: usize,
    /// `off(k)` for `k = (c, p, q)` in the weight's own order.
    offs: Vec<usize>,
    slots: Vec<Slot>,
    /// the Winograd plan of a 3×3 layer with enough input channels
    /// ([`winograd`]), which then runs the forward instead of the direct tile
    wino: Option<Box<Winograd>>,
}

/// A weight packed for [`DirectConv::forward`]: for the direct tile, or
/// transformed for the Winograd plan (16 packed matrices).
pub(crate) enum Weights {
    Direct(Packed),
    Winograd(Vec<Packed>),
}

impl DirectConv {
    /// The convolution at this process's [`crate::simd::level`]; `None`
    /// when the kernel does not fit the padded input.
    pub(crate) fn new(
        c: usize,
        h: usize,
        w: usize,
        kh: usize,
        kw: usize,
        ph: usize,
        pw: usize,
    ) -> Option<DirectConv> {
        DirectConv::at_level(crate::simd::level(), c, h, w, kh, kw, ph, pw)
    }

    /// The convolution run by the kernels of `simd` (AVX2 or AVX-512; the
    /// CPU must have it); `None` for [`Simd::Scalar`] and when the kernel
    /// does not fit the padded input.
    pub(crate) fn at_level(
        simd: Simd,
        c: usize,
        h: usize,
        w: usize,
        kh: usize,
        kw: usize,
        ph: usize,
        pw: usize,
    ) -> Option<DirectConv> {
        let (hp, wp) = (h + 2 * ph, w + 2 * pw);
        if simd == Simd::Scalar || simd > crate::simd::cpu() {
            return None;
        }
        if kh == 0 || kw == 0 || hp < kh || wp < kw {
            return None;
        }
        let lanes = if simd == Simd::Avx512 { LANES } else { 8 };
        let (oh, ow) = (hp - kh + 1, wp - kw + 1);
        let mut offs = Vec::with_capacity(c * kh * kw);
        for ci in 0..c {
            for p in 0..kh {
                for q in 0..kw {
                    offs.push(ci * hp * wp + p * wp + q);
                }
            }
        }
        let mut slots = Vec::with_capacity(oh * ow.div_ceil(lanes));
        for i in 0..oh {
            for j in (0..ow).step_by(lanes) {
                let n = (ow - j).min(lanes);
                slots.push(Slot {
                    at_in: i * wp + j,
                    at_out: i * ow + j,
                    mask: if n == LANES {
                        u16::MAX
                    } else {
                        (1u16 << n) - 1
                    },
                });
            }
        }
        let wino = (kh == 3 && kw == 3 && c >= winograd::MIN_CHANNELS && winograd::enabled())
            .then(|| Winograd::new(simd, c, (h, w), (ph, pw)))
            .flatten()
            .map(Box::new);
        Some(DirectConv {
            simd,
            c,
            h,
            w,
            kh,
            kw,
            ph,
            pw,
            hp,
            wp,
            oh,
            ow,
            offs,
            slots,
            wino,
        })
    }

    /// The same convolution on the direct tile alone (no Winograd plan).
    #[cfg(test)]
    pub(crate) fn without_winograd(mut self) -> DirectConv {
        self.wino = None;
        self
    }

    /// Whether there is a Winograd plan.
    #[cfg(test)]
    pub(crate) fn is_winograd(&self) -> bool {
        self.wino.is_some()
    }

    /// A row-major `rows × K` weight (`[rows, C, KH, KW]`) packed for
    /// [`forward`](Self::forward): for the Winograd plan where there is one
    /// and `rows` is at least [`winograd::MIN_ROWS`].
    pub(crate) fn pack(&self, w: &[f32], rows: usize) -> Weights {
        let k = self.k();
        match &self.wino {
            Some(p) if rows >= winograd::MIN_ROWS => Weights::Winograd(p.pack(rows, |r, ci| {
                let mut g = [0f32; 9];
                g.copy_from_slice(&w[r * k + ci * 9..][..9]);
                g
            })),
            _ => Weights::Direct(pack(w, rows, k)),
        }
    }

    /// The input-gradient kernel of a forward weight `[rows, C', KH, KW]`
    /// whose output channels `C'` are this convolution's input (`dy`'s)
    /// channels: `w'[r, (c', p, q)] = w[c', r, KH−1−p, KW−1−q]`, packed for
    /// [`forward`](Self::forward), `rows` rows (for the Winograd plan as
    /// in [`pack`](Self::pack)).
    pub(crate) fn pack_flipped(&self, w: &[f32], rows: usize) -> Weights {
        match &self.wino {
            Some(p) if rows >= winograd::MIN_ROWS => Weights::Winograd(p.pack(rows, |r, ci| {
                let mut g = [0f32; 9];
                for (pq, v) in g.iter_mut().enumerate() {
                    let (p, q) = (pq / 3, pq % 3);
                    *v = w[((ci * rows + r) * 3 + 2 - p) * 3 + 2 - q];
                }
                g
            })),
            _ => Weights::Direct(pack_flipped(w, self.c, rows, self.kh, self.kw)),
        }
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
    /// (then ReLU when asked), `x` the sample (`C × H·W`, not padded),
    /// `scratch` of [`scratch_len`](Self::scratch_len) for the padded copy
    /// the direct tile reads (the Winograd plan reads `x` itself), `w` from
    /// [`pack`](Self::pack) or [`pack_flipped`](Self::pack_flipped) of this
    /// convolution, `y` of `o × OH·OW`, every element of it written (it may
    /// start uninitialised).
    pub(crate) fn forward(
        &self,
        x: &[f32],
        scratch: &mut [f32],
        w: &Weights,
        bias: Option<&[f32]>,
        relu: bool,
        y: &mut [MaybeUninit<f32>],
    ) {
        match (w, &self.wino) {
            (Weights::Direct(p), _) => {
                let xp = self.padded(x, scratch);
                self.forward_packed(xp, p, bias, relu, y)
            }
            (Weights::Winograd(u), Some(plan)) => plan.forward(x, u, bias, relu, y),
            (Weights::Winograd(_), None) => {
                unreachable!("Winograd weights come from `pack` of a convolution with a plan")
            }
        }
    }

    /// [`forward`](Self::forward) on the direct tile, `w` from [`pack`].
    pub(crate) fn forward_packed(
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
        // SAFETY: `at_level` checked that the CPU has `self.simd`; every
        // index below is in bounds: slot + offset loads stay inside `xp`
        // (masked lanes are not read, or the whole vector is inside `xp`),
        // stores stay inside `y` (rows < w.rows, masked).
        #[cfg(target_arch = "x86_64")]
        unsafe {
            for (g, a) in w.data.chunks_exact(MR * w.k).enumerate() {
                let rows = (w.rows - g * MR).min(MR);
                let mut init = [0f32; MR];
                if let Some(b) = bias {
                    init[..rows].copy_from_slice(&b[g * MR..g * MR + rows]);
                }
                let yg = y[g * MR * l..].as_mut_ptr().cast::<f32>();
                let nv = if self.simd == Simd::Avx512 {
                    NV
                } else {
                    NV_AVX2
                };
                for block in slot_blocks(&self.slots, nv) {
                    let t = Tile {
                        offs: &self.offs,
                        a: a.as_ptr(),
                        x: xp.as_ptr(),
                        x_len: xp.len(),
                        y: yg,
                        l,
                        rows,
                        init,
                        relu,
                    };
                    if self.simd == Simd::Avx512 {
                        match block.len() {
                            3 => avx512::forward_tile::<3>(&t, block),
                            2 => avx512::forward_tile::<2>(&t, block),
                            _ => avx512::forward_tile::<1>(&t, block),
                        }
                        continue;
                    }
                    for half in 0..rows.div_ceil(HALF) {
                        match block.len() {
                            2 => avx2::forward_tile::<2>(&t, block, half),
                            _ => avx2::forward_tile::<1>(&t, block, half),
                        }
                    }
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("direct conv without AVX2 or AVX-512");
    }

    /// [`forward`](Self::forward) then 2×2 max pooling with stride 2 in
    /// one pass (`y` and `arg` of `rows × (OH/2)·(OW/2)`), where the
    /// Winograd plan runs the forward and can pool
    /// ([`Winograd::can_pool`]); `false`, with nothing written, elsewhere.
    pub(crate) fn forward_pooled(
        &self,
        x: &[f32],
        w: &Weights,
        bias: Option<&[f32]>,
        relu: bool,
        out: (&mut [f32], &mut [u8]),
    ) -> bool {
        match (w, &self.wino) {
            (Weights::Winograd(u), Some(p)) if p.can_pool() => {
                p.forward_pooled(x, u, bias, relu, out);
                true
            }
            _ => false,
        }
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
            acc.transpose_band(dy, l, p0, pn, self.simd);
            // SAFETY: `at_level` checked that the CPU has `self.simd`.
            // Offsets past `K` in the last tile are 0 (a valid pixel) and
            // land in the spare rows of `dwt`; every pixel read is
            // `i·Wp + j + off(k)` with `i < OH`, `j < OW`, inside `xp`; `dyt`
            // holds `pn` pixels per block, each `stride` wide.
            #[cfg(target_arch = "x86_64")]
            unsafe {
                for ob in (0..o).step_by(OB) {
                    let width = (o - ob).min(OB);
                    let stride = if width > LANES { OB } else { LANES };
                    if self.simd == Simd::Avx2 {
                        // 16 channels (or 8) of the block at a time
                        for co in (0..width).step_by(16) {
                            let nk = if width - co > 8 { 6 } else { NK };
                            for k0 in (0..k).step_by(nk) {
                                let n = (k - k0).min(nk);
                                let t = self.grad_tile(
                                    xp,
                                    acc,
                                    (i0, rows),
                                    pn,
                                    (k0, n),
                                    (ob, co),
                                    stride,
                                );
                                match (width - co > 8, n) {
                                    (true, 4..) => avx2::grad_tile::<2, 6>(&t),
                                    (true, _) => avx2::grad_tile::<2, 3>(&t),
                                    (false, 9..) => avx2::grad_tile::<1, 12>(&t),
                                    (false, 5..=8) => avx2::grad_tile::<1, 8>(&t),
                                    (false, _) => avx2::grad_tile::<1, 4>(&t),
                                }
                            }
                        }
                        continue;
                    }
                    for k0 in (0..k).step_by(NK) {
                        let n = (k - k0).min(NK);
                        let t = self.grad_tile(xp, acc, (i0, rows), pn, (k0, n), (ob, 0), stride);
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
            unreachable!("direct conv without AVX2 or AVX-512");
        }
    }

    /// The weight-gradient tile of kernel entries `k0 .. k0 + n` (offsets
    /// past them 0: a valid pixel, summed into `dwt`'s spare rows) × the
    /// channels `ob + co ..` (`co` inside the 32-channel block `ob` of the
    /// transposed band: `stride` wide, `pn` pixels) for output rows
    /// `i0 .. i0 + rows`.
    fn grad_tile(
        &self,
        xp: &[f32],
        acc: &mut WeightGrad,
        (i0, rows): (usize, usize),
        pn: usize,
        (k0, n): (usize, usize),
        (ob, co): (usize, usize),
        stride: usize,
    ) -> GradTile {
        let mut offs = [0usize; NK];
        offs[..n].copy_from_slice(&self.offs[k0..k0 + n]);
        GradTile {
            offs,
            x: xp[i0 * self.wp..].as_ptr(),
            wp: self.wp,
            rows,
            ow: self.ow,
            dyt: acc.dyt[ob * pn + co..].as_ptr(),
            stride,
            dwt: acc.dwt[k0 * acc.op + ob + co..].as_mut_ptr(),
            op: acc.op,
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
    /// `simd` is the level of the kernels that run (the CPU has it).
    fn transpose_band(&mut self, dy: &[f32], l: usize, p0: usize, pn: usize, simd: Simd) {
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
                        // SAFETY: the CPU has `simd` (`DirectConv::at_level`
                        // checked); the bounds are asserted above.
                        #[cfg(target_arch = "x86_64")]
                        unsafe {
                            let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
                            if simd == Simd::Avx512 {
                                avx512::transpose16(s, l, d, stride);
                            } else {
                                for (a, b) in [(0, 0), (0, 8), (8, 0), (8, 8)] {
                                    avx2::transpose8(
                                        s.add(a * l + b),
                                        l,
                                        d.add(b * stride + a),
                                        stride,
                                    );
                                }
                            }
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

impl Packed {
    /// The weight's rows (output channels).
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }
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

pub(crate) fn pack_with(rows: usize, k: usize, at: impl Fn(usize, usize) -> f32) -> Packed {
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
    /// elements readable from `x`
    x_len: usize,
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
    /// the band's `dy`, transposed: `[pixels][stride]`, at the tile's
    /// first channel
    dyt: *const f32,
    /// `f32`s from one pixel of `dyt` to the next (16 or 32)
    stride: usize,
    /// `dwt[k0][ob]`, rows `op` apart
    dwt: *mut f32,
    op: usize,
}

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
