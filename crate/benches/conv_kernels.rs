//! The three products of one convolution layer, each timed alone, for the
//! layers of the benchmark models (CIFAR10CNN, BasicCNN, SimpleConvNet_4):
//! forward (with bias and ReLU, as the models run it), weight gradient and
//! input gradient (`ops::conv2d_weight_grad`, `ops::conv2d_input_grad`, the
//! kernels the backward runs). Each with the direct kernels
//! (`ops::direct_conv`: AVX-512, or AVX2 with `NNLAB_SIMD=avx2`), by
//! Winograd F(2×2, 3×3) where a layer takes it (`ops::winograd_conv`: 3×3,
//! 32 or more input and output channels; the weight gradient is the direct one), and
//! with im2col + gemm, side by side in one
//! process, median of 9 after 2 warm-ups; GFLOP/s counted as `2·N·O·K·L`
//! per product. The allocator is tuned as in training
//! (`device::tune_allocator`). `cargo bench -p nnlab --bench conv_kernels`.

use std::time::Instant;

use candle_core::{Device, Tensor};
use nnlab::ops::{
    conv2d_input_grad, conv2d_relu, conv2d_weight_grad, direct_conv, winograd_conv, Conv2dParams,
};

fn median_s(f: &mut dyn FnMut()) -> f64 {
    for _ in 0..2 {
        f();
    }
    let mut t: Vec<f64> = (0..9)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(|a, b| a.partial_cmp(b).unwrap());
    t[t.len() / 2]
}

/// (name, N, C, H, O, K, padding)
const LAYERS: [(&str, usize, usize, usize, usize, usize, usize); 8] = [
    ("cifar conv1 3→32 32²", 64, 3, 32, 32, 3, 1),
    ("cifar conv2 32→32 32²", 64, 32, 32, 32, 3, 1),
    ("cifar conv3 32→64 16²", 64, 32, 16, 64, 3, 1),
    ("cifar conv4 64→64 16²", 64, 64, 16, 64, 3, 1),
    ("basiccnn conv1 1→16 28²", 64, 1, 28, 16, 3, 1),
    ("basiccnn conv2 16→32 14²", 64, 16, 14, 32, 3, 1),
    ("mri conv1 3→32 128² k4", 64, 3, 128, 32, 4, 0),
    ("mri conv2 32→64 41² k4", 64, 32, 41, 64, 4, 0),
];

fn main() {
    nnlab::tune_process();
    nnlab::device::tune_allocator();
    let dev = Device::Cpu;
    let threads = rayon::current_num_threads();
    println!(
        "threads: {threads}; SIMD {}; GFLOP/s per product (2·N·O·K·L), median of 9",
        nnlab::simd::level().name()
    );
    println!(
        "| layer | path | forward | weight grad | input grad | the three, ms |\n| --- | --- | ---: | ---: | ---: | ---: |"
    );
    for (name, n, c, h, o, k, pad) in LAYERS {
        let x = Tensor::randn(0f32, 1.0, (n, c, h, h), &dev).unwrap();
        let w = Tensor::randn(0f32, 0.1, (o, c, k, k), &dev).unwrap();
        let b = Tensor::randn(0f32, 0.1, o, &dev).unwrap();
        let p = Conv2dParams {
            padding: pad,
            ..Default::default()
        };
        let oh = h + 2 * pad - k + 1;
        let dy = Tensor::randn(0f32, 1.0, (n, o, oh, oh), &dev).unwrap();
        let gflop = 2.0 * (n * o * c * k * k * oh * oh) as f64 / 1e9;
        for (path, direct, winograd) in [
            ("winograd", true, true),
            ("direct", true, false),
            ("im2col", false, false),
        ] {
            if winograd && !(k == 3 && c >= 32 && o >= 32) {
                continue;
            }
            winograd_conv::set_enabled(winograd);
            if direct_conv::set_enabled(direct) != direct {
                println!("| {name} | {path} | (no AVX2 or AVX-512 here) | | | |");
                continue;
            }
            let fwd = median_s(&mut || {
                conv2d_relu(&x, &w, Some(&b), p).unwrap();
            });
            let wg = median_s(&mut || {
                conv2d_weight_grad(&x, &dy, (k, k), p).unwrap();
            });
            let ig = median_s(&mut || {
                conv2d_input_grad(&dy, &w, (h, h), p).unwrap();
            });
            println!(
                "| {name} | {path} | {:.1} | {:.1} | {:.1} | {:.2} |",
                gflop / fwd,
                gflop / wg,
                gflop / ig,
                (fwd + wg + ig) * 1e3
            );
        }
    }
}
