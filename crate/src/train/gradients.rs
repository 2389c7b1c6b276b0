//! The gradient of every parameter on one batch, as its L2 norm: how the
//! gradient changes with depth (hw3's question "что происходит с градиентами
//! при увеличении глубины сети?") without Candle's `GradStore` in a cell.
//!
//! For the first batch `(x, y)` of `loader` (its epoch-0 order), in train mode
//! (BatchNorm uses the batch statistics, Dropout is on, as in `Learner::fit`):
//!
//! ```text
//! L = loss(model(x), y)            ‖∇_θ L‖₂ = sqrt(Σ_i (∂L/∂θ_i)²)   for every parameter θ
//! ```
//!
//! No parameter changes (no optimizer step). A parameter that the loss does
//! not reach gets norm 0.
//!
//! ```
//! use nnlab::prelude::*;
//! use nnlab::train::gradients::grad_norms;
//! let ds = Dataset::new("toy", "memory", vec!["a".into(), "b".into()], [1, 1, 2],
//!                       vec![255, 0, 0, 255], vec![0, 1], 255).unwrap();
//! let model = Mlp::from_json(r#"{"input_size": 2, "num_classes": 2, "layers": []}"#).unwrap();
//! let norms = grad_norms(&model, &Loader::new(ds, 2), &Loss::cross_entropy()).unwrap();
//! assert_eq!(norms.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(), ["layers.0.weight", "layers.0.bias"]);
//! assert!(norms.iter().all(|g| g.norm.is_finite()));
//! ```

use crate::data::loader::Loader;
use crate::models::model::Model;
use crate::train::loss::Loss;
use crate::{Error, Result};
use candle_core::DType;

/// The gradient norm of one parameter (torch's name, e.g. `layers.0.weight`).
#[derive(Clone, Debug, PartialEq)]
pub struct GradNorm {
    pub name: String,
    /// Number of scalars in the parameter.
    pub numel: usize,
    /// `‖∂L/∂θ‖₂`.
    pub norm: f64,
}

/// Gradient norms of every trainable parameter of `model` on the first batch
/// of `loader`, in torch's parameter order. An empty loader is an error that
/// names the loader.
pub fn grad_norms(model: &Model, loader: &Loader, loss: &Loss) -> Result<Vec<GradNorm>> {
    // a model built in another notebook cell: this cell's tensor ids (the
    // batch's too) above its own
    super::tensor_ids::issue_past(model)?;
    let batch = match loader.iter_epoch(0).next() {
        Some(b) => b?,
        None => {
            return Err(Error::config(
                "loader",
                format!(
                    "`{}` yielded no batch: expected at least one",
                    loader.dataset().name
                ),
            ))
        }
    };
    let x = batch.x.to_device(model.device())?;
    let y = batch.y.to_device(model.device())?;
    let out = model.forward_t(&x, true)?;
    let value = loss.forward(&out, &y)?;
    let grads = value.backward()?;
    let mut norms = Vec::new();
    for (name, var) in model.named_params() {
        let norm = match grads.get(var.as_tensor()) {
            Some(g) => g
                .to_dtype(DType::F64)?
                .sqr()?
                .sum_all()?
                .to_scalar::<f64>()?
                .sqrt(),
            None => 0.0,
        };
        norms.push(GradNorm {
            name,
            numel: var.elem_count(),
            norm,
        });
    }
    Ok(norms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Dataset;
    use crate::models::mlp::Mlp;

    /// Two samples, two features, two classes: the gradient of a linear
    /// classifier by hand, `∂L/∂W = (softmax(Wx + b) − onehot(y))ᵀ x / B`.
    #[test]
    fn linear_classifier_matches_the_formula() -> crate::TestResult {
        let ds = Dataset::new(
            "toy",
            "memory",
            vec!["a".into(), "b".into()],
            [1, 1, 2],
            vec![255, 51, 102, 255],
            vec![0, 1],
            255,
        )?;
        let model = Mlp::from_json(r#"{"input_size": 2, "num_classes": 2, "layers": []}"#)?;
        let norms = grad_norms(&model, &Loader::new(ds, 2), &Loss::cross_entropy())?;
        let sd = model.state_dict()?;
        let w: Vec<Vec<f32>> = sd[0].1.to_vec2()?;
        let b: Vec<f32> = sd[1].1.to_vec1()?;
        let xs = [[1.0f64, 0.2], [0.4, 1.0]];
        let ys = [0usize, 1];
        let (mut gw, mut gb) = ([[0.0f64; 2]; 2], [0.0f64; 2]);
        for (x, &y) in xs.iter().zip(&ys) {
            let z: Vec<f64> = (0..2)
                .map(|c| w[c][0] as f64 * x[0] + w[c][1] as f64 * x[1] + b[c] as f64)
                .collect();
            let m = z[0].max(z[1]);
            let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
            for c in 0..2 {
                let d = e[c] / (e[0] + e[1]) - if c == y { 1.0 } else { 0.0 };
                gb[c] += d / 2.0;
                for j in 0..2 {
                    gw[c][j] += d * x[j] / 2.0;
                }
            }
        }
        let nw = gw.iter().flatten().map(|v| v * v).sum::<f64>().sqrt();
        let nb = gb.iter().map(|v| v * v).sum::<f64>().sqrt();
        assert_eq!(norms.len(), 2);
        assert_eq!((norms[0].numel, norms[1].numel), (4, 2));
        assert!(
            (norms[0].norm - nw).abs() < 1e-5,
            "{} vs {nw}",
            norms[0].norm
        );
        assert!(
            (norms[1].norm - nb).abs() < 1e-5,
            "{} vs {nb}",
            norms[1].norm
        );
        Ok(())
    }

    /// Eight sigmoid layers: the first layer's gradient is orders of magnitude
    /// smaller than the last one's (vanishing gradients); with ReLU it is not.
    #[test]
    fn sigmoid_gradients_vanish_with_depth() -> crate::TestResult {
        let n = 64;
        let pixels: Vec<u8> = (0..n * 16)
            .map(|i| ((i * 37 + i / 16 * 11) % 256) as u8)
            .collect();
        let labels: Vec<u32> = (0..n as u32).map(|i| i % 4).collect();
        let ds = Dataset::new(
            "toy",
            "memory",
            (0..4).map(|c| c.to_string()).collect(),
            [1, 4, 4],
            pixels,
            labels,
            255,
        )?;
        let ratio = |act: &str| {
            crate::seed(0);
            let layers: Vec<String> = (0..8)
                .map(|_| format!(r#"{{"type": "linear", "size": 32}}, "{act}""#))
                .collect();
            let json = format!(
                r#"{{"input_size": 16, "num_classes": 4, "layers": [{}]}}"#,
                layers.join(", ")
            );
            let model = Mlp::from_json(&json).unwrap();
            let g =
                grad_norms(&model, &Loader::new(ds.clone(), 64), &Loss::cross_entropy()).unwrap();
            let weights: Vec<&GradNorm> = g.iter().filter(|g| g.name.ends_with("weight")).collect();
            weights[0].norm / weights[weights.len() - 1].norm
        };
        let (sigmoid, relu) = (ratio("sigmoid"), ratio("relu"));
        assert!(
            sigmoid < 1e-3,
            "first/last gradient norm with sigmoid: {sigmoid}"
        );
        assert!(relu > 100.0 * sigmoid, "relu {relu} vs sigmoid {sigmoid}");
        Ok(())
    }

    #[test]
    fn an_empty_loader_is_an_error_naming_it() -> crate::TestResult {
        let ds = Dataset::new(
            "empty",
            "memory",
            vec!["a".into()],
            [1, 1, 1],
            vec![],
            vec![],
            255,
        )?;
        let model = Mlp::from_json(r#"{"input_size": 1, "num_classes": 1, "layers": []}"#)?;
        let e = grad_norms(&model, &Loader::new(ds, 4), &Loss::cross_entropy())
            .unwrap_err()
            .to_string();
        assert!(e.contains("empty") && e.contains("no batch"), "{e}");
        Ok(())
    }
}
