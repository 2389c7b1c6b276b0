//! Matrix product on raw slices, the kernel under the fast convolution:
//! `C (+)= A · B` with `A` m×k, `B` k×n, `C` m×n, each given by its row and
//! column strides (so a transposed operand costs nothing). Calls the `gemm`
//! crate, the same kernels Candle's CPU matmul uses.
//!
//! [`Real`] is the element type: `f32` or `f64`.

pub use crate::float::Real;

use rayon::prelude::*;

/// A matrix operand: a slice with its row and column strides.
#[derive(Clone, Copy)]
pub struct Mat<'a, T> {
    pub data: &'a [T],
    pub rs: usize,
    pub cs: usize,
}

impl<'a, T> Mat<'a, T> {
    /// Row-major `rows × cols`.
    pub fn rows(data: &'a [T], cols: usize) -> Self {
        Mat {
            data,
            rs: cols,
            cs: 1,
        }
    }
    /// The transpose of a row-major matrix with `cols` columns.
    pub fn transposed(data: &'a [T], cols: usize) -> Self {
        Mat {
            data,
            rs: 1,
            cs: cols,
        }
    }
}

/// `dst[m×n] = a·b` (or `dst += a·b` when `accumulate`); `dst` is row-major
/// and contiguous. `threads > 1` lets the kernel split the product.
/// Crate-internal: the callers size every slice; a bad size panics in
/// [`check`]'s assert, never reads or writes outside a slice.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm<T: Real>(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [T],
    accumulate: bool,
    a: Mat<T>,
    b: Mat<T>,
    threads: usize,
) {
    gemm_rows(m, n, k, dst, n, accumulate, a, b, threads)
}

/// `dst[m×n] = a·b` into memory not yet written (a `Vec`'s spare
/// capacity): the product never reads its destination, so the output
/// needs no zero-fill first. Every element is written (zeros when
/// `k = 0`); the caller may then `set_len`.
pub(crate) fn gemm_uninit<T: Real>(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [std::mem::MaybeUninit<T>],
    a: Mat<T>,
    b: Mat<T>,
    threads: usize,
) {
    assert!(
        m.checked_mul(n) == Some(dst.len()),
        "gemm: an uninitialised destination must hold exactly m·n elements"
    );
    if k == 0 {
        for d in dst.iter_mut() {
            d.write(T::ZERO);
        }
        return;
    }
    if let Err(why) = check(m, n, k, dst.len(), n, 1, &a, &b) {
        panic!("gemm: {why}");
    }
    // SAFETY: `check` passed; a `MaybeUninit<T>` has `T`'s layout, and
    // with `accumulate = false` the kernel writes all `m·n` elements of
    // `dst` without reading any.
    unsafe { kernel(m, n, k, dst.as_mut_ptr().cast(), n, 1, false, a, b, threads) }
}

/// [`gemm`] into a destination whose rows are `dst_rs` elements apart
/// (`dst_rs ≥ n`): a block of columns of a wider matrix.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_rows<T: Real>(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [T],
    dst_rs: usize,
    accumulate: bool,
    a: Mat<T>,
    b: Mat<T>,
    threads: usize,
) {
    assert!(dst_rs >= n, "gemm: destination rows overlap");
    gemm_strided(m, n, k, dst, dst_rs, 1, accumulate, a, b, threads)
}

/// [`gemm`] into `dst[i·rs + j·cs]`; `cs = m`-major layouts (`rs = 1`) write
/// the transpose of the product. The strides must not make two elements
/// overlap.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_strided<T: Real>(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [T],
    dst_rs: usize,
    dst_cs: usize,
    accumulate: bool,
    a: Mat<T>,
    b: Mat<T>,
    threads: usize,
) {
    if let Err(why) = check(m, n, k, dst.len(), dst_rs, dst_cs, &a, &b) {
        panic!("gemm: {why}");
    }
    run(m, n, k, dst, dst_rs, dst_cs, accumulate, a, b, threads)
}

/// The public, checked product: `dst[i·dst_rs + j·dst_cs] (+)= (a·b)[i][j]`
/// for `a` m×k and `b` k×n. Every stride and size is checked with
/// overflow-checked arithmetic before the kernel runs: a stride or size
/// that would reach outside a slice (or overflow `usize`/`isize`), or
/// destination strides that make two elements overlap, are an
/// [`Error::Shape`](crate::Error::Shape) at `ops::gemm::matmul`.
///
/// ```
/// use nnlab::ops::gemm::{matmul, Mat};
/// let (a, b) = ([1.0f32, 2., 3., 4.], [1.0f32, 0., 0., 1.]);
/// let mut c = [0.0f32; 4];
/// matmul(2, 2, 2, &mut c, 2, 1, false, Mat::rows(&a, 2), Mat::rows(&b, 2), 1).unwrap();
/// assert_eq!(c, a);
/// let far = Mat { data: &a[..1], rs: usize::MAX, cs: 1 };
/// assert!(matmul(2, 2, 2, &mut c, 2, 1, false, far, Mat::rows(&b, 2), 1).is_err());
/// ```
#[allow(clippy::too_many_arguments)]
pub fn matmul<T: Real>(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [T],
    dst_rs: usize,
    dst_cs: usize,
    accumulate: bool,
    a: Mat<T>,
    b: Mat<T>,
    threads: usize,
) -> crate::Result<()> {
    check(m, n, k, dst.len(), dst_rs, dst_cs, &a, &b)
        .map_err(|why| crate::Error::shape("ops::gemm::matmul", why))?;
    run(m, n, k, dst, dst_rs, dst_cs, accumulate, a, b, threads);
    Ok(())
}

/// The offset of the last element of a `rows × cols` operand with strides
/// `(rs, cs)`: `(rows − 1)·rs + (cols − 1)·cs`, None when it overflows
/// `usize` or a stride does not fit the kernel's `isize`.
fn last_offset(rows: usize, cols: usize, rs: usize, cs: usize) -> Option<usize> {
    if rs > isize::MAX as usize || cs > isize::MAX as usize {
        return None;
    }
    rows.checked_sub(1)?
        .checked_mul(rs)?
        .checked_add(cols.checked_sub(1)?.checked_mul(cs)?)
}

/// Whether a product of these sizes and strides stays inside the slices:
/// `Err` says which operand does not.
#[allow(clippy::too_many_arguments)]
fn check<T>(
    m: usize,
    n: usize,
    k: usize,
    dst_len: usize,
    dst_rs: usize,
    dst_cs: usize,
    a: &Mat<T>,
    b: &Mat<T>,
) -> Result<(), String> {
    if m == 0 || n == 0 {
        return Ok(());
    }
    let row_major = dst_cs >= 1 && n.checked_mul(dst_cs).is_some_and(|w| dst_rs >= w);
    let col_major = dst_rs >= 1 && m.checked_mul(dst_rs).is_some_and(|h| dst_cs >= h);
    if !row_major && !col_major {
        return Err(format!(
            "destination strides ({dst_rs}, {dst_cs}) overlap for {m}×{n}"
        ));
    }
    let inside = |what: &str, rows: usize, cols: usize, rs: usize, cs: usize, len: usize| {
        match last_offset(rows, cols, rs, cs) {
            Some(last) if last < len => Ok(()),
            Some(last) => Err(format!(
                "{what} {rows}×{cols} with strides ({rs}, {cs}) reaches element {last}, expected < {len} (its length)"
            )),
            None => Err(format!(
                "{what} {rows}×{cols} with strides ({rs}, {cs}) overflows the address range"
            )),
        }
    };
    inside("destination", m, n, dst_rs, dst_cs, dst_len)?;
    if k > 0 {
        inside("lhs", m, k, a.rs, a.cs, a.data.len())?;
        inside("rhs", k, n, b.rs, b.cs, b.data.len())?;
    }
    Ok(())
}

/// The kernel call, after [`check`] passed.
#[allow(clippy::too_many_arguments)]
fn run<T: Real>(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [T],
    dst_rs: usize,
    dst_cs: usize,
    accumulate: bool,
    a: Mat<T>,
    b: Mat<T>,
    threads: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    dst[i * dst_rs + j * dst_cs] = T::ZERO;
                }
            }
        }
        return;
    }
    // SAFETY: `check` passed (every caller runs it first), and dst is
    // exclusively borrowed, so it does not alias a or b.
    unsafe {
        kernel(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_rs,
            dst_cs,
            accumulate,
            a,
            b,
            threads,
        )
    }
}

/// The `gemm` crate's product into `dst`, `m, n, k > 0`.
///
/// # Safety
/// [`check`] passed for these sizes and strides with `dst`'s length;
/// `dst` is valid for writes (and for reads when `accumulate`) of every
/// element the strides reach, and aliases neither `a` nor `b`.
#[allow(clippy::too_many_arguments)]
unsafe fn kernel<T: Real>(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut T,
    dst_rs: usize,
    dst_cs: usize,
    accumulate: bool,
    a: Mat<T>,
    b: Mat<T>,
    threads: usize,
) {
    let parts = column_parts(m, n, k, threads);
    if parts > 1 {
        let step = n.div_ceil(parts);
        // a raw pointer is not `Send`; its address is
        let at = dst as usize;
        (0..n.div_ceil(step)).into_par_iter().for_each(|p| {
            let j0 = p * step;
            let b = Mat {
                data: &b.data[j0 * b.cs..],
                ..b
            };
            // SAFETY: the caller's contract for the whole product holds for
            // its columns `j0 .. j0 + cols`: the same rows of `a`, `b` from
            // its column `j0` (an element `check` found inside it), the
            // destination from its column `j0`; the parts write disjoint
            // columns of it.
            unsafe {
                kernel(
                    m,
                    step.min(n - j0),
                    k,
                    (at as *mut T).add(j0 * dst_cs),
                    dst_rs,
                    dst_cs,
                    accumulate,
                    a,
                    b,
                    1,
                )
            }
        });
        return;
    }
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the caller's contract: `check` passed (with overflow-checked
    // arithmetic, the last element each operand reaches lies inside its
    // slice, every stride fits `isize`, the destination strides do not
    // overlap), and dst is writable there and aliases neither operand.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            dst_cs as isize,
            dst_rs as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            T::ONE,
            T::ONE,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// Columns per part below which a product is not cut into column blocks.
const MIN_PART_COLUMNS: usize = 16;

/// Multiply-adds below which a product is not cut into column blocks.
const MIN_PART_WORK: usize = 1 << 18;

/// Into how many blocks of columns, one per thread, a product of
/// `m × k` by `k × n` is cut (1: not cut). Each block is a product of its
/// own on one thread, with the bits of the whole (`gemm` chooses its
/// depth blocking from `k` alone, so every element is summed in the same
/// order). `gemm`'s own threads split a batch's linear layer poorly:
/// 64 × 4096 by 4096 × 256 (cifarcnn's first linear layer) took 2.1 ms
/// with two of them and 1.6 ms with one; two column blocks took 0.95 ms.
///
/// `gemm` takes other paths, with another depth blocking and so other
/// bits, for products of at most 64 × 64 and of at most 256 elements: the
/// blocks are made no narrower than keeps them on the whole product's path.
fn column_parts(m: usize, n: usize, k: usize, threads: usize) -> usize {
    let work = m.saturating_mul(n).saturating_mul(k);
    if threads < 2 || work < MIN_PART_WORK {
        return 1;
    }
    let path = |cols: usize| (m <= 64 && cols <= 64, m.saturating_mul(cols) <= 256);
    let mut parts = threads.min(n / MIN_PART_COLUMNS).max(1);
    while parts > 1 {
        let step = n.div_ceil(parts);
        let last = n - (n.div_ceil(step) - 1) * step;
        if path(last.min(step)) == path(n) {
            break;
        }
        parts -= 1;
    }
    parts
}

/// Threads the CPU kernels use (rayon's pool, which Candle shares).
pub fn num_threads() -> usize {
    rayon::current_num_threads()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uninitialised_destination_gets_the_same_product() {
        // a = [[1,2,3],[4,5,6]] (2×3) times aᵀ, into a Vec's spare capacity
        let a = [1.0f32, 2., 3., 4., 5., 6.];
        let mut want = [0f32; 4];
        gemm(
            2,
            2,
            3,
            &mut want,
            false,
            Mat::rows(&a, 3),
            Mat::transposed(&a, 3),
            1,
        );
        assert_eq!(want, [14., 32., 32., 77.]);
        for threads in [1, 2] {
            let mut got: Vec<f32> = Vec::with_capacity(4);
            let spare = &mut got.spare_capacity_mut()[..4];
            gemm_uninit(
                2,
                2,
                3,
                spare,
                Mat::rows(&a, 3),
                Mat::transposed(&a, 3),
                threads,
            );
            // SAFETY: gemm_uninit wrote all four
            unsafe { got.set_len(4) };
            assert_eq!(got, want);
        }
        // k = 0: the empty sum, written as zeros
        let mut empty: Vec<f32> = Vec::with_capacity(6);
        gemm_uninit(
            2,
            3,
            0,
            &mut empty.spare_capacity_mut()[..6],
            Mat::rows(&a[..0], 0),
            Mat::rows(&a[..0], 3),
            1,
        );
        // SAFETY: gemm_uninit wrote all six
        unsafe { empty.set_len(6) };
        assert_eq!(empty, [0.0; 6]);
    }

    #[test]
    #[should_panic(expected = "exactly m·n elements")]
    fn an_uninitialised_destination_of_the_wrong_size_is_refused() {
        let a = [1.0f32; 4];
        let mut v: Vec<f32> = Vec::with_capacity(8);
        gemm_uninit(
            2,
            2,
            2,
            &mut v.spare_capacity_mut()[..3],
            Mat::rows(&a, 2),
            Mat::rows(&a, 2),
            1,
        );
    }

    #[test]
    fn products_with_transposed_operands() {
        // a = [[1,2,3],[4,5,6]] (2×3), b = [[1,0],[0,1],[1,1]] (3×2)
        let a = [1.0f64, 2., 3., 4., 5., 6.];
        let b = [1.0f64, 0., 0., 1., 1., 1.];
        let mut c = [0.0f64; 4];
        gemm(
            2,
            2,
            3,
            &mut c,
            false,
            Mat::rows(&a, 3),
            Mat::rows(&b, 2),
            1,
        );
        assert_eq!(c, [4., 5., 10., 11.]);
        gemm(2, 2, 3, &mut c, true, Mat::rows(&a, 3), Mat::rows(&b, 2), 2);
        assert_eq!(c, [8., 10., 20., 22.]);
        // aᵀ·a (3×3) with a read transposed.
        let mut d = [0.0f64; 9];
        gemm(
            3,
            3,
            2,
            &mut d,
            false,
            Mat::transposed(&a, 3),
            Mat::rows(&a, 3),
            1,
        );
        assert_eq!(d, [17., 22., 27., 22., 29., 36., 27., 36., 45.]);
        // a·b written transposed: e[j][i] = (a·b)[i][j]
        let mut e = [0.0f64; 4];
        gemm_strided(
            2,
            2,
            3,
            &mut e,
            1,
            2,
            false,
            Mat::rows(&a, 3),
            Mat::rows(&b, 2),
            1,
        );
        assert_eq!(e, [4., 10., 5., 11.]);
        // a column block of a wider matrix
        let mut f = [-1.0f64; 6];
        gemm_rows(
            2,
            2,
            3,
            &mut f[1..],
            3,
            false,
            Mat::rows(&a, 3),
            Mat::rows(&b, 2),
            1,
        );
        assert_eq!(f, [-1., 4., 5., -1., 10., 11.]);
    }

    /// Products cut into column blocks, one per thread, have the bits of
    /// the whole product on one thread: the linear layers of the course at
    /// batch 64 (forward, input and weight gradients), a ragged cut, a
    /// transposed destination and an accumulating one.
    #[test]
    fn column_blocks_give_the_bits_of_one_thread() -> crate::TestResult {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build()?;
        let value = |i: usize| ((i * 7919 % 1999) as f32 - 999.0) / 997.0;
        // (m, n, k, b transposed, destination transposed, accumulate)
        let cases = [
            (64, 256, 4096, true, false, true),
            (64, 4096, 256, false, false, false),
            (256, 4096, 64, false, true, false),
            (64, 512, 784, true, false, true),
            (37, 301, 300, false, false, false),
            (64, 1568, 128, false, false, false),
            (128, 1568, 64, false, true, false),
        ];
        for (m, n, k, bt, dt, acc) in cases {
            assert!(column_parts(m, n, k, 3) > 1, "{m}×{n}×{k} is cut");
            let a: Vec<f32> = (0..m * k).map(value).collect();
            let b: Vec<f32> = (0..k * n).map(|i| value(i + 5)).collect();
            let bm = if bt {
                Mat::transposed(&b, k)
            } else {
                Mat::rows(&b, n)
            };
            let (rs, cs) = if dt { (1, m) } else { (n, 1) };
            let start: Vec<f32> = (0..m * n).map(|i| value(i + 11)).collect();
            let (mut one, mut cut) = (start.clone(), start);
            gemm_strided(m, n, k, &mut one, rs, cs, acc, Mat::rows(&a, k), bm, 1);
            pool.install(|| gemm_strided(m, n, k, &mut cut, rs, cs, acc, Mat::rows(&a, k), bm, 3));
            assert!(
                one.iter()
                    .zip(&cut)
                    .all(|(x, y)| x.to_bits() == y.to_bits()),
                "{m}×{n}×{k}: the column blocks changed the bits"
            );
        }
        // 64 × 128: two blocks of 64 would take gemm's small-product path
        assert_eq!(column_parts(64, 128, 1568, 2), 1);
        assert_eq!(column_parts(64, 130, 1568, 2), 2);
        // too little work or too few columns: not cut
        assert_eq!(column_parts(8, 8, 8, 2), 1);
        assert_eq!(column_parts(4096, 20, 4096, 2), 1);
        assert_eq!(column_parts(64, 256, 4096, 1), 1);
        Ok(())
    }

    /// Issue 17: strides that wrap in release arithmetic are an error from
    /// the public entry, and nothing is read or written.
    #[test]
    fn matmul_refuses_strides_that_overflow_or_reach_outside() -> crate::TestResult {
        let one = [1.0f64];
        let b = [1.0f64, 2., 3., 4.];
        let mut c = [7.0f64; 4];
        let far = Mat {
            data: &one[..],
            rs: usize::MAX,
            cs: 1,
        };
        let e = matmul(2, 2, 2, &mut c, 2, 1, false, far, Mat::rows(&b, 2), 1)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ops::gemm::matmul") && e.contains("lhs") && e.contains("overflows"),
            "{e}"
        );
        // wraps to a small offset in unchecked arithmetic: 2·(usize::MAX/2+1) = 0
        let wrap = Mat {
            data: &b[..],
            rs: usize::MAX / 2 + 1,
            cs: 1,
        };
        let e = matmul(
            3,
            2,
            2,
            &mut [0.0f64; 6],
            2,
            1,
            false,
            wrap,
            Mat::rows(&b, 2),
            1,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("lhs"), "{e}");
        let e = matmul(
            2,
            2,
            2,
            &mut c,
            usize::MAX,
            1,
            false,
            Mat::rows(&b, 2),
            Mat::rows(&b, 2),
            1,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("destination"), "{e}");
        let e = matmul(
            2,
            2,
            2,
            &mut c,
            1,
            1,
            false,
            Mat::rows(&b, 2),
            Mat::rows(&b, 2),
            1,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("overlap"), "{e}");
        let e = matmul(
            2,
            2,
            2,
            &mut c[..3],
            2,
            1,
            false,
            Mat::rows(&b, 2),
            Mat::rows(&b, 2),
            1,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("reaches element 3, expected < 3"), "{e}");
        let far_b = Mat {
            data: &b[..],
            rs: 2,
            cs: usize::MAX,
        };
        let e = matmul(2, 2, 2, &mut c, 2, 1, false, Mat::rows(&b, 2), far_b, 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("rhs"), "{e}");
        assert_eq!(c, [7.0; 4], "nothing written on an error");
        matmul(
            2,
            2,
            2,
            &mut c,
            2,
            1,
            false,
            Mat::rows(&b, 2),
            Mat::rows(&b, 2),
            1,
        )?;
        assert_eq!(c, [7., 10., 15., 22.]);
        Ok(())
    }
}
