//! Every option of `Loss` against torch: values and gradients wrt the logits.
//!
//! The constants below were printed by this script (torch 2.x, float64):
//!
//! ```python
//! import torch, torch.nn.functional as F
//! torch.set_default_dtype(torch.float64)
//! z = torch.tensor([[1.0, -0.5, 0.3, 2.0], [0.2, 0.1, -1.2, 0.7], [-0.3, 1.5, 0.8, -0.9],
//!                   [2.2, -1.0, 0.0, 0.4], [0.5, 0.5, 1.7, -0.2]])
//! y = torch.tensor([0, 3, 1, 1, 2])
//! w = torch.tensor([0.5, 1.0, 2.0, 1.5])
//! cases = [
//!     ("ce_mean", dict(), "ce"),
//!     ("ce_sum", dict(reduction="sum"), "ce"),
//!     ("ce_weights", dict(weight=w), "ce"),
//!     ("ce_weights_sum", dict(weight=w, reduction="sum"), "ce"),
//!     ("ce_smooth", dict(label_smoothing=0.1), "ce"),
//!     ("ce_smooth_weights", dict(weight=w, label_smoothing=0.1), "ce"),
//!     ("ce_smooth_weights_sum", dict(weight=w, label_smoothing=0.2, reduction="sum"), "ce"),
//!     ("nll_mean", dict(), "nll"),
//!     ("nll_weights", dict(weight=w), "nll"),
//! ]
//! def fmt(v): return "[" + ", ".join(repr(x) for x in v) + "]"
//! for name, kw, kind in cases:
//!     zz = z.clone().requires_grad_(True)
//!     loss = F.cross_entropy(zz, y, **kw) if kind == "ce" else F.nll_loss(F.log_softmax(zz, 1), y, **kw)
//!     loss.backward()
//!     print(f"const {name.upper()}: (f64, [f64; 20]) = ({loss.item()!r}, {fmt(zz.grad.flatten().tolist())});")
//! for name, kw in [("none", dict()), ("none_weights", dict(weight=w)), ("none_smooth_weights", dict(weight=w, label_smoothing=0.1))]:
//!     print(f"const {name.upper()}: [f64; 5] = {fmt(F.cross_entropy(z, y, reduction='none', **kw).tolist())};")
//! ```

use candle_core::{DType, Device, Tensor, Var};
use nnlab::train::loss::Loss;

/// A test's result: any error fails the test with its message (`?` instead of `.unwrap()`).
type TestResult = Result<(), Box<dyn std::error::Error>>;

const CE_MEAN: (f64, [f64; 20]) = (
    1.3844667362713223,
    [
        -0.15493462775595943,
        0.010055443725961384,
        0.02237880156627985,
        0.12250038246371818,
        0.05262942318140956,
        0.0476210713841885,
        0.0129782559705336,
        -0.11322875053613167,
        0.018863252982389164,
        -0.08588396942450943,
        0.05666834371079976,
        0.010352372731320524,
        0.1518759431084884,
        -0.19380920182760505,
        0.01682833417567865,
        0.025104924543438052,
        0.034383743951662084,
        0.034383743951662084,
        -0.08584194983904635,
        0.01707446193572215,
    ],
);
const CE_SUM: (f64, [f64; 20]) = (
    6.922333681356611,
    [
        -0.774673138779797,
        0.050277218629806913,
        0.11189400783139924,
        0.6125019123185909,
        0.2631471159070478,
        0.23810535692094248,
        0.064891279852668,
        -0.5661437526806583,
        0.09431626491194581,
        -0.4294198471225471,
        0.2833417185539988,
        0.05176186365660262,
        0.7593797155424419,
        -0.9690460091380253,
        0.08414167087839323,
        0.12552462271719025,
        0.1719187197583104,
        0.1719187197583104,
        -0.4292097491952317,
        0.08537230967861076,
    ],
);
const CE_WEIGHTS: (f64, [f64; 20]) = (
    1.1925810935193335,
    [
        -0.06455609489831642,
        0.004189768219150576,
        0.009324500652616603,
        0.051041826026549234,
        0.06578677897676195,
        0.05952633923023562,
        0.016222819963167,
        -0.14153593817016458,
        0.0157193774853243,
        -0.07156997452042452,
        0.0472236197589998,
        0.008626977276100435,
        0.1265632859237403,
        -0.16150766818967088,
        0.014023611813065539,
        0.020920770452865042,
        0.0573062399194368,
        0.0573062399194368,
        -0.14306991639841055,
        0.02845743655953692,
    ],
);
const CE_WEIGHTS_SUM: (f64, [f64; 20]) = (
    7.155486561116001,
    [
        -0.3873365693898985,
        0.025138609314903457,
        0.05594700391569962,
        0.30625095615929543,
        0.39472067386057175,
        0.3571580353814137,
        0.097336919779002,
        -0.8492156290209875,
        0.09431626491194581,
        -0.4294198471225471,
        0.2833417185539988,
        0.05176186365660262,
        0.7593797155424419,
        -0.9690460091380253,
        0.08414167087839323,
        0.12552462271719025,
        0.3438374395166208,
        0.3438374395166208,
        -0.8584194983904634,
        0.17074461935722152,
    ],
);
const CE_SMOOTH: (f64, [f64; 20]) = (
    1.4234667362713225,
    [
        -0.1399346277559594,
        0.005055443725961383,
        0.01737880156627985,
        0.11750038246371818,
        0.047629423181409565,
        0.0426210713841885,
        0.007978255970533601,
        -0.09822875053613166,
        0.013863252982389163,
        -0.07088396942450942,
        0.051668343710799765,
        0.005352372731320524,
        0.1468759431084884,
        -0.17880920182760504,
        0.011828334175678648,
        0.02010492454343805,
        0.029383743951662083,
        0.029383743951662083,
        -0.07084194983904633,
        0.012074461935722152,
    ],
);
const CE_SMOOTH_WEIGHTS: (f64, [f64; 20]) = (
    1.2629549358623295,
    [
        -0.055489509133063886,
        0.0006515667853564962,
        0.002389842417175762,
        0.05244809993053163,
        0.06260699932714925,
        0.05436756690973169,
        0.0076191062971142165,
        -0.12459367253399516,
        0.014029028589124077,
        -0.05669255721676847,
        0.040070876919641465,
        0.002592651708002947,
        0.1276440347385005,
        -0.148878693227746,
        0.006040868775058845,
        0.015193789714186669,
        0.053073922589124585,
        0.05099058925579125,
        -0.1252047945334702,
        0.021140282688554283,
    ],
);
const CE_SMOOTH_WEIGHTS_SUM: (f64, [f64; 20]) = (
    7.999972669231953,
    [
        -0.27853754020686805,
        -0.017319807890625503,
        -0.02726889490959048,
        0.32312624300708415,
        0.35656331806521935,
        0.2952527675353666,
        -0.005907644213631391,
        -0.6459084413869546,
        0.0740320781575431,
        -0.2508908394786745,
        0.19750880448169875,
        -0.02065004316056726,
        0.772348701319564,
        -0.8174983095949266,
        -0.011651245577687106,
        0.05680085385304976,
        0.2930496315528743,
        0.26804963155287426,
        -0.6440380360111787,
        0.0829387729054299,
    ],
);
const NLL_MEAN: (f64, [f64; 20]) = (
    1.3844667362713223,
    [
        -0.15493462775595943,
        0.010055443725961384,
        0.02237880156627985,
        0.12250038246371818,
        0.05262942318140956,
        0.0476210713841885,
        0.0129782559705336,
        -0.11322875053613167,
        0.018863252982389164,
        -0.08588396942450943,
        0.05666834371079976,
        0.010352372731320524,
        0.1518759431084884,
        -0.19380920182760505,
        0.01682833417567865,
        0.025104924543438052,
        0.034383743951662084,
        0.034383743951662084,
        -0.08584194983904635,
        0.01707446193572215,
    ],
);
const NLL_WEIGHTS: (f64, [f64; 20]) = (
    1.1925810935193335,
    [
        -0.06455609489831642,
        0.004189768219150576,
        0.009324500652616603,
        0.051041826026549234,
        0.06578677897676195,
        0.05952633923023562,
        0.016222819963167,
        -0.14153593817016458,
        0.0157193774853243,
        -0.07156997452042452,
        0.0472236197589998,
        0.008626977276100435,
        0.1265632859237403,
        -0.16150766818967088,
        0.014023611813065539,
        0.020920770452865042,
        0.0573062399194368,
        0.0573062399194368,
        -0.14306991639841055,
        0.02845743655953692,
    ],
);
const NONE: [f64; 5] = [
    1.4902032144153274,
    0.835042027124424,
    0.5611016237073385,
    3.4752533427046797,
    0.5607334734048414,
];
const NONE_WEIGHTS: [f64; 5] = [
    0.7451016072076637,
    1.252563040686636,
    0.5611016237073385,
    3.4752533427046797,
    1.1214669468096827,
];
const NONE_SMOOTH_WEIGHTS: [f64; 5] = [
    0.8918668482888134,
    1.3479369900085254,
    0.722629164300022,
    3.4196346762722967,
    1.1956619363043197,
];

const Z: [[f64; 4]; 5] = [
    [1.0, -0.5, 0.3, 2.0],
    [0.2, 0.1, -1.2, 0.7],
    [-0.3, 1.5, 0.8, -0.9],
    [2.2, -1.0, 0.0, 0.4],
    [0.5, 0.5, 1.7, -0.2],
];
const Y: [u32; 5] = [0, 3, 1, 1, 2];
const W: [f32; 4] = [0.5, 1.0, 2.0, 1.5];

fn logits() -> Var {
    Var::new(&Z, &Device::Cpu).unwrap()
}

fn target() -> Tensor {
    Tensor::new(&Y, &Device::Cpu).unwrap()
}

fn close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * w.abs().max(1.0),
            "{what}[{i}]: got {g}, torch {w}"
        );
    }
}

/// The loss value and its gradient wrt the logits (through log_softmax for NLL).
fn check(name: &str, loss: Loss, log_softmax_first: bool, want: (f64, [f64; 20])) {
    let z = logits();
    let out = if log_softmax_first {
        candle_nn::ops::log_softmax(z.as_tensor(), 1).unwrap()
    } else {
        z.as_tensor().clone()
    };
    let l = loss.forward(&out, &target()).unwrap();
    assert_eq!(l.dims(), &[] as &[usize], "{name}: scalar");
    close(name, &[l.to_scalar::<f64>().unwrap()], &[want.0], 1e-12);
    let g = l.backward().unwrap();
    let g = g
        .get(z.as_tensor())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    close(&format!("{name} grad"), &g, &want.1, 1e-12);
}

#[test]
fn cross_entropy_against_torch() {
    check("ce_mean", Loss::cross_entropy(), false, CE_MEAN);
    check("ce_sum", Loss::cross_entropy().sum(), false, CE_SUM);
    check(
        "ce_weights",
        Loss::cross_entropy().weights(&W),
        false,
        CE_WEIGHTS,
    );
    check(
        "ce_weights_sum",
        Loss::cross_entropy().weights(&W).sum(),
        false,
        CE_WEIGHTS_SUM,
    );
    check(
        "ce_smooth",
        Loss::cross_entropy().label_smoothing(0.1),
        false,
        CE_SMOOTH,
    );
    check(
        "ce_smooth_weights",
        Loss::cross_entropy().weights(&W).label_smoothing(0.1),
        false,
        CE_SMOOTH_WEIGHTS,
    );
    check(
        "ce_smooth_weights_sum",
        Loss::cross_entropy().weights(&W).label_smoothing(0.2).sum(),
        false,
        CE_SMOOTH_WEIGHTS_SUM,
    );
}

#[test]
fn nll_on_log_softmax_against_torch() {
    check("nll_mean", Loss::nll(), true, NLL_MEAN);
    check("nll_weights", Loss::nll().weights(&W), true, NLL_WEIGHTS);
    // torch's nll_loss has no label smoothing; on log-probabilities ours is
    // cross-entropy's (log_softmax of log-probabilities is the identity).
    check(
        "nll_smooth_weights",
        Loss::nll().weights(&W).label_smoothing(0.1),
        true,
        CE_SMOOTH_WEIGHTS,
    );
}

#[test]
fn per_sample_against_torch() -> TestResult {
    let z = logits();
    let per = |l: Loss| {
        l.per_sample(z.as_tensor(), &target())
            .unwrap()
            .to_vec1::<f64>()
            .unwrap()
    };
    close("none", &per(Loss::cross_entropy()), &NONE, 1e-12);
    close(
        "none (sum ignored)",
        &per(Loss::cross_entropy().sum()),
        &NONE,
        1e-12,
    );
    close(
        "none_weights",
        &per(Loss::cross_entropy().weights(&W)),
        &NONE_WEIGHTS,
        1e-12,
    );
    close(
        "none_smooth_weights",
        &per(Loss::cross_entropy().weights(&W).label_smoothing(0.1)),
        &NONE_SMOOTH_WEIGHTS,
        1e-12,
    );
    Ok(())
}

#[test]
fn f32_outputs_and_u8_targets() -> TestResult {
    let z = logits().as_tensor().to_dtype(DType::F32)?;
    let y = target().to_dtype(DType::U8)?;
    let l = Loss::cross_entropy()
        .weights(&W)
        .label_smoothing(0.1)
        .forward(&z, &y)?;
    assert_eq!(l.dtype(), DType::F32);
    close(
        "f32",
        &[l.to_scalar::<f32>()? as f64],
        &[CE_SMOOTH_WEIGHTS.0],
        1e-6,
    );
    Ok(())
}

#[test]
fn errors_name_the_value_and_the_shape() -> TestResult {
    let z = logits();
    let bad = Tensor::new(&[0u32, 3, 4, 1, 2], &Device::Cpu)?;
    let msg = Loss::cross_entropy()
        .forward(z.as_tensor(), &bad)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("target[2]") && msg.contains("class 4") && msg.contains("4 classes"),
        "{msg}"
    );
    let neg = Tensor::new(&[0i64, -1, 0, 1, 2], &Device::Cpu)?;
    let msg = Loss::nll()
        .forward(z.as_tensor(), &neg)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("target[1]") && msg.contains("class -1"),
        "{msg}"
    );
    let short = Tensor::new(&[0u32, 1, 2], &Device::Cpu)?;
    let msg = Loss::cross_entropy()
        .forward(z.as_tensor(), &short)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("shape mismatch") && msg.contains("[3]") && msg.contains("expected [5]"),
        "{msg}"
    );
    let flat = z.as_tensor().flatten_all()?;
    let msg = Loss::cross_entropy()
        .per_sample(&flat, &target())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("[20]") && msg.contains("[batch, classes]"),
        "{msg}"
    );
    let msg = Loss::cross_entropy()
        .weights(&[1.0, 2.0])
        .forward(z.as_tensor(), &target())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("2 class weights for 4 classes"), "{msg}");
    let msg = Loss::cross_entropy()
        .label_smoothing(1.5)
        .forward(z.as_tensor(), &target())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("label_smoothing") && msg.contains("1.5"),
        "{msg}"
    );
    let fy = target().to_dtype(DType::F32)?;
    let msg = Loss::cross_entropy()
        .forward(z.as_tensor(), &fy)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("integer class indices"), "{msg}");
    Ok(())
}
