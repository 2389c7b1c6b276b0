//! Tests of the convolution: forward and gradients against Candle's own
//! convolution and finite differences, the fused bias and ReLU, the f32
//! direct kernels against f64, row tiles, and the shape errors.

use super::tiling::tile_rows;
use super::*;
use candle_core::{DType, Device, Var};

use crate::ops::test_util::{grads_of, max_diff, rand, rel_diff};

/// (N, C, H, W, O, K, stride, padding, dilation)
const CASES: [(
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
); 8] = [
    (2, 3, 7, 6, 4, 3, 1, 1, 1),
    (1, 2, 9, 9, 3, 3, 2, 1, 1),
    (3, 1, 5, 5, 2, 1, 1, 0, 1),
    (2, 2, 11, 10, 3, 7, 1, 3, 1),
    (1, 4, 8, 8, 5, 3, 1, 2, 2),
    (4, 3, 6, 7, 2, 2, 2, 0, 1),
    (1, 1, 4, 4, 1, 3, 1, 0, 1),
    (5, 2, 8, 8, 3, 5, 2, 2, 1),
];

#[test]
fn forward_and_gradients_equal_candles_own_conv() -> crate::TestResult {
    for (i, &(n, c, h, w, o, k, s, pad, d)) in CASES.iter().enumerate() {
        let x = Var::from_tensor(&rand(&[n, c, h, w], i as u64))?;
        let wt = Var::from_tensor(&rand(&[o, c, k, k], 100 + i as u64))?;
        let p = Conv2dParams {
            stride: s,
            padding: pad,
            dilation: d,
        };
        let ours = conv2d(&x, &wt, None, p)?;
        let theirs = x.conv2d(&wt, pad, s, d, 1)?;
        assert_eq!(ours.dims(), theirs.dims(), "case {i}");
        assert!(max_diff(&ours, &theirs) < 1e-12, "case {i}: forward");
        // A loss that weighs every output differently.
        let r = rand(ours.dims(), 200 + i as u64);
        let g1 = (&ours * &r)?.sum_all()?.backward()?;
        // Candle's own backward fails on some odd sizes with stride 2
        // (its input gradient comes out one column short): those cases
        // are covered by the finite differences below.
        let Ok(g2) = (&theirs * &r)?.sum_all()?.backward() else {
            continue;
        };
        for (what, v) in [("input", &x), ("weight", &wt)] {
            let a = g1.get(v).ok_or("None from g1.get(v)")?;
            let b = g2.get(v).ok_or("None from g2.get(v)")?;
            assert!(
                max_diff(a, b) < 1e-11,
                "case {i}: {what} gradient differs by {}",
                max_diff(a, b)
            );
        }
    }
    Ok(())
}

#[test]
fn several_row_tiles_equal_candles_conv() -> crate::TestResult {
    // K·OW·OH above TILE_ELEMS: the column matrix is built in 2–3 bands
    for (i, &(n, c, h, o, k, s, pad)) in [
        (2, 8, 40, 3, 3, 1, 1),
        (1, 16, 50, 4, 3, 2, 1),
        (3, 30, 30, 2, 4, 1, 0),
    ]
    .iter()
    .enumerate()
    {
        let g = Geometry::new(c, h, h, k, k, s, pad, 1)
            .ok_or("None from Geometry::new(c, h, h, k, k, s, pad, 1)")?;
        assert!(tile_rows(&g) < g.oh, "case {i} fits one tile");
        let x = Var::from_tensor(&rand(&[n, c, h, h], 400 + i as u64))?;
        let wt = Var::from_tensor(&rand(&[o, c, k, k], 500 + i as u64))?;
        let p = Conv2dParams {
            stride: s,
            padding: pad,
            dilation: 1,
        };
        let ours = conv2d(&x, &wt, None, p)?;
        let theirs = x.conv2d(&wt, pad, s, 1, 1)?;
        assert!(max_diff(&ours, &theirs) < 1e-11, "case {i}: forward");
        let r = rand(ours.dims(), 600 + i as u64);
        let g1 = (&ours * &r)?.sum_all()?.backward()?;
        let g2 = (&theirs * &r)?.sum_all()?.backward()?;
        for (what, v) in [("input", &x), ("weight", &wt)] {
            let d = max_diff(
                g1.get(v).ok_or("None from g1.get(v)")?,
                g2.get(v).ok_or("None from g2.get(v)")?,
            );
            assert!(d < 1e-10, "case {i}: {what} gradient differs by {d}");
        }
    }
    Ok(())
}

#[test]
fn fused_relu_equals_a_separate_relu() -> crate::TestResult {
    for (i, &(n, c, h, w, o, k, s, pad, d)) in CASES.iter().enumerate() {
        let x = Var::from_tensor(&rand(&[n, c, h, w], i as u64))?;
        let wt = Var::from_tensor(&rand(&[o, c, k, k], 100 + i as u64))?;
        let b = Var::from_tensor(&rand(&[o], 300 + i as u64))?;
        let p = Conv2dParams {
            stride: s,
            padding: pad,
            dilation: d,
        };
        for bias in [Some(b.as_tensor()), None] {
            let ours = conv2d_relu(&x, &wt, bias, p)?;
            let theirs = crate::ops::relu(&conv2d(&x, &wt, bias, p)?)?;
            assert_eq!(max_diff(&ours, &theirs), 0.0, "case {i}: forward");
            let r = rand(ours.dims(), 200 + i as u64);
            let g1 = (&ours * &r)?.sum_all()?.backward()?;
            let g2 = (&theirs * &r)?.sum_all()?.backward()?;
            for (what, v) in [("input", &x), ("weight", &wt), ("bias", &b)] {
                if what == "bias" && bias.is_none() {
                    continue;
                }
                let d = max_diff(
                    g1.get(v).ok_or("None from g1.get(v)")?,
                    g2.get(v).ok_or("None from g2.get(v)")?,
                );
                assert!(d < 1e-12, "case {i}: {what} gradient differs by {d}");
            }
        }
    }
    Ok(())
}

#[test]
fn fused_bias_equals_a_broadcast_add() -> crate::TestResult {
    for (i, &(n, c, h, w, o, k, s, pad, d)) in CASES.iter().enumerate() {
        let x = Var::from_tensor(&rand(&[n, c, h, w], i as u64))?;
        let wt = Var::from_tensor(&rand(&[o, c, k, k], 100 + i as u64))?;
        let b = Var::from_tensor(&rand(&[o], 300 + i as u64))?;
        let p = Conv2dParams {
            stride: s,
            padding: pad,
            dilation: d,
        };
        let ours = conv2d(&x, &wt, Some(&b), p)?;
        let theirs = conv2d(&x, &wt, None, p)?.broadcast_add(&b.reshape((1, o, 1, 1))?)?;
        assert!(max_diff(&ours, &theirs) < 1e-12, "case {i}: forward");
        let r = rand(ours.dims(), 200 + i as u64);
        let g1 = (&ours * &r)?.sum_all()?.backward()?;
        let g2 = (&theirs * &r)?.sum_all()?.backward()?;
        for (what, v) in [("input", &x), ("weight", &wt), ("bias", &b)] {
            let d = max_diff(
                g1.get(v).ok_or("None from g1.get(v)")?,
                g2.get(v).ok_or("None from g2.get(v)")?,
            );
            assert!(d < 1e-11, "case {i}: {what} gradient differs by {d}");
        }
    }
    let e = conv2d(
        &rand(&[1, 2, 5, 5], 1),
        &rand(&[3, 2, 3, 3], 2),
        Some(&rand(&[2], 3)),
        Conv2dParams::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("bias") && e.contains("[3]"), "{e}");
    Ok(())
}

#[test]
fn gradients_equal_finite_differences() -> crate::TestResult {
    let (n, c, o, k) = (2, 2, 3, 3);
    for (h, w, s, pad) in [(5, 6, 1, 1), (5, 6, 2, 0), (7, 6, 2, 1), (6, 7, 2, 0)] {
        let x = Var::from_tensor(&rand(&[n, c, h, w], 7))?;
        let wt = Var::from_tensor(&rand(&[o, c, k, k], 8))?;
        let b = Var::from_tensor(&rand(&[o], 9))?;
        let p = Conv2dParams {
            stride: s,
            padding: pad,
            dilation: 1,
        };
        let y = conv2d(&x, &wt, Some(&b), p)?;
        let r = rand(y.dims(), 10);
        let loss = |x: &Tensor, wt: &Tensor, b: &Tensor| -> f64 {
            (conv2d(x, wt, Some(b), p).unwrap() * &r)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap()
        };
        let grads = (&y * &r)?.sum_all()?.backward()?;
        let eps = 1e-6;
        for (which, v) in [(0, &x), (1, &wt), (2, &b)] {
            let g = grads
                .get(v)
                .ok_or("no gradient for the variable")?
                .flatten_all()?
                .to_vec1::<f64>()?;
            let base = v.as_tensor().flatten_all()?.to_vec1::<f64>()?;
            for idx in (0..base.len()).step_by(3) {
                let bump = |delta: f64| {
                    let mut m = base.clone();
                    m[idx] += delta;
                    Tensor::from_vec(m, v.dims(), &Device::Cpu).unwrap()
                };
                let (plus, minus) = (bump(eps), bump(-eps));
                let f = |t: &Tensor| match which {
                    0 => loss(t, &wt, &b),
                    1 => loss(&x, t, &b),
                    _ => loss(&x, &wt, t),
                };
                let fd = (f(&plus) - f(&minus)) / (2.0 * eps);
                // relative error, with an absolute floor for near-zero gradients
                let err = (fd - g[idx]).abs() / (1.0 + g[idx].abs());
                assert!(
                    err < 1e-7,
                    "stride {s} pad {pad} param {which} index {idx}: {fd} vs {}",
                    g[idx]
                );
            }
        }
    }
    Ok(())
}

#[test]
fn f32_matches_f64_and_data_inputs_get_no_gradient() -> crate::TestResult {
    let x = rand(&[3, 2, 6, 6], 1);
    let wt = Var::from_tensor(&rand(&[4, 2, 3, 3], 2))?;
    let y64 = conv2d(&x, &wt, None, Conv2dParams::default())?;
    let y32 = conv2d(
        &x.to_dtype(DType::F32)?,
        &wt.to_dtype(DType::F32)?,
        None,
        Conv2dParams::default(),
    )?;
    assert!(max_diff(&y64, &y32.to_dtype(DType::F64)?) < 1e-5);
    let grads = y64.sum_all()?.backward()?;
    assert!(grads.get(&x).is_none());
    assert!(grads.get(&wt).is_some());
    Ok(())
}

#[test]
fn bad_shapes_are_errors() {
    let x = rand(&[1, 3, 4, 4], 1);
    let e = conv2d(&x, &rand(&[2, 2, 3, 3], 2), None, Conv2dParams::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("3 channels") && e.contains("expects 2"), "{e}");
    let e = conv2d(&x, &rand(&[2, 3, 5, 5], 2), None, Conv2dParams::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not fit"), "{e}");
    let e = conv2d(
        &rand(&[3, 4, 4], 1),
        &rand(&[2, 3, 3, 3], 2),
        None,
        Conv2dParams::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("[N, C, H, W]"), "{e}");
}

/// Issue 17: zero channels panicked in the direct kernel
/// (`chunks_exact(0)`); a padding whose arithmetic overflows wrapped.
#[test]
fn zero_channels_and_overflowing_padding_are_errors() -> crate::TestResult {
    for dtype in [candle_core::DType::F32, candle_core::DType::F64] {
        let x = candle_core::Tensor::zeros(&[1, 0, 4, 4], dtype, &candle_core::Device::Cpu)?;
        let w = candle_core::Tensor::zeros(&[2, 0, 3, 3], dtype, &candle_core::Device::Cpu)?;
        let e = conv2d(&x, &w, None, Conv2dParams::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("0 channels"), "{e}");
        let e = conv2d_max_pool(&x, &w, None, Conv2dParams::default(), (2, 2), false)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(e.contains("0 channels"), "{e}");
    }
    let x = rand(&[1, 1, 4, 4], 1);
    let p = Conv2dParams {
        padding: usize::MAX / 2 + 1,
        ..Default::default()
    };
    let e = conv2d(&x, &rand(&[1, 1, 3, 3], 2), None, p)
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not fit"), "{e}");
    Ok(())
}

/// f32 runs the direct kernels where the CPU has AVX2 + FMA (f64 always
/// runs im2col + gemm): the f32 forward, its backward and the two
/// gradient functions equal the f64 results to f32 precision, on shapes
/// with ragged row ends (masked lanes), channel counts that are not
/// multiples of the register tiles, several samples per weight-gradient
/// pass, batch 1, 1×1 to 7×7 kernels, a padding the direct input
/// gradient does not take (k = 3, pad 3: im2col), and 3×3 layers of 32+
/// channels in and out (Winograd).
#[test]
fn f32_direct_kernels_equal_f64() -> crate::TestResult {
    // (elsewhere than x86-64 the direct kernels never run)
    #[cfg(target_arch = "x86_64")]
    if std::env::var("NNLAB_CONV").map_or(true, |v| v != "im2col") {
        assert_eq!(
            direct::available(),
            crate::simd::level() >= crate::simd::Simd::Avx2,
            "the direct kernels run exactly where AVX2 + FMA is (and NNLAB_SIMD allows it)"
        );
    }
    // (N, C, H, W, O, K, padding, stride)
    for (i, &(n, c, h, w, o, k, pad, s)) in [
        (3, 5, 9, 37, 13, 3, 1, 1),
        (1, 16, 14, 14, 32, 3, 1, 1),
        (4, 3, 19, 7, 8, 4, 0, 1),
        (2, 1, 28, 28, 16, 3, 1, 1),
        (2, 9, 11, 17, 5, 5, 2, 1),
        (1, 4, 12, 12, 6, 7, 3, 1),
        (5, 7, 6, 6, 3, 1, 0, 1),
        (2, 6, 8, 8, 4, 3, 3, 1),
        (2, 4, 9, 9, 6, 3, 1, 2),
        (3, 2, 33, 33, 9, 2, 1, 1),
        // two bands of rows, two channel blocks (32 + 16)
        (2, 3, 40, 40, 48, 3, 1, 1),
        // a two-vector block with 4 padded channels
        (1, 2, 10, 10, 20, 3, 1, 1),
        // 32+ channels in and out: the forward and the input gradient by
        // Winograd (odd output width; padding 0)
        (2, 32, 12, 13, 40, 3, 1, 1),
        (1, 33, 9, 9, 32, 3, 0, 1),
    ]
    .iter()
    .enumerate()
    {
        let x64 = rand(&[n, c, h, w], 700 + i as u64);
        let w64 = rand(&[o, c, k, k], 800 + i as u64);
        let b64 = rand(&[o], 900 + i as u64);
        let p = Conv2dParams {
            stride: s,
            padding: pad,
            dilation: 1,
        };
        let f32_ = |t: &Tensor| Var::from_tensor(&t.to_dtype(DType::F32).unwrap()).unwrap();
        let (x32, w32, b32) = (f32_(&x64), f32_(&w64), f32_(&b64));
        let (x, wt, b) = (
            Var::from_tensor(&x64)?,
            Var::from_tensor(&w64)?,
            Var::from_tensor(&b64)?,
        );
        for relu in [false, true] {
            let run = |x: &Tensor, w: &Tensor, b: &Tensor| {
                if relu {
                    conv2d_relu(x, w, Some(b), p).unwrap()
                } else {
                    conv2d(x, w, Some(b), p).unwrap()
                }
            };
            let y64 = run(&x, &wt, &b);
            let y32 = run(&x32, &w32, &b32);
            let d = rel_diff(&y32, &y64);
            assert!(d < 1e-5, "case {i} relu {relu}: forward differs by {d}");
            let r = rand(y64.dims(), 950 + i as u64);
            let (g64, g32) = (grads_of(&y64, &r), grads_of(&y32, &r));
            for (what, v64, v32) in [
                ("input", &x, &x32),
                ("weight", &wt, &w32),
                ("bias", &b, &b32),
            ] {
                let d = rel_diff(
                    g32.get(v32).ok_or("None from g32.get(v32)")?,
                    g64.get(v64).ok_or("None from g64.get(v64)")?,
                );
                assert!(
                    d < 1e-5,
                    "case {i} relu {relu}: {what} gradient differs by {d}"
                );
            }
        }
        let dy = rand(
            &[n, o, (h + 2 * pad - k) / s + 1, (w + 2 * pad - k) / s + 1],
            990 + i as u64,
        );
        let dy32 = dy.to_dtype(DType::F32)?;
        let d = rel_diff(
            &conv2d_input_grad(&dy32, &w32, (h, w), p)?,
            &conv2d_input_grad(&dy, &w64, (h, w), p)?,
        );
        assert!(d < 1e-5, "case {i}: conv2d_input_grad differs by {d}");
        let d = rel_diff(
            &conv2d_weight_grad(&x32, &dy32, (k, k), p)?,
            &conv2d_weight_grad(&x64, &dy, (k, k), p)?,
        );
        assert!(d < 1e-5, "case {i}: conv2d_weight_grad differs by {d}");
    }
    Ok(())
}

#[test]
fn gradient_functions_check_their_shapes() -> crate::TestResult {
    let p = Conv2dParams {
        padding: 1,
        ..Default::default()
    };
    let (x, w, dy) = (
        rand(&[2, 3, 8, 8], 1),
        rand(&[4, 3, 3, 3], 2),
        rand(&[2, 4, 8, 8], 3),
    );
    let e = conv2d_input_grad(&dy, &w, (9, 8), p)
        .unwrap_err()
        .to_string();
    assert!(e.contains("9×8 input") && e.contains("8×8"), "{e}");
    let e = conv2d_weight_grad(&x, &dy.narrow(0, 0, 1)?, (3, 3), p)
        .unwrap_err()
        .to_string();
    assert!(e.contains("2 samples") && e.contains("1"), "{e}");
    let e = conv2d_input_grad(&dy, &rand(&[5, 3, 3, 3], 2), (8, 8), p)
        .unwrap_err()
        .to_string();
    assert!(e.contains("4 channels") && e.contains("weight 5"), "{e}");
    let e = conv2d_weight_grad(&rand(&[2, 3, 8], 1), &dy, (3, 3), p)
        .unwrap_err()
        .to_string();
    assert!(e.contains("input of shape [2, 3, 8]"), "{e}");
    Ok(())
}

/// The direct kernels of every SIMD level the CPU has (AVX2 + FMA and
/// AVX-512F on an AVX-512 machine, whatever `NNLAB_SIMD` says), called
/// directly, against a plain f64 loop: the forward with bias and ReLU,
/// the input gradient (the forward of `dy` with the flipped kernel) and the
/// weight gradient, on ragged rows (masked lanes), channel counts off the
/// tiles (1, 3, 5, 13, 20, 40: one and two 16-channel halves, padded
/// channels), several bands and 1×1 to 5×5 kernels. 3×3 layers with 32 or
/// more input channels run both ways, by the Winograd plan and by the
/// direct tile: odd output sizes (a ragged last tile row and column),
/// padding 0 and 1, several bands of tiles, 7×7 outputs. Every level gives
/// the same bits as the first (so a notebook's numbers do not depend on
/// whether its machine has AVX-512).
#[test]
fn direct_kernels_of_each_simd_level_equal_a_plain_loop() -> crate::TestResult {
    use super::direct::{DirectConv, WeightGrad, Weights};
    use crate::simd::Simd;
    use std::mem::MaybeUninit;
    let levels: Vec<Simd> = [Simd::Avx2, Simd::Avx512]
        .into_iter()
        .filter(|&s| s <= crate::simd::cpu())
        .collect();
    // (C, H, W, O, K, padding)
    let cases = [
        (3, 9, 37, 13, 3, 1),
        (1, 28, 28, 16, 3, 1),
        (5, 11, 17, 5, 5, 2),
        (4, 12, 12, 20, 1, 0),
        (2, 40, 40, 40, 3, 1),
        (13, 7, 9, 3, 2, 0),
        (1, 5, 3, 1, 3, 1),
        // Winograd: odd outputs, pad 0, several bands, 7×7, 1×1 outputs,
        // rows of fewer than 8 tiles and an odd number of tile rows;
        // 33 → 16 channels: the forward by the plan, the input gradient
        // (16 rows) by the direct tile
        (32, 9, 13, 40, 3, 1),
        (40, 11, 12, 33, 3, 0),
        (64, 70, 20, 32, 3, 1),
        (32, 7, 7, 64, 3, 1),
        (32, 3, 3, 32, 3, 0),
        (33, 10, 10, 16, 3, 1),
        // 8 tiles a row (two rows a vector with AVX-512), bands of 6 + 2 rows
        (32, 16, 16, 32, 3, 1),
    ];
    let winograd_on = super::winograd::enabled();
    // the bits of each case's three results at the first level, which every
    // other level must reproduce exactly
    let mut first_bits = std::collections::HashMap::new();
    let bits = |v: &[MaybeUninit<f32>]| -> Vec<u32> {
        // SAFETY: the kernels wrote every element
        v.iter()
            .map(|x| unsafe { x.assume_init() }.to_bits())
            .collect()
    };
    let mut same_bits = |key: (usize, bool, &'static str), b: Vec<u32>, simd: Simd| {
        let first = first_bits.entry(key).or_insert_with(|| b.clone());
        assert!(
            *first == b,
            "{simd:?} case {} (Winograd {}): the {} differs from the first level's bits",
            key.0,
            key.1,
            key.2
        );
    };
    for simd in levels {
        for (i, wino) in (0..cases.len()).flat_map(|i| [(i, true), (i, false)]) {
            let (c, h, w, o, k, pad) = cases[i];
            if !(wino || k == 3 && c >= super::winograd::MIN_CHANNELS) {
                continue;
            }
            let seed = 1000 + 10 * i as u64;
            let xs: Vec<f32> = rand(&[c * h * w], seed).to_dtype(DType::F32)?.to_vec1()?;
            let ws: Vec<f32> = rand(&[o * c * k * k], seed + 1)
                .to_dtype(DType::F32)?
                .to_vec1()?;
            let bs: Vec<f32> = rand(&[o], seed + 2).to_dtype(DType::F32)?.to_vec1()?;
            let dc = DirectConv::at_level(simd, c, h, w, k, k, pad, pad)
                .ok_or("the kernel fits the padded input")?;
            assert_eq!(
                dc.is_winograd(),
                winograd_on && k == 3 && c >= super::winograd::MIN_CHANNELS,
                "{simd:?} case {i}: a Winograd plan exactly for 3×3 layers of 32 or more channels"
            );
            let dc = if wino { dc } else { dc.without_winograd() };
            let (oh, ow) = (dc.oh, dc.ow);
            let at = |ci: usize, y: isize, x: isize| -> f64 {
                if y < 0 || x < 0 || y >= h as isize || x >= w as isize {
                    0.0
                } else {
                    xs[(ci * h + y as usize) * w + x as usize] as f64
                }
            };
            let wk = |oi: usize, ci: usize, p: usize, q: usize| {
                ws[((oi * c + ci) * k + p) * k + q] as f64
            };
            // forward, with bias and ReLU
            let mut scratch = vec![0f32; dc.scratch_len()];
            let mut y = vec![MaybeUninit::new(f32::NAN); o * oh * ow];
            let packed = dc.pack(&ws, o);
            assert_eq!(
                matches!(packed, Weights::Winograd(_)),
                wino && dc.is_winograd() && o >= super::winograd::MIN_ROWS,
                "{simd:?} case {i}: the forward by the plan exactly where it has 32 or more rows"
            );
            dc.forward(&xs, &mut scratch, &packed, Some(&bs), true, &mut y);
            same_bits((i, wino, "forward"), bits(&y), simd);
            let mut worst = 0f64;
            for oi in 0..o {
                for r in 0..oh {
                    for s in 0..ow {
                        let mut z = bs[oi] as f64;
                        for ci in 0..c {
                            for p in 0..k {
                                for q in 0..k {
                                    let (yy, xx) = (
                                        (r + p) as isize - pad as isize,
                                        (s + q) as isize - pad as isize,
                                    );
                                    z += wk(oi, ci, p, q) * at(ci, yy, xx);
                                }
                            }
                        }
                        // SAFETY: `forward` writes every element of `y`
                        let got = unsafe { y[(oi * oh + r) * ow + s].assume_init() } as f64;
                        worst = worst.max((got - z.max(0.0)).abs());
                    }
                }
            }
            assert!(
                worst < 1e-4,
                "{simd:?} case {i} (Winograd {wino}): forward differs by {worst}"
            );
            // weight gradient of a random dy
            let dy: Vec<f32> = rand(&[o * oh * ow], seed + 3)
                .to_dtype(DType::F32)?
                .to_vec1()?;
            let mut acc = WeightGrad::new(o, c * k * k);
            let xp = dc.padded(&xs, &mut scratch);
            dc.add_weight_grad(xp, &dy, &mut acc);
            let dw = acc.into_rows();
            same_bits(
                (i, wino, "weight gradient"),
                dw.iter().map(|v| v.to_bits()).collect(),
                simd,
            );
            let mut worst = 0f64;
            for oi in 0..o {
                for ci in 0..c {
                    for p in 0..k {
                        for q in 0..k {
                            let mut g = 0f64;
                            for r in 0..oh {
                                for s in 0..ow {
                                    let (yy, xx) = (
                                        (r + p) as isize - pad as isize,
                                        (s + q) as isize - pad as isize,
                                    );
                                    g += dy[(oi * oh + r) * ow + s] as f64 * at(ci, yy, xx);
                                }
                            }
                            let got = dw[oi * c * k * k + (ci * k + p) * k + q] as f64;
                            worst = worst.max((got - g).abs() / (1.0 + g.abs()));
                        }
                    }
                }
            }
            assert!(
                worst < 1e-4,
                "{simd:?} case {i}: weight gradient differs by {worst}"
            );
            // input gradient: dx[c, y, x] = Σ_{o,p,q} dy[o, y+pad−p, x+pad−q]·w[o, c, p, q]
            let Some(dc_in) = DirectConv::at_level(simd, o, oh, ow, k, k, k - 1 - pad, k - 1 - pad)
            else {
                continue;
            };
            let dc_in = if wino {
                dc_in
            } else {
                dc_in.without_winograd()
            };
            assert_eq!((dc_in.oh, dc_in.ow), (h, w), "{simd:?} case {i}");
            let mut scratch = vec![0f32; dc_in.scratch_len()];
            let mut dx = vec![MaybeUninit::new(f32::NAN); c * h * w];
            let flipped = dc_in.pack_flipped(&ws, c);
            dc_in.forward(&dy, &mut scratch, &flipped, None, false, &mut dx);
            same_bits((i, wino, "input gradient"), bits(&dx), simd);
            let mut worst = 0f64;
            for ci in 0..c {
                for yy in 0..h {
                    for xx in 0..w {
                        let mut g = 0f64;
                        for oi in 0..o {
                            for p in 0..k {
                                for q in 0..k {
                                    let (r, s) = (yy + pad, xx + pad);
                                    if r >= p && s >= q && r - p < oh && s - q < ow {
                                        g += dy[(oi * oh + r - p) * ow + s - q] as f64
                                            * wk(oi, ci, p, q);
                                    }
                                }
                            }
                        }
                        // SAFETY: `forward` writes every element of `dx`
                        let got = unsafe { dx[(ci * h + yy) * w + xx].assume_init() } as f64;
                        worst = worst.max((got - g).abs());
                    }
                }
            }
            assert!(
                worst < 1e-4,
                "{simd:?} case {i} (Winograd {wino}): input gradient differs by {worst}"
            );
        }
    }
    Ok(())
}

/// Candle's convolution (im2col + gemm) misread a kernel that is not
/// contiguous and starts at a non-zero storage offset, such as a slice of a
/// larger weight's input channels, before candle#3736 (in 0.11.1, which
/// Cargo.lock holds). The path nnlab takes off its CPU kernels (CUDA) copies
/// every kernel that is not contiguous from offset 0 before Candle's
/// convolution. Here that path runs on the CPU (`nnlab devicecheck` runs it
/// on a GPU) on slices of
/// larger weights, along the output channels (contiguous, offset) and along
/// the input channels (neither), against nnlab's kernels on a fresh copy of
/// the slice; the gradient reaches the sliced part of the larger weight and
/// no other.
#[test]
fn candle_path_takes_a_kernel_sliced_from_a_larger_weight() -> crate::TestResult {
    // (input channels, larger weight, sliced dimension, start, length, kernel)
    for (c, big_dims, dim, start, len, k) in [
        (3, [9, 3, 3, 3], 0, 3, 4, 3),
        (3, [4, 8, 1, 1], 1, 2, 3, 1),
        (3, [4, 7, 3, 3], 1, 1, 3, 3),
    ] {
        let x = Var::from_tensor(&rand(&[2, c, 7, 6], 1))?;
        let big = Var::from_tensor(&rand(&big_dims, 2))?;
        let slice = big.narrow(dim, start, len)?;
        assert!(slice.layout().start_offset() > 0);
        let o = slice.dims()[0];
        let b = rand(&[o], 3);
        let p = Conv2dParams {
            stride: 1,
            padding: k / 2,
            dilation: 1,
        };
        let fresh = Var::from_tensor(&slice.force_contiguous()?)?;
        let case = format!("slice of dim {dim} of {big_dims:?}");
        for relu in [false, true] {
            let got = candle_conv2d(&x, &slice, Some(&b), p, relu)?;
            let want = conv2d_then(&x, &fresh, Some(&b), p, relu)?;
            assert!(
                max_diff(&got, &want) < 1e-12,
                "{case}, relu {relu}: forward"
            );
            let r = rand(got.dims(), 4);
            let g1 = (&got * &r)?.sum_all()?.backward()?;
            let g2 = (&want * &r)?.sum_all()?.backward()?;
            let gx = max_diff(g1.get(&x).ok_or("no dx")?, g2.get(&x).ok_or("no dx")?);
            assert!(
                gx < 1e-12,
                "{case}, relu {relu}: input gradient differs by {gx}"
            );
            let gbig = g1.get(&big).ok_or("no gradient of the larger weight")?;
            let gw = max_diff(
                &gbig.narrow(dim, start, len)?,
                g2.get(&fresh).ok_or("no dw")?,
            );
            assert!(
                gw < 1e-12,
                "{case}, relu {relu}: weight gradient differs by {gw}"
            );
            let total = gbig.abs()?.sum_all()?.to_scalar::<f64>()?;
            let inside = gbig
                .narrow(dim, start, len)?
                .abs()?
                .sum_all()?
                .to_scalar::<f64>()?;
            assert_eq!(
                total, inside,
                "{case}, relu {relu}: gradient outside the slice"
            );
        }
        // the locked Candle has the fix: its own convolution reads the slice right too
        let raw = x.conv2d(&slice, p.padding, 1, 1, 1)?;
        let right = x.conv2d(&fresh, p.padding, 1, 1, 1)?;
        assert!(
            max_diff(&raw, &right) < 1e-12,
            "{case}: Candle's conv2d on the slice"
        );
    }
    Ok(())
}

/// The backward one sample at a time (`direct_backward.rs`: the ReLU's
/// mask, the bias sums and both gradient kernels on each sample's `dz`
/// in the cache) gives the bits of the separate passes it replaced: the
/// ReLU gradient of the batch, then `conv2d_input_grad`,
/// `conv2d_weight_grad` and the channel sum. Odd batches (the bias sums'
/// blocks and the kernels' per-thread blocks are cut differently),
/// Winograd layers with padding 1 and 0 (its input gradient then reads a
/// border of 2), with and without the ReLU, a data input (no `dx`).
#[test]
fn backward_per_sample_equals_the_separate_passes_bit_for_bit() -> crate::TestResult {
    use crate::ops::reduce::channel_sum;
    use crate::ops::relu::relu_grad;
    let bits = |t: &Tensor| -> Vec<u32> {
        let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        v.into_iter().map(f32::to_bits).collect()
    };
    // (N, C, H, W, O, K, padding)
    for (i, &(n, c, h, w, o, k, pad)) in [
        (3, 5, 9, 11, 13, 3, 1),
        (5, 32, 10, 9, 40, 3, 1),
        (3, 33, 9, 9, 32, 3, 0),
        (2, 3, 12, 12, 8, 4, 0),
        (1, 4, 7, 7, 6, 5, 2),
    ]
    .iter()
    .enumerate()
    {
        let f32_ = |t: Tensor| t.to_dtype(DType::F32).unwrap();
        let x = Var::from_tensor(&f32_(rand(&[n, c, h, w], 60 + i as u64)))?;
        let wt = Var::from_tensor(&f32_(rand(&[o, c, k, k], 70 + i as u64)))?;
        let b = Var::from_tensor(&f32_(rand(&[o], 80 + i as u64)))?;
        let p = Conv2dParams {
            padding: pad,
            ..Default::default()
        };
        for (relu, data_input) in [(false, false), (true, false), (true, true)] {
            let xin: Tensor = if data_input {
                x.as_tensor().detach()
            } else {
                x.as_tensor().clone()
            };
            let y = conv2d_then(&xin, &wt, Some(&b), p, relu)?;
            let r = f32_(rand(y.dims(), 90 + i as u64));
            let runs = super::direct_backward::RUNS.with(|r| r.get());
            let g = grads_of(&y, &r);
            let ran = super::direct_backward::RUNS.with(|r| r.get()) - runs;
            let what = format!("case {i} relu {relu} data {data_input}");
            assert_eq!(
                ran,
                usize::from(direct::available()),
                "{what}: per-sample backward runs"
            );
            let dz = if relu { relu_grad(&y, &r)? } else { r.clone() };
            let (_, _, oh, ow) = y.dims4()?;
            if data_input {
                assert!(g.get(&x).is_none(), "{what}: a data input got a gradient");
            } else {
                let dx = g.get(&x).ok_or("no input gradient")?;
                assert_eq!(
                    bits(dx),
                    bits(&conv2d_input_grad(&dz, &wt, (h, w), p)?),
                    "{what}: input gradient"
                );
            }
            let dw = g.get(&wt).ok_or("no weight gradient")?;
            assert_eq!(
                bits(dw),
                bits(&conv2d_weight_grad(&xin, &dz, (k, k), p)?),
                "{what}: weight gradient"
            );
            let db = g.get(&b).ok_or("no bias gradient")?;
            assert_eq!(
                bits(db),
                bits(&channel_sum(&dz, n, o, oh * ow)?),
                "{what}: bias gradient"
            );
        }
    }
    Ok(())
}
