//! Tensor operations Candle lacks or does slowly on the CPU: a fast 2-D
//! convolution (im2col + gemm, with its own backward) and pooling whose
//! backward works for any kernel and stride, plus adaptive average pooling.
//! On CUDA these call Candle's own kernels.

pub mod conv;
pub mod gemm;
pub mod im2col;
pub mod pool;

pub use conv::{conv2d, Conv2dParams};
pub use pool::{adaptive_avg_pool2d, avg_pool2d, max_pool2d};
