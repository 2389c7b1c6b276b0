//! The Winograd transforms with AVX-512F, 16 tiles at a time: the same
//! additions in the same order as [`super::avx2`] (so the same bits),
//! with twice the lanes and registers.

use std::arch::x86_64::*;

use super::Plane;

/// Lanes of a vector here: tiles per chunk.
pub(super) const LANES: usize = 16;

/// Values kept per chunk of 16 tiles between tile rows.
pub(super) const KEPT: usize = 2 * 4 * LANES;

/// Lanes `0 .. n` on.
fn lanes_below(n: usize) -> __mmask16 {
    if n >= LANES {
        u16::MAX
    } else {
        (1u16 << n) - 1
    }
}

/// Lanes `lead .. avail` on.
fn lanes_between(lead: usize, avail: usize) -> __mmask16 {
    lanes_below(avail) & !lanes_below(lead)
}

/// `(even, odd)` lanes of the 32 values `a ‖ b`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn deinterleave(a: __m512, b: __m512) -> (__m512, __m512) {
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    (
        _mm512_permutex2var_ps(a, even, b),
        _mm512_permutex2var_ps(a, odd, b),
    )
}

/// `Aᵀ M A` of 16 tiles from their 16 vectors `M[ξ]`, plus the bias: per
/// output row of the tiles (2), its even and odd columns.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn output_tiles(m: &[__m512; 16], bias: __m512) -> [[__m512; 2]; 2] {
    let zero = _mm512_setzero_ps();
    let mut p = [[zero; 4]; 2];
    for k in 0..4 {
        let (m0, m1, m2, m3) = (m[k], m[4 + k], m[8 + k], m[12 + k]);
        p[0][k] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
        p[1][k] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
    }
    p.map(|pa| {
        [
            _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(pa[0], pa[1]), pa[2]), bias),
            _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(pa[1], pa[2]), pa[3]), bias),
        ]
    })
}

/// 0 where `v ≤ 0`, `v` otherwise (NaN stays NaN), like `relu_in_place`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn relu_lanes(v: __m512) -> __m512 {
    _mm512_maskz_mov_ps(_mm512_cmp_ps_mask::<_CMP_NLE_UQ>(v, _mm512_setzero_ps()), v)
}

/// [`output_tiles`], then the ReLU: per output row of the tiles, its 32
/// values back in order (`[columns 0 .. 16, columns 16 .. 32]`), the even
/// and odd columns interleaved.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn output_rows(m: &[__m512; 16], bias: __m512, relu: bool) -> [[__m512; 2]; 2] {
    let lo_idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    let hi_idx = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    output_tiles(m, bias).map(|[mut even, mut odd]| {
        if relu {
            even = relu_lanes(even);
            odd = relu_lanes(odd);
        }
        [
            _mm512_permutex2var_ps(even, lo_idx, odd),
            _mm512_permutex2var_ps(even, hi_idx, odd),
        ]
    })
}

/// The 2×2 maximum of each of 16 tiles' outputs (then the ReLU) and its
/// position `r·2 + c`, as `fused_pool`'s column then window maxima pick
/// it: a row wins a column when larger or NaN; the second column wins
/// when the first is not NaN and it is NaN, larger, or equal from an
/// earlier row.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn pooled_tiles(t: [[__m512; 2]; 2], relu: bool) -> (__m512, __m512i) {
    let [[z00, z01], [z10, z11]] = t;
    let nan = |v: __m512| _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
    let gt = |a: __m512, b: __m512| _mm512_cmp_ps_mask::<_CMP_GT_OQ>(a, b);
    let row0 = gt(z10, z00) | nan(z10);
    let m0 = _mm512_mask_mov_ps(z00, row0, z10);
    let row1 = gt(z11, z01) | nan(z11);
    let m1 = _mm512_mask_mov_ps(z01, row1, z11);
    let eq = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(m1, m0);
    let second = !nan(m0) & (nan(m1) | gt(m1, m0) | (eq & !row1 & row0));
    let mut best = _mm512_mask_mov_ps(m0, second, m1);
    if relu {
        best = relu_lanes(best);
    }
    let row = (second & row1) | (!second & row0);
    let arg = _mm512_add_epi32(
        _mm512_maskz_mov_epi32(row, _mm512_set1_epi32(2)),
        _mm512_maskz_mov_epi32(second, _mm512_set1_epi32(1)),
    );
    (best, arg)
}

/// The lanes of the four loads of [`columns`] that hold a row's values
/// (the same for every row of a chunk): `p[0 .. 16]`, `p[16 .. 32]`,
/// `p[2 .. 18]`, `p[18 .. 34]`, from the row's values at `lead .. avail`.
fn column_masks(lead: usize, avail: usize) -> [__mmask16; 4] {
    let shifted = |s: usize| lanes_between(lead.saturating_sub(s), avail.saturating_sub(s));
    [shifted(0), shifted(LANES), shifted(2), shifted(2 + LANES)]
}

/// `Bᵀ` along one padded row for 16 tiles (see `avx2::columns`): the
/// even and odd columns of the 32 values at `row` and of the 32 at
/// `row + 2`, the lanes of `masks` read, zeros elsewhere.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn columns(row: *const f32, masks: &[__mmask16; 4]) -> [__m512; 4] {
    let load = |i: usize, at: usize| _mm512_maskz_loadu_ps(masks[i], row.wrapping_add(at));
    let (e0, o0) = deinterleave(load(0, 0), load(1, LANES));
    let (e1, o1) = deinterleave(load(2, 2), load(3, 2 + LANES));
    [
        _mm512_sub_ps(e0, e1),
        _mm512_add_ps(o0, e1),
        _mm512_sub_ps(e1, o0),
        _mm512_sub_ps(o0, o1),
    ]
}

/// [`columns`] of padded row `row` from padded column `from` (zeros on
/// the border), `masks` from [`column_masks`] for `from`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn row_columns(
    plane: Plane,
    row: usize,
    from: usize,
    masks: &[__mmask16; 4],
) -> [__m512; 4] {
    match plane.row(row, from) {
        Some((p, _, _)) => columns(p, masks),
        None => [_mm512_setzero_ps(); 4],
    }
}

/// `avx2::input_plane` with 16 tiles a chunk.
///
/// Safety: the CPU has AVX-512F; as `avx2::input_plane`, with [`KEPT`]
/// values of `kept` per chunk of 16 tiles.
#[target_feature(enable = "avx512f")]
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
            let masks = match plane.row(plane.ph, from) {
                Some((_, lead, avail)) => column_masks(lead, avail),
                None => [0; 4],
            };
            let at = kept.add(ch * KEPT);
            let top = if lt == 0 {
                [
                    row_columns(plane, 2 * ti, from, &masks),
                    row_columns(plane, 2 * ti + 1, from, &masks),
                ]
            } else {
                let mut q = [[_mm512_setzero_ps(); 4]; 2];
                for (i, v) in q.iter_mut().flatten().enumerate() {
                    *v = _mm512_loadu_ps(at.add(i * LANES));
                }
                q
            };
            let bottom = [
                row_columns(plane, 2 * ti + 2, from, &masks),
                row_columns(plane, 2 * ti + 3, from, &masks),
            ];
            for (i, v) in bottom.iter().flatten().enumerate() {
                _mm512_storeu_ps(at.add(i * LANES), *v);
            }
            let q = [top[0], top[1], bottom[0], bottom[1]];
            let mask = lanes_below(tw - j0);
            let out = v.add(lt * tw + j0);
            for k in 0..4 {
                let z = [
                    _mm512_sub_ps(q[0][k], q[2][k]),
                    _mm512_add_ps(q[1][k], q[2][k]),
                    _mm512_sub_ps(q[2][k], q[1][k]),
                    _mm512_sub_ps(q[1][k], q[3][k]),
                ];
                for (m, z) in z.into_iter().enumerate() {
                    _mm512_mask_storeu_ps(out.add((m * 4 + k) * xi_stride), mask, z);
                }
            }
        }
    }
}

/// `avx2::output_channel` with 16 tiles a chunk.
///
/// Safety: the CPU has AVX-512F; as `avx2::output_channel`.
#[target_feature(enable = "avx512f")]
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
    let b = _mm512_set1_ps(bias);
    for lt in 0..tb {
        let r0 = 2 * (ti0 + lt);
        for j0 in (0..tw).step_by(LANES) {
            let mask = lanes_below(tw - j0);
            let at = m.add(lt * tw + j0);
            let mv: [__m512; 16] =
                std::array::from_fn(|xi| _mm512_maskz_loadu_ps(mask, at.add(xi * xi_stride)));
            let rows = output_rows(&mv, b, relu);
            let cols = (ow - 2 * j0).min(2 * LANES);
            for (a, [first, second]) in rows.into_iter().enumerate() {
                if r0 + a >= oh {
                    continue;
                }
                let dst = y.add((r0 + a) * ow + 2 * j0);
                _mm512_mask_storeu_ps(dst, lanes_below(cols), first);
                if cols > LANES {
                    _mm512_mask_storeu_ps(dst.add(LANES), lanes_below(cols - LANES), second);
                }
            }
        }
    }
}

/// Tiles of a row that the pair kernels take (half a vector each).
pub(super) const PAIR_TILES: usize = LANES / 2;

/// Lanes `0 .. n` and `8 .. 8 + n`: `n ≤ 8` tiles of two tile rows.
fn pair_lanes(n: usize) -> __mmask16 {
    let half = lanes_below(n) & 0xff;
    half | (half << 8)
}

/// A padded row as the pair kernels read it: where padded column 0 would
/// lie, and the lanes holding the input's values at shifts 0 and 2 (none
/// for a border row, whose loads then read nothing).
#[derive(Clone, Copy)]
struct PairRow {
    p: *const f32,
    at0: __mmask16,
    at2: __mmask16,
}

impl PairRow {
    /// Row `r` of `plane` (`None`: a row of zeros past the band).
    fn of(plane: Plane, r: Option<usize>) -> PairRow {
        match r.and_then(|r| plane.row(r, 0)) {
            Some((p, lead, avail)) => PairRow {
                p,
                at0: lanes_between(lead, avail),
                at2: lanes_between(lead.saturating_sub(2), avail.saturating_sub(2)),
            },
            // no lane is read: any address inside the plane will do
            None => PairRow {
                p: plane.data.as_ptr(),
                at0: 0,
                at2: 0,
            },
        }
    }
}

/// [`columns`] of two padded rows side by side, up to 8 tiles each: lanes
/// `0 .. 8` from row `a`, `8 .. 16` from row `b`. The same operations per
/// lane as [`columns`], so the same bits.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn pair_columns(a: PairRow, b: PairRow) -> [__m512; 4] {
    let (e0, o0) = deinterleave(
        _mm512_maskz_loadu_ps(a.at0, a.p),
        _mm512_maskz_loadu_ps(b.at0, b.p),
    );
    let (e1, o1) = deinterleave(
        _mm512_maskz_loadu_ps(a.at2, a.p.wrapping_add(2)),
        _mm512_maskz_loadu_ps(b.at2, b.p.wrapping_add(2)),
    );
    [
        _mm512_sub_ps(e0, e1),
        _mm512_add_ps(o0, e1),
        _mm512_sub_ps(e1, o0),
        _mm512_sub_ps(o0, o1),
    ]
}

/// [`input_plane`] for rows of at most 8 tiles: two tile rows a vector
/// (a 16×16 layer's 8 tiles a row would fill half of one), written to
/// `V` as `2·tw` consecutive tiles.
///
/// Safety: the CPU has AVX-512F; `tw ≤ 8`; otherwise as [`input_plane`].
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn input_plane_pairs(
    plane: Plane,
    (ti0, tb, tw): (usize, usize, usize),
    v: *mut f32,
    xi_stride: usize,
) {
    for lt in (0..tb).step_by(2) {
        let ti = ti0 + lt;
        let two = lt + 1 < tb;
        let rows: [PairRow; 6] = std::array::from_fn(|r| PairRow::of(plane, Some(2 * ti + r)));
        let b = |r: usize| {
            if two {
                rows[2 + r]
            } else {
                PairRow::of(plane, None)
            }
        };
        let q = [
            pair_columns(rows[0], b(0)),
            pair_columns(rows[1], b(1)),
            pair_columns(rows[2], b(2)),
            pair_columns(rows[3], b(3)),
        ];
        let mask = if two { pair_lanes(tw) } else { lanes_below(tw) };
        let out = v.add(lt * tw);
        for k in 0..4 {
            let z = [
                _mm512_sub_ps(q[0][k], q[2][k]),
                _mm512_add_ps(q[1][k], q[2][k]),
                _mm512_sub_ps(q[2][k], q[1][k]),
                _mm512_sub_ps(q[1][k], q[3][k]),
            ];
            for (m, z) in z.into_iter().enumerate() {
                let p = out.add((m * 4 + k) * xi_stride);
                if mask == u16::MAX {
                    _mm512_storeu_ps(p, z);
                } else {
                    _mm512_mask_compressstoreu_ps(p.cast(), mask, z);
                }
            }
        }
    }
}

/// The 16 vectors `M[ξ]` of two tile rows of `tw ≤ 8` tiles, stored as
/// `2·tw` consecutive tiles at `at` (or one row: `mask` its lanes), the
/// second row's tiles in lanes `8 ..`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn pair_m(at: *const f32, xi_stride: usize, mask: __mmask16) -> [__m512; 16] {
    // a loop, not `array::from_fn`: its closure would not be inlined here
    let mut mv = [_mm512_setzero_ps(); 16];
    for (xi, v) in mv.iter_mut().enumerate() {
        let p = at.add(xi * xi_stride);
        *v = if mask == u16::MAX {
            _mm512_loadu_ps(p)
        } else {
            _mm512_maskz_expandloadu_ps(mask, p.cast())
        };
    }
    mv
}

/// [`output_channel`] for rows of at most 8 tiles: two tile rows a vector,
/// read from `M` as `2·tw` consecutive tiles.
///
/// Safety: the CPU has AVX-512F; `tw ≤ 8`; otherwise as [`output_channel`].
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn output_channel_pairs(
    m: *const f32,
    xi_stride: usize,
    (ti0, tb, tw): (usize, usize, usize),
    bias: f32,
    relu: bool,
    y: *mut f32,
    (oh, ow): (usize, usize),
) {
    let b = _mm512_set1_ps(bias);
    let cols = lanes_below(ow);
    for lt in (0..tb).step_by(2) {
        let r0 = 2 * (ti0 + lt);
        let two = lt + 1 < tb;
        let mask = if two { pair_lanes(tw) } else { lanes_below(tw) };
        let at = m.add(lt * tw);
        let mv = pair_m(at, xi_stride, mask);
        // lanes 0 .. 8: tile row lt, its output row r0 + a; 8 .. 16: the next, r0 + 2 + a
        for (a, [first, second]) in output_rows(&mv, b, relu).into_iter().enumerate() {
            if r0 + a < oh {
                _mm512_mask_storeu_ps(y.add((r0 + a) * ow), cols, first);
            }
            if two && r0 + 2 + a < oh {
                _mm512_mask_storeu_ps(y.add((r0 + 2 + a) * ow), cols, second);
            }
        }
    }
}

/// The lanes of `mask` of a [`pooled_tiles`] result to pooled position `to`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn store_pooled(
    (best, pos): (__m512, __m512i),
    (y, arg): (*mut f32, *mut u8),
    to: usize,
    mask: __mmask16,
) {
    _mm512_mask_storeu_ps(y.wrapping_add(to), mask, best);
    _mm512_mask_cvtepi32_storeu_epi8(arg.wrapping_add(to).cast(), mask, pos);
}

/// [`output_channel`] pooled: each tile's 2×2 outputs reduced to their
/// maximum ([`pooled_tiles`]), pooled row `ti` of `y` and `arg` (`tw`
/// values each) from tile row `ti`; rows of at most 8 tiles two tile rows
/// a vector (as [`output_channel_pairs`]).
///
/// Safety: the CPU has AVX-512F; `m` as in [`output_channel`] (or
/// [`output_channel_pairs`] for `tw ≤ 8`); `y` and `arg` hold pooled rows
/// `ti0 .. ti0 + tb` of `tw` values.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn pooled_channel(
    m: *const f32,
    xi_stride: usize,
    (ti0, tb, tw): (usize, usize, usize),
    bias: f32,
    relu: bool,
    (y, arg): (*mut f32, *mut u8),
) {
    let b = _mm512_set1_ps(bias);
    if tw > PAIR_TILES {
        for lt in 0..tb {
            for j0 in (0..tw).step_by(LANES) {
                let mask = lanes_below(tw - j0);
                let at = m.add(lt * tw + j0);
                let mv =
                    std::array::from_fn(|xi| _mm512_maskz_loadu_ps(mask, at.add(xi * xi_stride)));
                let pooled = pooled_tiles(output_tiles(&mv, b), relu);
                store_pooled(pooled, (y, arg), (ti0 + lt) * tw + j0, mask);
            }
        }
        return;
    }
    for lt in (0..tb).step_by(2) {
        let two = lt + 1 < tb;
        let mask = if two { pair_lanes(tw) } else { lanes_below(tw) };
        let mv = pair_m(m.add(lt * tw), xi_stride, mask);
        // lanes 0 .. tw: pooled row ti0 + lt; lane 8 + j: the next row's
        // j, at `to + tw + j` (from 8 before it: no lane below 8 is stored)
        let to = (ti0 + lt) * tw;
        let low = lanes_below(tw);
        let pooled = pooled_tiles(output_tiles(&mv, b), relu);
        store_pooled(pooled, (y, arg), to, low);
        if two {
            store_pooled(
                pooled,
                (y, arg),
                (to + tw).wrapping_sub(PAIR_TILES),
                low << PAIR_TILES,
            );
        }
    }
}
