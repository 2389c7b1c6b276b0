//! The direct convolution's AVX-512F kernels: 16-lane slots with `u16`
//! masks, an 8-channel × 3-slot forward tile in 24 of the 32 registers, the
//! weight-gradient tile of up to 12 entries × 32 channels, and the 16 × 16
//! transpose of `dy` (see [`super`] for the formulas).

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
        if crate::simd::cpu() < crate::simd::Simd::Avx512 {
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
