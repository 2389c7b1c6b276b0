//! One training step (forward + backward) of hw3's BasicCNN at batch 64 on
//! 1×28×28 inputs, with nnlab's conv/pool ops and with Candle's own, median
//! of 15 runs after 3 warm-ups. `cargo bench -p nnlab --bench conv_step`.
//! The same step in PyTorch: `bench/torch_conv_step.py`. With
//! `NNLAB_GLIBC_DEFAULTS=1` the allocator keeps glibc's defaults (see
//! `nnlab::device::tune_allocator`).

use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use nnlab::ops::{conv2d, max_pool2d, Conv2dParams};

struct Net {
    w1: Var,
    b1: Var,
    w2: Var,
    b2: Var,
    l1: Var,
    lb1: Var,
    l2: Var,
    lb2: Var,
}

fn var(shape: &[usize]) -> Var {
    Var::from_tensor(&(Tensor::randn(0f32, 0.1, shape, &Device::Cpu).unwrap())).unwrap()
}

fn step(net: &Net, x: &Tensor, y: &Tensor, ours: bool) -> f64 {
    let p = Conv2dParams {
        padding: 1,
        ..Default::default()
    };
    let conv = |x: &Tensor, w: &Var, b: &Var| -> Tensor {
        if ours {
            conv2d(x, w, Some(b), p).unwrap()
        } else {
            x.conv2d(w, 1, 1, 1, 1)
                .unwrap()
                .broadcast_add(&b.reshape((1, (), 1, 1)).unwrap())
                .unwrap()
        }
    };
    let pool = |x: &Tensor| {
        if ours {
            max_pool2d(x, 2, 2).unwrap()
        } else {
            x.max_pool2d(2).unwrap()
        }
    };
    let h = pool(&conv(x, &net.w1, &net.b1).relu().unwrap());
    let h = pool(&conv(&h, &net.w2, &net.b2).relu().unwrap());
    let h = h.flatten_from(1).unwrap();
    let h = h
        .matmul(&net.l1.t().unwrap())
        .unwrap()
        .broadcast_add(&net.lb1)
        .unwrap()
        .relu()
        .unwrap();
    let out = h
        .matmul(&net.l2.t().unwrap())
        .unwrap()
        .broadcast_add(&net.lb2)
        .unwrap();
    let loss = candle_nn::loss::cross_entropy(&out, y).unwrap();
    let _grads = loss.backward().unwrap();
    loss.to_scalar::<f32>().unwrap() as f64
}

fn median_ms(f: &mut dyn FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    let mut t: Vec<f64> = (0..15)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(|a, b| a.partial_cmp(b).unwrap());
    t[t.len() / 2]
}

fn main() {
    nnlab::tune_process();
    if std::env::var("NNLAB_GLIBC_DEFAULTS").is_err() {
        nnlab::device::tune_allocator();
    }
    let net = Net {
        w1: var(&[16, 1, 3, 3]),
        b1: var(&[16]),
        w2: var(&[32, 16, 3, 3]),
        b2: var(&[32]),
        l1: var(&[128, 7 * 7 * 32]),
        lb1: var(&[128]),
        l2: var(&[10, 128]),
        lb2: var(&[10]),
    };
    let x = Tensor::rand(0f32, 1., (64, 1, 28, 28), &Device::Cpu).unwrap();
    let y = Tensor::arange(0u32, 64, &Device::Cpu)
        .unwrap()
        .affine(1.0, 0.0)
        .unwrap()
        .to_dtype(DType::U32)
        .unwrap();
    let y = (y.to_dtype(DType::F32).unwrap() / 10.0)
        .unwrap()
        .floor()
        .unwrap()
        .to_dtype(DType::U32)
        .unwrap();
    let ours = median_ms(&mut || {
        step(&net, &x, &y, true);
    });
    let candle = median_ms(&mut || {
        step(&net, &x, &y, false);
    });
    println!("basiccnn step, batch 64, {} threads: nnlab ops {ours:.2} ms, candle ops {candle:.2} ms, speed-up {:.1}x", rayon::current_num_threads(), candle / ours);
}
