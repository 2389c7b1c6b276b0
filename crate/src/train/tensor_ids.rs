//! Tensor ids that stay unique when a model built in one notebook cell is
//! trained in another.
//!
//! Candle's backward keys the graph and the gradients by `TensorId`, a
//! number from a counter in candle-core (`1, 2, 3, …`). evcxr links every
//! cell's library with its own copy of its dependencies (static linking,
//! its default; `:allow_static_linking 0` does not build with the current
//! toolchain), so each cell has its own counter, starting at 1. A model
//! whose weights got ids `w` from cell A's counter and is trained in cell B
//! meets B's counter on the way up: when B hands one of those numbers to a
//! tensor of a training step, Candle sees one node where there are two and
//! adds a gradient of one into the other (hw1's notebook, section 1.2's
//! first cell, `learners[2].fit(long_epochs)`, which trains on a learner
//! of section 1.1: `shape mismatch in add, lhs: [64, 1], rhs: [10]`), or
//! silently drops one.
//!
//! Before a training pass ([`crate::train::learner::Learner::fit`],
//! [`crate::train::gradients::grad_norms`]) [`issue_past`] moves the
//! counter of the running code's copy past the largest id of the model's
//! tensors (weights and BatchNorm buffers), by creating and dropping views
//! of a scalar, one id each:
//!
//! ```text
//! every tensor made during the pass: id > max{ id(p) : p a tensor of the model }
//! ```
//!
//! The step's other tensors (batches, activations, the loss) are made by
//! the pass itself, so no two nodes of its graph share an id. The
//! gap is what the other cell's counter issued beyond this one's: a
//! view costs ≈ 0.1 µs, a few million ids (a cell that trained for an hour)
//! well under a second, and nothing at all when the model was built by the
//! same copy (then the counter is already past it). (A model is built by
//! one call, in one cell: its own tensors never share an id.)
//!
//! The id's number is read from its `Debug` form, `TensorId(17)`, the only
//! way Candle shows it; should that form change, [`issue_past`] does
//! nothing (and its tests fail).

use candle_core::{DType, Device, Tensor};

use crate::models::model::Model;
use crate::Result;

/// The number inside `TensorId(n)`, or `None` if Candle's `Debug` form
/// is not that.
fn id_number(t: &Tensor) -> Option<usize> {
    format!("{:?}", t.id())
        .strip_prefix("TensorId(")?
        .strip_suffix(')')?
        .parse()
        .ok()
}

/// Moves this copy of Candle's id counter past every id of `model`'s
/// tensors; returns how many views it made (0: the counter was already
/// past the model).
pub(crate) fn issue_past(model: &Model) -> Result<usize> {
    let mut max = 0;
    for (_, t) in model.named_tensors() {
        let Some(n) = id_number(&t) else {
            return Ok(0);
        };
        max = max.max(n);
    }
    advance_past(max)
}

/// Creates and drops views of a scalar until this copy's next id is above
/// `max`; returns how many views it made.
fn advance_past(max: usize) -> Result<usize> {
    let probe = Tensor::zeros((), DType::F32, &Device::Cpu)?;
    let Some(mut next) = id_number(&probe) else {
        return Ok(0);
    };
    let mut made = 0;
    while next <= max {
        // one fresh id per view; ids of other threads' tensors only help
        let view = probe.unsqueeze(0)?;
        made += 1;
        next = id_number(&view).map_or(usize::MAX, |n| n + 1);
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::mlp::Mlp;

    #[test]
    fn reads_the_number_of_a_tensor_id() -> crate::TestResult {
        let a = Tensor::zeros((), DType::F32, &Device::Cpu)?;
        let b = a.unsqueeze(0)?;
        let (na, nb) = (
            id_number(&a).ok_or("no number")?,
            id_number(&b).ok_or("no number")?,
        );
        assert!(nb > na, "{na} then {nb}");
        Ok(())
    }

    #[test]
    fn the_next_tensor_gets_an_id_above_the_bound() -> crate::TestResult {
        let now = id_number(&Tensor::zeros((), DType::F32, &Device::Cpu)?).ok_or("no number")?;
        advance_past(now + 10_000)?;
        let next = id_number(&Tensor::zeros((), DType::F32, &Device::Cpu)?).ok_or("no number")?;
        assert!(next > now + 10_000, "{next} ≤ {}", now + 10_000);
        // below the counter already: no views made
        assert_eq!(advance_past(0)?, 0, "ids spent for nothing");
        assert_eq!(advance_past(next)?, 0, "ids spent for nothing");
        Ok(())
    }

    #[test]
    fn a_model_built_by_this_copy_costs_nothing_and_passes() -> crate::TestResult {
        let model = Mlp::from_json(
            r#"{"input_size": 4, "num_classes": 3, "layers": [{"type": "linear", "size": 5},
                {"type": "batch_norm"}, {"type": "relu"}]}"#,
        )?;
        let names: Vec<String> = model.named_tensors().into_iter().map(|(n, _)| n).collect();
        assert!(
            names.iter().any(|n| n.ends_with("running_var")),
            "{names:?}"
        );
        assert_eq!(issue_past(&model)?, 0, "ids spent for a model of this copy");
        Ok(())
    }
}
