//! Fully connected layer `y = x·Wᵀ + b` (torch's `[out, in]` weight) or
//! `y = x·W + b` (hw2's `[in, out]`), with its own backward:
//!
//! ```text
//! dx = dy·W  (or dy·Wᵀ)      dW = dyᵀ·x  (or xᵀ·dy)      db = Σ_rows dy
//! ```
//!
//! each one matrix product on the stored layout (no transposed copies), the
//! bias added in the product's own pass. Through Candle's ops the same layer
//! is a matmul of a transposed view, a broadcast add, and in backward a
//! strided reduction for the bias plus a gradient add in the transposed
//! layout. `x` may have leading dimensions (`[..., in]`). On CUDA, Candle's
//! matmul is used.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use nnlab::ops::{linear, LinearLayout};
//! let x = Tensor::new(&[[1f32, 2.]], &Device::Cpu).unwrap();
//! let w = Tensor::new(&[[1f32, 0.], [1., 1.], [0., 2.]], &Device::Cpu).unwrap(); // [out 3, in 2]
//! let b = Tensor::new(&[0.5f32, 0., -1.], &Device::Cpu).unwrap();
//! let y = linear(&x, &w, Some(&b), LinearLayout::OutIn).unwrap();
//! assert_eq!(y.to_vec2::<f32>().unwrap(), [[1.5, 3., 3.]]);
//! ```

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use super::bias_op::{apply, impl_bias_op, BiasOp};
use super::gemm::{gemm, gemm_uninit, num_threads, Mat};
use super::reduce::channel_sum;
use super::relu::{relu_grad, relu_in_place};
use super::storage::{float_dispatch, operand};
use crate::float::Real;
use crate::{Error, Result};

/// How a linear layer stores its weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinearLayout {
    /// torch's `nn.Linear`: `weight: [out, in]`, `bias: [out]`.
    OutIn,
    /// hw2's `FullyConnectedLayer`: `W: [in, out]`, `b: [out]`, `y = x·W + b`.
    InOut,
}

/// `x: [..., in]`, `w: [out, in]` (`OutIn`) or `[in, out]` (`InOut`),
/// `b: [out]` → `[..., out]`.
pub fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>, layout: LinearLayout) -> Result<Tensor> {
    linear_then(x, w, b, layout, false)
}

/// `relu(linear(x, w, b))` as one op (the ReLU applied in the output's own
/// pass, backward masks `dy` once), as [`crate::ops::conv2d_relu`].
pub fn linear_relu(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    layout: LinearLayout,
) -> Result<Tensor> {
    linear_then(x, w, b, layout, true)
}

fn linear_then(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    layout: LinearLayout,
    relu: bool,
) -> Result<Tensor> {
    let (wr, wc) = w.dims2().map_err(|_| {
        Error::shape(
            "linear",
            format!("weight of shape {:?}: expected a matrix", w.dims()),
        )
    })?;
    let (inp, out) = match layout {
        LinearLayout::OutIn => (wc, wr),
        LinearLayout::InOut => (wr, wc),
    };
    let dims = x.dims();
    if dims.last() != Some(&inp) {
        return Err(Error::shape(
            "linear",
            format!(
                "input of shape {dims:?}: expected [..., {inp}] for a weight of shape {:?}",
                w.dims()
            ),
        ));
    }
    if let Some(b) = b {
        if b.dims() != [out] {
            return Err(Error::shape(
                "linear",
                format!("bias of shape {:?}: expected [{out}]", b.dims()),
            ));
        }
    }
    if !x.device().is_cpu() {
        let y = match layout {
            LinearLayout::OutIn => x.broadcast_matmul(&w.t()?)?,
            LinearLayout::InOut => x.broadcast_matmul(w)?,
        };
        let y = match b {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        };
        return Ok(if relu { y.relu()? } else { y });
    }
    let rows = dims[..dims.len() - 1].iter().product::<usize>();
    let mut out_dims = dims.to_vec();
    *out_dims.last_mut().unwrap() = out;
    let x2 = x.reshape((rows, inp))?.contiguous()?;
    let w = w.contiguous()?;
    let op = Linear {
        rows,
        inp,
        out,
        layout,
        relu,
    };
    let y = apply(&x2, &w, b, op)?;
    Ok(y.reshape(out_dims)?)
}

/// `(x [rows, in], w) → y [rows, out]`, or `(x, w, b) → y`.
#[derive(Clone, Copy, Debug)]
struct Linear {
    rows: usize,
    inp: usize,
    out: usize,
    layout: LinearLayout,
    /// `y = relu(x·W + b)`: see [`linear_relu`]
    relu: bool,
}

/// `W` as the `in × out` operand of `y = x·W`.
fn w_in_out<'a, T>(w: &'a [T], l: &Linear) -> Mat<'a, T> {
    match l.layout {
        LinearLayout::OutIn => Mat::transposed(w, l.inp),
        LinearLayout::InOut => Mat::rows(w, l.out),
    }
}

/// `W` as the `out × in` operand of `dx = dy·Wᵀ`.
fn w_out_in<'a, T>(w: &'a [T], l: &Linear) -> Mat<'a, T> {
    match l.layout {
        LinearLayout::OutIn => Mat::rows(w, l.inp),
        LinearLayout::InOut => Mat::transposed(w, l.out),
    }
}

/// The op's name in operand errors.
const OP: &str = "linear";

impl Linear {
    fn run<T: Real>(&self, x: &[T], w: &[T], b: Option<&[T]>) -> Vec<T> {
        let len = self.rows * self.out;
        let mut y = Vec::with_capacity(len);
        let (x, w) = (Mat::rows(x, self.inp), w_in_out(w, self));
        if let Some(b) = b {
            // every row starts as the bias, the product is added to it
            for _ in 0..self.rows {
                y.extend_from_slice(b);
            }
            gemm(
                self.rows,
                self.out,
                self.inp,
                &mut y,
                true,
                x,
                w,
                num_threads(),
            );
        } else {
            let spare = &mut y.spare_capacity_mut()[..len];
            gemm_uninit(self.rows, self.out, self.inp, spare, x, w, num_threads());
            // SAFETY: `gemm_uninit` wrote all `len` elements
            unsafe { y.set_len(len) };
        }
        if self.relu {
            relu_in_place(&mut y);
        }
        y
    }

    fn dispatch(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        b: Option<(&CpuStorage, &Layout)>,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let shape = Shape::from((self.rows, self.out));
        let out = float_dispatch!("linear", s1, |T| {
            let b = match b {
                Some((s, l)) => Some(operand::<T>(s, l, OP, "bias")?),
                None => None,
            };
            T::storage(self.run::<T>(
                operand(s1, l1, OP, "input")?,
                operand(s2, l2, OP, "weight")?,
                b,
            ))
        });
        Ok((out, shape))
    }

    /// `(dx, dW, dy)`, `dy` masked by `y > 0` when the op includes the ReLU.
    fn backward(
        &self,
        x: &Tensor,
        w: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Tensor)> {
        let dy = if self.relu {
            relu_grad(y, dy)?
        } else {
            dy.contiguous()?
        };
        let dx = if x.track_op() {
            Some(dy.apply_op2_no_bwd(
                w,
                &LinearGrad {
                    op: *self,
                    wrt: Wrt::Input,
                },
            )?)
        } else {
            None
        };
        let dw = if w.track_op() {
            Some(x.apply_op2_no_bwd(
                &dy,
                &LinearGrad {
                    op: *self,
                    wrt: Wrt::Weight,
                },
            )?)
        } else {
            None
        };
        Ok((dx, dw, dy))
    }
}

impl BiasOp for Linear {
    fn cpu_forward(
        &self,
        (s1, l1): (&CpuStorage, &Layout),
        (s2, l2): (&CpuStorage, &Layout),
        b: Option<(&CpuStorage, &Layout)>,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.dispatch(s1, l1, s2, l2, b)
    }

    fn gradients(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: Option<&Tensor>,
        y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, dy) = self.backward(x, w, y, dy)?;
        let db = match b {
            Some(b) if b.track_op() => Some(channel_sum(&dy, self.rows, self.out, 1)?),
            _ => None,
        };
        Ok((dx, dw, db))
    }
}

impl_bias_op!(Linear, "nnlab-linear", "nnlab-linear-bias");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wrt {
    /// `(dy, w) → dx`
    Input,
    /// `(x, dy) → dW`
    Weight,
}

/// One gradient of [`Linear`], without a backward of its own.
#[derive(Clone, Copy, Debug)]
struct LinearGrad {
    op: Linear,
    wrt: Wrt,
}

impl LinearGrad {
    fn run<T: Real>(&self, a: &[T], b: &[T]) -> Vec<T> {
        let l = &self.op;
        let t = num_threads();
        match self.wrt {
            Wrt::Input => {
                let len = l.rows * l.inp;
                let mut dx = Vec::with_capacity(len);
                gemm_uninit(
                    l.rows,
                    l.inp,
                    l.out,
                    &mut dx.spare_capacity_mut()[..len],
                    Mat::rows(a, l.out),
                    w_out_in(b, l),
                    t,
                );
                // SAFETY: `gemm_uninit` wrote all `len` elements
                unsafe { dx.set_len(len) };
                dx
            }
            Wrt::Weight => {
                let (x, dy) = (a, b);
                let len = l.inp * l.out;
                let mut dw = Vec::with_capacity(len);
                let spare = &mut dw.spare_capacity_mut()[..len];
                match l.layout {
                    LinearLayout::OutIn => gemm_uninit(
                        l.out,
                        l.inp,
                        l.rows,
                        spare,
                        Mat::transposed(dy, l.out),
                        Mat::rows(x, l.inp),
                        t,
                    ),
                    LinearLayout::InOut => gemm_uninit(
                        l.inp,
                        l.out,
                        l.rows,
                        spare,
                        Mat::transposed(x, l.inp),
                        Mat::rows(dy, l.out),
                        t,
                    ),
                }
                // SAFETY: `gemm_uninit` wrote all `len` elements
                unsafe { dw.set_len(len) };
                dw
            }
        }
    }
}

impl CustomOp2 for LinearGrad {
    fn name(&self) -> &'static str {
        match self.wrt {
            Wrt::Input => "nnlab-linear-grad-input",
            Wrt::Weight => "nnlab-linear-grad-weight",
        }
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let l = &self.op;
        let (names, shape) = match self.wrt {
            Wrt::Input => (["output gradient", "weight"], Shape::from((l.rows, l.inp))),
            Wrt::Weight => (
                ["input", "output gradient"],
                match l.layout {
                    LinearLayout::OutIn => Shape::from((l.out, l.inp)),
                    LinearLayout::InOut => Shape::from((l.inp, l.out)),
                },
            ),
        };
        let out = float_dispatch!("linear backward", s1, |T| T::storage(self.run::<T>(
            operand(s1, l1, OP, names[0])?,
            operand(s2, l2, OP, names[1])?
        )));
        Ok((out, shape))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_util::{max_diff, rand};
    use candle_core::Var;

    /// Candle's own ops: the reference.
    fn reference(x: &Tensor, w: &Tensor, b: Option<&Tensor>, layout: LinearLayout) -> Tensor {
        let y = match layout {
            LinearLayout::OutIn => x.broadcast_matmul(&w.t().unwrap()).unwrap(),
            LinearLayout::InOut => x.broadcast_matmul(w).unwrap(),
        };
        match b {
            Some(b) => y.broadcast_add(b).unwrap(),
            None => y,
        }
    }

    #[test]
    fn forward_and_gradients_equal_candles_matmul() -> crate::TestResult {
        // (x shape, in, out, layout, bias)
        let cases: [(Vec<usize>, usize, usize, LinearLayout, bool); 6] = [
            (vec![4, 3], 3, 5, LinearLayout::OutIn, true),
            (vec![1, 7], 7, 1, LinearLayout::OutIn, true),
            (vec![64, 20], 20, 10, LinearLayout::InOut, true),
            (vec![2, 3, 6], 6, 4, LinearLayout::OutIn, true),
            (vec![5, 8], 8, 3, LinearLayout::OutIn, false),
            (vec![9, 4], 4, 6, LinearLayout::InOut, false),
        ];
        for (i, (xs, inp, out, layout, bias)) in cases.into_iter().enumerate() {
            let wshape = match layout {
                LinearLayout::OutIn => [out, inp],
                LinearLayout::InOut => [inp, out],
            };
            let x = Var::from_tensor(&rand(&xs, i as u64))?;
            let w = Var::from_tensor(&rand(&wshape, 10 + i as u64))?;
            let b = Var::from_tensor(&rand(&[out], 20 + i as u64))?;
            let bt = bias.then(|| b.as_tensor());
            let ours = linear(x.as_tensor(), w.as_tensor(), bt, layout)?;
            let theirs = reference(x.as_tensor(), w.as_tensor(), bt, layout);
            assert_eq!(ours.dims(), theirs.dims());
            assert!(max_diff(&ours, &theirs) < 1e-12, "case {i}: forward");
            let r = rand(ours.dims(), 30 + i as u64);
            let g1 = (ours * &r)?.sum_all()?.backward()?;
            let g2 = (theirs * &r)?.sum_all()?.backward()?;
            for (what, v) in [("x", &x), ("w", &w), ("b", &b)] {
                if what == "b" && !bias {
                    assert!(g1.get(v).is_none());
                    continue;
                }
                let d = max_diff(
                    g1.get(v).ok_or("None from g1.get(v)")?,
                    g2.get(v).ok_or("None from g2.get(v)")?,
                );
                assert!(d < 1e-12, "case {i}: d{what} differs by {d}");
            }
        }
        Ok(())
    }

    #[test]
    fn fused_relu_equals_a_separate_relu() -> crate::TestResult {
        for (i, layout) in [LinearLayout::OutIn, LinearLayout::InOut]
            .into_iter()
            .enumerate()
        {
            let x = Var::from_tensor(&rand(&[6, 5], i as u64))?;
            let wshape = if layout == LinearLayout::OutIn {
                [4, 5]
            } else {
                [5, 4]
            };
            let w = Var::from_tensor(&rand(&wshape, 10 + i as u64))?;
            let b = Var::from_tensor(&rand(&[4], 20 + i as u64))?;
            let ours = linear_relu(&x, &w, Some(&b), layout)?;
            let theirs = crate::ops::relu(&linear(&x, &w, Some(&b), layout)?)?;
            assert_eq!(max_diff(&ours, &theirs), 0.0);
            let r = rand(&[6, 4], 30 + i as u64);
            let g1 = (&ours * &r)?.sum_all()?.backward()?;
            let g2 = (&theirs * &r)?.sum_all()?.backward()?;
            for v in [&x, &w, &b] {
                assert!(
                    max_diff(
                        g1.get(v).ok_or("None from g1.get(v)")?,
                        g2.get(v).ok_or("None from g2.get(v)")?
                    ) < 1e-12
                );
            }
        }
        Ok(())
    }

    #[test]
    fn data_inputs_get_no_gradient_and_bad_shapes_are_errors() -> crate::TestResult {
        let x = rand(&[3, 4], 1);
        let w = Var::from_tensor(&rand(&[2, 4], 2))?;
        let y = linear(&x, w.as_tensor(), None, LinearLayout::OutIn)?;
        let g = y.sum_all()?.backward()?;
        assert!(g.get(&x).is_none() && g.get(&w).is_some());
        let e = linear(&rand(&[3, 5], 3), w.as_tensor(), None, LinearLayout::OutIn)
            .unwrap_err()
            .to_string();
        assert!(e.contains("[3, 5]") && e.contains("[..., 4]"), "{e}");
        let e = linear(&x, w.as_tensor(), Some(&rand(&[3], 4)), LinearLayout::OutIn)
            .unwrap_err()
            .to_string();
        assert!(e.contains("bias") && e.contains("[2]"), "{e}");
        Ok(())
    }
}
