//! Where every custom op of [`crate::ops`] meets Candle's CPU storage,
//! written once (candle-core's own `map_dtype!` / `cpu_storage_as_slice`):
//!
//! - [`operand`]: one operand of `cpu_fwd` as a contiguous `&[T]`, or an
//!   error naming the op and the operand;
//! - [`float_dispatch!`]: `match` on the first operand's dtype, the body run
//!   with `T = f32` or `T = f64`; any other dtype is the error
//!   `"<op>: dtype <D> is not supported, use f32 or f64"`.
//!
//! ```text
//! let out = float_dispatch!("relu", s, |T| {
//!     T::storage(forward::<T>(operand(s, l, "relu", "input")?))
//! });
//! ```
//!
//! An op whose f32 path differs (the direct convolution kernels) spells the
//! two arms out: `float_dispatch!(op, s, f32 => …, f64 => …)`.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, DType, Layout};

use crate::float::Real;

/// The elements of a contiguous CPU operand of a custom op, or an error
/// naming the op and the operand (`what`) when it has another dtype or is
/// not contiguous.
pub(crate) fn operand<'a, T: Real>(
    s: &'a CpuStorage,
    l: &Layout,
    op: &str,
    what: &str,
) -> candle_core::Result<&'a [T]> {
    let v = T::slice(s).ok_or_else(|| {
        candle_core::Error::Msg(format!(
            "{op}: {what} has dtype {:?}, expected f32 or f64 like the other operands",
            s.dtype()
        ))
    })?;
    let (a, b) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg(format!("{op}: {what} is not contiguous")))?;
    Ok(&v[a..b])
}

/// The error of [`float_dispatch!`] for a dtype other than f32 and f64.
pub(crate) fn unsupported(op: &str, dtype: DType) -> candle_core::Error {
    candle_core::Error::Msg(format!(
        "{op}: dtype {dtype:?} is not supported, use f32 or f64"
    ))
    .bt()
}

/// `float_dispatch!(op, storage, |T| body)`: `body` with `T` the float type
/// of `storage` (f32 or f64); `f32 => a, f64 => b` gives each its own
/// expression. Any other dtype returns [`unsupported`]`(op, dtype)` from the
/// enclosing function (a `candle_core::Result`).
macro_rules! float_dispatch {
    ($op:expr, $s:expr, |$T:ident| $body:expr) => {
        $crate::ops::storage::float_dispatch!(
            $op,
            $s,
            f32 => {
                type $T = f32;
                $body
            },
            f64 => {
                type $T = f64;
                $body
            }
        )
    };
    ($op:expr, $s:expr, f32 => $f32:expr, f64 => $f64:expr $(,)?) => {
        match $s {
            candle_core::CpuStorage::F32(_) => $f32,
            candle_core::CpuStorage::F64(_) => $f64,
            other => {
                return Err($crate::ops::storage::unsupported(
                    $op,
                    candle_core::backend::BackendStorage::dtype(other),
                ))
            }
        }
    };
}
pub(crate) use float_dispatch;
