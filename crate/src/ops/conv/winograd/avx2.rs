//! The Winograd transforms with AVX2, 8 tiles at a time, at both SIMD
//! levels (an AVX-512 CPU has AVX2, and each value goes through the same
//! additions in the same order at any width, so the bits are the same):
//! the input's `Bᵀ d B` straight from the input's rows into `V`, and the
//! output's `Aᵀ M A + b` (and ReLU) from `M` into the output rows,
//! interleaving the even and odd columns in registers.

use std::arch::x86_64::*;

use super::Plane;

/// Lanes of a vector here: tiles per chunk.
pub(super) const LANES: usize = 8;

/// Lane `i` of the mask on for `i < n`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn lanes_below(n: usize) -> __m256i {
    let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    _mm256_cmpgt_epi32(_mm256_set1_epi32(n.min(LANES) as i32), idx)
}

/// `(even, odd)` columns of the 16 values at `p`: `p[2j]`, `p[2j+1]`, of
/// which only those at `lead .. avail` are read (the rest are 0).
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn split(p: *const f32, lead: usize, avail: usize) -> (__m256, __m256) {
    let (a, b) = if lead == 0 && avail >= 2 * LANES {
        (_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(LANES)))
    } else {
        let between = |lo: usize, hi: usize| _mm256_andnot_si256(lanes_below(lo), lanes_below(hi));
        (
            _mm256_maskload_ps(p, between(lead, avail)),
            _mm256_maskload_ps(
                p.wrapping_add(LANES),
                between(lead.saturating_sub(LANES), avail.saturating_sub(LANES)),
            ),
        )
    };
    // per 128-bit half: [a0 a2 b0 b2 | a4 a6 b4 b6], then the 64-bit quarters in order
    let e = _mm256_shuffle_ps::<0b10_00_10_00>(a, b);
    let o = _mm256_shuffle_ps::<0b11_01_11_01>(a, b);
    let fix =
        |v: __m256| _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(v)));
    (fix(e), fix(o))
}

/// `Bᵀ` along one padded row for tiles `j0 .. j0 + 8`: `[q0, q1, q2, q3]`
/// with `q0 = e[j] − e[j+1]`, `q1 = o[j] + e[j+1]`, `q2 = e[j+1] − o[j]`,
/// `q3 = o[j] − o[j+1]` (`e`, `o` the row's even and odd columns from `2·j0`);
/// the values at `row[lead .. avail]` read, zeros elsewhere.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn columns(row: *const f32, lead: usize, avail: usize) -> [__m256; 4] {
    let (e0, o0) = split(row, lead, avail);
    let (e1, o1) = split(
        row.wrapping_add(2),
        lead.saturating_sub(2),
        avail.saturating_sub(2),
    );
    [
        _mm256_sub_ps(e0, e1),
        _mm256_add_ps(o0, e1),
        _mm256_sub_ps(e1, o0),
        _mm256_sub_ps(o0, o1),
    ]
}

/// `V[ξ][c][t] = (Bᵀ d B)[ξ]` of one channel for the tiles of tile rows
/// `ti0 .. ti0 + tb`, 8 tiles at a time: `plane` is the channel's input
/// with its zero border, `v` points at `V[0][c][0]` of the band, the 16 `V[ξ]`
/// `xi_stride` apart, `tw` tiles a row. The last two rows of one tile row
/// are the first two of the next: their `Bᵀ` along the row is computed
/// once and kept. Loads outside the input (its zero border) are masked.
///
/// Safety: the CPU has AVX2; `v` has `15·xi_stride + tb·tw` values
/// writable; `kept` holds the shared rows, [`KEPT`] values per chunk of 8
/// tiles.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn input_plane(
    plane: Plane,
    (ti0, tb, tw): (usize, usize, usize),
    v: *mut f32,
    xi_stride: usize,
    kept: &mut [f32],
) {
    let chunks = tw.div_ceil(LANES);
    assert!(kept.len() >= chunks * KEPT, "winograd: kept rows");
    let kept = kept.as_mut_ptr();
    for lt in 0..tb {
        let ti = ti0 + lt;
        for (ch, j0) in (0..tw).step_by(LANES).enumerate() {
            let from = 2 * j0;
            let at = kept.add(ch * KEPT);
            let top = if lt == 0 {
                [
                    row_columns(plane, 2 * ti, from),
                    row_columns(plane, 2 * ti + 1, from),
                ]
            } else {
                let mut q = [[_mm256_setzero_ps(); 4]; 2];
                for (i, v) in q.iter_mut().flatten().enumerate() {
                    *v = _mm256_loadu_ps(at.add(i * LANES));
                }
                q
            };
            let bottom = [
                row_columns(plane, 2 * ti + 2, from),
                row_columns(plane, 2 * ti + 3, from),
            ];
            for (i, v) in bottom.iter().flatten().enumerate() {
                _mm256_storeu_ps(at.add(i * LANES), *v);
            }
            let n = (tw - j0).min(LANES);
            input_tiles(
                [top[0], top[1], bottom[0], bottom[1]],
                v.add(lt * tw + j0),
                xi_stride,
                n,
            );
        }
    }
}

/// Values kept per chunk of 8 tiles between tile rows: the [`columns`] of
/// the two rows a tile row shares with the next.
pub(super) const KEPT: usize = 2 * 4 * LANES;

/// `y = Aᵀ M A + b` (then ReLU) of one output channel for the tiles of
/// tile rows `ti0 .. ti0 + tb`, 8 tiles at a time: `m` points at
/// `M[0][o][0]` of the band, the 16 `M[ξ]` `xi_stride` apart; `y` at the
/// channel's `oh × ow` outputs.
///
/// Safety: the CPU has AVX2; `m` has `15·xi_stride + tb·tw` values
/// readable; `y` has `oh·ow` writable, `tw = ⌈ow/2⌉`, `2·(ti0 + tb) ≥ oh`
/// only for the last band.
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn output_channel(
    m: *const f32,
    xi_stride: usize,
    (ti0, tb, tw): (usize, usize, usize),
    bias: f32,
    relu: bool,
    y: *mut f32,
    (oh, ow): (usize, usize),
) {
    for lt in 0..tb {
        let r0 = 2 * (ti0 + lt);
        for j0 in (0..tw).step_by(LANES) {
            let at_row = |a: usize| {
                if r0 + a < oh {
                    y.add((r0 + a) * ow + 2 * j0)
                } else {
                    std::ptr::null_mut()
                }
            };
            let cols = (ow - 2 * j0).min(2 * LANES);
            output_tiles(
                m.add(lt * tw + j0),
                xi_stride,
                (tw - j0).min(LANES),
                bias,
                relu,
                [at_row(0), at_row(1)],
                cols,
            );
        }
    }
}

/// [`columns`] of padded row `row` from padded column `from` (zeros on
/// the border).
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn row_columns(plane: Plane, row: usize, from: usize) -> [__m256; 4] {
    match plane.row(row, from) {
        Some((p, lead, avail)) => columns(p, lead, avail),
        None => [_mm256_setzero_ps(); 4],
    }
}

/// `V[(m, k)][t]` for tiles `j0 .. j0 + n` (`n ≤ 8`) of one tile row from
/// `q[r]`, the [`columns`] of the tile row's padded row `r`; `v` at
/// `V[0][c][first tile]`, the 16 `V[ξ]` `xi_stride` apart.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn input_tiles(q: [[__m256; 4]; 4], v: *mut f32, xi_stride: usize, n: usize) {
    let mask = lanes_below(n);
    for k in 0..4 {
        let out = [
            _mm256_sub_ps(q[0][k], q[2][k]),
            _mm256_add_ps(q[1][k], q[2][k]),
            _mm256_sub_ps(q[2][k], q[1][k]),
            _mm256_sub_ps(q[1][k], q[3][k]),
        ];
        for (m, z) in out.into_iter().enumerate() {
            let p = v.add((m * 4 + k) * xi_stride);
            if n == LANES {
                _mm256_storeu_ps(p, z);
            } else {
                _mm256_maskstore_ps(p, mask, z);
            }
        }
    }
}

/// The outputs of tiles `j0 .. j0 + n` (`n ≤ 8`) of one tile row and
/// channel: `m` at `M[0][o][first tile]`, the 16 `M[ξ]` `xi_stride` apart;
/// `y[a]` at output row `a`'s column `2·j0` (null when that row is past
/// the output), `cols` outputs of each row from there (`≤ 16`).
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn output_tiles(
    m: *const f32,
    xi_stride: usize,
    n: usize,
    bias: f32,
    relu: bool,
    y: [*mut f32; 2],
    cols: usize,
) {
    let mask = lanes_below(n);
    let load = |xi: usize| {
        let p = m.add(xi * xi_stride);
        if n == LANES {
            _mm256_loadu_ps(p)
        } else {
            _mm256_maskload_ps(p, mask)
        }
    };
    let b = _mm256_set1_ps(bias);
    let zero = _mm256_setzero_ps();
    // Aᵀ down each column k: p0 = m0 + m1 + m2, p1 = m1 − m2 − m3
    let mut p = [[zero; 4]; 2];
    for k in 0..4 {
        let (m0, m1, m2, m3) = (load(k), load(4 + k), load(8 + k), load(12 + k));
        p[0][k] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
        p[1][k] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
    }
    for (a, pa) in p.iter().enumerate() {
        if y[a].is_null() {
            continue;
        }
        let mut even = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(pa[0], pa[1]), pa[2]), b);
        let mut odd = _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(pa[1], pa[2]), pa[3]), b);
        if relu {
            // 0 where z ≤ 0, z otherwise (NaN stays NaN), like the direct kernels
            even = _mm256_and_ps(_mm256_cmp_ps::<_CMP_NLE_UQ>(even, zero), even);
            odd = _mm256_and_ps(_mm256_cmp_ps::<_CMP_NLE_UQ>(odd, zero), odd);
        }
        let lo = _mm256_unpacklo_ps(even, odd);
        let hi = _mm256_unpackhi_ps(even, odd);
        let first = _mm256_permute2f128_ps::<0x20>(lo, hi);
        let second = _mm256_permute2f128_ps::<0x31>(lo, hi);
        if cols >= 2 * LANES {
            _mm256_storeu_ps(y[a], first);
            _mm256_storeu_ps(y[a].add(LANES), second);
        } else {
            _mm256_maskstore_ps(y[a], lanes_below(cols), first);
            if cols > LANES {
                _mm256_maskstore_ps(y[a].add(LANES), lanes_below(cols - LANES), second);
            }
        }
    }
}
