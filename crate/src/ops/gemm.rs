//! Matrix product on raw slices, the kernel under the fast convolution:
//! `C (+)= A · B` with `A` m×k, `B` k×n, `C` m×n, each given by its row and
//! column strides (so a transposed operand costs nothing). Calls the `gemm`
//! crate, the same kernels Candle's CPU matmul uses.
//!
//! [`Real`] is the element type: `f32` or `f64`.

use candle_core::CpuStorage;

/// `f32` or `f64`: what the CPU kernels of this module are written for.
pub trait Real:
    Copy
    + Send
    + Sync
    + 'static
    + PartialOrd
    + std::ops::Add<Output = Self>
    + std::ops::AddAssign
    + std::ops::Mul<Output = Self>
    + std::fmt::Debug
{
    const ZERO: Self;
    const ONE: Self;
    fn from_f64(v: f64) -> Self;
    fn storage(v: Vec<Self>) -> CpuStorage;
    fn slice(s: &CpuStorage) -> Option<&[Self]>;
    /// NaN compares as larger than anything (torch's max pooling propagates NaN).
    fn is_nan(self) -> bool;
}

impl Real for f32 {
    const ZERO: f32 = 0.0;
    const ONE: f32 = 1.0;
    fn from_f64(v: f64) -> f32 {
        v as f32
    }
    fn storage(v: Vec<f32>) -> CpuStorage {
        CpuStorage::F32(v)
    }
    fn slice(s: &CpuStorage) -> Option<&[f32]> {
        match s {
            CpuStorage::F32(v) => Some(v),
            _ => None,
        }
    }
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
}

impl Real for f64 {
    const ZERO: f64 = 0.0;
    const ONE: f64 = 1.0;
    fn from_f64(v: f64) -> f64 {
        v
    }
    fn storage(v: Vec<f64>) -> CpuStorage {
        CpuStorage::F64(v)
    }
    fn slice(s: &CpuStorage) -> Option<&[f64]> {
        match s {
            CpuStorage::F64(v) => Some(v),
            _ => None,
        }
    }
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
}

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
#[allow(clippy::too_many_arguments)]
pub fn gemm<T: Real>(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [T],
    accumulate: bool,
    a: Mat<T>,
    b: Mat<T>,
    threads: usize,
) {
    assert!(dst.len() >= m * n, "gemm: destination too small");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(T::ZERO);
        }
        return;
    }
    // The last elements each operand reaches must lie inside its slice.
    assert!(
        a.data.len() > (m - 1) * a.rs + (k - 1) * a.cs,
        "gemm: lhs too small"
    );
    assert!(
        b.data.len() > (k - 1) * b.rs + (n - 1) * b.cs,
        "gemm: rhs too small"
    );
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above keep every access inside the slices; dst is
    // exclusively borrowed and does not alias a or b.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
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

/// Threads the CPU kernels use (rayon's pool, which Candle shares).
pub fn num_threads() -> usize {
    rayon::current_num_threads()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
