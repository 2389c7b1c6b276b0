//! `relu(max_pool2d(conv2d(x, w, b), k, s))` as one op, the block every CNN
//! of the course is built of: `Conv2d → ReLU → MaxPool2d` (hw3) and
//! `Conv2d → MaxPool2d → ReLU` (hw5), which are equal since ReLU is
//! monotone (the model's forward fuses both).
//!
//! On the CPU in f32 with the direct kernels ([`super::direct`]), the
//! convolution's output `z` of one sample lives only in a per-thread
//! buffer: the forward pools it at once and keeps, for every output, the
//! position of its window's maximum (one byte, `r·k + c`); the backward
//! scatters `dy` there into the same kind of buffer and runs the direct
//! weight- and input-gradient kernels on it. So the batch's `z` (4× the
//! output for a 2×2 pool, 9× for 3×3: 512 MB a step in hw5's first layer)
//! and its gradient never become tensors: no fresh pages to fault in, no
//! separate ReLU and pooling passes over them, no gradient accumulation.
//! With 2×2 windows of stride 2 on a Winograd layer (AVX-512, even output
//! sizes) `z` is not written at all: each Winograd tile is a window, and
//! the output transform keeps only its maximum and position
//! ([`super::winograd`]; the same bits and positions as the pooling
//! pass, tested).
//!
//! The pooling passes use AVX-512 where the CPU has it and portable code
//! elsewhere. Everywhere else (f64, CUDA, strided or dilated convolutions,
//! CPUs without AVX2 + FMA, windows over 16) it is [`conv2d_relu`] / [`conv2d`] then
//! [`max_pool2d`], with the same numbers. Either way the gradient of a
//! window goes to its first largest element in row-major order, as
//! [`max_pool2d`]'s does.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use nnlab::ops::{conv2d_max_pool, Conv2dParams};
//! let x = Tensor::arange(0f32, 16., &Device::Cpu).unwrap().reshape((1, 1, 4, 4)).unwrap();
//! let w = Tensor::ones((1, 1, 1, 1), candle_core::DType::F32, &Device::Cpu).unwrap();
//! let y = conv2d_max_pool(&x, &w, None, Conv2dParams::default(), (2, 2), true).unwrap();
//! assert_eq!(y.flatten_all().unwrap().to_vec1::<f32>().unwrap(), [5., 7., 13., 15.]);
//! ```

use std::sync::OnceLock;

use candle_core::{CpuStorage, DType, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::direct::DirectConv;
use super::direct_backward::{cpu_f32, DirectBackward, InputGrad};
use super::im2col::Geometry;
use super::kernel_choice::{direct_forward, direct_grad_input};
use super::tiling::chunks;
use super::{checked_geometry, conv2d, conv2d_relu, Conv2dParams};
use crate::ops::bias_op::{apply, impl_bias_op, BiasOp};
use crate::ops::pool::{fixed_output, max_pool2d};
use crate::ops::reduce::sum_partials;
use crate::ops::storage::operand;
use crate::Result;

/// `relu(max_pool2d(conv2d(x, w, b), k, s))` when `relu`, else
/// `max_pool2d(conv2d(x, w, b), k, s)`; `pool` is `(k, s)`, windows of
/// `k × k` moved by `s`, no padding. Shape errors name the operand as
/// [`conv2d`] and [`max_pool2d`] do.
pub fn conv2d_max_pool(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    p: Conv2dParams,
    pool: (usize, usize),
    relu: bool,
) -> Result<Tensor> {
    let (g, n, o) = checked_geometry(x, w, b, p)?;
    let (k, s) = pool;
    let (ph, pw) = fixed_output("max_pool2d", (g.oh, g.ow), k, s)?;
    let f32_cpu = x.device().is_cpu() && x.dtype() == DType::F32 && w.dtype() == DType::F32;
    let dc = (f32_cpu && k <= 16).then(|| direct_forward(&g)).flatten();
    // the input-gradient kernel, only where the backward will need it
    let dc_in = x.track_op().then(|| direct_grad_input(&g, o)).flatten();
    let Some(dc) = dc.filter(|_| dc_in.is_some() || !x.track_op()) else {
        let z = if relu {
            conv2d_relu(x, w, b, p)?
        } else {
            conv2d(x, w, b, p)?
        };
        return max_pool2d(&z, k, s);
    };
    let op = ConvPool {
        g,
        n,
        o,
        k,
        s,
        ph,
        pw,
        relu,
        dc,
        dc_in,
        arg: OnceLock::new(),
    };
    let (x, w) = (x.contiguous()?, w.contiguous()?);
    Ok(apply(&x, &w, b, op)?)
}

/// Forwards of the fused op, for the tests to see it ran.
#[cfg(test)]
static FUSED_RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The fused op: `(x, w[, b]) → y` of `[N, O, PH, PW]`.
struct ConvPool {
    g: Geometry,
    n: usize,
    o: usize,
    k: usize,
    s: usize,
    ph: usize,
    pw: usize,
    relu: bool,
    dc: DirectConv,
    /// the input gradient's kernel (`None` when `x` needs no gradient)
    dc_in: Option<DirectConv>,
    /// for every output, `r·k + c` of its window's maximum (set by the forward)
    arg: OnceLock<Vec<u8>>,
}

impl ConvPool {
    /// `y` (`[N, O, PH, PW]`), keeping the window positions for the backward.
    fn forward(&self, x: &[f32], w: &[f32], b: Option<&[f32]>) -> (CpuStorage, Shape) {
        #[cfg(test)]
        FUSED_RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (g, o, dc) = (&self.g, self.o, &self.dc);
        let (xs, l, ys) = (g.c * g.h * g.w, g.oh * g.ow, o * self.ph * self.pw);
        let packed = dc.pack(w, o);
        let mut y = vec![0f32; self.n * ys];
        let mut arg = vec![0u8; self.n * ys];
        let mut jobs = Vec::new();
        let (mut yr, mut ar) = (&mut y[..], &mut arg[..]);
        for (a, e) in chunks(self.n) {
            let (yh, yt) = yr.split_at_mut((e - a) * ys);
            let (ah, at) = ar.split_at_mut((e - a) * ys);
            jobs.push((a, e, yh, ah));
            (yr, ar) = (yt, at);
        }
        // 2×2 windows of stride 2 are the Winograd plan's tiles: it pools
        // them as it makes them (where it can), so `z` is never written
        let tiled = self.k == 2 && self.s == 2;
        jobs.into_par_iter().for_each(|(a, e, yc, ac)| {
            let mut scratch = vec![0f32; dc.scratch_len()];
            let mut z = Vec::with_capacity(o * l);
            for (i, smp) in (a..e).enumerate() {
                let xn = &x[smp * xs..(smp + 1) * xs];
                let (yi, ai) = (&mut yc[i * ys..(i + 1) * ys], &mut ac[i * ys..(i + 1) * ys]);
                if tiled && dc.forward_pooled(xn, &packed, b, self.relu, (yi, ai)) {
                    continue;
                }
                z.clear();
                let zs = &mut z.spare_capacity_mut()[..o * l];
                dc.forward(xn, &mut scratch, &packed, b, false, zs);
                // SAFETY: `forward` wrote all `o·l` elements
                unsafe { z.set_len(o * l) };
                self.pool(&z, yi, ai);
            }
        });
        // one forward per op value: the op is built per call
        let _ = self.arg.set(arg);
        (
            CpuStorage::F32(y),
            Shape::from((self.n, self.o, self.ph, self.pw)),
        )
    }

    /// Max pooling of one sample's `z` (`o × OH·OW`) into `y` and the
    /// window positions `arg`: per output row, the column maxima over the
    /// window's rows first (one pass a row, vectorised), then each window
    /// of `k` columns. The first largest in row-major order wins (the
    /// smaller row on equal column maxima); a NaN wins over numbers.
    fn pool(&self, z: &[f32], y: &mut [f32], arg: &mut [u8]) {
        let (ow, k, s, ph, pw) = (self.g.ow, self.k, self.s, self.ph, self.pw);
        let span = (pw - 1) * s + k;
        let mut colmax = vec![0f32; span];
        let mut colrow = vec![0u32; span];
        let planes = z.chunks_exact(self.g.oh * ow);
        for (plane, (yo, ao)) in planes.zip(
            y.chunks_exact_mut(ph * pw)
                .zip(arg.chunks_exact_mut(ph * pw)),
        ) {
            for i in 0..ph {
                let r0 = i * s;
                colmax.copy_from_slice(&plane[r0 * ow..][..span]);
                colrow.fill(0);
                for r in 1..k {
                    column_max(
                        &mut colmax,
                        &mut colrow,
                        &plane[(r0 + r) * ow..][..span],
                        r as u32,
                    );
                }
                let (yr, ar) = (&mut yo[i * pw..(i + 1) * pw], &mut ao[i * pw..(i + 1) * pw]);
                window_max(&colmax, &colrow, k, s, self.relu, yr, ar);
            }
        }
    }

    /// `(dx, dW, db)` for the operands that need them. Per sample: `dy`
    /// (masked by `y > 0` with the ReLU) scattered to its windows' maxima
    /// in a zeroed `o × OH·OW` buffer, which the direct kernels then take
    /// as the convolution's output gradient.
    fn backward(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: Option<&Tensor>,
        y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let arg = self.arg.get().ok_or_else(|| {
            candle_core::Error::Msg("conv2d_max_pool backward: the forward did not run".into())
        })?;
        let need_dx = x.track_op();
        let need_dw = w.track_op();
        let need_db = b.is_some_and(|b| b.track_op());
        let dc_in = match (need_dx, &self.dc_in) {
            (true, Some(d)) => Some(d),
            (true, None) => {
                candle_core::bail!("conv2d_max_pool backward: no input-gradient kernel")
            }
            (false, _) => None,
        };
        let dy = dy.contiguous()?;
        let (sx, lx) = x.storage_and_layout();
        let (sw, lw) = w.storage_and_layout();
        let (sy, ly) = y.storage_and_layout();
        let (sd, ld) = dy.storage_and_layout();
        let (xv, wv) = (
            cpu_f32(&sx, lx, OP, "input")?,
            cpu_f32(&sw, lw, OP, "weight")?,
        );
        let (yv, dyv) = (
            cpu_f32(&sy, ly, OP, "output")?,
            cpu_f32(&sd, ld, OP, "output gradient")?,
        );
        let (g, o, k) = (&self.g, self.o, self.g.k());
        let (xs, l, ys) = (g.c * g.h * g.w, g.oh * g.ow, o * self.ph * self.pw);
        let run = DirectBackward {
            dc: &self.dc,
            x: need_dw.then_some(xv),
            dx: dc_in.map(|d| InputGrad::new(d, wv, g.c)),
            n: self.n,
            xs,
            zs: o * l,
            o,
            k,
        };
        let mut made = run.run(
            |_, _| vec![0f32; o],
            |smp, dz, db| {
                dz.fill(0.0);
                self.scatter(
                    &dyv[smp * ys..][..ys],
                    &yv[smp * ys..][..ys],
                    &arg[smp * ys..][..ys],
                    dz,
                    db,
                    need_db,
                );
                None
            },
        );
        let (dx, dw) = made.tensors(x, w)?;
        let db = need_db
            .then(|| Tensor::from_vec(sum_partials(made.states, o), o, x.device()))
            .transpose()?;
        Ok((dx, dw, db))
    }

    /// One sample's `dy` (`o × PH·PW`) added at its windows' maxima in `dz`
    /// (`o × OH·OW`), and to the bias gradient `db` when `need_db`; with
    /// the ReLU only where `y > 0`.
    ///
    /// Branch-free: a masked `dy` is `+0.0`, and adding `+0.0` changes no
    /// sum that starts from `+0.0` (none of them can become `-0.0`), so the
    /// numbers are those of skipping it. The bias sums run in a second
    /// pass, [`BIAS_LANES`] channels side by side: each channel still adds
    /// its windows in row-major order (the same bits), but the channels'
    /// chains of dependent additions overlap instead of following each other.
    fn scatter(
        &self,
        dy: &[f32],
        y: &[f32],
        arg: &[u8],
        dz: &mut [f32],
        db: &mut [f32],
        need_db: bool,
    ) {
        let (ow, k, s, pw, relu) = (self.g.ow, self.k, self.s, self.pw, self.relu);
        let (l, cells) = (self.g.oh * ow, self.ph * pw);
        // window position `r·k + c` → its offset `r·OW + c` from the window's corner
        let at: Vec<usize> = (0..k * k).map(|a| a / k * ow + a % k).collect();
        for c in 0..self.o {
            let plane = &mut dz[c * l..(c + 1) * l];
            let span = c * cells..(c + 1) * cells;
            let (dyc, yc, ac) = (&dy[span.clone()], &y[span.clone()], &arg[span]);
            for i in 0..self.ph {
                let row = i * pw..(i + 1) * pw;
                let corner = i * s * ow;
                for (j, ((&d, &v), &a)) in dyc[row.clone()]
                    .iter()
                    .zip(&yc[row.clone()])
                    .zip(&ac[row])
                    .enumerate()
                {
                    plane[corner + j * s + at[a as usize]] += masked(d, v, relu);
                }
            }
        }
        if need_db {
            for (q, dbq) in db.chunks_mut(BIAS_LANES).enumerate() {
                // a short last group repeats its last channel in the spare
                // lanes, whose sums are dropped: every group runs all lanes
                let last = dbq.len() - 1;
                let rows: [&[f32]; BIAS_LANES] = std::array::from_fn(|lane| {
                    &dy[(q * BIAS_LANES + lane.min(last)) * cells..][..cells]
                });
                let ys: [&[f32]; BIAS_LANES] = std::array::from_fn(|lane| {
                    &y[(q * BIAS_LANES + lane.min(last)) * cells..][..cells]
                });
                let mut acc = [0f32; BIAS_LANES];
                acc[..dbq.len()].copy_from_slice(dbq);
                for cell in 0..cells {
                    for lane in 0..BIAS_LANES {
                        acc[lane] += masked(rows[lane][cell], ys[lane][cell], relu);
                    }
                }
                dbq.copy_from_slice(&acc[..dbq.len()]);
            }
        }
    }
}

/// Channels whose bias sums [`ConvPool::scatter`] runs side by side.
const BIAS_LANES: usize = 8;

/// `d`, or `+0.0` where the ReLU is on and `y ≤ 0` (or NaN): a bit mask,
/// not a branch, since the ReLU's sign pattern is as good as random.
#[inline(always)]
fn masked(d: f32, y: f32, relu: bool) -> f32 {
    let keep = !relu || y > 0.0;
    f32::from_bits(d.to_bits() & (keep as u32).wrapping_neg())
}

/// `m[j], a[j] = row[j], r` where `row[j] > m[j]` or `row[j]` is NaN: one
/// more row of a pooling window's column maxima.
fn column_max(m: &mut [f32], a: &mut [u32], row: &[f32], r: u32) {
    assert!(a.len() == m.len() && row.len() == m.len());
    #[cfg(target_arch = "x86_64")]
    if crate::simd::level() >= crate::simd::Simd::Avx512 {
        // SAFETY: AVX-512F is there; the three slices have the same length
        // and every access is masked to it.
        unsafe { avx512::column_max(m, a, row, r) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if crate::simd::level() >= crate::simd::Simd::Avx2 {
        // SAFETY: AVX2 is there; the three slices have the same length
        // and the vector loop stays below it.
        let done = unsafe { avx2::column_max(m, a, row, r) };
        column_max_from(done, m, a, row, r);
        return;
    }
    column_max_from(0, m, a, row, r);
}

/// [`column_max`] from column `from` on, one column at a time.
fn column_max_from(from: usize, m: &mut [f32], a: &mut [u32], row: &[f32], r: u32) {
    let (m, a, row) = (&mut m[from..], &mut a[from..], &row[from..]);
    for ((m, a), &v) in m.iter_mut().zip(a.iter_mut()).zip(row) {
        if v > *m || v.is_nan() {
            *m = v;
            *a = r;
        }
    }
}

/// Each window of `k` column maxima, `s` apart, reduced to its largest
/// (`y`, with the ReLU when asked) and its position `r·k + c` (`arg`):
/// the first largest in row-major order, a NaN over numbers.
fn window_max(
    m: &[f32],
    rows: &[u32],
    k: usize,
    s: usize,
    relu: bool,
    y: &mut [f32],
    arg: &mut [u8],
) {
    assert!(
        y.len() == arg.len() && m.len() == rows.len() && m.len() >= (y.len().max(1) - 1) * s + k
    );
    #[cfg(target_arch = "x86_64")]
    if crate::simd::level() >= crate::simd::Simd::Avx512 && m.len() < (i32::MAX as usize) {
        // SAFETY: AVX-512F is there; every gathered index `j·s + c` with
        // `j < y.len()`, `c < k` is below `m.len()` (asserted above).
        unsafe { avx512::window_max(m, rows, k, s, relu, y, arg) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    let from = if crate::simd::level() >= crate::simd::Simd::Avx2 && m.len() < (i32::MAX as usize) {
        // SAFETY: AVX2 is there; the windows it takes are whole groups of
        // 8 (`j + 8 ≤ y.len()`), so every gathered index `j·s + c` with
        // `c < k` is below `m.len()` (asserted above).
        unsafe { avx2::window_max(m, rows, k, s, relu, y, arg) }
    } else {
        0
    };
    #[cfg(not(target_arch = "x86_64"))]
    let from = 0;
    for j in from..y.len() {
        let c0 = j * s;
        let mut best = c0;
        for c in c0 + 1..c0 + k {
            let (v, b) = (m[c], m[best]);
            if b.is_nan() {
                break;
            }
            if v.is_nan() || v > b || (v == b && rows[c] < rows[best]) {
                best = c;
            }
        }
        let b = m[best];
        // relu: 0 where the maximum is ≤ 0, NaN stays NaN (as ops::relu)
        y[j] = if relu && b <= 0.0 { 0.0 } else { b };
        arg[j] = (rows[best] as usize * k + best - c0) as u8;
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// [`super::window_max`] on whole groups of 8 windows (their columns
    /// gathered); returns how many windows it did (the rest is left to the
    /// caller).
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn window_max(
        m: &[f32],
        rows: &[u32],
        k: usize,
        s: usize,
        relu: bool,
        y: &mut [f32],
        arg: &mut [u8],
    ) -> usize {
        let step = _mm256_mullo_epi32(
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
            _mm256_set1_epi32(s as i32),
        );
        let (kv, zero) = (_mm256_set1_epi32(k as i32), _mm256_setzero_ps());
        let n = y.len() / 8 * 8;
        for j in (0..n).step_by(8) {
            let idx = _mm256_add_epi32(step, _mm256_set1_epi32((j * s) as i32));
            let mut best = _mm256_i32gather_ps::<4>(m.as_ptr(), idx);
            let mut brow = _mm256_i32gather_epi32::<4>(rows.as_ptr().cast(), idx);
            let mut bcol = _mm256_setzero_si256();
            for c in 1..k {
                let at = _mm256_add_epi32(idx, _mm256_set1_epi32(c as i32));
                let v = _mm256_i32gather_ps::<4>(m.as_ptr(), at);
                let r = _mm256_i32gather_epi32::<4>(rows.as_ptr().cast(), at);
                let best_nan = _mm256_cmp_ps::<_CMP_UNORD_Q>(best, best);
                let v_nan = _mm256_cmp_ps::<_CMP_UNORD_Q>(v, v);
                let gt = _mm256_cmp_ps::<_CMP_GT_OQ>(v, best);
                let tie = _mm256_and_ps(
                    _mm256_cmp_ps::<_CMP_EQ_OQ>(v, best),
                    _mm256_castsi256_ps(_mm256_cmpgt_epi32(brow, r)),
                );
                let take = _mm256_andnot_ps(best_nan, _mm256_or_ps(v_nan, _mm256_or_ps(gt, tie)));
                best = _mm256_blendv_ps(best, v, take);
                let ti = _mm256_castps_si256(take);
                brow = _mm256_blendv_epi8(brow, r, ti);
                bcol = _mm256_blendv_epi8(bcol, _mm256_set1_epi32(c as i32), ti);
            }
            if relu {
                // 0 where the maximum is ≤ 0, NaN stays NaN
                best = _mm256_and_ps(best, _mm256_cmp_ps::<_CMP_NLE_UQ>(best, zero));
            }
            _mm256_storeu_ps(y.as_mut_ptr().add(j), best);
            let mut a = [0i32; 8];
            let pos = _mm256_add_epi32(_mm256_mullo_epi32(brow, kv), bcol);
            _mm256_storeu_si256(a.as_mut_ptr().cast(), pos);
            for (d, &v) in arg[j..j + 8].iter_mut().zip(&a) {
                *d = v as u8;
            }
        }
        n
    }

    /// [`super::column_max`] on whole vectors of 8 columns; returns how
    /// many columns it did (the rest is left to the caller).
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn column_max(m: &mut [f32], a: &mut [u32], row: &[f32], r: u32) -> usize {
        let rv = _mm256_castsi256_ps(_mm256_set1_epi32(r as i32));
        let n = m.len() / 8 * 8;
        for j in (0..n).step_by(8) {
            let (pm, pa) = (m.as_mut_ptr().add(j), a.as_mut_ptr().add(j).cast::<f32>());
            let mv = _mm256_loadu_ps(pm);
            let v = _mm256_loadu_ps(row.as_ptr().add(j));
            let take = _mm256_or_ps(
                _mm256_cmp_ps::<_CMP_GT_OQ>(v, mv),
                _mm256_cmp_ps::<_CMP_UNORD_Q>(v, v),
            );
            _mm256_storeu_ps(pm, _mm256_blendv_ps(mv, v, take));
            _mm256_storeu_ps(pa, _mm256_blendv_ps(_mm256_loadu_ps(pa), rv, take));
        }
        n
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// [`super::window_max`], 16 windows at a time (their columns gathered).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn window_max(
        m: &[f32],
        rows: &[u32],
        k: usize,
        s: usize,
        relu: bool,
        y: &mut [f32],
        arg: &mut [u8],
    ) {
        let step = _mm512_mullo_epi32(
            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
            _mm512_set1_epi32(s as i32),
        );
        let (kv, zero) = (_mm512_set1_epi32(k as i32), _mm512_setzero_ps());
        for j in (0..y.len()).step_by(16) {
            let lanes = (y.len() - j).min(16);
            let mask = if lanes == 16 {
                u16::MAX
            } else {
                (1u16 << lanes) - 1
            };
            let idx = _mm512_add_epi32(step, _mm512_set1_epi32((j * s) as i32));
            let mut best = _mm512_mask_i32gather_ps::<4>(zero, mask, idx, m.as_ptr().cast());
            let mut brow = _mm512_mask_i32gather_epi32::<4>(
                _mm512_setzero_si512(),
                mask,
                idx,
                rows.as_ptr().cast(),
            );
            let mut bcol = _mm512_setzero_si512();
            for c in 1..k {
                let at = _mm512_add_epi32(idx, _mm512_set1_epi32(c as i32));
                let v = _mm512_mask_i32gather_ps::<4>(zero, mask, at, m.as_ptr().cast());
                let r = _mm512_mask_i32gather_epi32::<4>(
                    _mm512_setzero_si512(),
                    mask,
                    at,
                    rows.as_ptr().cast(),
                );
                let best_nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(best, best);
                let v_nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
                let gt = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, best);
                let tie =
                    _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(v, best) & _mm512_cmplt_epi32_mask(r, brow);
                let take = !best_nan & (v_nan | gt | tie);
                best = _mm512_mask_mov_ps(best, take, v);
                brow = _mm512_mask_mov_epi32(brow, take, r);
                bcol = _mm512_mask_mov_epi32(bcol, take, _mm512_set1_epi32(c as i32));
            }
            if relu {
                // 0 where the maximum is ≤ 0, NaN stays NaN
                let keep = _mm512_cmp_ps_mask::<_CMP_NLE_UQ>(best, zero);
                best = _mm512_maskz_mov_ps(keep, best);
            }
            _mm512_mask_storeu_ps(y.as_mut_ptr().add(j), mask, best);
            let a = _mm512_add_epi32(_mm512_mullo_epi32(brow, kv), bcol);
            _mm512_mask_cvtepi32_storeu_epi8(arg.as_mut_ptr().add(j).cast(), mask, a);
        }
    }

    /// [`super::column_max`], 16 columns at a time.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn column_max(m: &mut [f32], a: &mut [u32], row: &[f32], r: u32) {
        let rv = _mm512_set1_epi32(r as i32);
        for j in (0..m.len()).step_by(16) {
            let lanes = (m.len() - j).min(16);
            let mask = if lanes == 16 {
                u16::MAX
            } else {
                (1u16 << lanes) - 1
            };
            let mv = _mm512_maskz_loadu_ps(mask, m.as_ptr().add(j));
            let v = _mm512_maskz_loadu_ps(mask, row.as_ptr().add(j));
            let take = _mm512_mask_cmp_ps_mask::<_CMP_GT_OQ>(mask, v, mv)
                | _mm512_mask_cmp_ps_mask::<_CMP_UNORD_Q>(mask, v, v);
            _mm512_mask_storeu_ps(m.as_mut_ptr().add(j), take, v);
            _mm512_mask_storeu_epi32(a.as_mut_ptr().add(j).cast::<i32>(), take, rv);
        }
    }
}

/// The op's name in errors of its forward's operands ([`conv2d_max_pool`] only
/// builds this op for an f32 input and weight).
const OP: &str = "conv2d_max_pool";

impl BiasOp for ConvPool {
    fn cpu_forward(
        &self,
        (s1, l1): (&CpuStorage, &Layout),
        (s2, l2): (&CpuStorage, &Layout),
        b: Option<(&CpuStorage, &Layout)>,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let b = match b {
            Some((s3, l3)) => Some(operand(s3, l3, OP, "bias")?),
            None => None,
        };
        Ok(self.forward(
            operand(s1, l1, OP, "input")?,
            operand(s2, l2, OP, "weight")?,
            b,
        ))
    }

    fn gradients(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: Option<&Tensor>,
        y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        self.backward(x, w, b, y, dy)
    }
}

impl_bias_op!(
    ConvPool,
    "nnlab-conv2d-max-pool",
    "nnlab-conv2d-bias-max-pool"
);

#[cfg(test)]
mod tests {
    use candle_core::{DType, Tensor, Var};

    use super::*;
    use crate::ops::relu;
    use crate::ops::test_util::{grads_of, rand, rel_diff};

    /// The fused f32 op (direct kernels where the CPU has AVX2 or AVX-512) against
    /// the f64 composition `max_pool2d(conv2d)` then ReLU: forward and the
    /// gradients of x, w and b, on 2×2, 3×3 and overlapping 3/2 windows,
    /// rows of more than 16 windows, ragged edges (rows and columns the windows leave out), 4×4 kernels
    /// without padding, two channel blocks, with and without bias, and 3×3
    /// layers of 32+ channels (Winograd, with odd output sizes).
    #[test]
    fn equals_the_f64_composition() -> crate::TestResult {
        // (N, C, H, W, O, K, padding, pool k, pool s, relu, bias)
        for (i, &(n, c, h, w, o, k, pad, pk, ps, with_relu, with_bias)) in [
            (2, 3, 12, 12, 16, 3, 1, 2, 2, true, true),
            (3, 4, 13, 11, 20, 3, 1, 3, 3, false, true),
            (1, 2, 10, 10, 8, 4, 0, 3, 2, true, false),
            (2, 5, 16, 16, 40, 3, 1, 2, 2, true, true),
            (2, 3, 20, 20, 32, 4, 0, 3, 3, true, true),
            (1, 1, 28, 28, 16, 3, 1, 2, 2, false, false),
            (1, 2, 40, 36, 16, 3, 1, 2, 2, true, true),
            // 32+ channels in and out: the forward and the input gradient by Winograd
            (2, 32, 12, 12, 32, 3, 1, 2, 2, true, true),
            (1, 40, 9, 11, 33, 3, 1, 3, 2, false, true),
        ]
        .iter()
        .enumerate()
        {
            let p = Conv2dParams {
                padding: pad,
                ..Default::default()
            };
            let x64 = Var::from_tensor(&rand(&[n, c, h, w], 10 + i as u64))?;
            let w64 = Var::from_tensor(&rand(&[o, c, k, k], 20 + i as u64))?;
            let b64 = Var::from_tensor(&rand(&[o], 30 + i as u64))?;
            let f32_ = |t: &Tensor| Var::from_tensor(&t.to_dtype(DType::F32).unwrap()).unwrap();
            let (x32, w32, b32) = (f32_(&x64), f32_(&w64), f32_(&b64));
            let before = FUSED_RUNS.load(std::sync::atomic::Ordering::Relaxed);
            let y32 = conv2d_max_pool(
                &x32,
                &w32,
                with_bias.then_some(&*b32),
                p,
                (pk, ps),
                with_relu,
            )?;
            if crate::ops::conv::direct::available() {
                assert!(
                    FUSED_RUNS.load(std::sync::atomic::Ordering::Relaxed) > before,
                    "case {i}: the fused op ran"
                );
            }
            let z = conv2d(&x64, &w64, with_bias.then_some(&*b64), p)?;
            let y64 = max_pool2d(&z, pk, ps)?;
            let y64 = if with_relu { relu(&y64)? } else { y64 };
            assert_eq!(y32.dims(), y64.dims(), "case {i}");
            let d = rel_diff(&y32, &y64);
            assert!(d < 1e-5, "case {i}: forward differs by {d}");
            let r = rand(y64.dims(), 40 + i as u64);
            let (g64, g32) = (grads_of(&y64, &r), grads_of(&y32, &r));
            let mut vars = vec![("input", &x64, &x32), ("weight", &w64, &w32)];
            if with_bias {
                vars.push(("bias", &b64, &b32));
            } else {
                assert!(
                    g32.get(&b32).is_none(),
                    "case {i}: no bias, no bias gradient"
                );
            }
            for (what, v64, v32) in vars {
                let d = rel_diff(
                    g32.get(v32).ok_or("None from g32.get(v32)")?,
                    g64.get(v64).ok_or("None from g64.get(v64)")?,
                );
                assert!(d < 1e-5, "case {i}: {what} gradient differs by {d}");
            }
        }
        Ok(())
    }

    /// The Winograd plan's pooled forward (each tile's 2×2 maximum taken
    /// as the outputs are made) gives the bits and the positions of the
    /// forward followed by this module's pooling pass: on small integers,
    /// so that equal maxima are common, with a NaN in the input, with and
    /// without ReLU and bias; rows of up to 8 tiles (two a vector) with an
    /// odd number of tile rows, and of 12 and 16 tiles.
    #[test]
    fn winograd_pooling_equals_the_separate_pass_bit_for_bit() -> crate::TestResult {
        use std::mem::MaybeUninit;
        // the plan pools with AVX-512 only (`NNLAB_CONV` may turn it off)
        let on = crate::ops::conv::direct::available() && crate::ops::conv::winograd::enabled();
        if crate::simd::level() < crate::simd::Simd::Avx512 || !on {
            return Ok(());
        }
        // (C, H, W, O, padding, relu, bias)
        let cases = [
            (32, 12, 12, 32, 1, true, true),
            (32, 10, 14, 40, 1, false, true),
            (40, 26, 22, 32, 0, true, false),
            (32, 32, 32, 33, 1, true, true),
            (33, 16, 16, 64, 1, false, false),
        ];
        for (i, &(c, h, w, o, pad, relu, with_bias)) in cases.iter().enumerate() {
            let (oh, ow) = (h + 2 * pad - 2, w + 2 * pad - 2);
            let (ph, pw) = (oh / 2, ow / 2);
            // the op's own pooling pass is the reference
            let pass = ConvPool {
                g: Geometry::new(c, h, w, 3, 3, 1, pad, 1).ok_or("no geometry")?,
                n: 1,
                o,
                k: 2,
                s: 2,
                ph,
                pw,
                relu,
                dc: DirectConv::new(c, h, w, 3, 3, pad, pad).ok_or("no direct convolution")?,
                dc_in: None,
                arg: OnceLock::new(),
            };
            let dc = &pass.dc;
            let small = |n: usize, seed: usize| -> Vec<f32> {
                (0..n).map(|j| ((j * 7 + seed) % 5) as f32 - 2.0).collect()
            };
            // the left half constant along its rows (equal maxima), the right half not
            let mut x = small(c * h * w, i);
            for (j, v) in x.iter_mut().enumerate() {
                let (ci, r, col) = (j / (h * w), j / w % h, j % w);
                if col < w / 2 {
                    *v = ((ci + r / 3) % 3) as f32 - 1.0;
                }
            }
            x[c * h * w / 2 + w - 3] = f32::NAN;
            let wt: Vec<f32> = small(o * c * 9, 3 + i).iter().map(|v| v.signum()).collect();
            let bias = small(o, 1);
            let b = with_bias.then_some(&bias[..]);
            let packed = dc.pack(&wt, o);
            let mut scratch = vec![0f32; dc.scratch_len()];
            let mut z = vec![MaybeUninit::<f32>::uninit(); o * oh * ow];
            dc.forward(&x, &mut scratch, &packed, b, false, &mut z);
            // SAFETY: `forward` wrote every element
            let z: Vec<f32> = z.into_iter().map(|v| unsafe { v.assume_init() }).collect();
            let (mut want, mut want_arg) = (vec![0f32; o * ph * pw], vec![0u8; o * ph * pw]);
            pass.pool(&z, &mut want, &mut want_arg);
            let (mut got, mut got_arg) = (vec![-1f32; o * ph * pw], vec![9u8; o * ph * pw]);
            assert!(
                dc.forward_pooled(&x, &packed, b, relu, (&mut got, &mut got_arg)),
                "case {i}: the pooled forward ran"
            );
            // windows whose maximum is there twice or more: the ties are tested
            let ties = (0..o * ph * pw)
                .filter(|&j| {
                    let (pl, r, q) = (j / (ph * pw), j / pw % ph, j % pw);
                    let at = |a: usize, b: usize| z[pl * oh * ow + (2 * r + a) * ow + 2 * q + b];
                    let v = [at(0, 0), at(0, 1), at(1, 0), at(1, 1)];
                    let top = v.iter().copied().fold(f32::MIN, f32::max);
                    v.iter().filter(|&&u| u == top).count() > 1
                })
                .count();
            assert!(ties > o * ph * pw / 20, "case {i}: {ties} ties");
            assert!(
                want.iter().any(|v| v.is_nan()),
                "case {i}: a NaN reached the output"
            );
            for (j, (g, v)) in got.iter().zip(&want).enumerate() {
                assert_eq!(
                    g.to_bits(),
                    v.to_bits(),
                    "case {i}: output {j}: {g} against {v}"
                );
            }
            assert_eq!(got_arg, want_arg, "case {i}: positions");
        }
        Ok(())
    }

    /// A data input (not a variable) gets no gradient, and the weight's is
    /// still right; with padding too large for the input-gradient kernel
    /// the op still runs.
    #[test]
    fn data_inputs_get_no_gradient() -> crate::TestResult {
        let p = Conv2dParams {
            padding: 3,
            ..Default::default()
        };
        let x = rand(&[2, 3, 9, 9], 1).to_dtype(DType::F32)?;
        let w64 = Var::from_tensor(&rand(&[8, 3, 3, 3], 2))?;
        let w32 = Var::from_tensor(&w64.to_dtype(DType::F32)?)?;
        let y = conv2d_max_pool(&x, &w32, None, p, (2, 2), true)?;
        let g = y.sum_all()?.backward()?;
        assert!(g.get(&x).is_none());
        let x64 = x.to_dtype(DType::F64)?;
        let y64 = relu(&max_pool2d(&conv2d(&x64, &w64, None, p)?, 2, 2)?)?;
        let g64 = y64.sum_all()?.backward()?;
        let d = rel_diff(
            g.get(&w32).ok_or("None from g.get(&w32)")?,
            g64.get(&w64).ok_or("None from g64.get(&w64)")?,
        );
        assert!(d < 1e-5, "weight gradient differs by {d}");
        // x a variable with that padding: the composition runs instead
        let xv = Var::from_tensor(&x)?;
        let y = conv2d_max_pool(&xv, &w32, None, p, (2, 2), true)?;
        let g = y.sum_all()?.backward()?;
        assert!(g.get(&xv).is_some());
        Ok(())
    }

    /// Equal maxima in a window: the gradient goes where `max_pool2d`'s goes
    /// (the first in row-major order), also when the tie is across rows
    /// and columns (`[[0, 5], [5, 0]]`) and in all-equal windows, on rows
    /// long enough for the vector paths.
    #[test]
    fn ties_go_where_max_pool2d_sends_them() -> crate::TestResult {
        let block: [[f32; 6]; 4] = [
            [0., 5., 1., 1., 2., 7.],
            [5., 0., 1., 1., 7., 2.],
            [3., 3., 4., 0., 6., 6.],
            [3., 3., 0., 4., 6., 6.],
        ];
        // the block 6 times across: rows of 18 (2/2) and 34 (3/1) windows,
        // so the vector paths (8 or 16 windows at a time) meet the ties too
        let v: Vec<f32> = block.iter().flat_map(|r| r.repeat(6)).collect();
        let x = Var::from_vec(v, (1, 1, 4, 36), &candle_core::Device::Cpu)?;
        let w = Tensor::ones((1, 1, 1, 1), DType::F32, &candle_core::Device::Cpu)?;
        let p = Conv2dParams::default();
        for (pk, ps) in [(2, 2), (3, 1)] {
            let y = conv2d_max_pool(&x, &w, None, p, (pk, ps), false)?;
            let g = y.sum_all()?.backward()?;
            let y0 = max_pool2d(&x, pk, ps)?;
            let g0 = y0.sum_all()?.backward()?;
            assert_eq!(
                g.get(&x)
                    .ok_or("no gradient for the variable")?
                    .flatten_all()?
                    .to_vec1::<f32>()?,
                g0.get(&x)
                    .ok_or("no gradient for the variable")?
                    .flatten_all()?
                    .to_vec1::<f32>()?,
                "pool {pk}/{ps}"
            );
        }
        Ok(())
    }

    #[test]
    fn bad_shapes_are_errors() -> crate::TestResult {
        let x = rand(&[1, 3, 6, 6], 1).to_dtype(DType::F32)?;
        let w = rand(&[4, 3, 3, 3], 2).to_dtype(DType::F32)?;
        let p = Conv2dParams::default();
        let e = conv2d_max_pool(&x, &w, None, p, (5, 5), true)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("max_pool2d") && e.contains("5×5 window does not fit a 4×4 input"),
            "{e}"
        );
        let e = conv2d_max_pool(&x, &w, None, p, (2, 0), true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("stride 0"), "{e}");
        let w2 = rand(&[4, 2, 3, 3], 2).to_dtype(DType::F32)?;
        let e = conv2d_max_pool(&x, &w2, None, p, (2, 2), true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("conv2d") && e.contains("3 channels"), "{e}");
        Ok(())
    }
}
