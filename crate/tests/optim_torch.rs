//! Every optimizer against torch.optim: 60 steps on a 4→5→3 tanh MLP in f64,
//! final parameters equal to torch's within 1e-6 relative. The expected
//! numbers are in `fixtures/optim/expected.json`, made by
//! `fixtures/optim/make_expected.py` (torch 2.x, float64); the weights and
//! inputs come from the same closed formulas here and there.

use candle_core::{DType, Device, Tensor, Var};
use nnlab::train::optim::{optimizer_by_name, Adagrad, Adam, AdamW, Optimizer, RmsProp, Sgd};
use std::collections::HashMap;

/// A test's result: any error fails the test with its message (`?` instead of `.unwrap()`).
type TestResult = Result<(), Box<dyn std::error::Error>>;

const STEPS: usize = 60;
const B: usize = 6;

fn expected() -> serde_json::Value {
    serde_json::from_str(include_str!("fixtures/optim/expected.json")).unwrap()
}

fn tensor(rows: usize, cols: usize, f: impl Fn(usize, usize) -> f64, dtype: DType) -> Tensor {
    let v: Vec<f64> = (0..rows * cols).map(|i| f(i / cols, i % cols)).collect();
    Tensor::from_vec(v, (rows, cols), &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

/// The same initial parameters as `init()` in the script.
fn init(dtype: DType) -> Vec<(String, Var)> {
    let w1 = tensor(
        5,
        4,
        |i, j| (1.0 + 5.0 * i as f64 + j as f64).sin() * 0.5,
        dtype,
    );
    let b1 = tensor(1, 5, |_, i| (2.0 + i as f64).cos() * 0.1, dtype)
        .flatten_all()
        .unwrap();
    let w2 = tensor(
        3,
        5,
        |i, j| (0.5 + 3.0 * i as f64 + 2.0 * j as f64).sin() * 0.4,
        dtype,
    );
    let b2 = tensor(1, 3, |_, i| (0.3 + i as f64).cos() * 0.2, dtype)
        .flatten_all()
        .unwrap();
    [
        ("l1.weight", w1),
        ("l1.bias", b1),
        ("l2.weight", w2),
        ("l2.bias", b2),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_string(), Var::from_tensor(&t).unwrap()))
    .collect()
}

fn loss_of(ps: &[(String, Var)]) -> Tensor {
    let dtype = ps[0].1.dtype();
    let x = tensor(B, 4, |b, k| (0.7 * b as f64 + 1.3 * k as f64).cos(), dtype);
    let t = tensor(B, 3, |b, c| (0.9 * b as f64 - 0.4 * c as f64).sin(), dtype);
    let p = |i: usize| ps[i].1.as_tensor();
    let h = x
        .matmul(&p(0).t().unwrap())
        .unwrap()
        .broadcast_add(p(1))
        .unwrap()
        .tanh()
        .unwrap();
    let y = h
        .matmul(&p(2).t().unwrap())
        .unwrap()
        .broadcast_add(p(3))
        .unwrap();
    (y - t).unwrap().sqr().unwrap().mean_all().unwrap()
}

fn run(opt: &mut dyn Optimizer, ps: &[(String, Var)], steps: usize) {
    for _ in 0..steps {
        let grads = loss_of(ps).backward().unwrap();
        opt.step(&grads).unwrap();
    }
}

fn flat(ps: &[(String, Var)]) -> Vec<f64> {
    ps.iter()
        .flat_map(|(_, v)| {
            v.as_tensor()
                .to_dtype(DType::F64)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap()
        })
        .collect()
}

fn assert_close(name: &str, got: &[f64], want: &[f64], rel: f64) {
    assert_eq!(got.len(), want.len(), "{name}: parameter count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs() / w.abs().max(1e-3);
        assert!(
            err <= rel,
            "{name}[{i}]: got {g}, torch {w} (rel err {err:e})"
        );
    }
}

type Make = Box<dyn Fn() -> Box<dyn Optimizer>>;

fn configs() -> Vec<(&'static str, Make)> {
    vec![
        ("sgd", Box::new(|| Box::new(Sgd::new(0.1)))),
        (
            "sgd_momentum_dampening",
            Box::new(|| Box::new(Sgd::new(0.05).momentum(0.9).dampening(0.1))),
        ),
        (
            "sgd_nesterov",
            Box::new(|| Box::new(Sgd::new(0.05).momentum(0.9).nesterov(true))),
        ),
        (
            "sgd_weight_decay",
            Box::new(|| Box::new(Sgd::new(0.1).momentum(0.5).weight_decay(0.01))),
        ),
        ("adagrad", Box::new(|| Box::new(Adagrad::new(0.1)))),
        (
            "adagrad_decay_wd",
            Box::new(|| {
                Box::new(
                    Adagrad::new(0.1)
                        .lr_decay(0.01)
                        .weight_decay(0.01)
                        .initial_accumulator_value(0.1),
                )
            }),
        ),
        ("rmsprop", Box::new(|| Box::new(RmsProp::new(0.01)))),
        (
            "rmsprop_momentum",
            Box::new(|| Box::new(RmsProp::new(0.01).momentum(0.9))),
        ),
        (
            "rmsprop_centered",
            Box::new(|| Box::new(RmsProp::new(0.01).centered(true))),
        ),
        (
            "rmsprop_centered_momentum_wd",
            Box::new(|| {
                Box::new(
                    RmsProp::new(0.01)
                        .alpha(0.9)
                        .centered(true)
                        .momentum(0.5)
                        .weight_decay(0.01),
                )
            }),
        ),
        ("adam", Box::new(|| Box::new(Adam::new(0.01)))),
        (
            "adam_weight_decay",
            Box::new(|| Box::new(Adam::new(0.01).weight_decay(0.1))),
        ),
        (
            "adam_amsgrad",
            Box::new(|| Box::new(Adam::new(0.01).betas(0.8, 0.99).amsgrad(true))),
        ),
        ("adamw", Box::new(|| Box::new(AdamW::new(0.01)))),
        (
            "adamw_amsgrad",
            Box::new(|| Box::new(AdamW::new(0.01).weight_decay(0.1).amsgrad(true))),
        ),
    ]
}

#[test]
fn initial_loss_matches_torch() -> TestResult {
    let want = expected()["initial_loss"]
        .as_f64()
        .ok_or("None from expected()[\"initial_loss\"].as_f64()")?;
    let got = loss_of(&init(DType::F64)).to_scalar::<f64>()?;
    assert!(
        (got - want).abs() < 1e-14,
        "initial loss {got}, torch {want}"
    );
    Ok(())
}

#[test]
fn every_optimizer_matches_torch_f64() -> TestResult {
    let exp = expected();
    for (name, make) in configs() {
        let ps = init(DType::F64);
        let mut opt = make();
        opt.attach(ps.clone())?;
        run(opt.as_mut(), &ps, STEPS);
        let want: Vec<f64> = serde_json::from_value(exp[name]["params"].clone())?;
        assert_close(name, &flat(&ps), &want, 1e-6);
        let loss = loss_of(&ps).to_scalar::<f64>()?;
        let want_loss = exp[name]["loss"]
            .as_f64()
            .ok_or("None from exp[name][\"loss\"].as_f64()")?;
        assert!(
            (loss - want_loss).abs() <= 1e-9 * want_loss.max(1.0),
            "{name}: loss {loss}, torch {want_loss}"
        );
    }
    Ok(())
}

#[test]
fn every_optimizer_matches_torch_in_f32() -> TestResult {
    // f32 parameters computed in f32 against torch in float32 (`params_f32`).
    // Skipped: rmsprop_centered_momentum_wd, chaotic in f32 — in torch itself
    // a 1e-7 change of one initial weight moves the final weights by 320 %.
    let exp = expected();
    for (name, make) in configs()
        .into_iter()
        .filter(|(n, _)| *n != "rmsprop_centered_momentum_wd")
    {
        let ps = init(DType::F32);
        let mut opt = make();
        opt.attach(ps.clone())?;
        run(opt.as_mut(), &ps, STEPS);
        assert_eq!(ps[0].1.dtype(), DType::F32);
        let want: Vec<f64> = serde_json::from_value(exp[name]["params_f32"].clone())?;
        assert_close(name, &flat(&ps), &want, 1e-4);
    }
    Ok(())
}

#[test]
fn state_round_trip_continues_identically() -> TestResult {
    for (name, make) in configs() {
        let straight = init(DType::F64);
        let mut a = make();
        a.attach(straight.clone())?;
        run(a.as_mut(), &straight, 50);

        let ps = init(DType::F64);
        let mut b = make();
        b.attach(ps.clone())?;
        run(b.as_mut(), &ps, 25);
        let state: HashMap<String, Tensor> = b.state()?.into_iter().collect();
        assert_eq!(state["l1.weight.step"].to_scalar::<f64>()?, 25.0, "{name}");
        drop(b);
        // A fresh optimizer restored before attach (applied on attach) ...
        let mut c = make();
        c.load_state(&state)?;
        c.attach(ps.clone())?;
        run(c.as_mut(), &ps, 25);
        assert_eq!(
            flat(&ps),
            flat(&straight),
            "{name}: 25 + restore + 25 differs from 50 straight"
        );
        // ... and one restored after attach.
        let ps2 = init(DType::F64);
        let mut d = make();
        d.attach(ps2.clone())?;
        run(d.as_mut(), &ps2, 25);
        let st: HashMap<String, Tensor> = d.state()?.into_iter().collect();
        let mut e = make();
        e.attach(ps2.clone())?;
        e.load_state(&st)?;
        run(e.as_mut(), &ps2, 25);
        assert_eq!(flat(&ps2), flat(&straight), "{name}: restore after attach");
    }
    Ok(())
}

#[test]
fn state_names_and_errors() -> TestResult {
    let ps = init(DType::F64);
    let mut adam = Adam::new(0.01).amsgrad(true);
    adam.attach(ps.clone())?;
    run(&mut adam, &ps, 2);
    let state = adam.state()?;
    let names: Vec<&str> = state.iter().map(|(n, _)| n.as_str()).take(4).collect();
    assert_eq!(
        names,
        [
            "l1.weight.exp_avg",
            "l1.weight.exp_avg_sq",
            "l1.weight.max_exp_avg_sq",
            "l1.weight.step"
        ]
    );
    assert_eq!(state.len(), 16);
    assert_eq!(state[0].1.dims(), &[5, 4]);

    // SGD state loaded into Adam: the missing buffer is named.
    let mut sgd = Sgd::new(0.1).momentum(0.9);
    sgd.attach(ps.clone())?;
    let sgd_state: HashMap<String, Tensor> = sgd.state()?.into_iter().collect();
    let err = Adam::new(0.01).load_state(&sgd_state).and_then(|_| {
        let mut a = Adam::new(0.01);
        a.attach(ps.clone())?;
        a.load_state(&sgd_state)
    });
    assert!(err.unwrap_err().to_string().contains("l1.weight.exp_avg"));

    // A wrong shape names the entry and both shapes.
    let mut st: HashMap<String, Tensor> = adam.state()?.into_iter().collect();
    st.insert(
        "l1.bias.exp_avg".into(),
        Tensor::zeros(4, DType::F64, &Device::Cpu)?,
    );
    let mut fresh = Adam::new(0.01).amsgrad(true);
    fresh.attach(ps.clone())?;
    let msg = fresh.load_state(&st).unwrap_err().to_string();
    assert!(
        msg.contains("l1.bias.exp_avg") && msg.contains("[4]") && msg.contains("[5]"),
        "{msg}"
    );

    // An entry no parameter owns.
    let mut st: HashMap<String, Tensor> = adam.state()?.into_iter().collect();
    st.insert(
        "l3.weight.exp_avg".into(),
        Tensor::zeros(4, DType::F64, &Device::Cpu)?,
    );
    let msg = fresh.load_state(&st).unwrap_err().to_string();
    assert!(msg.contains("l3.weight.exp_avg"), "{msg}");
    Ok(())
}

#[test]
fn param_without_grad_is_skipped() -> TestResult {
    let ps = init(DType::F64);
    let frozen = Var::new(&[1.0f64, 2.0], &Device::Cpu)?;
    let mut all = ps.clone();
    all.push(("frozen".into(), frozen.clone()));
    let mut opt = Adam::new(0.01);
    opt.attach(all)?;
    run(&mut opt, &ps, 3);
    assert_eq!(frozen.as_tensor().to_vec1::<f64>()?, [1.0, 2.0]);
    let st: HashMap<String, Tensor> = opt.state()?.into_iter().collect();
    assert_eq!(st["frozen.step"].to_scalar::<f64>()?, 0.0);
    assert_eq!(st["l2.bias.step"].to_scalar::<f64>()?, 3.0);
    Ok(())
}

#[test]
fn names_defaults_and_by_name() -> TestResult {
    assert_eq!(
        Adam::new(1e-3).name(),
        "Adam(lr=0.001, betas=(0.9, 0.999), eps=1e-8)"
    );
    assert_eq!(
        AdamW::new(1e-3).name(),
        "AdamW(lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)"
    );
    assert_eq!(
        Sgd::new(0.1)
            .momentum(0.9)
            .dampening(0.1)
            .weight_decay(1e-4)
            .name(),
        "SGD(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.0001)"
    );
    assert_eq!(RmsProp::new(0.01).name(), "RMSprop(lr=0.01, alpha=0.99)");
    assert_eq!(Adagrad::new(0.01).name(), "Adagrad(lr=0.01)");
    for (n, want) in [
        ("sgd", "SGD(lr=0.5)"),
        ("momentum", "SGD(lr=0.5, momentum=0.9)"),
        ("adagrad", "Adagrad(lr=0.5)"),
        ("RMSprop", "RMSprop(lr=0.5, alpha=0.99)"),
        ("adam", "Adam(lr=0.5, betas=(0.9, 0.999), eps=1e-8)"),
        (
            "adamw",
            "AdamW(lr=0.5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)",
        ),
    ] {
        let opt = optimizer_by_name(n, 0.5)?;
        assert_eq!(opt.name(), want);
        assert_eq!(opt.lr(), 0.5);
    }
    let msg = optimizer_by_name("lbfgs", 0.1)
        .err()
        .ok_or("None from optimizer_by_name(\"lbfgs\", 0.1).err()")?
        .to_string();
    assert!(
        msg.contains("lbfgs") && msg.contains("sgd, momentum, adagrad, rmsprop, adam, adamw"),
        "{msg}"
    );

    let mut opt = optimizer_by_name("adam", 0.5)?;
    opt.set_lr(0.25);
    assert_eq!(opt.lr(), 0.25);
    assert!(opt.name().starts_with("Adam(lr=0.25,"));
    Ok(())
}

#[test]
fn invalid_hyperparameters_are_errors() -> TestResult {
    let ps = init(DType::F64);
    let msg = Sgd::new(0.1)
        .nesterov(true)
        .attach(ps.clone())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("nesterov") && msg.contains("momentum > 0"),
        "{msg}"
    );
    let msg = Adam::new(-1.0).attach(ps.clone()).unwrap_err().to_string();
    assert!(msg.contains("Adam lr") && msg.contains("-1"), "{msg}");
    let msg = Adam::new(0.1)
        .betas(1.0, 0.999)
        .attach(ps.clone())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("beta1"), "{msg}");
    let msg = RmsProp::new(0.1)
        .alpha(1.5)
        .attach(ps.clone())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("alpha"), "{msg}");
    let int = Var::from_tensor(&Tensor::new(&[1u32, 2], &Device::Cpu)?)?;
    let msg = Adam::new(0.1)
        .attach(vec![("idx".into(), int)])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("idx") && msg.contains("float"), "{msg}");
    let dup = vec![ps[0].clone(), ps[0].clone()];
    let msg = Sgd::new(0.1).attach(dup).unwrap_err().to_string();
    assert!(msg.contains("l1.weight") && msg.contains("twice"), "{msg}");
    Ok(())
}
