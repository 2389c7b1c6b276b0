//! Checks of a student's hw2 code written in notebook cells: layers
//! ([`linear`], [`relu`], [`batch_norm`]), the loss ([`cross_entropy`],
//! [`l2`]) and optimizers ([`optimizer`]). Each returns one [`Verdict`] and
//! never panics: student code runs under [`catch`].
//!
//! A layer is compared with the reference layer of this crate holding the
//! same parameters, in f64, on a fixed random input x `[6, in]` and a fixed
//! random upstream gradient r (so L = Σ y ⊙ r and dy = r):
//!
//! ```text
//! forward:   y           vs the reference's y          (shape, then every entry)
//! backward:  dx, ∂L/∂θ   vs the reference's             (count, shapes, entries)
//! finite differences: ∂L/∂θᵢ ≈ (L(θ + h eᵢ) − L(θ − h eᵢ)) / 2h on the student's own forward
//! agree:     |got − expected| ≤ 1e-8 · max(max |expected|, 1e-12)   (per tensor)
//! ```
//! ReLU inputs are kept ≥ 0.1 away from the kink; BatchNorm is also
//! compared in eval mode after one train step (running statistics). The
//! verdict names the first mismatch: layer, parameter, index, expected, got.
//!
//! An optimizer is stepped 25 times beside the reference optimizer from the
//! same parameters (`[3, 4]` and `[4]`, f64) with the same gradients (scales
//! 10⁻³…10²), each step from the reference's parameters.
//!
//! ```
//! use nnlab::scratch::{check, Linear, Relu};
//! use nnlab::scratch::optimizers::Adam;
//! use candle_core::DType;
//! assert!(check::linear(&Linear::new(5, 4, DType::F64).unwrap()).is_passed());
//! assert!(check::relu(&Relu).is_passed());
//! assert!(check::optimizer(&mut Adam::new(1e-2), &mut Adam::new(1e-2)).is_passed());
//! ```

use super::gradcheck::{self, H};
use super::optimizers::Optimizer;
use super::softmax_ce::{
    cross_entropy as ce_reference, cross_entropy_backward, l2_grad, l2_penalty,
};
use super::verdict::{catch, Verdict};
use super::{BatchNorm1d, Layer, Linear, Relu};
use crate::Result;
use candle_core::{DType, Device, Tensor};
use rand::Rng;
use std::cell::Cell;

/// Relative tolerance of every comparison with the reference.
pub const TOL: f64 = 1e-8;

/// Largest relative error accepted against finite differences.
pub const FD_TOL: f64 = 1e-6;

fn values(t: &Tensor) -> Result<Vec<f64>> {
    Ok(t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?)
}

/// `[2, 3]` from a flat index and the dims.
fn index(mut flat: usize, dims: &[usize]) -> String {
    let mut idx = vec![0; dims.len()];
    for (k, d) in dims.iter().enumerate().rev() {
        if *d > 0 {
            idx[k] = flat % d;
            flat /= d;
        }
    }
    format!("{idx:?}")
}

/// `None` when `got` agrees with `expected`, else the first mismatch as text.
fn mismatch(what: &str, expected: &Tensor, got: &Tensor) -> Result<Option<String>> {
    if expected.dims() != got.dims() {
        return Ok(Some(format!(
            "{what}: форма / shape {:?}, ожидалась / expected {:?}",
            got.dims(),
            expected.dims()
        )));
    }
    let (e, g) = (values(expected)?, values(got)?);
    let scale = e.iter().fold(1e-12f64, |a, v| a.max(v.abs()));
    for (i, (a, b)) in e.iter().zip(&g).enumerate() {
        if !b.is_finite() || (a - b).abs() > TOL * scale {
            let nan = if b.is_finite() {
                ""
            } else {
                " (не число / not finite)"
            };
            return Ok(Some(format!(
                "{what}{}: ожидалось / expected {a}, получено / got {b}{nan}",
                index(i, expected.dims())
            )));
        }
    }
    Ok(None)
}

fn randn(dims: &[usize], seed: u64, scale: f64) -> Result<Tensor> {
    let mut rng = crate::device::rng("scratch.check", seed);
    let n: usize = dims.iter().product();
    let v: Vec<f64> = (0..n)
        .map(|_| rng.random_range(-1.0..1.0) * scale)
        .collect();
    Ok(Tensor::from_vec(v, dims, &Device::Cpu)?)
}

/// Where a layer check is (for the message of a panic).
struct Stage(Cell<&'static str>);

/// Runs a layer check body under [`catch`]; a panic is a verdict naming the stage.
fn guarded(what: &str, body: impl FnOnce(&Stage) -> Result<Verdict>) -> Verdict {
    let stage = Stage(Cell::new("params"));
    match catch(|| body(&stage)) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => Verdict::failed(what, format!("{}: ошибка / error: {e}", stage.0.get())),
        Err(p) => Verdict::from_panic(what, stage.0.get(), &p),
    }
}

/// The student's parameters, checked against the expected names' count and f64.
fn params_f64(layer: &dyn Layer, expected: usize) -> std::result::Result<Vec<Tensor>, String> {
    let params: Vec<Tensor> = layer.params().into_iter().map(|(_, p)| p).collect();
    if params.len() != expected {
        return Err(format!(
            "params(): {} тензоров, ожидалось / expected {expected}",
            params.len()
        ));
    }
    if let Some(p) = params.iter().find(|p| p.dtype() != DType::F64) {
        return Err(format!(
            "параметры в {:?}: для проверки создайте слой с DType::F64 / build the layer in F64",
            p.dtype()
        ));
    }
    Ok(params)
}

/// Forward, backward and finite differences of `student` against `reference`
/// (same parameters) at `x`.
fn compare_layer(
    student: &dyn Layer,
    mut reference: Box<dyn Layer>,
    x: &Tensor,
    stage: &Stage,
    eval_too: bool,
) -> Result<Verdict> {
    let what = student.name();
    let names: Vec<&str> = reference.params().iter().map(|(n, _)| *n).collect();
    let mut s = student.boxed_clone();
    stage.0.set("forward");
    let (y, cache) = s.forward(x)?;
    let (y_ref, cache_ref) = reference.forward(x)?;
    if let Some(m) = mismatch("forward: y", &y_ref, &y)? {
        return Ok(Verdict::failed(what, m));
    }
    let r = randn(y_ref.dims(), 7, 1.0)?;
    stage.0.set("backward");
    let (dx, grads) = s.backward(&r, &cache)?;
    let (dx_ref, grads_ref) = reference.backward(&r, &cache_ref)?;
    if let Some(m) = mismatch("backward: ∂L/∂x", &dx_ref, &dx)? {
        return Ok(Verdict::failed(what, m));
    }
    if grads.len() != grads_ref.len() {
        return Ok(Verdict::failed(
            what,
            format!(
                "backward: {} градиентов параметров, ожидалось / expected {} ({})",
                grads.len(),
                grads_ref.len(),
                names.join(", ")
            ),
        ));
    }
    for ((g, g_ref), name) in grads.iter().zip(&grads_ref).zip(&names) {
        if let Some(m) = mismatch(&format!("backward: ∂L/∂{name}"), g_ref, g)? {
            return Ok(Verdict::failed(what, m));
        }
    }
    if eval_too {
        stage.0.set("forward (eval)");
        s.set_training(false);
        reference.set_training(false);
        let (y, _) = s.forward(x)?;
        let (y_ref, _) = reference.forward(x)?;
        if let Some(m) = mismatch(
            "forward в режиме eval (бегущие статистики / running statistics): y",
            &y_ref,
            &y,
        )? {
            return Ok(Verdict::failed(what, m));
        }
    }
    stage.0.set("finite differences");
    let checks = gradcheck::check_layer(student, x, 0)?;
    let mut worst: f64 = 0.0;
    for c in &checks {
        if c.kink_margin < 100.0 * H {
            continue;
        }
        if !(c.max_rel_err <= FD_TOL) {
            return Ok(Verdict::failed(
                what,
                format!("конечные разности / finite differences: ∂L/∂{} отн. ошибка / rel. error {:.2e} > {FD_TOL:.0e}", c.param, c.max_rel_err),
            ));
        }
        worst = worst.max(c.max_rel_err);
    }
    let params: Vec<String> = checks.iter().map(|c| c.param.clone()).collect();
    Ok(Verdict::passed(
        what,
        format!(
            "forward{} и backward совпадают с эталоном nnlab; конечные разности ({}): отн. ошибка ≤ {worst:.1e}",
            if eval_too { " (train и eval)" } else { "" },
            params.join(", ")
        ),
    ))
}

/// A fully connected layer: `params()` = weight `[out, in]`, bias `[out]`, in f64.
pub fn linear(layer: &dyn Layer) -> Verdict {
    let what = catch(|| layer.name()).unwrap_or_else(|_| "Linear".into());
    guarded(&what, |stage| {
        let p = match params_f64(layer, 2) {
            Ok(p) => p,
            Err(e) => return Ok(Verdict::failed(&what, e)),
        };
        let reference = match Linear::from_tensors(p[0].clone(), p[1].clone()) {
            Ok(l) => l,
            Err(e) => return Ok(Verdict::failed(&what, format!("params(): {e}"))),
        };
        let x = randn(&[6, p[0].dim(1)?], 1, 1.0)?;
        compare_layer(layer, Box::new(reference), &x, stage, false)
    })
}

/// ReLU (no parameters), at inputs ≥ 0.1 away from 0.
pub fn relu(layer: &dyn Layer) -> Verdict {
    let what = catch(|| layer.name()).unwrap_or_else(|_| "ReLU".into());
    guarded(&what, |stage| {
        if let Err(e) = params_f64(layer, 0) {
            return Ok(Verdict::failed(&what, e));
        }
        let v: Vec<f64> = values(&randn(&[6, 5], 2, 1.0)?)?
            .into_iter()
            .map(|v| v + 0.1 * v.signum())
            .collect();
        let x = Tensor::from_vec(v, (6, 5), &Device::Cpu)?;
        compare_layer(layer, Box::new(Relu), &x, stage, false)
    })
}

/// BatchNorm1d: `params()` = γ `[C]`, β `[C]`, in f64; checked in train
/// mode with γ, β set to random values, then in eval mode.
pub fn batch_norm(layer: &dyn Layer) -> Verdict {
    let what = catch(|| layer.name()).unwrap_or_else(|_| "BatchNorm1d".into());
    guarded(&what, |stage| {
        let p = match params_f64(layer, 2) {
            Ok(p) => p,
            Err(e) => return Ok(Verdict::failed(&what, e)),
        };
        let c = p[0].dim(0)?;
        let gamma = (randn(&[c], 3, 0.5)? + 1.0)?;
        let beta = randn(&[c], 4, 0.5)?;
        let mut student = layer.boxed_clone();
        stage.0.set("set_params");
        student.set_params(vec![gamma.clone(), beta.clone()])?;
        student.set_training(true);
        let mut reference = BatchNorm1d::new(c, DType::F64)?;
        reference.set_params(vec![gamma, beta])?;
        let x = (randn(&[6, c], 5, 2.0)? + 0.5)?;
        compare_layer(student.as_ref(), Box::new(reference), &x, stage, true)
    })
}

/// Softmax + cross-entropy: `f(z, labels)` returns (mean loss, ∂loss/∂z).
/// Logits include a row around 1000 (a softmax without the max shift
/// overflows there).
pub fn cross_entropy(f: fn(&Tensor, &[u32]) -> Result<(f64, Tensor)>) -> Verdict {
    let what = "CrossEntropy";
    guarded(what, |stage| {
        let z = randn(&[5, 4], 6, 3.0)?;
        let big = (randn(&[1, 4], 8, 1.0)? + 1000.0)?;
        let z = Tensor::cat(&[&z, &big], 0)?;
        let labels = [0u32, 3, 1, 2, 3, 1];
        stage.0.set("cross_entropy");
        let (loss, dz) = f(&z, &labels)?;
        let (ref_loss, cache) = ce_reference(&z, &labels)?;
        let ref_loss = ref_loss.to_scalar::<f64>()?;
        if !(loss.is_finite() && (loss - ref_loss).abs() <= TOL * ref_loss.abs().max(1e-12)) {
            let hint = if loss.is_finite() {
                ""
            } else {
                " — не число: вычтите максимум строки перед exp (устойчивый softmax)"
            };
            return Ok(Verdict::failed(
                what,
                format!("loss: ожидалось / expected {ref_loss}, получено / got {loss}{hint}"),
            ));
        }
        if let Some(m) = mismatch("∂L/∂z", &cross_entropy_backward(&cache)?, &dz)? {
            return Ok(Verdict::failed(what, m));
        }
        stage.0.set("finite differences");
        let zv = values(&z)?;
        let dzv = values(&dz)?;
        let mut worst: f64 = 0.0;
        let scale = dzv.iter().fold(gradcheck::REL_FLOOR, |a, v| a.max(v.abs()));
        for j in 0..zv.len() {
            let at = |d: f64| -> Result<f64> {
                let mut v = zv.clone();
                v[j] += d;
                Ok(f(&Tensor::from_vec(v, z.dims(), &Device::Cpu)?, &labels)?.0)
            };
            let fd = (at(H)? - at(-H)?) / (2.0 * H);
            worst = worst.max((fd - dzv[j]).abs() / scale);
        }
        if !(worst <= FD_TOL) {
            return Ok(Verdict::failed(what, format!("конечные разности / finite differences: отн. ошибка {worst:.2e} > {FD_TOL:.0e}")));
        }
        Ok(Verdict::passed(what, format!("loss и ∂L/∂z совпадают с эталоном nnlab (и при логитах ~1000); конечные разности: отн. ошибка ≤ {worst:.1e}")))
    })
}

/// L2: `f(weights, λ)` returns ((λ/2) Σ ‖W‖², [λW for each W]).
pub fn l2(f: fn(&[Tensor], f64) -> Result<(f64, Vec<Tensor>)>) -> Verdict {
    let what = "L2";
    guarded(what, |stage| {
        let ws = vec![randn(&[3, 4], 9, 1.0)?, randn(&[2, 3], 10, 1.0)?];
        let lambda = 0.01;
        stage.0.set("l2");
        let (loss, grads) = f(&ws, lambda)?;
        let expected = l2_penalty(&ws, lambda)?.to_scalar::<f64>()?;
        if !(loss.is_finite() && (loss - expected).abs() <= TOL * expected.abs()) {
            return Ok(Verdict::failed(
                what,
                format!("штраф / penalty: ожидалось / expected {expected}, получено / got {loss}"),
            ));
        }
        if grads.len() != ws.len() {
            return Ok(Verdict::failed(
                what,
                format!(
                    "{} градиентов для {} весов / gradients for weights",
                    grads.len(),
                    ws.len()
                ),
            ));
        }
        for (k, (w, g)) in ws.iter().zip(&grads).enumerate() {
            if let Some(m) = mismatch(&format!("∂L2/∂W{k}"), &l2_grad(w, lambda)?, g)? {
                return Ok(Verdict::failed(what, m));
            }
        }
        Ok(Verdict::passed(
            what,
            "штраф (λ/2)·Σ‖W‖² и градиенты λW совпадают с эталоном nnlab",
        ))
    })
}

/// Steps of `student` against `reference` (same hyperparameters), both fresh.
pub fn optimizer(student: &mut dyn Optimizer, reference: &mut dyn Optimizer) -> Verdict {
    let what = catch(|| student.name()).unwrap_or_else(|_| "optimizer".into());
    guarded(&what, |stage| {
        stage.0.set("step");
        let mut params = vec![randn(&[3, 4], 11, 1.0)?, randn(&[4], 12, 1.0)?];
        let names = ["params[0]", "params[1]"];
        for t in 1..=25usize {
            let scale = 10f64.powf(-3.0 + 5.0 * ((t * 7) % 25) as f64 / 24.0);
            let grads = vec![
                randn(&[3, 4], 100 + t as u64, scale)?,
                randn(&[4], 200 + t as u64, scale)?,
            ];
            let got = student.step(&params, &grads)?;
            let expected = reference.step(&params, &grads)?;
            if got.len() != expected.len() {
                return Ok(Verdict::failed(
                    &what,
                    format!(
                        "шаг / step {t}: {} тензоров, ожидалось / expected {}",
                        got.len(),
                        expected.len()
                    ),
                ));
            }
            for k in 0..expected.len() {
                // compare the update (new − old): the step is what the rule decides
                let du_ref = (&expected[k] - &params[k])?;
                let du = if got[k].dims() == params[k].dims() {
                    (&got[k] - &params[k])?
                } else {
                    got[k].clone()
                };
                if let Some(m) = mismatch(
                    &format!("шаг / step {t}, {}: новое значение − старое", names[k]),
                    &du_ref,
                    &du,
                )? {
                    return Ok(Verdict::failed(&what, m));
                }
            }
            params = expected;
        }
        let reference_name = reference.name();
        Ok(Verdict::passed(
            &what,
            format!("25 шагов совпадают с {reference_name} из nnlab (правила torch.optim)"),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::optimizers::{Adam, Momentum, Sgd};
    use crate::scratch::verdict::Outcome;
    use crate::scratch::{Cache, Grads};

    /// A Linear whose backward can be wrong in one place, or a `todo!()`.
    #[derive(Clone)]
    struct Student {
        inner: Linear,
        fault: &'static str,
    }

    impl Layer for Student {
        fn name(&self) -> String {
            "MyLinear(3→2)".into()
        }
        fn forward(&mut self, x: &Tensor) -> Result<(Tensor, Cache)> {
            if self.fault == "todo" {
                todo!("y = x·Wᵀ + b")
            }
            let (y, c) = self.inner.forward(x)?;
            if self.fault == "nan" {
                return Ok(((y * f64::NAN)?, c));
            }
            Ok((y, c))
        }
        fn backward(&self, dy: &Tensor, cache: &Cache) -> Result<(Tensor, Grads)> {
            let (dx, mut g) = self.inner.backward(dy, cache)?;
            if self.fault == "mean bias" {
                g[1] = (&g[1] / dy.dim(0)? as f64)?;
            }
            if self.fault == "no bias" {
                g.pop();
            }
            Ok((dx, g))
        }
        fn params(&self) -> Vec<(&'static str, Tensor)> {
            self.inner.params()
        }
        fn set_params(&mut self, params: Vec<Tensor>) -> Result<()> {
            self.inner.set_params(params)
        }
    }

    fn student(fault: &'static str) -> Student {
        Student {
            inner: Linear::new(3, 2, DType::F64).unwrap(),
            fault,
        }
    }

    #[test]
    fn layer_verdicts_name_layer_parameter_index() -> crate::TestResult {
        assert!(linear(&student("")).is_passed(), "{}", linear(&student("")));
        let v = linear(&student("mean bias"));
        assert_eq!(v.outcome, Outcome::Failed);
        assert!(
            v.detail
                .starts_with("backward: ∂L/∂bias[0]: ожидалось / expected"),
            "{v}"
        );
        let v = linear(&student("no bias"));
        assert!(
            v.detail
                .contains("1 градиентов параметров, ожидалось / expected 2 (weight, bias)"),
            "{v}"
        );
        let v = linear(&student("nan"));
        assert!(
            v.detail.starts_with("forward: y[0, 0]") && v.detail.contains("got NaN (не число"),
            "{v}"
        );
        let v = linear(&student("todo"));
        assert_eq!(
            v.to_string(),
            "✘ MyLinear(3→2): не реализовано / not implemented: y = x·Wᵀ + b"
        );
        let f32 = Student {
            inner: Linear::new(3, 2, DType::F32)?,
            fault: "",
        };
        assert!(
            linear(&f32).detail.contains("DType::F64"),
            "{}",
            linear(&f32)
        );
        // a layer with the wrong reference is a failed forward, not a panic
        assert_eq!(relu(&student("")).outcome, Outcome::Failed);
        Ok(())
    }

    #[test]
    fn batch_norm_passes_in_train_and_eval() -> crate::TestResult {
        let v = batch_norm(&BatchNorm1d::new(4, DType::F64)?);
        assert!(v.is_passed() && v.detail.contains("train и eval"), "{v}");
        Ok(())
    }

    fn ce_todo(_: &Tensor, _: &[u32]) -> Result<(f64, Tensor)> {
        todo!("softmax + CE")
    }

    fn ce_naive(z: &Tensor, labels: &[u32]) -> Result<(f64, Tensor)> {
        // no max shift: overflows on the row near 1000
        let e = z.exp()?;
        let p = e.broadcast_div(&e.sum_keepdim(1)?)?;
        let oh = crate::scratch::softmax_ce::onehot(labels, z.dim(1)?, z)?;
        let n = labels.len() as f64;
        let picked: f64 = (p.log()? * &oh)?.sum_all()?.to_scalar()?;
        Ok((-picked / n, ((p - oh)? / n)?))
    }

    fn ce_good(z: &Tensor, labels: &[u32]) -> Result<(f64, Tensor)> {
        let (l, c) = ce_reference(z, labels)?;
        Ok((l.to_scalar::<f64>()?, cross_entropy_backward(&c)?))
    }

    fn l2_half_missing(ws: &[Tensor], lambda: f64) -> Result<(f64, Vec<Tensor>)> {
        let mut s = 0.0;
        for w in ws {
            s += lambda * w.sqr()?.sum_all()?.to_scalar::<f64>()?; // forgot the 1/2
        }
        Ok((s, ws.iter().map(|w| (w * lambda).unwrap()).collect()))
    }

    #[test]
    fn loss_verdicts() {
        assert!(
            cross_entropy(ce_good).is_passed(),
            "{}",
            cross_entropy(ce_good)
        );
        assert_eq!(cross_entropy(ce_todo).outcome, Outcome::NotImplemented);
        let v = cross_entropy(ce_naive);
        assert!(v.detail.contains("вычтите максимум строки"), "{v}");
        let v = l2(l2_half_missing);
        assert!(v.detail.starts_with("штраф / penalty"), "{v}");
    }

    /// Adam without the bias correction (hw5's defect).
    struct Uncorrected(Vec<Tensor>, Vec<Tensor>);
    impl Optimizer for Uncorrected {
        fn name(&self) -> String {
            "my_adam".into()
        }
        fn step(&mut self, params: &[Tensor], grads: &[Tensor]) -> Result<Vec<Tensor>> {
            if self.0.is_empty() {
                self.0 = grads.iter().map(|g| g.zeros_like().unwrap()).collect();
                self.1 = self.0.clone();
            }
            let mut out = vec![];
            for i in 0..params.len() {
                self.0[i] = ((&self.0[i] * 0.9)? + (&grads[i] * 0.1)?)?;
                self.1[i] = ((&self.1[i] * 0.999)? + (grads[i].sqr()? * 0.001)?)?;
                out.push((&params[i] - (self.0[i].div(&(self.1[i].sqrt()? + 1e-8)?)? * 0.01)?)?);
            }
            Ok(out)
        }
    }

    #[test]
    fn optimizer_verdicts() {
        let v = optimizer(&mut Momentum::new(0.01, 0.9), &mut Momentum::new(0.01, 0.9));
        assert!(v.is_passed(), "{v}");
        let v = optimizer(&mut Uncorrected(vec![], vec![]), &mut Adam::new(0.01));
        assert!(v.detail.starts_with("шаг / step 1, params[0]"), "{v}");
        let v = optimizer(&mut Sgd::new(0.01), &mut Momentum::new(0.01, 0.9));
        assert!(v.detail.starts_with("шаг / step 2,"), "{v}");
    }
}
