//! The SIMD level of nnlab's own kernels (the direct convolutions, the fused
//! max-pool, the fused optimizer step): the widest the CPU has, or a lower
//! one named by `NNLAB_SIMD`, so that a machine with AVX-512 can run what a
//! student's AVX2 laptop runs (`bench/run --simd avx2`).
//!
//! Levels, lowest first: `scalar` (portable code), `avx2` (AVX2 + FMA),
//! `avx512` (AVX-512F). `NNLAB_SIMD` caps the level (`avx2` on an AVX-512
//! machine gives AVX2; `avx512` on an AVX2 machine still gives AVX2); unset,
//! empty or any other value leaves the CPU's own level. Decided once per
//! process. The matrix products (the `gemm` crate) pick their own kernels
//! from the CPU, which `NNLAB_SIMD` does not reach: in f32 AVX-512 ones
//! where the CPU has AVX-512F and the crate's `avx512-gemm` feature (on by
//! default) is built in, AVX2 + FMA otherwise; in f64 AVX2 + FMA.
//! `bench/run --simd avx2` builds without the feature.
//!
//! ```
//! use nnlab::simd::{level, Simd};
//! assert!(level() <= Simd::Avx512);
//! assert_eq!(Simd::parse("avx2"), Some(Simd::Avx2));
//! ```

use std::sync::OnceLock;

/// A SIMD level, ordered from the narrowest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Simd {
    Scalar,
    /// AVX2 with FMA.
    Avx2,
    /// AVX-512F.
    Avx512,
}

impl Simd {
    /// `scalar`, `avx2`, `avx512` (case-insensitive); None for anything else.
    pub fn parse(name: &str) -> Option<Simd> {
        match name.trim().to_ascii_lowercase().as_str() {
            "scalar" | "none" => Some(Simd::Scalar),
            "avx2" => Some(Simd::Avx2),
            "avx512" | "avx512f" => Some(Simd::Avx512),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Simd::Scalar => "scalar",
            Simd::Avx2 => "avx2",
            Simd::Avx512 => "avx512",
        }
    }
}

/// The level nnlab's kernels use in this process: the CPU's, capped by `NNLAB_SIMD`.
pub fn level() -> Simd {
    static LEVEL: OnceLock<Simd> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let cap = std::env::var("NNLAB_SIMD")
            .ok()
            .and_then(|v| Simd::parse(&v))
            .unwrap_or(Simd::Avx512);
        cpu().min(cap)
    })
}

/// The widest level the CPU has.
pub fn cpu() -> Simd {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Simd::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Simd::Avx2;
        }
    }
    Simd::Scalar
}
