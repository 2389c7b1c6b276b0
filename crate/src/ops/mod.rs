//! Tensor operations Candle lacks or does slowly on the CPU, each a custom
//! op with its own backward: a fast 2-D convolution (direct AVX-512 / AVX2 kernels
//! for stride 1 in f32, im2col + gemm otherwise; bias and ReLU in the same
//! pass; with the max pooling after it fused in too), pooling whose
//! backward works for any kernel and stride,
//! adaptive average pooling, a linear layer on the stored weight layout,
//! ReLU, training-mode batch normalisation, and the channel sums their
//! bias gradients need.
//! On CUDA these call Candle's own kernels. During a training step's
//! backward ([`captured_grads::backward`]) the ops' weight gradients skip
//! Candle's zero-fill + add.
//!
//! Every op's CPU side is written once over the float type ([`gemm::Real`]:
//! f32 or f64) and reads its operands and picks that type the same way
//! (`storage.rs`: `operand` and `float_dispatch!`).

pub mod batch_norm;
pub(crate) mod bias_op;
pub mod captured_grads;
pub mod conv;
pub mod gemm;
pub mod linear;
pub mod pool;
pub(crate) mod reduce;
pub mod relu;
pub(crate) mod storage;

pub use batch_norm::batch_norm_train;
pub use conv::direct as direct_conv;
pub use conv::winograd as winograd_conv;
pub use conv::{
    conv2d, conv2d_input_grad, conv2d_max_pool, conv2d_relu, conv2d_weight_grad, Conv2dParams,
};
pub use linear::{linear, linear_relu, LinearLayout};
pub use pool::{adaptive_avg_pool2d, avg_pool2d, max_pool2d};
pub use relu::relu;

/// Random f64 tensors and their distance, for the op tests.
#[cfg(test)]
pub(crate) mod test_util {
    use candle_core::{DType, Device, Tensor};

    /// Uniform in [-1, 1), reproducible from `seed`.
    pub fn rand(shape: &[usize], seed: u64) -> Tensor {
        use rand::{Rng, SeedableRng};
        let mut r = rand::rngs::StdRng::seed_from_u64(seed);
        let n: usize = shape.iter().product();
        let v: Vec<f64> = (0..n).map(|_| r.random_range(-1.0..1.0)).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    /// `max |a − b|`.
    pub fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    }

    /// `max |a − b| / max |b|`, `a` of any float dtype.
    pub fn rel_diff(a: &Tensor, b: &Tensor) -> f64 {
        let scale = b.abs().unwrap().flatten_all().unwrap().max(0).unwrap();
        let scale = scale
            .to_dtype(DType::F64)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        max_diff(&a.to_dtype(DType::F64).unwrap(), b) / scale.max(1e-30)
    }

    /// The gradients of `Σ y·r` (`r` cast to `y`'s dtype): every input of
    /// `y` gets `r` pulled back through it.
    pub fn grads_of(y: &Tensor, r: &Tensor) -> candle_core::backprop::GradStore {
        let r = r.to_dtype(y.dtype()).unwrap();
        (y * &r).unwrap().sum_all().unwrap().backward().unwrap()
    }
}
