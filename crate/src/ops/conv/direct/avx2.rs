//! The direct convolution's AVX2 + FMA kernels, for the CPUs most students
//! have (Intel Core before AVX-512 came back, AMD before Zen 4): 8-lane
//! slots, 16 registers. The forward tile is 4 channels × 2 slots (8
//! accumulators, 2 input vectors, 1 broadcast weight), half of a packed
//! 8-channel block (4 × 3 needs all 16 registers and spills); the
//! weight-gradient tile is 6 entries × 16 channels (12 accumulators, 2
//! vectors of `dy`, 1 broadcast input), or 12 entries × 8 channels; `dy` is
//! transposed 8 × 8 at a time (see [`super`] for the formulas).
//!
//! A slot's input is loaded whole (8 lanes, the ones past its row's end
//! read the next row's pixels and are never stored) wherever the whole
//! vector lies inside the input; only the tiles at the input's very end
//! use masked loads.

use super::{GradTile, Slot, Tile, HALF, MR};
use std::arch::x86_64::*;

/// Pixels per vector.
const LANES: usize = 8;

/// Channels `half·4 .. half·4 + 4` of the packed block × `S` slots, summed
/// over all of `K` in registers.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn forward_tile<const S: usize>(t: &Tile, slots: &[Slot], half: usize) {
    let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let mut base = [0usize; S];
    let mut mask = [_mm256_setzero_si256(); S];
    let mut part = [false; S];
    for v in 0..S {
        base[v] = slots[v].at_in;
        let n = slots[v].mask.count_ones() as i32;
        part[v] = n < LANES as i32;
        mask[v] = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane);
    }
    let r0 = half * HALF;
    let mut acc = [[_mm256_setzero_ps(); S]; HALF];
    for r in 0..HALF {
        let b = _mm256_set1_ps(t.init[r0 + r]);
        for v in 0..S {
            acc[r][v] = b;
        }
    }
    let last = t.offs.last().copied().unwrap_or(0);
    let whole = base[S - 1] + last + LANES <= t.x_len;
    let mut a = t.a.add(r0);
    if whole {
        for &off in t.offs {
            let mut xv = [_mm256_setzero_ps(); S];
            for v in 0..S {
                xv[v] = _mm256_loadu_ps(t.x.add(base[v] + off));
            }
            for r in 0..HALF {
                let w = _mm256_broadcast_ss(&*a.add(r));
                for v in 0..S {
                    acc[r][v] = _mm256_fmadd_ps(w, xv[v], acc[r][v]);
                }
            }
            a = a.add(MR);
        }
    } else {
        for &off in t.offs {
            let mut xv = [_mm256_setzero_ps(); S];
            for v in 0..S {
                xv[v] = _mm256_maskload_ps(t.x.add(base[v] + off), mask[v]);
            }
            for r in 0..HALF {
                let w = _mm256_broadcast_ss(&*a.add(r));
                for v in 0..S {
                    acc[r][v] = _mm256_fmadd_ps(w, xv[v], acc[r][v]);
                }
            }
            a = a.add(MR);
        }
    }
    let zero = _mm256_setzero_ps();
    for r in 0..t.rows.saturating_sub(r0).min(HALF) {
        for v in 0..S {
            let mut z = acc[r][v];
            if t.relu {
                // 0 where z ≤ 0, z otherwise (NaN stays NaN), like relu_in_place
                z = _mm256_and_ps(z, _mm256_cmp_ps::<_CMP_NLE_UQ>(z, zero));
            }
            let y = t.y.add((r0 + r) * t.l + slots[v].at_out);
            if part[v] {
                _mm256_maskstore_ps(y, mask[v], z);
            } else {
                _mm256_storeu_ps(y, z);
            }
        }
    }
}

/// `N` kernel entries × `8·R` output channels of the weight gradient,
/// summed over the band's pixels in registers (the input broadcast, `dy`
/// loaded as vectors of channels), then added to `dwt`.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn grad_tile<const R: usize, const N: usize>(t: &GradTile) {
    let mut off = [0usize; N];
    off.copy_from_slice(&t.offs[..N]);
    let mut acc = [[_mm256_setzero_ps(); R]; N];
    let mut d = t.dyt;
    for i in 0..t.rows {
        let row = t.x.add(i * t.wp);
        for j in 0..t.ow {
            let px = row.add(j);
            let mut dv = [_mm256_setzero_ps(); R];
            for r in 0..R {
                dv[r] = _mm256_loadu_ps(d.add(LANES * r));
            }
            for n in 0..N {
                let b = _mm256_broadcast_ss(&*px.add(off[n]));
                for r in 0..R {
                    acc[n][r] = _mm256_fmadd_ps(dv[r], b, acc[n][r]);
                }
            }
            d = d.add(t.stride);
        }
    }
    for n in 0..N {
        for r in 0..R {
            let p = t.dwt.add(n * t.op + LANES * r);
            _mm256_storeu_ps(p, _mm256_add_ps(_mm256_loadu_ps(p), acc[n][r]));
        }
    }
}

/// `dst[j·ds + i] = src[i·ss + j]` for `i, j < 8`.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn transpose8(src: *const f32, ss: usize, dst: *mut f32, ds: usize) {
    let mut r = [_mm256_setzero_ps(); 8];
    for (i, v) in r.iter_mut().enumerate() {
        *v = _mm256_loadu_ps(src.add(i * ss));
    }
    // rows interleaved by 32 bits in pairs, then by 64 bits in fours …
    let mut t = [_mm256_setzero_ps(); 8];
    for i in 0..4 {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for h in 0..2 {
        let (a, b, c, d) = (t[4 * h], t[4 * h + 1], t[4 * h + 2], t[4 * h + 3]);
        r[4 * h] = _mm256_shuffle_ps::<0x44>(a, c);
        r[4 * h + 1] = _mm256_shuffle_ps::<0xee>(a, c);
        r[4 * h + 2] = _mm256_shuffle_ps::<0x44>(b, d);
        r[4 * h + 3] = _mm256_shuffle_ps::<0xee>(b, d);
    }
    // … then the 128-bit halves of rows 0–3 and 4–7
    for j in 0..4 {
        let lo = _mm256_permute2f128_ps::<0x20>(r[j], r[j + 4]);
        let hi = _mm256_permute2f128_ps::<0x31>(r[j], r[j + 4]);
        _mm256_storeu_ps(dst.add(j * ds), lo);
        _mm256_storeu_ps(dst.add((j + 4) * ds), hi);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn transpose8_transposes() {
        if crate::simd::cpu() < crate::simd::Simd::Avx2 {
            return;
        }
        let src: Vec<f32> = (0..8 * 11).map(|v| v as f32).collect();
        let mut dst = vec![-1f32; 8 * 10];
        // SAFETY: AVX2 checked; 8 rows of 11 and 8 rows of 10 fit.
        unsafe { super::transpose8(src.as_ptr(), 11, dst.as_mut_ptr(), 10) };
        for i in 0..8 {
            for j in 0..8 {
                assert_eq!(dst[j * 10 + i], src[i * 11 + j], "({i}, {j})");
            }
            assert_eq!(dst[i * 10 + 8], -1.0);
            assert_eq!(dst[i * 10 + 9], -1.0);
        }
    }
}
