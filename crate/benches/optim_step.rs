//! Time of one optimizer step on the parameters of a 784→512→256→10 MLP
//! (535,818 f32 parameters, CPU): the fused in-place CPU path against the
//! tensor-op path (what CUDA, f16 and bf16 use). Run:
//! `cargo bench -p nnlab --bench optim_step` (or `--profile dev`, the
//! notebooks' profile).

use candle_core::{DType, Device, Tensor, Var};
use nnlab::train::optim::{Adam, AdamW, Optimizer, RmsProp, Sgd};
use std::time::Instant;

fn params() -> (Vec<(String, Var)>, Tensor) {
    let shapes: [&[usize]; 6] = [&[512, 784], &[512], &[256, 512], &[256], &[10, 256], &[10]];
    let ps: Vec<(String, Var)> = shapes
        .iter()
        .enumerate()
        .map(|(i, s)| {
            (
                format!("p{i}"),
                Var::randn(0f32, 0.05, *s, &Device::Cpu).unwrap(),
            )
        })
        .collect();
    // A loss whose gradient wrt every parameter is the parameter times 2.
    let loss = ps
        .iter()
        .map(|(_, v)| v.as_tensor().sqr().unwrap().sum_all().unwrap())
        .reduce(|a, b| (a + b).unwrap())
        .unwrap();
    (ps, loss)
}

fn time(label: &str, mut opt: Box<dyn Optimizer>) {
    let (ps, loss) = params();
    let n: usize = ps.iter().map(|(_, v)| v.elem_count()).sum();
    let grads = loss.backward().unwrap();
    opt.attach(ps).unwrap();
    for _ in 0..3 {
        opt.step(&grads).unwrap();
    }
    let reps = 50;
    let t = Instant::now();
    for _ in 0..reps {
        opt.step(&grads).unwrap();
    }
    let ms = t.elapsed().as_secs_f64() * 1e3 / reps as f64;
    println!(
        "{label:<34} {ms:8.3} ms/step  ({:.2} ns/param)",
        ms * 1e6 / n as f64
    );
}

fn main() {
    nnlab::tune_process();
    assert_eq!(
        DType::F32,
        Var::zeros(1, DType::F32, &Device::Cpu).unwrap().dtype()
    );
    time("SGD fused", Box::new(Sgd::new(0.01)));
    time("SGD tensor ops", Box::new(Sgd::new(0.01).tensor_path()));
    time(
        "SGD momentum+wd fused",
        Box::new(Sgd::new(0.01).momentum(0.9).weight_decay(1e-4)),
    );
    time(
        "SGD momentum+wd tensor ops",
        Box::new(
            Sgd::new(0.01)
                .momentum(0.9)
                .weight_decay(1e-4)
                .tensor_path(),
        ),
    );
    time("RMSprop fused", Box::new(RmsProp::new(0.01)));
    time(
        "RMSprop tensor ops",
        Box::new(RmsProp::new(0.01).tensor_path()),
    );
    time("Adam fused", Box::new(Adam::new(1e-3)));
    time("Adam tensor ops", Box::new(Adam::new(1e-3).tensor_path()));
    time(
        "AdamW amsgrad fused",
        Box::new(AdamW::new(1e-3).amsgrad(true)),
    );
    time(
        "AdamW amsgrad tensor ops",
        Box::new(AdamW::new(1e-3).amsgrad(true).tensor_path()),
    );
}
