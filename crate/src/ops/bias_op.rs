//! An op with an optional bias — linear, conv2d, conv2d + max-pool — is two
//! Candle custom ops: `CustomOp2` on (input, weight) and `CustomOp3` on
//! (input, weight, bias). Both run the same forward and the same backward;
//! the bias gradient exists only in the second. Such an op implements
//! [`BiasOp`] once, and `impl_bias_op!` writes both Candle impls from it;
//! [`apply`] picks the one the call needs.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Tensor};

/// The forward and backward of an op whose bias is optional.
pub(crate) trait BiasOp {
    /// The forward on CPU storage; `b` is the bias operand of the three-input op.
    fn cpu_forward(
        &self,
        x: (&CpuStorage, &Layout),
        w: (&CpuStorage, &Layout),
        b: Option<(&CpuStorage, &Layout)>,
    ) -> candle_core::Result<(CpuStorage, Shape)>;

    /// The gradients of the input, the weight and, when `b` is given, the
    /// bias; `None` for an operand that does not track gradients.
    fn gradients(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: Option<&Tensor>,
        y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)>;
}

/// `x.apply_op3(w, b, op)` with a bias, `x.apply_op2(w, op)` without (the
/// bias made contiguous; `x` and `w` must be already).
pub(crate) fn apply<Op>(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    op: Op,
) -> candle_core::Result<Tensor>
where
    Op: CustomOp2 + CustomOp3 + Send + Sync + 'static,
{
    match b {
        Some(b) => x.apply_op3(w, &b.contiguous()?, op),
        None => x.apply_op2(w, op),
    }
}

/// The weight gradient an op's backward hands Candle: `None` when
/// [`captured_grads`](super::captured_grads) keeps it aside.
pub(crate) fn offered(w: &Tensor, dw: Option<Tensor>) -> candle_core::Result<Option<Tensor>> {
    match dw {
        Some(dw) => super::captured_grads::offer(w, dw),
        None => Ok(None),
    }
}

/// Implements `CustomOp2` (name `$name`) and `CustomOp3` (name `$name_bias`)
/// for a [`BiasOp`] type.
macro_rules! impl_bias_op {
    ($t:ty, $name:literal, $name_bias:literal) => {
        impl candle_core::CustomOp2 for $t {
            fn name(&self) -> &'static str {
                $name
            }

            fn cpu_fwd(
                &self,
                s1: &candle_core::CpuStorage,
                l1: &candle_core::Layout,
                s2: &candle_core::CpuStorage,
                l2: &candle_core::Layout,
            ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
                $crate::ops::bias_op::BiasOp::cpu_forward(self, (s1, l1), (s2, l2), None)
            }

            fn bwd(
                &self,
                x: &candle_core::Tensor,
                w: &candle_core::Tensor,
                y: &candle_core::Tensor,
                dy: &candle_core::Tensor,
            ) -> candle_core::Result<(Option<candle_core::Tensor>, Option<candle_core::Tensor>)>
            {
                let (dx, dw, _) = $crate::ops::bias_op::BiasOp::gradients(self, x, w, None, y, dy)?;
                Ok((dx, $crate::ops::bias_op::offered(w, dw)?))
            }
        }

        impl candle_core::CustomOp3 for $t {
            fn name(&self) -> &'static str {
                $name_bias
            }

            fn cpu_fwd(
                &self,
                s1: &candle_core::CpuStorage,
                l1: &candle_core::Layout,
                s2: &candle_core::CpuStorage,
                l2: &candle_core::Layout,
                s3: &candle_core::CpuStorage,
                l3: &candle_core::Layout,
            ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
                $crate::ops::bias_op::BiasOp::cpu_forward(self, (s1, l1), (s2, l2), Some((s3, l3)))
            }

            #[allow(clippy::type_complexity)]
            fn bwd(
                &self,
                x: &candle_core::Tensor,
                w: &candle_core::Tensor,
                b: &candle_core::Tensor,
                y: &candle_core::Tensor,
                dy: &candle_core::Tensor,
            ) -> candle_core::Result<(
                Option<candle_core::Tensor>,
                Option<candle_core::Tensor>,
                Option<candle_core::Tensor>,
            )> {
                let (dx, dw, db) =
                    $crate::ops::bias_op::BiasOp::gradients(self, x, w, Some(b), y, dy)?;
                Ok((dx, $crate::ops::bias_op::offered(w, dw)?, db))
            }
        }
    };
}
pub(crate) use impl_bias_op;
