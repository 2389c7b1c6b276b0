//! `nnlab summary zoo:NAME|config:PATH [--json]`: the torchinfo-style table of
//! a zoo model (`zoo:hw3/BasicCNN`, a bare name works too) or of an hw1 JSON
//! layer config file (`config:model.json`); `--json` prints the summary as
//! JSON (`total_params`, `rows`, sizes) instead of the text table.
//!
//! ```text
//! $ nnlab summary zoo:hw5/SimpleConvNet_1
//! ```

use nnlab::models::{mlp::Mlp, model::Model, zoo};
use nnlab::{Error, Result};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// `zoo:NAME` (see `nnlab summary --list`) or `config:PATH` (hw1 JSON layer config).
    pub model: Option<String>,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// List the zoo names.
    #[arg(long)]
    pub list: bool,
}

/// Builds the model a `zoo:NAME` / `config:PATH` spec names.
pub fn model_from_spec(spec: &str) -> Result<Model> {
    if let Some(path) = spec.strip_prefix("config:") {
        Mlp::from_file(path)
    } else {
        zoo::build(spec.strip_prefix("zoo:").unwrap_or(spec))
    }
}

/// The text `run` prints.
pub fn render(args: &Args) -> Result<String> {
    if args.list {
        return Ok(zoo::names().join("\n"));
    }
    let spec = args.model.as_deref().ok_or_else(|| {
        Error::config(
            "model",
            "missing, expected zoo:NAME or config:PATH (nnlab summary --list shows the names)",
        )
    })?;
    let s = model_from_spec(spec)?.summary()?;
    if args.json {
        s.to_json()
    } else {
        Ok(s.to_string())
    }
}

pub fn run(args: Args) -> Result<()> {
    println!("{}", render(&args)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(model: &str, json: bool) -> Args {
        Args {
            model: Some(model.into()),
            json,
            list: false,
        }
    }

    #[test]
    fn zoo_and_config_specs() -> crate::TestResult {
        let t = render(&args("zoo:hw4/MLPDigits", false))?;
        assert!(t.contains("Total params: 6,666"), "{t}");
        let j: serde_json::Value = serde_json::from_str(&render(&args("hw3/basiccnn", true))?)?;
        assert_eq!(j["total_params"], 206_922);
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("m.json");
        std::fs::write(
            &p,
            r#"{"layers":[{"type":"linear","size":512},{"type":"relu"}]}"#,
        )?;
        let t = render(&args(&format!("config:{}", p.display()), false))?;
        assert!(t.contains("Total params: 407,050"), "{t}");
        // issue 17: a 10⁶×10⁶ layer aborted the process allocating 8 TB
        std::fs::write(
            &p,
            r#"{"input_size": 1000000, "layers": [{"type": "linear", "size": 1000000}]}"#,
        )?;
        let e = render(&args(&format!("config:{}", p.display()), false))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("m.json")
                && e.contains("layers[0]")
                && e.contains("1000001000000 parameters")
                && e.contains("MAX_PARAMS"),
            "{e}"
        );
        std::fs::write(&p, r#"{"num_classes": 18446744073709551615}"#)?;
        let e = render(&args(&format!("config:{}", p.display()), false))
            .unwrap_err()
            .to_string();
        assert!(e.contains("m.json") && e.contains("num_classes"), "{e}");
        let e = render(&args("zoo:vgg", false)).unwrap_err().to_string();
        assert!(
            e.contains("unknown model `vgg`") && e.contains("hw5/SimpleConvNet_4"),
            "{e}"
        );
        let e = render(&Args {
            model: None,
            json: false,
            list: false,
        })
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("model: missing"), "{e}");
        assert!(render(&Args {
            model: None,
            json: false,
            list: true
        })?
        .contains("hw1/7_layers"));
        Ok(())
    }
}
