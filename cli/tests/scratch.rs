//! The scratch CLI through the binary: `nnlab optim2d --json` and
//! `nnlab gradcheck --json`, parsing their JSON.

use std::process::Command;

/// A test's result: any error fails the test with its message (`?` instead of `.unwrap()`).
type TestResult = Result<(), Box<dyn std::error::Error>>;

fn nnlab(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nnlab"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn optim2d_json_trajectory_includes_start() -> TestResult {
    let (ok, out, err) = nnlab(&[
        "optim2d",
        "--function",
        "square_sum",
        "--optimizer",
        "sgd",
        "--lr",
        "0.05",
        "--steps",
        "10",
        "--start",
        "5,5",
        "--json",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out)?;
    let t = v["trajectory"]
        .as_array()
        .ok_or("None from v[\"trajectory\"].as_array()")?;
    assert_eq!(t.len(), 11);
    assert_eq!(t[0], serde_json::json!([5.0, 5.0]));
    assert_eq!(t[1], serde_json::json!([2.5, 4.5]));
    let x10 = t[10][0].as_f64().ok_or("None from t[10][0].as_f64()")?;
    assert!((x10 - 5.0 * 0.5f64.powi(10)).abs() < 1e-12, "{x10}");
    Ok(())
}

#[test]
fn optim2d_adam_matches_torch_first_step_and_reports_errors() -> TestResult {
    let (ok, out, err) = nnlab(&[
        "optim2d",
        "--function",
        "himmelblau",
        "--optimizer",
        "adam",
        "--lr",
        "0.1",
        "--beta1",
        "0.9",
        "--beta2",
        "0.999",
        "--eps",
        "1e-8",
        "--steps",
        "1",
        "--start",
        "0,0",
        "--json",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out)?;
    // torch.optim.Adam(lr=0.1) on Himmelblau from (0,0): step 1
    let x = v["trajectory"][1][0]
        .as_f64()
        .ok_or("None from v[\"trajectory\"][1][0].as_f64()")?;
    assert!((x - 0.0999999999285714).abs() < 1e-12, "{x}");
    let (ok, _, err) = nnlab(&[
        "optim2d",
        "--function",
        "booth",
        "--optimizer",
        "adam",
        "--json",
    ]);
    assert!(!ok && err.contains("booth"), "{err}");
    let (ok, _, err) = nnlab(&[
        "optim2d",
        "--function",
        "complex_sum",
        "--optimizer",
        "sgd",
        "--lr",
        "0.5",
        "--start",
        "0.1,10",
        "--json",
    ]);
    assert!(
        !ok && err.contains("step 1") && err.contains("x ≥ 0"),
        "{err}"
    );
    let (ok, _, err) = nnlab(&["optim2d", "--start", "5", "--json"]);
    assert!(!ok && err.contains("--start"), "{err}");
    Ok(())
}

#[test]
fn gradcheck_json_covers_every_layer_within_1e_6() -> TestResult {
    let (ok, out, err) = nnlab(&["gradcheck", "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out)?;
    let checks = v["checks"]
        .as_array()
        .ok_or("None from v[\"checks\"].as_array()")?;
    let layers: Vec<&str> = checks
        .iter()
        .map(|c| c["layer"].as_str().unwrap())
        .collect();
    for want in [
        "Linear(5→4)",
        "ReLU",
        "Sigmoid",
        "Tanh",
        "BatchNorm1d(5)",
        "Dropout(0.5)",
        "SoftmaxCrossEntropy",
        "Network",
    ] {
        assert!(layers.contains(&want), "{want} missing from {layers:?}");
    }
    let params: Vec<&str> = checks
        .iter()
        .map(|c| c["param"].as_str().unwrap())
        .collect();
    assert!(
        params.contains(&"weight")
            && params.contains(&"layers.0.weight")
            && params.contains(&"input")
    );
    for c in checks {
        let rel = c["max_rel_err"]
            .as_f64()
            .ok_or("None from c[\"max_rel_err\"].as_f64()")?;
        assert!(rel <= 1e-6, "{c}");
        assert!(
            c["max_rel_err_autograd"]
                .as_f64()
                .ok_or("None from c[\"max_rel_err_autograd\"].as_f64()")?
                <= 1e-6,
            "{c}"
        );
    }
    Ok(())
}
