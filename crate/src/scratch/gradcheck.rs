//! Gradient checking in f64: the hand-written backward of every scratch
//! layer (and of a whole network) against central finite differences *and*
//! Candle's autograd.
//!
//! ```text
//! loss of a layer:   L(x, θ) = Σ y(x, θ) ⊙ r      (r a fixed random [N, out])
//!                    so the hand backward gets dy = r
//! loss of a network: L = CE(z, labels) + (λ/2) Σ ‖W‖²
//! finite difference: ∂L/∂θᵢ ≈ (L(θ + h eᵢ) − L(θ − h eᵢ)) / 2h,   h = 1e-5
//! autograd:          the same forward run on `Var`s, then `loss.backward()`
//! max_abs_err = maxᵢ |aᵢ − bᵢ|
//! max_rel_err = maxᵢ |aᵢ − bᵢ| / max(maxᵢ |aᵢ|, maxᵢ |bᵢ|, 1e-4)   (relative to the gradient's scale)
//! ```
//! The floor 1e-4 matters only for a gradient that is (near) zero in every
//! entry, e.g. the bias of a Linear followed by BatchNorm, whose exact
//! gradient is 0: there finite differences give ~1e-11 of round-off noise,
//! and the error is in effect absolute (max_abs_err / 1e-4).
//! Each finite-difference evaluation runs a fresh clone of the layer, so
//! Dropout draws the same mask and BatchNorm's running statistics do not
//! drift. **ReLU's kink**: at x = 0 ReLU has no derivative and a difference
//! across it is meaningless, so ReLU is checked on inputs with |x| ≥ 0.1 ≫ h,
//! and every check reports `kink_margin`, the smallest |input| any ReLU saw;
//! the network check picks a seed whose margin is ≥ 1e-3 (100·h).
//!
//! ```no_run
//! let checks = nnlab::scratch::gradcheck::check_all(0).unwrap();
//! println!("{}", nnlab::scratch::gradcheck::to_dataframe(&checks).unwrap());
//! ```

use super::network::Network;
use super::softmax_ce::{cross_entropy, cross_entropy_backward, l2_penalty};
use super::{BatchNorm1d, Cache, Dropout, Layer, Linear, Relu, Sigmoid, Tanh};
use crate::display::{table_bundle, MimeBundle, Show};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor, Var};
use polars::prelude::*;
use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::Rng;

/// The finite-difference step.
pub const H: f64 = 1e-5;

/// Smallest gradient scale a relative error is taken against (see the module doc).
pub const REL_FLOOR: f64 = 1e-4;

/// One row of the table: a parameter (or `input`) of a layer.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    pub layer: String,
    pub param: String,
    pub numel: usize,
    /// Entries compared with finite differences (all, or a sample).
    pub checked: usize,
    /// hand-written vs finite differences
    pub max_abs_err: f64,
    pub max_rel_err: f64,
    /// hand-written vs Candle autograd (every entry)
    pub max_abs_err_autograd: f64,
    pub max_rel_err_autograd: f64,
    /// Smallest |input| of any ReLU in the forward (∞ without ReLU).
    pub kink_margin: f64,
}

fn flat(t: &Tensor) -> Result<Vec<f64>> {
    Ok(t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?)
}

fn errors(a: &[f64], b: &[f64]) -> (f64, f64) {
    let abs = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    let scale = a.iter().chain(b).map(|v| v.abs()).fold(REL_FLOOR, f64::max);
    (abs, abs / scale)
}

fn scalar(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

/// Compares `hand[i]` (the gradient of `inputs[i]`) with finite differences
/// of `loss` and with autograd of `loss`. `entries`: how many entries per
/// tensor to difference (`None`: all).
fn compare(
    layer: &str,
    inputs: &[(String, Tensor)],
    hand: &[Tensor],
    loss: &dyn Fn(&[Tensor]) -> Result<Tensor>,
    entries: Option<usize>,
    kink_margin: f64,
    rng: &mut StdRng,
) -> Result<Vec<Check>> {
    if hand.len() != inputs.len() {
        return Err(Error::config(
            layer,
            format!("{} gradients for {} tensors", hand.len(), inputs.len()),
        ));
    }
    let base: Vec<Tensor> = inputs.iter().map(|(_, t)| t.clone()).collect();
    // autograd on Vars
    let vars = base
        .iter()
        .map(Var::from_tensor)
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let var_ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let store = loss(&var_ts)?.backward()?;
    let mut out = Vec::new();
    for (i, (name, t)) in inputs.iter().enumerate() {
        let h_vals = flat(&hand[i])?;
        let auto = match store.get(&var_ts[i]) {
            Some(g) => flat(g)?,
            None => vec![0.0; t.elem_count()],
        };
        let (aa, ar) = errors(&h_vals, &auto);
        let vals = flat(t)?;
        let n = vals.len();
        let idx: Vec<usize> = match entries {
            Some(k) if k < n => sample(rng, n, k).into_vec(),
            _ => (0..n).collect(),
        };
        let (mut fd, mut hs) = (Vec::new(), Vec::new());
        for &j in &idx {
            let eval = |delta: f64| -> Result<f64> {
                let mut v = vals.clone();
                v[j] += delta;
                let mut ts = base.clone();
                ts[i] = Tensor::from_vec(v, t.dims(), t.device())?;
                scalar(&loss(&ts)?)
            };
            fd.push((eval(H)? - eval(-H)?) / (2.0 * H));
            hs.push(h_vals[j]);
        }
        let (fa, fr) = errors(&hs, &fd);
        out.push(Check {
            layer: layer.to_string(),
            param: name.clone(),
            numel: n,
            checked: idx.len(),
            max_abs_err: fa,
            max_rel_err: fr,
            max_abs_err_autograd: aa,
            max_rel_err_autograd: ar,
            kink_margin,
        });
    }
    Ok(out)
}

fn with_params(layer: &dyn Layer, params: &[Tensor]) -> Result<Box<dyn Layer>> {
    let mut l = layer.boxed_clone();
    l.set_params(params.to_vec())?;
    Ok(l)
}

fn relu_margin(caches: &[Cache]) -> Result<f64> {
    let mut m = f64::INFINITY;
    for c in caches {
        if let Cache::Relu { x } = c {
            m = m.min(flat(x)?.iter().fold(f64::INFINITY, |a, v| a.min(v.abs())));
        }
    }
    Ok(m)
}

/// Checks one layer at input `x` (cast to f64 with its parameters) with
/// L = Σ y ⊙ r, every entry differenced.
pub fn check_layer(layer: &dyn Layer, x: &Tensor, seed: u64) -> Result<Vec<Check>> {
    let x = x.to_dtype(DType::F64)?;
    let params: Vec<Tensor> = layer
        .params()
        .iter()
        .map(|(_, p)| p.to_dtype(DType::F64))
        .collect::<std::result::Result<_, _>>()?;
    let base = with_params(layer, &params)?;
    let mut rng = crate::device::rng("scratch.gradcheck", seed);
    let (y, cache) = base.boxed_clone().forward(&x)?;
    let r: Vec<f64> = (0..y.elem_count())
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let r = Tensor::from_vec(r, y.dims(), &Device::Cpu)?;
    let (dx, grads) = base.backward(&r, &cache)?;
    let mut inputs = vec![("input".to_string(), x.clone())];
    inputs.extend(
        layer
            .params()
            .iter()
            .zip(&params)
            .map(|((n, _), p)| (n.to_string(), p.clone())),
    );
    let mut hand = vec![dx];
    hand.extend(grads);
    let loss = |ts: &[Tensor]| -> Result<Tensor> {
        let mut l = with_params(base.as_ref(), &ts[1..])?;
        let (y, _) = l.forward(&ts[0])?;
        Ok((y * &r)?.sum_all()?)
    };
    compare(
        &layer.name(),
        &inputs,
        &hand,
        &loss,
        None,
        relu_margin(&[cache])?,
        &mut rng,
    )
}

/// Checks softmax + cross-entropy on logits `z` `[N, K]`.
pub fn check_cross_entropy(z: &Tensor, labels: &[u32]) -> Result<Vec<Check>> {
    let z = z.to_dtype(DType::F64)?;
    let (_, cache) = cross_entropy(&z, labels)?;
    let hand = vec![cross_entropy_backward(&cache)?];
    let loss = |ts: &[Tensor]| -> Result<Tensor> { Ok(cross_entropy(&ts[0], labels)?.0) };
    let mut rng = crate::device::rng("scratch.gradcheck", 1);
    compare(
        "SoftmaxCrossEntropy",
        &[("logits".into(), z)],
        &hand,
        &loss,
        None,
        f64::INFINITY,
        &mut rng,
    )
}

/// Checks the L2 term (λ/2)‖W‖² on a weight.
pub fn check_l2(w: &Tensor, lambda: f64) -> Result<Vec<Check>> {
    let w = w.to_dtype(DType::F64)?;
    let hand = vec![super::softmax_ce::l2_grad(&w, lambda)?];
    let loss = |ts: &[Tensor]| -> Result<Tensor> { l2_penalty(&ts[0..1], lambda) };
    let mut rng = crate::device::rng("scratch.gradcheck", 2);
    compare(
        &format!("L2(λ={lambda})"),
        &[("weight".into(), w)],
        &hand,
        &loss,
        None,
        f64::INFINITY,
        &mut rng,
    )
}

/// Checks a whole network (CE + L2) at `x`, `labels`, in f64 on a copy of
/// it; `entries` per tensor are differenced (`None`: all). Rows are named
/// `Network` / `input` and `layers.{i}.{weight|bias}`.
pub fn check_network_sample(
    net: &Network,
    x: &Tensor,
    labels: &[u32],
    entries: Option<usize>,
    seed: u64,
) -> Result<Vec<Check>> {
    let mut base = net.clone();
    let params: Vec<Tensor> = net
        .params()
        .iter()
        .map(|p| p.to_dtype(DType::F64))
        .collect::<std::result::Result<_, _>>()?;
    base.set_params(params.clone())?;
    let x = x.to_dtype(DType::F64)?;
    let mut fwd = base.clone();
    let (z, caches) = fwd.forward(&x)?;
    let (_, cc) = cross_entropy(&z, labels)?;
    let (dx, grads) = fwd.backward(&cross_entropy_backward(&cc)?, &caches)?;
    let mut inputs = vec![("input".to_string(), x)];
    inputs.extend(net.param_names().into_iter().zip(params));
    let mut hand = vec![dx];
    hand.extend(grads);
    let loss = |ts: &[Tensor]| -> Result<Tensor> {
        let mut n = base.clone();
        n.set_params(ts[1..].to_vec())?;
        n.loss(&ts[0], labels)
    };
    let mut rng = crate::device::rng("scratch.gradcheck.network", seed);
    compare(
        "Network",
        &inputs,
        &hand,
        &loss,
        entries,
        relu_margin(&caches)?,
        &mut rng,
    )
}

fn random(
    rng: &mut StdRng,
    shape: (usize, usize),
    lo: f64,
    hi: f64,
    signed: bool,
) -> Result<Tensor> {
    let v: Vec<f64> = (0..shape.0 * shape.1)
        .map(|_| {
            let m = rng.random_range(lo..hi);
            if signed && rng.random::<bool>() {
                -m
            } else {
                m
            }
        })
        .collect();
    Ok(Tensor::from_vec(v, shape, &Device::Cpu)?)
}

/// The demonstration network of [`check_all`]: 6 → Linear 8 → BatchNorm →
/// ReLU → Dropout(0.25) → Linear 5 → Tanh → Linear 5 → Sigmoid → Linear 3,
/// λ = 0.01, f64.
pub fn demo_network(seed: u64) -> Result<Network> {
    crate::device::seed(seed);
    let d = DType::F64;
    let layers: Vec<Box<dyn Layer>> = vec![
        Box::new(Linear::new(6, 8, d)?),
        Box::new(BatchNorm1d::new(8, d)?),
        Box::new(Relu),
        Box::new(Dropout::with_seed(0.25, seed)?),
        Box::new(Linear::new(8, 5, d)?),
        Box::new(Tanh),
        Box::new(Linear::new(5, 5, d)?),
        Box::new(Sigmoid),
        Box::new(Linear::new(5, 3, d)?),
    ];
    Ok(Network::new(layers, 0.01))
}

/// Every scratch layer, softmax + CE, L2 and a whole network, all entries
/// differenced. Sets `nnlab::seed` (the demo network's weights).
pub fn check_all(seed: u64) -> Result<Vec<Check>> {
    let mut rng = crate::device::rng("scratch.gradcheck.inputs", seed);
    let x = random(&mut rng, (6, 5), -2.0, 2.0, false)?;
    let away = random(&mut rng, (6, 5), 0.1, 1.0, true)?; // |x| ≥ 0.1: away from ReLU's kink
    let w = random(&mut rng, (4, 5), -1.0, 1.0, false)?;
    let b = random(&mut rng, (1, 4), -1.0, 1.0, false)?.squeeze(0)?;
    let mut out = Vec::new();
    out.extend(check_layer(&Linear::from_tensors(w.clone(), b)?, &x, seed)?);
    out.extend(check_layer(&Relu, &away, seed)?);
    out.extend(check_layer(&Sigmoid, &x, seed)?);
    out.extend(check_layer(&Tanh, &x, seed)?);
    let mut bn = BatchNorm1d::new(5, DType::F64)?;
    bn.set_params(vec![
        random(&mut rng, (1, 5), 0.5, 1.5, false)?.squeeze(0)?,
        random(&mut rng, (1, 5), -0.5, 0.5, false)?.squeeze(0)?,
    ])?;
    out.extend(check_layer(&bn, &x, seed)?);
    bn.forward(&(&x * 2.0)?)?; // non-trivial running statistics
    bn.set_training(false);
    let mut eval = check_layer(&bn, &x, seed)?;
    eval.iter_mut().for_each(|c| c.layer.push_str(" eval"));
    out.extend(eval);
    out.extend(check_layer(&Dropout::with_seed(0.5, seed)?, &x, seed)?);
    let labels: Vec<u32> = (0..6).map(|i| (i % 4) as u32).collect();
    out.extend(check_cross_entropy(
        &random(&mut rng, (6, 4), -3.0, 3.0, false)?,
        &labels,
    )?);
    out.extend(check_l2(&w, 0.1)?);
    // a whole network, with a seed whose ReLU inputs stay ≥ 100·h from 0
    let labels: Vec<u32> = (0..8).map(|i| (i % 3) as u32).collect();
    for attempt in 0..50u64 {
        let net = demo_network(seed.wrapping_add(attempt))?;
        let x = random(&mut rng, (8, 6), -2.0, 2.0, false)?;
        let checks = check_network_sample(&net, &x, &labels, None, seed)?;
        if checks.iter().all(|c| c.kink_margin >= 100.0 * H) {
            out.extend(checks);
            return Ok(out);
        }
    }
    Err(Error::config(
        "gradcheck",
        "no network draw kept every ReLU input ≥ 1e-3 from 0 in 50 attempts",
    ))
}

/// The table: `layer, param, numel, checked, max_abs_err, max_rel_err,
/// max_abs_err_autograd, max_rel_err_autograd, kink_margin`.
pub fn to_dataframe(checks: &[Check]) -> Result<DataFrame> {
    let col_s = |n: &str, f: &dyn Fn(&Check) -> String| {
        Column::new(n.into(), checks.iter().map(f).collect::<Vec<_>>())
    };
    let col_f = |n: &str, f: &dyn Fn(&Check) -> f64| {
        Column::new(n.into(), checks.iter().map(f).collect::<Vec<_>>())
    };
    let col_u = |n: &str, f: &dyn Fn(&Check) -> u64| {
        Column::new(n.into(), checks.iter().map(f).collect::<Vec<_>>())
    };
    Ok(DataFrame::new(
        checks.len(),
        vec![
            col_s("layer", &|c| c.layer.clone()),
            col_s("param", &|c| c.param.clone()),
            col_u("numel", &|c| c.numel as u64),
            col_u("checked", &|c| c.checked as u64),
            col_f("max_abs_err", &|c| c.max_abs_err),
            col_f("max_rel_err", &|c| c.max_rel_err),
            col_f("max_abs_err_autograd", &|c| c.max_abs_err_autograd),
            col_f("max_rel_err_autograd", &|c| c.max_rel_err_autograd),
            col_f("kink_margin", &|c| c.kink_margin),
        ],
    )?)
}

impl Show for Vec<Check> {
    fn bundle(&self) -> MimeBundle {
        table_bundle(to_dataframe(self), 60, &self.headline())
    }
    fn headline(&self) -> String {
        let worst = |f: fn(&Check) -> f64| self.iter().map(f).fold(0.0, f64::max);
        format!(
            "gradcheck: {} checks, max rel err {:.1e} (finite differences), {:.1e} (autograd)",
            self.len(),
            worst(|c| c.max_rel_err),
            worst(|c| c.max_rel_err_autograd)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_layer_and_the_network_within_1e_6() -> crate::TestResult {
        let checks = check_all(3)?;
        let layers: Vec<&str> = checks.iter().map(|c| c.layer.as_str()).collect();
        for want in [
            "Linear(5→4)",
            "ReLU",
            "Sigmoid",
            "Tanh",
            "BatchNorm1d(5)",
            "BatchNorm1d(5) eval",
            "Dropout(0.5)",
            "SoftmaxCrossEntropy",
            "L2(λ=0.1)",
            "Network",
        ] {
            assert!(layers.contains(&want), "{want} missing from {layers:?}");
        }
        for c in &checks {
            assert!(c.max_rel_err <= 1e-6, "{c:?}");
            assert!(c.max_rel_err_autograd <= 1e-6, "{c:?}");
            assert_eq!(c.checked, c.numel);
        }
        let net_rows = checks.iter().filter(|c| c.layer == "Network").count();
        assert_eq!(net_rows, 1 + 10); // input + 4 Linear × 2 + BatchNorm × 2
        let df = to_dataframe(&checks)?;
        assert_eq!(df.height(), checks.len());
        assert_eq!(df.width(), 9);
        Ok(())
    }

    #[test]
    fn a_wrong_backward_is_caught() -> crate::TestResult {
        // a layer whose backward forgets the factor 2 of y = 2x
        #[derive(Clone)]
        struct Wrong;
        impl Layer for Wrong {
            fn name(&self) -> String {
                "Wrong".into()
            }
            fn forward(&mut self, x: &Tensor) -> Result<(Tensor, Cache)> {
                Ok(((x * 2.0)?, Cache::Relu { x: x.clone() }))
            }
            fn backward(&self, dy: &Tensor, _: &Cache) -> Result<(Tensor, crate::scratch::Grads)> {
                Ok((dy.clone(), vec![]))
            }
        }
        let x = Tensor::new(&[[1.0f64, -2.0]], &Device::Cpu)?;
        let c = &check_layer(&Wrong, &x, 0)?[0];
        assert!(c.max_rel_err > 0.4 && c.max_rel_err_autograd > 0.4, "{c:?}");
        Ok(())
    }
}
