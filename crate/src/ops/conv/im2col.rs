//! im2col and col2im for one sample: the reshuffles that turn a convolution
//! into a matrix product.
//!
//! `cols[(c·KH + p)·KW + q, i·OW + j] = x[c, i·s + p·d − pad, j·s + q·d − pad]`
//! (0 outside the image), a `K × L` row-major matrix with `K = C·KH·KW`,
//! `L = OH·OW`. col2im is its adjoint: it adds every column entry back onto
//! the pixel it came from.

use crate::float::Real;

/// Geometry of a 2-D convolution on one sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub padding: usize,
    pub dilation: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Geometry {
    /// Output size `(H + 2·pad − d·(K−1) − 1) / s + 1`; `None` when the kernel does not fit.
    pub fn new(
        c: usize,
        h: usize,
        w: usize,
        kh: usize,
        kw: usize,
        stride: usize,
        padding: usize,
        dilation: usize,
    ) -> Option<Geometry> {
        // zero channels (an empty kernel row) and sizes whose arithmetic
        // overflows are no geometry: the callers turn None into an error
        if c == 0 || stride == 0 || dilation == 0 || kh == 0 || kw == 0 {
            return None;
        }
        let span_h = dilation.checked_mul(kh - 1)?.checked_add(1)?;
        let span_w = dilation.checked_mul(kw - 1)?.checked_add(1)?;
        let hp = padding.checked_mul(2)?.checked_add(h)?;
        let wp = padding.checked_mul(2)?.checked_add(w)?;
        if hp < span_h || wp < span_w {
            return None;
        }
        // every buffer the kernels index must be addressable
        c.checked_mul(kh)?.checked_mul(kw)?;
        c.checked_mul(hp)?.checked_mul(wp)?;
        let oh = (hp - span_h) / stride + 1;
        let ow = (wp - span_w) / stride + 1;
        oh.checked_mul(ow)?
            .checked_mul(c)?
            .checked_mul(kh)?
            .checked_mul(kw)?;
        Some(Geometry {
            c,
            h,
            w,
            kh,
            kw,
            stride,
            padding,
            dilation,
            oh,
            ow,
        })
    }

    /// `K = C·KH·KW`, rows of the column matrix.
    pub fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// `L = OH·OW`, columns of the column matrix.
    pub fn l(&self) -> usize {
        self.oh * self.ow
    }

    /// A 1×1 kernel, stride 1, no padding: the image already is its column matrix.
    pub fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == 1 && self.padding == 0
    }

    /// Output columns `j` whose input column `j·s + off` lies in `0..W`, for `off = q·d − pad`.
    fn valid_cols(&self, off: isize) -> (usize, usize) {
        let s = self.stride as isize;
        let w = self.w as isize;
        // smallest j with j·s + off ≥ 0
        let lo = if off >= 0 { 0 } else { ((-off) + s - 1) / s };
        // largest j with j·s + off ≤ W − 1, plus one
        let hi = if w - 1 - off < 0 {
            0
        } else {
            (w - 1 - off) / s + 1
        };
        (
            lo.clamp(0, self.ow as isize) as usize,
            hi.clamp(0, self.ow as isize) as usize,
        )
    }
}

/// Fills `cols` (`K × L`) from the image `x` (`C × H × W`) (the ops use
/// [`im2col_rows`]; this whole-sample form is the tests' reference).
#[cfg(test)]
pub fn im2col<T: Real>(g: &Geometry, x: &[T], cols: &mut [T]) {
    im2col_rows(g, x, 0..g.oh, cols)
}

/// The columns of output rows `rows` only: `cols` is `K × T` with
/// `T = rows.len()·OW` (a tile that stays in cache for the product).
pub fn im2col_rows<T: Real>(g: &Geometry, x: &[T], rows: std::ops::Range<usize>, cols: &mut [T]) {
    let (ow, i0) = (g.ow, rows.start);
    let l = rows.len() * ow;
    for c in 0..g.c {
        let plane = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
        for p in 0..g.kh {
            for q in 0..g.kw {
                let row = ((c * g.kh + p) * g.kw + q) * l;
                let off_x = (q * g.dilation) as isize - g.padding as isize;
                let (j0, j1) = g.valid_cols(off_x);
                for i in rows.clone() {
                    let dst = &mut cols[row + (i - i0) * ow..row + (i - i0 + 1) * ow];
                    let iy = (i * g.stride + p * g.dilation) as isize - g.padding as isize;
                    if iy < 0 || iy >= g.h as isize || j0 >= j1 {
                        dst.fill(T::ZERO);
                        continue;
                    }
                    let src = &plane[iy as usize * g.w..(iy as usize + 1) * g.w];
                    dst[..j0].fill(T::ZERO);
                    dst[j1..].fill(T::ZERO);
                    let start = (j0 as isize * g.stride as isize + off_x) as usize;
                    if g.stride == 1 {
                        dst[j0..j1].copy_from_slice(&src[start..start + (j1 - j0)]);
                    } else {
                        for (k, d) in dst[j0..j1].iter_mut().enumerate() {
                            *d = src[start + k * g.stride];
                        }
                    }
                }
            }
        }
    }
}

/// Sums the column matrix `cols` (`K × L`) back into the image `x` (`C × H × W`),
/// overwriting it (the adjoint of [`im2col`]; the ops use
/// [`col2im_add_rows`], this whole-sample form is the tests').
#[cfg(test)]
pub fn col2im<T: Real>(g: &Geometry, cols: &[T], x: &mut [T]) {
    // zeroed by a write before the adds (a read of fresh memory maps the zero
    // page, and each later write then copies it)
    x[..g.c * g.h * g.w].fill(T::ZERO);
    col2im_add_rows(g, cols, 0..g.oh, x)
}

/// Adds the `K × T` columns of output rows `rows` (`T = rows.len()·OW`)
/// onto the image `x`, which it does not clear.
pub fn col2im_add_rows<T: Real>(
    g: &Geometry,
    cols: &[T],
    rows: std::ops::Range<usize>,
    x: &mut [T],
) {
    let (ow, i0) = (g.ow, rows.start);
    let l = rows.len() * ow;
    for c in 0..g.c {
        let plane = &mut x[c * g.h * g.w..(c + 1) * g.h * g.w];
        for p in 0..g.kh {
            for q in 0..g.kw {
                let row = ((c * g.kh + p) * g.kw + q) * l;
                let off_x = (q * g.dilation) as isize - g.padding as isize;
                let (j0, j1) = g.valid_cols(off_x);
                if j0 >= j1 {
                    continue;
                }
                for i in rows.clone() {
                    let iy = (i * g.stride + p * g.dilation) as isize - g.padding as isize;
                    if iy < 0 || iy >= g.h as isize {
                        continue;
                    }
                    let at = row + (i - i0) * ow;
                    let src = &cols[at + j0..at + j1];
                    let dst = &mut plane[iy as usize * g.w..(iy as usize + 1) * g.w];
                    let start = (j0 as isize * g.stride as isize + off_x) as usize;
                    if g.stride == 1 {
                        for (d, &s) in dst[start..start + (j1 - j0)].iter_mut().zip(src) {
                            *d += s;
                        }
                    } else {
                        for (k, &s) in src.iter().enumerate() {
                            dst[start + k * g.stride] += s;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Straight from the definition, for comparison.
    fn naive_im2col(g: &Geometry, x: &[f64]) -> Vec<f64> {
        let mut cols = vec![0.0; g.k() * g.l()];
        for c in 0..g.c {
            for p in 0..g.kh {
                for q in 0..g.kw {
                    for i in 0..g.oh {
                        for j in 0..g.ow {
                            let y = (i * g.stride + p * g.dilation) as isize - g.padding as isize;
                            let xx = (j * g.stride + q * g.dilation) as isize - g.padding as isize;
                            let v =
                                if y >= 0 && xx >= 0 && (y as usize) < g.h && (xx as usize) < g.w {
                                    x[(c * g.h + y as usize) * g.w + xx as usize]
                                } else {
                                    0.0
                                };
                            cols[((c * g.kh + p) * g.kw + q) * g.l() + i * g.ow + j] = v;
                        }
                    }
                }
            }
        }
        cols
    }

    #[test]
    fn matches_the_definition_and_col2im_is_the_adjoint() -> crate::TestResult {
        let cases = [
            (2, 5, 7, 3, 3, 1, 1, 1),
            (1, 6, 6, 3, 3, 2, 1, 1),
            (3, 7, 5, 2, 3, 2, 0, 1),
            (2, 9, 8, 3, 3, 1, 2, 2),
            (1, 4, 4, 1, 1, 1, 0, 1),
            (2, 11, 10, 7, 7, 2, 3, 1),
            (1, 5, 5, 5, 5, 3, 2, 1),
        ];
        for (c, h, w, kh, kw, s, pad, d) in cases {
            let g = Geometry::new(c, h, w, kh, kw, s, pad, d)
                .ok_or("None from Geometry::new(c, h, w, kh, kw, s, pad, d)")?;
            let x: Vec<f64> = (0..c * h * w)
                .map(|i| ((i * 37 % 101) as f64) / 10.0 - 3.0)
                .collect();
            let mut cols = vec![f64::NAN; g.k() * g.l()];
            im2col(&g, &x, &mut cols);
            assert_eq!(cols, naive_im2col(&g, &x), "{g:?}");
            // <im2col(x), r> == <x, col2im(r)> for any r
            let r: Vec<f64> = (0..cols.len())
                .map(|i| ((i * 13 % 17) as f64) - 8.0)
                .collect();
            let mut back = vec![f64::NAN; x.len()]; // overwritten, not added to
            col2im(&g, &r, &mut back);
            let lhs: f64 = cols.iter().zip(&r).map(|(a, b)| a * b).sum();
            let rhs: f64 = x.iter().zip(&back).map(|(a, b)| a * b).sum();
            assert!((lhs - rhs).abs() < 1e-9, "{g:?}: {lhs} vs {rhs}");
        }
        Ok(())
    }

    #[test]
    fn row_tiles_equal_the_whole_matrix() -> crate::TestResult {
        for (c, h, w, k, s, pad) in [(2, 9, 7, 3, 1, 1), (3, 11, 10, 4, 2, 0), (1, 6, 6, 1, 1, 0)] {
            let g = Geometry::new(c, h, w, k, k, s, pad, 1)
                .ok_or("None from Geometry::new(c, h, w, k, k, s, pad, 1)")?;
            let x: Vec<f64> = (0..c * h * w)
                .map(|i| ((i * 29 % 97) as f64) - 40.0)
                .collect();
            let mut whole = vec![0.0; g.k() * g.l()];
            im2col(&g, &x, &mut whole);
            let mut back_whole = vec![0.0; x.len()];
            col2im(&g, &whole, &mut back_whole);
            let mut back_tiles = vec![0.0; x.len()];
            for i0 in (0..g.oh).step_by(2) {
                let rows = i0..(i0 + 2).min(g.oh);
                let t = rows.len() * g.ow;
                let mut tile = vec![f64::NAN; g.k() * t];
                im2col_rows(&g, &x, rows.clone(), &mut tile);
                for r in 0..g.k() {
                    assert_eq!(
                        &tile[r * t..(r + 1) * t],
                        &whole[r * g.l() + i0 * g.ow..r * g.l() + i0 * g.ow + t]
                    );
                }
                col2im_add_rows(&g, &tile, rows, &mut back_tiles);
            }
            assert_eq!(back_tiles, back_whole, "{g:?}");
        }
        Ok(())
    }

    #[test]
    fn kernel_larger_than_the_padded_image_has_no_geometry() {
        assert!(Geometry::new(1, 2, 2, 3, 3, 1, 0, 1).is_none());
        assert!(Geometry::new(1, 2, 2, 3, 3, 1, 1, 1).is_some());
    }
}
