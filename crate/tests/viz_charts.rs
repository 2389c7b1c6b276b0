//! The charts, read back from their plotly JSON: traces (count, names, types,
//! x/y values), subplots, frames and controls of the animation, heatmap
//! cells, image mosaics decoded from their PNG, and the errors on bad input.
//! One test trains 3 epochs on the real digits (skipped without
//! NNLAB_DATA_MIRROR).

use candle_core::{Device, Tensor};
use nnlab::data::loader::{Batch, Loader, Loaders};
use nnlab::data::Dataset;
use nnlab::scratch::functions::Function2d;
use nnlab::scratch::optim2d::{Optimizer2d, Trajectory};
use nnlab::train::grid::Grid;
use nnlab::train::history::{EpochRecord, History};
use nnlab::train::interpret::Interpretation;
use nnlab::viz::{confusion, curves, images, trajectory, Figure};
use serde_json::Value;

/// A test's result: any error fails the test with its message (`?` instead of `.unwrap()`).
type TestResult = Result<(), Box<dyn std::error::Error>>;

fn json(fig: &Figure) -> Value {
    serde_json::from_str(&fig.to_json()).expect("figure JSON")
}

fn traces(v: &Value) -> &Vec<Value> {
    v["data"].as_array().expect("data array")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

/// Equal up to the 5 significant digits a figure's JSON keeps
/// (`nnlab::viz::rounding`): relative error ≤ 5·10⁻⁵.
fn close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    assert!(
        a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= 5e-5 * y.abs() + 1e-300),
        "{a:?} vs {b:?}"
    );
}

/// `n` epochs: loss 1/e, accuracy 1 − 1/(e+1); validation slightly worse.
fn history(name: &str, n: usize, val: bool) -> History {
    let mut h = History::new(name);
    for e in 1..=n {
        let l = 1.0 / e as f64;
        let a = 1.0 - 1.0 / (e as f64 + 1.0);
        h.push(EpochRecord {
            epoch: e,
            train_loss: l,
            val_loss: val.then_some(l + 0.05),
            train_metrics: vec![("accuracy".into(), a)],
            val_metrics: if val {
                vec![("accuracy".into(), a - 0.02)]
            } else {
                vec![]
            },
            lr: 1e-3,
            seconds: 0.5,
        });
    }
    h
}

#[test]
fn learning_curves_have_train_and_validation_per_epoch() -> TestResult {
    let h = history("3 layers", 5, true);
    let v = json(&h.plot()?);
    let t = traces(&v);
    assert_eq!(t.len(), 4);
    let names: Vec<&str> = t.iter().map(|x| x["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["обучение", "валидация", "обучение", "валидация"]);
    assert!(t.iter().all(|x| x["type"] == "scatter"));
    assert_eq!(floats(&t[0]["x"]), vec![1.0, 2.0, 3.0, 4.0, 5.0]);
    close(&floats(&t[0]["y"]), &h.column("train_loss")?);
    close(&floats(&t[1]["y"]), &h.column("val_loss")?);
    close(&floats(&t[3]["y"]), &h.column("val_accuracy")?);
    // Loss on the first axes, the metric on the second; legend entries once.
    assert_eq!(
        (t[0]["xaxis"].as_str(), t[2]["xaxis"].as_str()),
        (Some("x"), Some("x2"))
    );
    assert_eq!(t.iter().filter(|x| x["showlegend"] == true).count(), 2);
    assert_eq!(v["layout"]["xaxis"]["dtick"], 1.0);
    assert_eq!(v["layout"]["xaxis2"]["anchor"], "y2");
    let titles: Vec<&str> = v["layout"]["annotations"]
        .as_array()
        .ok_or("layout.annotations is not an array")?
        .iter()
        .map(|a| a["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        ["<b>Функция потерь</b>", "<b>Точность (accuracy)</b>"]
    );
    assert_eq!(v["layout"]["xaxis"]["title"]["text"], "эпоха");
    assert_eq!(
        v["layout"]["yaxis2"]["title"]["text"],
        "точность (accuracy)"
    );
    assert_eq!(v["layout"]["title"]["text"], "3 layers — кривые обучения");
    // Without validation: the training curves only.
    let v = json(&curves::learning_curves(&history("m", 3, false))?);
    assert_eq!(traces(&v).len(), 2);
    let e = curves::learning_curves(&History::new("empty"))
        .err()
        .ok_or("learning_curves of an empty history did not fail")?
        .to_string();
    assert!(e.contains("`empty` has no epochs"), "{e}");
    Ok(())
}

#[test]
fn compare_colors_runs_and_fades_validation() -> TestResult {
    let runs = vec![
        history("plain", 4, true),
        history("bn", 4, true),
        history("dropout", 4, true),
    ];
    let fig = curves::compare(&runs, "accuracy", Some((0.0, 2.0)))?;
    let v = json(&fig);
    let t = traces(&v);
    assert_eq!(t.len(), 12);
    assert_eq!(t[0]["name"], "plain (обучение)");
    assert_eq!(t[1]["name"], "plain (валидация)");
    assert_eq!(t[2]["name"], "bn (обучение)");
    assert_eq!(t[0]["line"]["color"], "#0072B2");
    assert_eq!(t[1]["line"]["color"], "rgba(0,114,178,0.55)");
    assert_eq!(t[1]["line"]["dash"], "dash");
    assert!(t[0]["line"].get("dash").is_none());
    assert_eq!(t[2]["line"]["color"], "#E69F00");
    assert_eq!(floats(&v["layout"]["yaxis"]["range"]), vec![0.0, 2.0]);
    close(&floats(&t[7]["y"]), &runs[1].column("val_accuracy")?);
    assert!(
        fig.description().starts_with(
            "Сравнение запусков (3: plain, bn, dropout): loss и точность (accuracy), эпох 4"
        ),
        "{}",
        fig.description()
    );
    assert_eq!(
        v["layout"]["title"]["text"],
        "Функция потерь и точность (accuracy)"
    );
    // `val_` prefix is accepted; an unknown metric names the known ones.
    assert_eq!(
        traces(&json(&curves::compare(&runs, "val_accuracy", None)?)).len(),
        12
    );
    // The loss alone: named once, never "loss и loss".
    let only_loss = curves::compare(&runs, "loss", None)?;
    let v = json(&only_loss);
    assert_eq!(traces(&v).len(), 6);
    assert_eq!(v["layout"]["title"]["text"], "Функция потерь");
    assert!(
        only_loss.description().contains("): loss, эпох 4"),
        "{}",
        only_loss.description()
    );
    let e = curves::compare(&runs, "f1_macro", None)
        .err()
        .ok_or("compare without the column did not fail")?
        .to_string();
    assert!(
        e.contains("`f1_macro`") && e.contains("accuracy") && e.contains("plain"),
        "{e}"
    );
    assert!(curves::compare(&[], "loss", None).is_err());
    Ok(())
}

#[test]
fn panels_make_a_two_by_two_grid() -> TestResult {
    let runs = vec![history("1 layer", 3, true), history("2 layers", 3, true)];
    let cols = ["train_loss", "train_accuracy", "val_loss", "val_accuracy"];
    let v = json(&curves::panels(&runs, &cols)?);
    let t = traces(&v);
    assert_eq!(t.len(), 8);
    assert_eq!(t[6]["name"], "1 layer");
    assert_eq!(t[6]["xaxis"], "x4");
    close(&floats(&t[7]["y"]), &runs[1].column("val_accuracy")?);
    assert_eq!(t.iter().filter(|x| x["showlegend"] == true).count(), 2);
    let l = &v["layout"];
    for k in ["xaxis", "xaxis2", "xaxis3", "xaxis4"] {
        assert!(l[k].is_object(), "{k}");
    }
    // Top row above bottom row, left column left of the right one.
    assert!(floats(&l["yaxis"]["domain"])[0] > floats(&l["yaxis3"]["domain"])[1]);
    assert!(floats(&l["xaxis"]["domain"])[1] < floats(&l["xaxis2"]["domain"])[0]);
    let titles: Vec<&str> = l["annotations"]
        .as_array()
        .ok_or("layout.annotations is not an array")?
        .iter()
        .map(|a| a["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        [
            "<b>Loss, обучение</b>",
            "<b>Точность (accuracy), обучение</b>",
            "<b>Loss, валидация</b>",
            "<b>Точность (accuracy), валидация</b>"
        ]
    );
    let e = curves::panels(&runs, &["train_loss", "val_f1"])
        .err()
        .ok_or("panels without the column did not fail")?
        .to_string();
    assert!(
        e.contains("`val_f1`") && e.contains("val_accuracy") && e.contains("1 layer"),
        "{e}"
    );
    assert!(curves::panels(&runs, &[]).is_err());
    assert!(curves::panels(&runs, &["lr"; 9])
        .err()
        .ok_or("expected an error, got Ok")?
        .to_string()
        .contains("at most 8"));
    Ok(())
}

fn lr_grid() -> nnlab::train::grid::GridResults {
    Grid::new()
        .axis("optimizer", ["adam", "sgd"])
        .axis("lr", [1e-1, 1e-3, 1e-2])
        .run(|p| {
            let lr = p.f64("lr")?;
            let k = if p.str("optimizer")? == "adam" {
                1.0
            } else {
                2.0
            };
            let mut h = History::new(p.label());
            for e in 1..=2 {
                h.push(EpochRecord {
                    epoch: e,
                    train_loss: k * lr.log10().abs() / e as f64,
                    val_loss: Some(k * lr.log10().abs()),
                    train_metrics: vec![],
                    val_metrics: vec![],
                    lr,
                    seconds: 0.0,
                });
            }
            Ok(h)
        })
        .unwrap()
}

#[test]
fn sweep_draws_one_line_per_other_setting_with_log_x() -> TestResult {
    let g = lr_grid();
    let fig = curves::sweep(&g, "lr", "val_loss_final")?;
    let v = json(&fig);
    let t = traces(&v);
    assert_eq!(t.len(), 2);
    assert_eq!(t[0]["name"], "optimizer=adam");
    assert_eq!(t[1]["name"], "optimizer=sgd");
    assert_eq!(floats(&t[0]["x"]), vec![1e-3, 1e-2, 1e-1]);
    close(&floats(&t[0]["y"]), &[3.0, 2.0, 1.0]);
    close(&floats(&t[1]["y"]), &[6.0, 4.0, 2.0]);
    assert_eq!(v["layout"]["xaxis"]["type"], "log");
    assert!(fig.description().contains("логарифмическая ось x"));
    assert_eq!(
        v["layout"]["title"]["text"],
        "Loss, валидация, в конце в зависимости от lr"
    );
    let e = curves::sweep(&g, "lr", "val_f1_final")
        .err()
        .ok_or("expected an error, got Ok")?
        .to_string();
    assert!(
        e.contains("`val_f1_final`") && e.contains("val_loss_final"),
        "{e}"
    );
    let e = curves::sweep(&g, "batch", "val_loss_final")
        .err()
        .ok_or("expected an error, got Ok")?
        .to_string();
    assert!(e.contains("batch") && e.contains("optimizer, lr"), "{e}");

    let v = json(&curves::grid_bars(&g, "train_loss_best")?);
    let t = traces(&v);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0]["type"], "bar");
    assert_eq!(t[0]["x"][0], "optimizer=adam, lr=0.1");
    assert_eq!(
        v["layout"]["title"]["text"],
        "Loss, обучение, лучшее по запускам"
    );
    close(&floats(&t[0]["y"]), &[0.5, 1.5, 1.0, 1.0, 3.0, 2.0]);
    Ok(())
}

#[test]
fn bars_and_lines() -> TestResult {
    let labels: Vec<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
    let v = json(&curves::bars(&labels, &[0.5, 0.25], "F1", "macro F1")?);
    assert_eq!(floats(&traces(&v)[0]["y"]), vec![0.5, 0.25]);
    assert_eq!(traces(&v)[0]["text"], serde_json::json!(["0.5", "0.25"]));
    let e = curves::bars(&labels, &[1.0], "F1", "f1")
        .err()
        .ok_or("expected an error, got Ok")?
        .to_string();
    assert!(e.contains("1 values for 2 labels"), "{e}");
    let series = vec![
        ("no dropout".to_string(), vec![0.3, 0.2, 0.25]),
        ("dropout".to_string(), vec![0.35, 0.3]),
    ];
    let v = json(&curves::lines("Val loss", "epoch", "loss", &series)?);
    let t = traces(&v);
    assert_eq!(t.len(), 2);
    assert_eq!(floats(&t[0]["x"]), vec![0.0, 1.0, 2.0]);
    assert_eq!(floats(&t[1]["y"]), vec![0.35, 0.3]);
    assert!(curves::lines("t", "x", "y", &[]).is_err());
    Ok(())
}

// ---- images ----

fn b64decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    } as u32;
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::new();
    for ch in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in ch.iter().enumerate() {
            n |= val(c) << (18 - 6 * i);
        }
        for i in 0..ch.len() - 1 {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

/// The mosaic of an image figure, decoded from its PNG data URI.
fn mosaic(v: &Value) -> image::RgbImage {
    let src = traces(v)[0]["source"].as_str().expect("image source");
    let b64 = src
        .strip_prefix("data:image/png;base64,")
        .expect("PNG data URI");
    image::load_from_memory(&b64decode(b64))
        .expect("PNG")
        .to_rgb8()
}

fn classes(n: usize) -> Vec<String> {
    (0..n).map(|k| format!("c{k}")).collect()
}

/// 5 RGB images 4×5 (C,H,W = 3,4,5); image i has channel c filled with 40·i + 10·c.
fn rgb_dataset() -> Dataset {
    let mut px = Vec::new();
    for i in 0..5u8 {
        for c in 0..3u8 {
            px.extend(std::iter::repeat_n(40 * i + 10 * c, 20));
        }
    }
    Dataset::new(
        "rgb",
        "memory",
        classes(3),
        [3, 4, 5],
        px,
        vec![0, 1, 2, 0, 1],
        255,
    )
    .unwrap()
}

#[test]
fn image_grid_is_one_mosaic_with_captions() -> TestResult {
    let ds = rgb_dataset();
    let fig = images::image_grid(&ds, 0..5, 2, Some(&[0, 2, 2, 0, 0]))?;
    let v = json(&fig);
    assert_eq!(traces(&v).len(), 1);
    assert_eq!(traces(&v)[0]["type"], "image");
    // 5×4 tiles at 96 screen px → 19.2 px a pixel: pad 1, caption band 1.
    // Cell (5+2)×(1+4+2); 2 columns, 3 rows.
    let img = mosaic(&v);
    assert_eq!(img.dimensions(), (14, 21));
    // Image 1 (row 0, col 1): first pixel at x = 7+1, y = 1+1.
    assert_eq!(img.get_pixel(8, 2).0, [40, 50, 60]);
    assert_eq!(img.get_pixel(1, 2).0, [0, 10, 20]);
    assert_eq!(img.get_pixel(0, 2).0, [255, 255, 255]);
    // Images 1 and 4 are wrong: a vermillion outline around each, through
    // the middle of the pad (cell of image 1: x 7..14, image rows y 1..7).
    let shapes = v["layout"]["shapes"]
        .as_array()
        .ok_or("None from v[\"layout\"][\"shapes\"].as_array()")?;
    assert_eq!(shapes.len(), 2);
    assert_eq!(shapes[0]["line"]["color"], "#D55E00");
    assert_eq!(
        (shapes[0]["x0"].as_f64(), shapes[0]["x1"].as_f64()),
        (Some(7.0), Some(13.0))
    );
    assert_eq!(
        (shapes[0]["y0"].as_f64(), shapes[0]["y1"].as_f64()),
        (Some(1.0), Some(6.0))
    );
    let ann = v["layout"]["annotations"]
        .as_array()
        .ok_or("None from v[\"layout\"][\"annotations\"].as_array()")?;
    let texts: Vec<&str> = ann.iter().map(|a| a["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["c0 ✓", "c1 → c2", "c2 ✓", "c0 ✓", "c1 → c0"]);
    assert_eq!(ann[1]["font"]["color"], "#D55E00");
    // The aspect ratio is kept: screen size in proportion to the mosaic.
    let l = &v["layout"];
    assert_eq!(l["yaxis"]["scaleanchor"], "x");
    let w = l["width"]
        .as_f64()
        .ok_or("None from l[\"width\"].as_f64()")?
        - 20.0;
    let h = l["height"]
        .as_f64()
        .ok_or("None from l[\"height\"].as_f64()")?
        - 60.0;
    assert!((w / h - 14.0 / 21.0).abs() < 0.02, "{w}×{h}");
    assert!(
        fig.description().contains("ошибок 2"),
        "{}",
        fig.description()
    );

    let e = images::image_grid(&ds, [7], 2, None)
        .err()
        .ok_or("expected an error, got Ok")?
        .to_string();
    assert!(e.contains("index 7") && e.contains("5 samples"), "{e}");
    let e = images::image_grid(&ds, vec![0, 1], 2, Some(&[0]))
        .err()
        .ok_or("expected an error, got Ok")?
        .to_string();
    assert!(e.contains("1 predictions for 2 images"), "{e}");
    assert!(images::image_grid(&ds, 0..0, 2, None).is_err());
    assert!(images::image_grid(&ds, [0], 0, None).is_err());
    Ok(())
}

#[test]
fn grayscale_scales_by_max_value_and_misclassified_gallery() -> TestResult {
    // Digits-like: 1×2×2, max 16.
    let px = vec![0, 8, 16, 4, 16, 16, 16, 16, 1, 2, 3, 4];
    let ds = Dataset::new(
        "tiny digits",
        "memory",
        classes(2),
        [1, 2, 2],
        px,
        vec![0, 1, 1],
        16,
    )?;
    let img = mosaic(&json(&images::image_grid(&ds, [0], 1, None)?));
    // 2×2 tile at 96 px → 48 px a pixel: pad 1, band 1; (2+2)×(1+2+2).
    assert_eq!(img.dimensions(), (4, 5));
    assert_eq!(img.get_pixel(1, 2).0, [0, 0, 0]);
    assert_eq!(img.get_pixel(2, 2).0, [128, 128, 128]);
    assert_eq!(img.get_pixel(1, 3).0, [255, 255, 255]);
    assert_eq!(img.get_pixel(2, 3).0, [64, 64, 64]);

    let it = Interpretation::new(classes(2), vec![1, 1, 0], vec![0, 1, 1], vec![0.0; 3])?;
    let fig = images::misclassified(&ds, &it)?;
    let v = json(&fig);
    let texts: Vec<&str> = v["layout"]["annotations"]
        .as_array()
        .ok_or("expected a JSON array")?
        .iter()
        .map(|a| a["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["c0 → c1", "c1 → c0"]);
    assert_eq!(v["layout"]["title"]["text"], "Ошибки классификации: 2 из 3");
    assert!(v["layout"]["shapes"]
        .as_array()
        .is_none_or(|s| s.is_empty()));
    assert_eq!(mosaic(&v).dimensions(), (8, 5));
    // Interpretation of other samples.
    let other = Interpretation::new(classes(2), vec![1, 1], vec![0, 1], vec![0.0; 2])?;
    assert!(images::misclassified(&ds, &other)
        .err()
        .ok_or("expected an error, got Ok")?
        .to_string()
        .contains("2 predictions"));
    let shuffled = Interpretation::new(classes(2), vec![1, 1, 0], vec![1, 0, 1], vec![0.0; 3])?;
    assert!(images::misclassified(&ds, &shuffled)
        .err()
        .ok_or("expected an error, got Ok")?
        .to_string()
        .contains("sample 0"));
    let perfect = Interpretation::new(classes(2), vec![0, 1, 1], vec![0, 1, 1], vec![0.0; 3])?;
    let v = json(&images::misclassified(&ds, &perfect)?);
    assert_eq!(traces(&v).len(), 0);
    assert!(v["layout"]["annotations"][0]["text"]
        .as_str()
        .ok_or("expected a JSON string")?
        .contains("все объекты классифицированы верно"));
    Ok(())
}

#[test]
fn batch_grid_undoes_normalize() -> TestResult {
    // Two RGB 1×2 images, normalized with mean 0.5, std 0.25 per channel.
    let raw: Vec<f32> = vec![0.0, 1.0, 0.5, 0.25, 0.75, 1.0, 0.2, 0.4, 0.6, 0.8, 1.0, 0.0];
    let x: Vec<f32> = raw.iter().map(|v| (v - 0.5) / 0.25).collect();
    let batch = Batch {
        x: Tensor::from_vec(x, (2, 3, 1, 2), &Device::Cpu)?,
        y: Tensor::from_vec(vec![1u32, 0], 2, &Device::Cpu)?,
        indices: vec![0, 1],
    };
    let cls = classes(2);
    let v = json(&images::batch_grid(&batch, &cls, &[0.5], &[0.25], None)?);
    let img = mosaic(&v);
    // 2×1 tiles at 96 px → 48 px a pixel: pad 1, band 1; 2 columns of (2+2)×(1+1+2).
    assert_eq!(img.dimensions(), (8, 4));
    assert_eq!(img.get_pixel(1, 2).0, [0, 128, 191]);
    assert_eq!(img.get_pixel(2, 2).0, [255, 64, 255]);
    assert_eq!(img.get_pixel(5, 2).0, [51, 153, 255]);
    let texts: Vec<&str> = v["layout"]["annotations"]
        .as_array()
        .ok_or("expected a JSON array")?
        .iter()
        .map(|a| a["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["c1", "c0"]);
    let e = images::batch_grid(&batch, &cls, &[0.5, 0.5], &[0.25], None)
        .err()
        .ok_or("expected an error, got Ok")?
        .to_string();
    assert!(e.contains("mean") && e.contains("expected 1 or 3"), "{e}");
    let e = images::batch_grid(&batch, &cls[..1], &[0.5], &[0.25], None)
        .err()
        .ok_or("expected an error, got Ok")?
        .to_string();
    assert!(e.contains("batch.y[0]"), "{e}");
    Ok(())
}

#[test]
fn class_distribution_groups_splits() -> TestResult {
    let ds = rgb_dataset();
    let part = ds.select(&[0, 1])?;
    let v = json(&images::class_distribution(&[
        ("train", &ds),
        ("val", &part),
    ])?);
    let t = traces(&v);
    assert_eq!(t.len(), 2);
    assert_eq!(
        (t[0]["name"].as_str(), t[1]["name"].as_str()),
        (Some("train"), Some("val"))
    );
    assert_eq!(floats(&t[0]["y"]), vec![2.0, 2.0, 1.0]);
    assert_eq!(floats(&t[1]["y"]), vec![1.0, 1.0, 0.0]);
    assert_eq!(v["layout"]["barmode"], "group");
    assert_eq!(v["layout"]["title"]["text"], "Объектов по классам");
    assert_eq!(v["layout"]["yaxis"]["title"]["text"], "объектов");
    let mut other = part.clone();
    other.classes = classes(3).into_iter().rev().collect();
    let e = images::class_distribution(&[("train", &ds), ("odd", &other)])
        .err()
        .ok_or("expected an error, got Ok")?
        .to_string();
    assert!(e.contains("`odd`"), "{e}");
    Ok(())
}

// ---- trajectories ----

fn five_runs(steps: usize) -> Vec<Trajectory> {
    let f = Function2d::SquareSum;
    [
        Optimizer2d::sgd(0.05),
        Optimizer2d::momentum(0.01, 0.9),
        Optimizer2d::adagrad(1.0),
        Optimizer2d::rmsprop(0.1),
        Optimizer2d::adam(0.3),
    ]
    .iter()
    .map(|o| o.run(f, [5.0, 5.0], steps).unwrap())
    .collect()
}

#[test]
fn animated_trajectories_have_a_frame_per_step_and_controls() -> TestResult {
    let runs = five_runs(100);
    let fig = trajectory::trajectories(&runs, true)?;
    let v = json(&fig);
    let t = traces(&v);
    // contour, minimum, start, then path + current point per run.
    assert_eq!(t.len(), 3 + 2 * 5);
    assert_eq!(t[0]["type"], "contour");
    assert_eq!(t[1]["name"], "минимум функции (0, 0)");
    assert_eq!(t[2]["name"], "старт");
    assert_eq!(t[3]["name"], "SGD lr=0.05");
    assert_eq!(t[11]["name"], "Adam lr=0.3");
    // The still picture shows whole paths.
    close(
        &floats(&t[11]["x"]),
        &runs[4].points.iter().map(|p| p[0]).collect::<Vec<_>>(),
    );
    // Contour of log10(f − f* + ε): the box covers the start with margin.
    let xs = floats(&t[0]["x"]);
    assert!(xs[0] < 0.0 && *xs.last().ok_or("None from xs.last()")? > 5.0);
    let frames = v["frames"]
        .as_array()
        .ok_or("None from v[\"frames\"].as_array()")?;
    assert_eq!(frames.len(), 101);
    assert_eq!(frames[7]["name"], "7");
    // A frame moves only the current points (traces 4, 6, …, 12), one point each.
    assert_eq!(
        floats(&frames[7]["traces"]),
        vec![4.0, 6.0, 8.0, 10.0, 12.0]
    );
    let d = frames[7]["data"]
        .as_array()
        .ok_or("None from frames[7][\"data\"].as_array()")?;
    assert_eq!(d.len(), 5);
    for (i, p) in d.iter().enumerate() {
        close(&floats(&p["x"]), &[runs[i].points[7][0]]);
        close(&floats(&p["y"]), &[runs[i].points[7][1]]);
    }
    assert!(d[4].get("name").is_none(), "the slider names the step");
    assert_eq!(t[12]["name"], "Adam lr=0.3, текущий шаг");
    let menu = &v["layout"]["updatemenus"][0];
    assert_eq!(
        menu["buttons"]
            .as_array()
            .ok_or("None from menu[\"buttons\"].as_array()")?
            .len(),
        2
    );
    assert_eq!(menu["buttons"][0]["method"], "animate");
    // A full redraw per frame keeps the contour (plotly.js drops it otherwise).
    assert_eq!(menu["buttons"][0]["args"][1]["frame"]["redraw"], true);
    assert_eq!(menu["buttons"][1]["args"][0], serde_json::json!([null]));
    let slider = &v["layout"]["sliders"][0];
    assert_eq!(
        slider["steps"]
            .as_array()
            .ok_or("None from slider[\"steps\"].as_array()")?
            .len(),
        101
    );
    assert_eq!(slider["steps"][42]["args"][0], serde_json::json!(["42"]));
    assert!(
        fig.description()
            .starts_with("Траекторий: 5 на square_sum, шагов: 100, с анимацией"),
        "{}",
        fig.description()
    );
    assert_eq!(v["layout"]["sliders"][0]["currentvalue"]["prefix"], "шаг ");
    assert_eq!(
        v["layout"]["title"]["text"],
        "Оптимизаторов: 5 на square_sum = 5x² + y²"
    );

    // Still: no frames, no controls.
    let v = json(&trajectory::trajectories(&runs, false)?);
    assert!(v["frames"].as_array().is_none_or(|f| f.is_empty()));
    assert!(v["layout"].get("sliders").is_none());
    Ok(())
}

/// The figures notebook 06 shows (cells 13–45: five runs on each function,
/// one figure per run and one with all five, 100 steps, animated), with the
/// notebook's optimizers: (cell, JSON bytes).
fn notebook_06_figures() -> Vec<(String, usize)> {
    let steps = 100;
    let square = |o: Optimizer2d| o.run(Function2d::SquareSum, [5.0, 5.0], steps).unwrap();
    let complex = |o: Optimizer2d| o.run(Function2d::ComplexSum, [5.0, -2.0], steps).unwrap();
    let runs1 = vec![
        square(Optimizer2d::sgd(0.01)),
        square(Optimizer2d::momentum(0.01, 0.9)),
        square(Optimizer2d::adagrad(0.1).eps(1e-6)),
        square(Optimizer2d::rmsprop(0.1).alpha(0.9).eps(1e-6)),
        square(Optimizer2d::adam(0.1).betas(0.9, 0.9).eps(1e-6)),
    ];
    let runs2 = vec![
        complex(Optimizer2d::sgd(0.0002)),
        complex(Optimizer2d::momentum(0.0002, 0.7)),
        complex(Optimizer2d::adagrad(0.1).eps(1e-6)),
        complex(Optimizer2d::rmsprop(0.1).alpha(0.9).eps(1e-6)),
        complex(Optimizer2d::adam(0.1).betas(0.9, 0.9).eps(1e-6)),
    ];
    let adam = Optimizer2d::adam(0.1).betas(0.9, 0.9).eps(1e-6);
    let runs3 = vec![square(adam), square(adam.course())];
    let mut out = Vec::new();
    for (name, runs) in [("square_sum", &runs1), ("complex_sum", &runs2)] {
        for i in 0..5 {
            let fig = trajectory::trajectories(&runs[i..i + 1], true).unwrap();
            out.push((
                format!("{name} {}", trajectory::run_label(&runs[i])),
                fig.to_json().len(),
            ));
        }
        let fig = trajectory::trajectories(runs, true).unwrap();
        out.push((format!("{name} all five"), fig.to_json().len()));
        let fig = trajectory::distance_to_minimum(runs).unwrap();
        out.push((format!("{name} distance"), fig.to_json().len()));
    }
    let fig = trajectory::distance_to_minimum(&runs3).unwrap();
    out.push(("course rule distance".into(), fig.to_json().len()));
    out
}

#[test]
fn notebook_06_figures_are_small() {
    let sizes = notebook_06_figures();
    for (name, bytes) in &sizes {
        eprintln!("06 figure {name}: {bytes} bytes");
    }
    let total: usize = sizes.iter().map(|(_, b)| b).sum();
    eprintln!("06 figures total: {total} bytes");
    assert_eq!(sizes.len(), 15);
    // One animated run, 100 steps: the contour grid dominates.
    assert!(sizes[0].1 < 80_000, "{:?}", sizes[0]);
    // Five animated runs: each adds its path and one point per frame.
    assert!(sizes[5].1 < 110_000, "{:?}", sizes[5]);
    assert!(total < 1_000_000, "{total}");
}

#[test]
fn animated_trajectory_size_is_linear_in_steps() -> TestResult {
    let size = |steps: usize| {
        let runs = five_runs(steps);
        trajectory::trajectories(&runs, true)
            .unwrap()
            .to_json()
            .len()
    };
    let (s50, s100, s200) = (size(50), size(100), size(200));
    eprintln!("five animated runs: 50 steps {s50} bytes, 100 steps {s100}, 200 steps {s200}");
    assert!(s100 < 110_000, "{s100}");
    assert!((s200 as f64) < 2.2 * s100 as f64, "{s100} → {s200}");
    // Linear: the 100 steps from 100 to 200 add about twice what the 50 from
    // 50 to 100 add (quadratic frames would add four times as much).
    let (d1, d2) = (s100 - s50, s200 - s100);
    assert!((d2 as f64) < 2.6 * d1 as f64, "+{d1} then +{d2}");
    Ok(())
}

#[test]
fn distance_to_minimum_is_on_a_log_axis() -> TestResult {
    let runs = five_runs(20);
    let v = json(&trajectory::distance_to_minimum(&runs)?);
    let t = traces(&v);
    assert_eq!(t.len(), 5);
    assert_eq!(v["layout"]["yaxis"]["type"], "log");
    close(&floats(&t[2]["y"]), &runs[2].distances_to([0.0, 0.0]));
    assert_eq!(floats(&t[2]["x"]).len(), 21);
    assert_eq!(t[4]["name"], "Adam lr=0.3");
    assert_eq!(
        v["layout"]["title"]["text"],
        "Расстояние до минимума функции (0, 0) на square_sum"
    );
    assert_eq!(v["layout"]["xaxis"]["title"]["text"], "шаг");
    assert_eq!(
        v["layout"]["yaxis"]["title"]["text"],
        "расстояние до минимума"
    );
    // One run on its own.
    let v = json(&runs[0].plot(false)?);
    assert_eq!(traces(&v).len(), 5);
    Ok(())
}

// ---- real data ----

#[test]
fn digits_run_charts() -> TestResult {
    let Ok(mirror) = std::env::var("NNLAB_DATA_MIRROR") else {
        eprintln!("NNLAB_DATA_MIRROR is not set: skipping the real-data chart test");
        return Ok(());
    };
    let ds =
        nnlab::data::digits::read(std::path::PathBuf::from(mirror).join("digits/digits.csv.gz"))?;
    let (train, val) = nnlab::data::split::train_test_split(&ds, 0.3, 20231110, true)?;
    let loaders = Loaders {
        train: Loader::new(train, 64).shuffle(1),
        val: Some(Loader::new(val.clone(), 256)),
        test: None,
    };
    nnlab::seed(1);
    let model = nnlab::models::zoo::mlp_digits("relu", 32, None)?;
    let mut learn = nnlab::train::learner::Learner::new(model, &loaders)
        .optimizer(nnlab::train::optim::Sgd::new(0.1).momentum(0.9))
        .metrics([nnlab::train::metrics::accuracy()])
        .silent();
    let h = learn.fit(3)?;
    let v = json(&h.plot()?);
    close(&floats(&traces(&v)[3]["y"]), &h.column("val_accuracy")?);

    let interp = learn.interpret(
        loaders
            .val
            .as_ref()
            .ok_or("None from loaders.val.as_ref()")?,
    )?;
    let wrong = interp.misclassified().len();
    let fig = images::misclassified(&val, &interp)?;
    let v = json(&fig);
    if wrong > 0 {
        assert_eq!(
            v["layout"]["annotations"]
                .as_array()
                .ok_or("None from v[\"layout\"][\"annotations\"].as_array()")?
                .len(),
            wrong
        );
        // 8×8 digits at 12 screen px a pixel: pad 1, band 2 → cells 10×12, 10 a row.
        let img = mosaic(&v);
        assert_eq!(
            img.dimensions(),
            (10 * wrong.min(10) as u32, 12 * wrong.div_ceil(10) as u32)
        );
    }
    let cm = json(&interp.plot_confusion(false)?);
    let z = cm["data"][0]["z"]
        .as_array()
        .ok_or("None from cm[\"data\"][0][\"z\"].as_array()")?;
    let total: f64 = z.iter().flat_map(floats).sum();
    assert_eq!(total as usize, val.len());
    let table = confusion::most_confused_table(&interp, 1)?;
    assert_eq!(table.width(), 4);

    let batch = loaders
        .train
        .iter_epoch(0)
        .next()
        .ok_or("None from loaders.train.iter_epoch(0).next()")??;
    let fig = images::batch_grid(&batch, &ds.classes, &[0.0], &[1.0], None)?;
    assert_eq!(mosaic(&json(&fig)).dimensions(), (8 * 10, 8 * 12));
    Ok(())
}
