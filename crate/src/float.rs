//! [`Real`]: `f32` or `f64`, the element type every CPU kernel of the crate
//! is written for once: the custom ops of [`crate::ops`] (convolution,
//! pooling, linear, batch norm, the matrix product) and the fused optimizer
//! steps of [`crate::train::optim`].

use candle_core::CpuStorage;
use std::ops::{Add, AddAssign, Div, Mul, Neg, Sub};

/// `f32` or `f64`: what the CPU kernels are written for.
pub trait Real:
    Copy
    + Send
    + Sync
    + 'static
    + PartialOrd
    + Add<Output = Self>
    + AddAssign
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + std::fmt::Debug
{
    const ZERO: Self;
    const ONE: Self;
    /// `v as Self`.
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    /// The CPU storage holding `v`.
    fn storage(v: Vec<Self>) -> CpuStorage;
    /// The elements of `s` when it holds this type.
    fn slice(s: &CpuStorage) -> Option<&[Self]>;
    /// NaN compares as larger than anything (torch's max pooling propagates NaN).
    fn is_nan(self) -> bool;
    fn sqrt(self) -> Self;
    /// torch's `lerp(start, end, w)`: `start + w·(end − start)` for `w < ½`,
    /// else `end − (end − start)·(1 − w)`.
    #[inline]
    fn lerp(self, end: Self, w: Self, one: Self) -> Self {
        if w < Self::from_f64(0.5) {
            self + w * (end - self)
        } else {
            end - (end - self) * (one - w)
        }
    }
    /// `other` when it is larger, else `self` (so a NaN `other` loses).
    #[inline]
    fn max(self, other: Self) -> Self {
        if other > self {
            other
        } else {
            self
        }
    }
}

impl Real for f32 {
    const ZERO: f32 = 0.0;
    const ONE: f32 = 1.0;
    #[inline]
    fn from_f64(v: f64) -> f32 {
        v as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
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
    #[inline]
    fn sqrt(self) -> f32 {
        f32::sqrt(self)
    }
}

impl Real for f64 {
    const ZERO: f64 = 0.0;
    const ONE: f64 = 1.0;
    #[inline]
    fn from_f64(v: f64) -> f64 {
        v
    }
    fn to_f64(self) -> f64 {
        self
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
    #[inline]
    fn sqrt(self) -> f64 {
        f64::sqrt(self)
    }
}
