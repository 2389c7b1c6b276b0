//! A training step's backward with the weight gradients of our ops kept
//! out of Candle's gradient accumulation.
//!
//! Candle's `Tensor::backward` adds every gradient an op returns into its
//! store as `sum = zeros_like(w) + dW` the first time: for an MLP's weights
//! (830 000 numbers in hw1's five layers) that is a zero-fill and an extra
//! pass over three arrays of their size every step. During
//! [`backward`] the ops with a weight and a bias (linear, the convolutions,
//! the fused convolution + pooling) hand the gradient of a weight that is a
//! variable to this module instead, and `backward` puts it in the store
//! afterwards: `dW` itself, or its sum with what Candle gathered
//! for the same weight through other ops (the L2 penalty).
//!
//! The numbers are those of Candle's own accumulation: `0 + a = a`, and a
//! sum of two terms does not depend on their order. (A weight reached
//! through three or more paths, one of them outside our ops, could see its
//! terms added in another order; no model of the course has one.)
//! Outside [`backward`] the ops return every gradient to Candle as before.

use std::cell::RefCell;
use std::collections::hash_map::Entry;
use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{Tensor, TensorId};

thread_local! {
    /// The weight gradients offered during the backward running on this thread.
    static CAPTURED: RefCell<Option<HashMap<TensorId, Tensor>>> = const { RefCell::new(None) };
}

#[cfg(test)]
thread_local! {
    /// How many weights the last [`backward`] on this thread kept aside.
    static LAST_CAPTURED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// `loss.backward()`, with the weight gradients our ops offer kept aside
/// and then put in the store.
pub fn backward(loss: &Tensor) -> crate::Result<GradStore> {
    let outer = CAPTURED.with(|c| c.replace(Some(HashMap::new())));
    let restore = Restore(Some(outer));
    let result = loss.backward();
    let captured = restore.finish();
    #[cfg(test)]
    LAST_CAPTURED.with(|c| c.set(captured.len()));
    let mut grads = result?;
    for (id, dw) in captured {
        let sum = match grads.get_id(id) {
            Some(other) => (other + &dw)?,
            None => dw,
        };
        grads.insert_id(id, sum);
    }
    Ok(grads)
}

/// Puts back the thread's outer capture (none, or an enclosing
/// [`backward`]'s), also when the backward unwinds. Holds `Some(outer)`
/// until it is put back.
struct Restore(Option<Option<HashMap<TensorId, Tensor>>>);

impl Restore {
    /// The gradients captured since [`backward`] began, the outer capture back.
    fn finish(mut self) -> HashMap<TensorId, Tensor> {
        let outer = self.0.take().flatten();
        CAPTURED.with(|c| c.replace(outer)).unwrap_or_default()
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        if let Some(outer) = self.0.take() {
            CAPTURED.with(|c| *c.borrow_mut() = outer);
        }
    }
}

/// The gradient `dw` of weight `w`, from an op's backward: kept aside
/// (`None` returned to Candle) when a [`backward`] runs on this thread and
/// `w` is a variable, else given back for Candle to accumulate.
pub(crate) fn offer(w: &Tensor, dw: Tensor) -> candle_core::Result<Option<Tensor>> {
    if !w.is_variable() {
        return Ok(Some(dw));
    }
    CAPTURED.with(|c| {
        let mut c = c.borrow_mut();
        let Some(map) = c.as_mut() else {
            return Ok(Some(dw));
        };
        match map.entry(w.id()) {
            Entry::Occupied(mut e) => {
                let sum = (e.get() + &dw)?;
                e.insert(sum);
            }
            Entry::Vacant(e) => {
                e.insert(dw);
            }
        }
        Ok(None)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{
        conv2d_max_pool, conv2d_relu, linear, linear_relu, Conv2dParams, LinearLayout,
    };
    use candle_core::{Device, Var};

    fn randn(shape: &[usize], seed: u64) -> crate::Result<Tensor> {
        // a fixed pseudo-random fill: the test needs no RNG state
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|i| {
                let z = (i as u64 + 1)
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(seed);
                ((z >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            })
            .collect();
        Ok(Tensor::from_vec(v, shape, &Device::Cpu)?)
    }

    /// Every gradient of `loss` from the capturing backward, bit for bit
    /// those of Candle's own.
    fn same_as_candles(loss: &Tensor, vars: &[&Var]) -> crate::TestResult {
        let theirs = loss.backward()?;
        let ours = backward(loss)?;
        for (i, v) in vars.iter().enumerate() {
            let a = theirs
                .get(v.as_tensor())
                .ok_or(format!("candle: no gradient for var {i}"))?;
            let b = ours
                .get(v.as_tensor())
                .ok_or(format!("captured: no gradient for var {i}"))?;
            assert_eq!(a.dims(), b.dims(), "var {i}");
            let (a, b) = (
                a.flatten_all()?.to_vec1::<f32>()?,
                b.flatten_all()?.to_vec1::<f32>()?,
            );
            assert!(
                a.iter()
                    .zip(&b)
                    .all(|(x, y)| x.to_bits() == y.to_bits() || (*x == 0.0 && *y == 0.0)),
                "var {i}: the gradients differ"
            );
        }
        Ok(())
    }

    #[test]
    fn a_cnn_with_a_penalty_and_a_shared_weight_gets_candles_gradients() -> crate::TestResult {
        let x = randn(&[4, 2, 8, 8], 1)?;
        let cw = Var::from_tensor(&randn(&[3, 2, 3, 3], 2)?)?;
        let cb = Var::from_tensor(&randn(&[3], 3)?)?;
        let w1 = Var::from_tensor(&randn(&[6, 48], 4)?)?;
        let b1 = Var::from_tensor(&randn(&[6], 5)?)?;
        // used twice: its two gradients are summed
        let w2 = Var::from_tensor(&randn(&[6, 6], 6)?)?;
        // a weight that is not a variable: its gradient goes on through Candle
        let v3 = Var::from_tensor(&randn(&[6, 4], 7)?)?;
        let cw2 = Var::from_tensor(&randn(&[3, 3, 3, 3], 12)?)?;
        let p = Conv2dParams {
            padding: 1,
            ..Default::default()
        };
        let h = conv2d_max_pool(&x, cw.as_tensor(), Some(cb.as_tensor()), p, (2, 2), true)?;
        let h = conv2d_relu(&h, cw2.as_tensor(), None, p)?;
        let h = h.flatten_from(1)?;
        let h = linear_relu(
            &h,
            w1.as_tensor(),
            Some(b1.as_tensor()),
            LinearLayout::OutIn,
        )?;
        let h = linear(&h, w2.as_tensor(), None, LinearLayout::OutIn)?;
        let h = linear_relu(&h, w2.as_tensor(), None, LinearLayout::OutIn)?;
        let w3 = (v3.as_tensor() * 2.0)?;
        let out = linear(&h, &w3, None, LinearLayout::InOut)?;
        let penalty = (w1.as_tensor().sqr()?.sum_all()? * 0.01)?;
        let loss = (out.sqr()?.mean_all()? + penalty)?;
        same_as_candles(&loss, &[&cw, &cb, &cw2, &w1, &b1, &w2, &v3])?;
        // the four variable weights went past Candle's accumulation
        assert_eq!(LAST_CAPTURED.with(|c| c.get()), 4);
        Ok(())
    }

    #[test]
    fn outside_a_capturing_backward_every_gradient_goes_to_candle() -> crate::TestResult {
        let w = Var::from_tensor(&randn(&[3, 5], 8)?)?;
        let x = randn(&[2, 5], 9)?;
        let loss = linear(&x, w.as_tensor(), None, LinearLayout::OutIn)?.sum_all()?;
        // a capturing backward first: afterwards the thread captures nothing
        backward(&loss)?;
        let g = loss.backward()?;
        assert!(g.get(w.as_tensor()).is_some());
        Ok(())
    }

    #[test]
    fn a_backward_that_unwinds_leaves_no_capture_behind() -> crate::TestResult {
        let w = Var::from_tensor(&randn(&[3, 5], 10)?)?;
        let x = randn(&[2, 5], 11)?;
        let loss = linear(&x, w.as_tensor(), None, LinearLayout::OutIn)?.sum_all()?;
        let unwound = std::panic::catch_unwind(|| {
            let outer = CAPTURED.with(|c| c.replace(Some(HashMap::new())));
            let _restore = Restore(Some(outer));
            panic!("an op's backward panicked");
        });
        assert!(unwound.is_err());
        assert!(CAPTURED.with(|c| c.borrow().is_none()));
        assert!(loss.backward()?.get(w.as_tensor()).is_some());
        Ok(())
    }
}
