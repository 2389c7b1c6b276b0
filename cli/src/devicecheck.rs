//! `nnlab devicecheck`: the course's models on a second device (a GPU)
//! against the same models on the CPU, values and gradients.
//!
//! For every zoo model, and one more model with the layer types the zoo
//! does not use (stride-2 convolution, LeakyReLU, average and adaptive
//! pooling, LayerNorm, log-softmax), from the same weights on both devices:
//! the output of a training-mode forward pass (the same dropout masks), the
//! loss, every parameter's gradient, the BatchNorm running statistics, the
//! output in eval mode; two steps of each optimizer (SGD with momentum,
//! Adam, AdamW, RMSprop, Adagrad) from the same gradients; then two epochs
//! of `Learner::fit` (SGD 0.01, momentum 0.9) on 32 random images: each
//! epoch's loss and every parameter after training; a
//! checkpoint saved on the device and resumed on the CPU gives back the
//! device's parameters and outputs. Last, the convolution of a kernel that
//! is a slice of a larger weight (`ops::conv2d`, which copies such a kernel
//! for Candle), forward and the gradient of the larger weight.
//!
//! Each row is `max |a − b|` over a tensor, device `a` against CPU `b`, and
//! that divided by `max |b|` (for a gradient: by the largest gradient value
//! of the model, since the gradient of a bias right before BatchNorm is 0
//! up to rounding); a row passes when the relative error is at
//! most its tolerance: 1e-4 for one pass, 0 for a checkpoint, and after
//! training 1e-3 or 10 times what the CPU's own training changes when its
//! starting weights move by one part in a million, whichever is larger
//! (training with BatchNorm over 8 images amplifies rounding). The command
//! fails when a row does not pass.
//!
//! ```text
//! nnlab devicecheck --device cuda:0 [--json]
//! ```

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var};
use rand::Rng;

use nnlab::data::loader::Loader;
use nnlab::data::Dataset;
use nnlab::models::init::ParamInit;
use nnlab::models::layers::{Conv2d, Layer, LayerNorm, Linear, Pool2d};
use nnlab::models::model::{Entry, Model, Output};
use nnlab::models::zoo;
use nnlab::ops::{conv2d, Conv2dParams};
use nnlab::train::learner::Learner;
use nnlab::train::loss::Loss;
use nnlab::train::optim::{Adagrad, Adam, AdamW, Optimizer, RmsProp, Sgd};
use nnlab::{Error, Result};

/// Tolerance of a single forward or backward pass (relative to `max |b|`).
const ONE_PASS: f64 = 1e-4;
/// Tolerance after two epochs of training (rounding differences compound).
const TRAINED: f64 = 1e-3;
/// After training, a parameter may also differ up to this many times what
/// the CPU's own training changes when its starting weights are moved by
/// one part in a million ([`nudge`]): where the training amplifies
/// rounding (BatchNorm over 8 images, momentum), the device may too.
const NUDGE_MARGIN: f64 = 10.0;

/// `sd` with every float value multiplied by `1 + 1e-6·u`, `u` uniform in
/// [−1, 1) (reproducible from `seed`).
fn nudge(sd: &HashMap<String, Tensor>, seed: u64) -> Result<HashMap<String, Tensor>> {
    let mut rng = nnlab::device::rng("devicecheck-nudge", seed);
    let mut keys: Vec<&String> = sd.keys().collect();
    keys.sort();
    let mut out = HashMap::new();
    for k in keys {
        let t = &sd[k];
        let moved = if t.dtype() == DType::F32 {
            let u: Vec<f32> = (0..t.elem_count())
                .map(|_| 1.0 + 1e-6 * rng.random_range(-1.0f32..1.0))
                .collect();
            (t * Tensor::from_vec(u, t.shape(), t.device())?)?
        } else {
            t.clone()
        };
        out.insert(k.clone(), moved);
    }
    Ok(out)
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The device to check against the CPU: `cuda`, `cuda:N` or `cpu`.
    #[arg(long, default_value = "cuda:0")]
    pub device: String,
    /// Check only the models whose zoo name contains this text.
    #[arg(long)]
    pub only: Option<String>,
    /// print one JSON object (the default prints a table)
    #[arg(long)]
    pub json: bool,
}

/// One comparison: a tensor computed on the device against the CPU's.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Row {
    pub model: String,
    pub what: String,
    pub numel: usize,
    pub max_abs: f64,
    pub max_rel: f64,
    pub tolerance: f64,
}

impl Row {
    /// A check that could not run: the error, as a failing row (the other
    /// models are still checked).
    fn error(model: &str, e: Error) -> Row {
        Row {
            model: model.into(),
            what: format!("error: {e}"),
            numel: 0,
            max_abs: f64::NAN,
            max_rel: f64::INFINITY,
            tolerance: ONE_PASS,
        }
    }

    pub fn passes(&self) -> bool {
        self.max_rel <= self.tolerance
    }
}

/// `a` (device) against `b` (CPU), both read as f64 on the CPU, relative
/// to `max |b|`.
fn compare(model: &str, what: &str, a: &Tensor, b: &Tensor, tolerance: f64) -> Result<Row> {
    compare_scaled(model, what, a, b, None, tolerance)
}

/// `max |t|` over a tensor.
fn max_abs(t: &Tensor) -> Result<f64> {
    let t = t.to_device(&Device::Cpu)?.to_dtype(DType::F64)?;
    Ok(t.abs()?.flatten_all()?.max(0)?.to_scalar::<f64>()?)
}

/// [`compare`], relative to `scale` when given instead of `max |b|`.
fn compare_scaled(
    model: &str,
    what: &str,
    a: &Tensor,
    b: &Tensor,
    scale: Option<f64>,
    tolerance: f64,
) -> Result<Row> {
    if a.dims() != b.dims() {
        return Err(Error::shape(
            format!("{model}: {what}"),
            format!("{:?} on the device, {:?} on the CPU", a.dims(), b.dims()),
        ));
    }
    let a = a.to_device(&Device::Cpu)?.to_dtype(DType::F64)?;
    let b = b.to_device(&Device::Cpu)?.to_dtype(DType::F64)?;
    let diff = max_abs(&(&a - &b)?)?;
    let scale = match scale {
        Some(s) => s,
        None => max_abs(&b)?,
    };
    let max_rel = if diff == 0.0 {
        0.0
    } else {
        diff / scale.max(1e-12)
    };
    if !max_rel.is_finite() && !diff.is_nan() {
        return Err(Error::shape(format!("{model}: {what}"), "not finite"));
    }
    Ok(Row {
        model: model.into(),
        what: what.into(),
        numel: b.elem_count(),
        max_abs: diff,
        max_rel: if diff.is_nan() {
            f64::INFINITY
        } else {
            max_rel
        },
        tolerance,
    })
}

/// The layer types the zoo does not use, in one small model on `dev`.
fn other_layers(dev: &Device) -> Result<Model> {
    let mut init = ParamInit::new(dev, DType::F32);
    let entries = vec![
        Entry::module(
            "conv",
            Layer::Conv2d(Conv2d::new(3, 8, 3, 2, 1, &mut init)?),
        ),
        Entry::functional(Layer::LeakyReLU(0.1)),
        Entry::functional(Layer::AvgPool2d(Pool2d {
            kernel: 2,
            stride: 2,
        })),
        Entry::functional(Layer::AdaptiveAvgPool2d((3, 3))),
        Entry::functional(Layer::Flatten),
        Entry::module("norm", Layer::LayerNorm(LayerNorm::new(72, &mut init)?)),
        Entry::functional(Layer::Tanh),
        Entry::module("fc", Layer::Linear(Linear::new(72, 5, &mut init)?)),
        Entry::functional(Layer::LogSoftmax),
    ];
    Model::from_parts(
        "other layers",
        "OtherLayers",
        vec![3, 20, 20],
        false,
        entries,
        None,
        dev,
        DType::F32,
    )
}

fn build(name: &str, dev: &Device) -> Result<Model> {
    if name == "other-layers" {
        other_layers(dev)
    } else {
        zoo::build_on(name, dev, DType::F32)
    }
}

/// A dataset's `[C, H, W]` for a model input (a flat input is an image flattened).
fn image_shape(input: &[usize]) -> [usize; 3] {
    match input {
        [c, h, w] => [*c, *h, *w],
        [3072] => [3, 32, 32],
        [784] => [1, 28, 28],
        [64] => [1, 8, 8],
        _ => [1, 1, input.iter().product()],
    }
}

fn loss_of(m: &Model) -> Loss {
    match m.output() {
        Output::LogProbs => Loss::nll(),
        Output::Logits => Loss::cross_entropy(),
    }
}

fn params(m: &Model) -> HashMap<String, Var> {
    m.named_params().into_iter().collect()
}

/// Every check of one model; `seed` fixes the weights, inputs and dropout masks.
fn check_model(name: &str, dev: &Device, seed: u64) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    nnlab::seed(seed);
    let cpu = build(name, &Device::Cpu)?;
    let gpu = build(name, dev)?;
    let shown = cpu.name().to_string();
    let sd: HashMap<String, Tensor> = cpu.state_dict()?.into_iter().collect();
    gpu.load_state_dict(&sd)?;
    let classes = *cpu
        .out_shapes()?
        .last()
        .and_then(|s| s.last())
        .ok_or_else(|| Error::shape(name, "no output shape"))?;
    let batch = if cpu.input_shape().iter().product::<usize>() > 10_000 {
        4
    } else {
        8
    };
    let mut shape = vec![batch];
    shape.extend_from_slice(cpu.input_shape());
    let mut rng = nnlab::device::rng("devicecheck", seed);
    let n: usize = shape.iter().product();
    let x: Vec<f32> = (0..n).map(|_| rng.random_range(-2.0f32..2.0)).collect();
    let labels: Vec<u32> = (0..batch)
        .map(|_| rng.random_range(0..classes as u32))
        .collect();
    let xc = Tensor::from_vec(x, shape.as_slice(), &Device::Cpu)?;
    let yc = Tensor::new(labels.as_slice(), &Device::Cpu)?;
    let (xg, yg) = (xc.to_device(dev)?, yc.to_device(dev)?);

    // one training step's forward and backward
    nnlab::seed(seed + 1);
    let oc = cpu.forward_t(&xc, true)?;
    nnlab::seed(seed + 1);
    let og = gpu.forward_t(&xg, true)?;
    rows.push(compare(&shown, "output (train mode)", &og, &oc, ONE_PASS)?);
    let loss = loss_of(&cpu);
    let (lc, lg) = (loss.forward(&oc, &yc)?, loss.forward(&og, &yg)?);
    rows.push(compare(&shown, "loss", &lg, &lc, ONE_PASS)?);
    let (gc, mut gg) = (lc.backward()?, lg.backward()?);
    let pg = params(&gpu);
    // a gradient is measured against the largest gradient value of the model
    // (the gradient of a bias right before BatchNorm is 0 up to rounding)
    let mut grad_scale = 0.0f64;
    for (_, v) in cpu.named_params() {
        if let Some(g) = gc.get(&v) {
            grad_scale = grad_scale.max(max_abs(g)?);
        }
    }
    for (pname, vc) in cpu.named_params() {
        let vg = pg
            .get(&pname)
            .ok_or_else(|| Error::shape(&shown, format!("`{pname}` missing on the device")))?;
        match (gc.get(&vc), gg.get(vg)) {
            (Some(a), Some(b)) => {
                let what = format!("grad {pname}");
                rows.push(compare_scaled(
                    &shown,
                    &what,
                    b,
                    a,
                    Some(grad_scale),
                    ONE_PASS,
                )?)
            }
            (None, None) => {} // a parameter the forward pass never uses
            _ => {
                return Err(Error::shape(
                    &shown,
                    format!("`{pname}` has a gradient on one device only"),
                ))
            }
        }
    }
    let sg: HashMap<String, Tensor> = gpu.state_dict()?.into_iter().collect();
    for (k, t) in cpu.state_dict()? {
        if k.contains("running_") {
            rows.push(compare(&shown, &k, &sg[&k], &t, ONE_PASS)?);
        }
    }
    let (ec, eg) = (cpu.forward_t(&xc, false)?, gpu.forward_t(&xg, false)?);
    rows.push(compare(&shown, "output (eval mode)", &eg, &ec, ONE_PASS)?);

    // each optimizer, two steps from the CPU's gradients on both devices
    for (pname, vc) in cpu.named_params() {
        if let Some(g) = gc.get(&vc) {
            gg.insert(pg[&pname].as_tensor(), g.to_device(dev)?);
        }
    }
    let optimizers: [(&str, Box<dyn Optimizer>); 5] = [
        ("SGD(momentum 0.9)", Box::new(Sgd::new(0.01).momentum(0.9))),
        ("Adam", Box::new(Adam::new(1e-3))),
        ("AdamW", Box::new(AdamW::new(1e-3))),
        ("RMSprop", Box::new(RmsProp::new(1e-3))),
        ("Adagrad", Box::new(Adagrad::new(0.01))),
    ];
    for (oname, mut oc) in optimizers {
        let mut og = oc.fresh();
        oc.attach(cpu.named_params())?;
        og.attach(gpu.named_params())?;
        for _ in 0..2 {
            oc.step(&gc)?;
            og.step(&gg)?;
        }
        let what = format!("{oname}, 2 steps: worst parameter");
        let mut worst: Option<Row> = None;
        for (pname, vc) in cpu.named_params() {
            let r = compare(
                &shown,
                &what,
                pg[&pname].as_tensor(),
                vc.as_tensor(),
                ONE_PASS,
            )?;
            if worst.as_ref().is_none_or(|w| r.max_rel > w.max_rel) {
                worst = Some(r);
            }
        }
        rows.extend(worst);
    }

    // two epochs of the Learner on 32 random images, from the same weights
    let img = image_shape(cpu.input_shape());
    let per: usize = img.iter().product();
    let pixels: Vec<u8> = (0..32 * per).map(|_| rng.random_range(0..=255u8)).collect();
    let ys: Vec<u32> = (0..32)
        .map(|_| rng.random_range(0..classes as u32))
        .collect();
    let names = (0..classes).map(|c| c.to_string()).collect();
    let ds = Dataset::new("random", "memory", names, img, pixels, ys, 255)?;
    let fit = |m: Model| -> Result<Learner> {
        nnlab::seed(seed + 2);
        let train = Loader::new(ds.clone(), 8).shuffle(0);
        let sgd = Sgd::new(0.01).momentum(0.9);
        let mut learn = Learner::with_loaders(m, train, None)
            .optimizer(sgd)
            .silent();
        learn.fit(2)?;
        Ok(learn)
    };
    let (cpu, gpu) = (build(name, &Device::Cpu)?, build(name, dev)?);
    cpu.load_state_dict(&sd)?;
    gpu.load_state_dict(&sd)?;
    let (lc, mut lg) = (fit(cpu)?, fit(gpu)?);
    // the CPU's own sensitivity: the same training from weights moved by
    // one part in a million (the size of one pass's rounding, above)
    let nudged = build(name, &Device::Cpu)?;
    nudged.load_state_dict(&nudge(&sd, seed)?)?;
    let ln = fit(nudged)?;
    let pn = params(ln.model());
    let losses = |l: &Learner| -> Result<Tensor> {
        let v: Vec<f64> = l.history().epochs.iter().map(|r| r.train_loss).collect();
        Ok(Tensor::new(v, &Device::Cpu)?)
    };
    rows.push(compare(
        &shown,
        "fit: loss of epochs 1-2",
        &losses(&lg)?,
        &losses(&lc)?,
        TRAINED,
    )?);
    let pg = params(lg.model());
    for (pname, vc) in lc.model().named_params() {
        let own = compare(&shown, "", pn[&pname].as_tensor(), vc.as_tensor(), 0.0)?;
        let tolerance = TRAINED.max(NUDGE_MARGIN * own.max_rel);
        let what = format!("fit: {pname}");
        let (a, b) = (pg[&pname].as_tensor(), vc.as_tensor());
        rows.push(compare(&shown, &what, a, b, tolerance)?);
    }

    // a checkpoint written from the device, resumed on the CPU
    let dir = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let path = dir.path().join("device.safetensors");
    lg.save(&path)?;
    let back = build(name, &Device::Cpu)?;
    let train = Loader::new(ds.clone(), 8);
    let sgd = Sgd::new(0.01).momentum(0.9);
    let mut resumed = Learner::with_loaders(back, train, None)
        .optimizer(sgd)
        .silent();
    resumed.resume(&path)?;
    let pr = params(resumed.model());
    let mut worst: Option<Row> = None;
    for (pname, vg) in lg.model().named_params() {
        let r = compare(
            &shown,
            "checkpoint: parameters",
            vg.as_tensor(),
            pr[&pname].as_tensor(),
            0.0,
        )?;
        if worst.as_ref().is_none_or(|w| r.max_abs > w.max_abs) {
            worst = Some(r);
        }
    }
    rows.extend(worst);
    let a = lg.model().forward_t(&xg, false)?;
    let b = resumed.model().forward_t(&xc, false)?;
    rows.push(compare(
        &shown,
        "checkpoint: output (eval) on the CPU",
        &a,
        &b,
        ONE_PASS,
    )?);
    Ok(rows)
}

/// Kernels sliced from larger weights: along the output channels
/// (contiguous, at an offset) and along the input channels (not contiguous,
/// at an offset: the case candle#3736 fixed).
fn check_sliced_kernel(dev: &Device, seed: u64) -> Result<Vec<Row>> {
    let mut rng = nnlab::device::rng("devicecheck-slice", seed);
    let mut rand = |shape: &[usize]| -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        Ok(Tensor::from_vec(v, shape, &Device::Cpu)?)
    };
    let x = rand(&[2, 3, 7, 6])?;
    let p = Conv2dParams {
        stride: 1,
        padding: 1,
        dilation: 1,
    };
    let mut rows = Vec::new();
    for (m, big, dim, start) in [
        (
            "conv2d, kernel = w[3..7] of a 9-row weight",
            [9, 3, 3, 3],
            0,
            3,
        ),
        (
            "conv2d, kernel = w[:, 2..5] of an 8-channel weight",
            [4, 8, 3, 3],
            1,
            2,
        ),
    ] {
        let len = if dim == 0 { 4 } else { 3 };
        let (w, r) = (rand(&big)?, rand(&[2, 4, 7, 6])?);
        let run = |d: &Device| -> Result<(Tensor, Tensor, Tensor, Tensor)> {
            let big = Var::from_tensor(&w.to_device(d)?)?;
            let grad_of_big = |y: &Tensor| -> Result<Tensor> {
                let g = (y * &r.to_device(d)?)?.sum_all()?.backward()?;
                let gw = g.get(&big).ok_or_else(|| Error::shape(m, "no gradient"))?;
                Ok(gw.clone())
            };
            let y = conv2d(&x.to_device(d)?, &big.narrow(dim, start, len)?, None, p)?;
            // Candle's own convolution on the slice, without nnlab's copy
            let raw = x
                .to_device(d)?
                .conv2d(&big.narrow(dim, start, len)?, 1, 1, 1, 1)?;
            Ok((grad_of_big(&y)?, y, grad_of_big(&raw)?, raw))
        };
        let (gc, yc, _, _) = run(&Device::Cpu)?;
        let (gg, yg, graw, raw) = run(dev)?;
        rows.push(compare(m, "output", &yg, &yc, ONE_PASS)?);
        rows.push(compare(m, "grad of the larger weight", &gg, &gc, ONE_PASS)?);
        // for the record: Candle's own conv2d on the slice (not what nnlab runs)
        let what = "Candle's conv2d without the copy (record only)";
        rows.push(compare(m, what, &raw, &yc, f64::INFINITY)?);
        let what = "its weight gradient (record only)";
        rows.push(compare(m, what, &graw, &gc, f64::INFINITY)?);
    }
    Ok(rows)
}

/// Every check on `dev` against the CPU; a model whose check fails with an
/// error gets one failing row with it.
pub fn check_all(dev: &Device, only: Option<&str>, seed: u64) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mut names: Vec<&str> = zoo::names();
    names.push("other-layers");
    for name in names {
        if only.is_some_and(|o| !name.to_lowercase().contains(&o.to_lowercase())) {
            continue;
        }
        rows.extend(check_model(name, dev, seed).unwrap_or_else(|e| vec![Row::error(name, e)]));
    }
    if only.is_none_or(|o| "conv2d".contains(&o.to_lowercase())) {
        let sliced = check_sliced_kernel(dev, seed);
        rows.extend(sliced.unwrap_or_else(|e| vec![Row::error("conv2d, sliced kernel", e)]));
    }
    Ok(rows)
}

pub fn run(a: Args) -> Result<()> {
    let dev = nnlab::device::parse_device(&a.device)?;
    let rows = check_all(&dev, a.only.as_deref(), 0)?;
    let failed: Vec<&Row> = rows.iter().filter(|r| !r.passes()).collect();
    if a.json {
        let out = serde_json::json!({ "device": nnlab::device::name(&dev), "rows": rows, "failed": failed.len() });
        println!("{}", serde_json::to_string(&out)?);
    } else {
        println!("| model | what | values | max abs | max rel | tolerance | |");
        println!("| --- | --- | ---: | ---: | ---: | ---: | --- |");
        for r in &rows {
            let ok = if r.passes() { "ok" } else { "FAIL" };
            println!(
                "| {} | {} | {} | {:.3e} | {:.3e} | {:e} | {ok} |",
                r.model, r.what, r.numel, r.max_abs, r.max_rel, r.tolerance
            );
        }
        // the worst row of each kind, and the largest error as a share of its tolerance
        let worst = |fit: bool, tol: Option<f64>| {
            rows.iter()
                .filter(|r| r.what.starts_with("fit:") == fit)
                .filter(|r| tol.is_none_or(|t| r.tolerance == t))
                .map(|r| r.max_rel)
                .fold(0.0, f64::max)
        };
        let used = rows
            .iter()
            .filter(|r| r.tolerance.is_finite() && r.tolerance > 0.0)
            .map(|r| r.max_rel / r.tolerance)
            .fold(0.0, f64::max);
        println!(
            "{} rows on {} against the CPU, {} failed; worst relative error: one pass {:.2e}, after training {:.2e}, checkpoint {:.2e}; the largest error is {:.0} % of its tolerance",
            rows.len(),
            nnlab::device::name(&dev),
            failed.len(),
            worst(false, Some(ONE_PASS)),
            worst(true, None),
            worst(false, Some(0.0)),
            100.0 * used
        );
    }
    if let Some(f) = failed.first() {
        return Err(Error::shape(
            format!("devicecheck on {}", nnlab::device::name(&dev)),
            format!(
                "{} of {} rows differ beyond their tolerance, first: {} / {}: relative error {:.3e} > {:e}",
                failed.len(),
                rows.len(),
                f.model,
                f.what,
                f.max_rel,
                f.tolerance
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CPU against itself: every path runs (forward, gradients, fit,
    /// checkpoint, sliced kernel) and every row is exact.
    #[test]
    fn cpu_against_itself_is_exact() -> crate::TestResult {
        let rows = check_all(&Device::Cpu, Some("basiccnn"), 0)?;
        let whats: Vec<&str> = rows.iter().map(|r| r.what.as_str()).collect();
        for w in [
            "Adam, 2 steps: worst parameter",
            "output (train mode)",
            "loss",
            "grad features.0.weight",
            "fit: classifier.3.bias",
            "checkpoint: parameters",
        ] {
            assert!(whats.contains(&w), "no row `{w}` in {whats:?}");
        }
        assert!(rows.iter().all(|r| r.max_abs == 0.0), "{rows:?}");
        let rows = check_all(&Device::Cpu, Some("other"), 0)?;
        assert!(
            rows.iter().any(|r| r.what == "grad norm.weight"),
            "{rows:?}"
        );
        assert!(
            rows.iter().all(|r| r.max_abs == 0.0 && r.passes()),
            "{rows:?}"
        );
        let rows = check_all(&Device::Cpu, Some("conv2d"), 0)?;
        assert_eq!(rows.len(), 8);
        // nnlab's path is exact; Candle's own conv2d (the record-only rows)
        // sums in another order, within f32 rounding
        for slice in rows.chunks(4) {
            assert!(slice[..2].iter().all(|r| r.max_abs == 0.0), "{rows:?}");
            assert!(
                slice[2..].iter().all(|r| r.max_rel < 1e-6 && r.passes()),
                "{rows:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn a_failing_row_is_named() -> crate::TestResult {
        let r = Row {
            model: "m".into(),
            what: "grad w".into(),
            numel: 3,
            max_abs: 1.0,
            max_rel: 0.5,
            tolerance: 1e-4,
        };
        assert!(!r.passes());
        let a = Tensor::zeros(2, DType::F32, &Device::Cpu)?;
        let b = Tensor::zeros(3, DType::F32, &Device::Cpu)?;
        let e = compare("m", "x", &a, &b, 1e-4).unwrap_err().to_string();
        assert!(e.contains("[2] on the device, [3] on the CPU"), "{e}");
        let b = Tensor::new(&[1.0f32, -4.0], &Device::Cpu)?;
        let a = Tensor::new(&[1.0f32, -3.0], &Device::Cpu)?;
        let r = compare("m", "x", &a, &b, 1e-4)?;
        assert_eq!((r.max_abs, r.max_rel, r.numel), (1.0, 0.25, 2));
        Ok(())
    }

    /// The whole check on the first GPU, in a `--features cuda` build with a
    /// GPU that answers; skipped, with a message, everywhere else.
    #[test]
    fn first_gpu_matches_the_cpu() -> crate::TestResult {
        let Ok(dev) = Device::new_cuda(0) else {
            eprintln!(
                "no GPU answers (or no `cuda` feature): the GPU-against-CPU check is skipped"
            );
            return Ok(());
        };
        let rows = check_all(&dev, None, 0)?;
        let failed: Vec<&Row> = rows.iter().filter(|r| !r.passes()).collect();
        assert!(failed.is_empty(), "{failed:?}");
        Ok(())
    }

    #[test]
    fn no_cuda_in_this_build_is_a_clear_error() {
        if cfg!(feature = "cuda") {
            return;
        }
        let e = run(Args {
            device: "cuda:0".into(),
            only: None,
            json: false,
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("no CUDA support"), "{e}");
    }
}
