//! hw1's `FullyConnectedModel`: an MLP from the course's JSON layer config.
//!
//! ```json
//! {"input_size": 784, "num_classes": 10,
//!  "layers": [{"type": "linear", "size": 512}, {"type": "relu"},
//!             {"type": "dropout", "rate": 0.3}, {"type": "batch_norm"}]}
//! ```
//!
//! `input_size` defaults to 784, `num_classes` to 10. Layer types: `linear`
//! (`size`), `relu`, `sigmoid`, `tanh`, `leaky_relu` (`slope`, default
//! 0.01), `dropout` (`rate`, default 0.5), `batch_norm` (BatchNorm1d of the
//! current width), `layer_norm`. A layer without fields may be written as a
//! bare string (`"relu"`). A final `Linear(prev, num_classes)` is appended;
//! the input is flattened to `[B, input_size]`; the modules are named
//! `layers.0`, `layers.1`, ... like hw1's `nn.Sequential`.
//!
//! The name is `"N layers"` (`"1 layer"`) with N the number of linear layers,
//! the appended one included: the course's names for its 1/2/3/5/7-layer
//! models. (hw1's code counted the *config entries* instead, so its "7 layers"
//! model was printed as "12 layers"; we count what the comments meant.)
//! Unlike hw1, which silently skipped an unknown type, a bad config is an
//! error naming `layers[i].field` and what was expected; so is a key given
//! twice, and a model over the parameter ceiling
//! ([`MAX_PARAMS`], checked before allocating).
//!
//! ```
//! use nnlab::models::mlp::Mlp;
//! use nnlab::models::layer_stack::LayerStack;
//! let m = Mlp::from_json(r#"{"layers":[{"type":"linear","size":512},{"type":"relu"}]}"#).unwrap();
//! assert_eq!(m.name(), "2 layers");
//! assert_eq!(m.num_params(), 784 * 512 + 512 + 512 * 10 + 10);
//! let m = Mlp::new(64, 10).linear(52).sigmoid().build().unwrap();
//! assert_eq!(m.name(), "2 layers");
//! ```

use super::init::{ParamInit, MAX_PARAMS};
pub use super::layer_stack::LayerSpec;
use super::layer_stack::LayerStack;
use super::layers::{BatchNorm, Layer, LayerNorm, Linear};
use super::model::{Entry, Model};
use crate::{Error, Result};
use candle_core::{DType, Device};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::Path;

/// hw1's config: see the module doc.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MlpConfig {
    pub input_size: usize,
    pub num_classes: usize,
    pub layers: Vec<LayerSpec>,
}

impl Default for MlpConfig {
    fn default() -> Self {
        MlpConfig {
            input_size: 784,
            num_classes: 10,
            layers: Vec::new(),
        }
    }
}

const TYPES: &str = "linear, relu, sigmoid, tanh, leaky_relu, dropout, batch_norm, layer_norm";

fn positive_int(v: &Value, field: &str) -> Result<usize> {
    match v.as_u64() {
        Some(n) if n > 0 => Ok(n as usize),
        _ => Err(Error::config(
            field,
            format!("{v}, expected a positive integer"),
        )),
    }
}

fn parse_layer(i: usize, v: &Value) -> Result<LayerSpec> {
    let at = |f: &str| format!("layers[{i}].{f}");
    let empty = Map::new();
    let (ty, obj) = match v {
        Value::String(s) => (s.as_str(), &empty),
        Value::Object(o) => match o.get("type") {
            Some(Value::String(s)) => (s.as_str(), o),
            Some(other) => {
                return Err(Error::config(
                    at("type"),
                    format!("{other}, expected a string: one of {TYPES}"),
                ))
            }
            None => {
                return Err(Error::config(
                    at("type"),
                    format!("missing, expected one of {TYPES}"),
                ))
            }
        },
        other => {
            return Err(Error::config(
                format!("layers[{i}]"),
                format!("{other}, expected an object like {{\"type\": \"linear\", \"size\": 128}}"),
            ))
        }
    };
    let allowed: &[&str] = match ty {
        "linear" => &["size"],
        "leaky_relu" => &["slope"],
        "dropout" => &["rate"],
        "relu" | "sigmoid" | "tanh" | "batch_norm" | "layer_norm" => &[],
        other => {
            return Err(Error::config(
                at("type"),
                format!("unknown layer type `{other}`, expected one of {TYPES}"),
            ))
        }
    };
    for k in obj.keys() {
        if k != "type" && !allowed.contains(&k.as_str()) {
            let expected = if allowed.is_empty() {
                "no other key".to_string()
            } else {
                format!("only {}", allowed.join(", "))
            };
            return Err(Error::config(
                at(k),
                format!("unknown key for a `{ty}` layer, expected {expected}"),
            ));
        }
    }
    Ok(match ty {
        "linear" => match obj.get("size") {
            Some(s) => LayerSpec::Linear {
                size: positive_int(s, &at("size"))?,
            },
            None => {
                return Err(Error::config(
                    at("size"),
                    "missing, expected a positive integer (the layer width)",
                ))
            }
        },
        "relu" => LayerSpec::Relu,
        "sigmoid" => LayerSpec::Sigmoid,
        "tanh" => LayerSpec::Tanh,
        "batch_norm" => LayerSpec::BatchNorm,
        "layer_norm" => LayerSpec::LayerNorm,
        "leaky_relu" => {
            let slope = match obj.get("slope") {
                None => 0.01,
                Some(s) => match s.as_f64() {
                    Some(x) if x.is_finite() => x,
                    _ => {
                        return Err(Error::config(
                            at("slope"),
                            format!("{s}, expected a number"),
                        ))
                    }
                },
            };
            LayerSpec::LeakyRelu { slope }
        }
        _ => {
            let rate = match obj.get("rate") {
                None => 0.5,
                Some(r) => match r.as_f64() {
                    Some(x) if x > 0.0 && x < 1.0 => x,
                    _ => {
                        return Err(Error::config(
                            at("rate"),
                            format!("{r}, expected a probability 0 < rate < 1"),
                        ))
                    }
                },
            };
            LayerSpec::Dropout { rate }
        }
    })
}

impl MlpConfig {
    /// Parses and checks hw1's JSON config.
    pub fn from_json(json: &str) -> Result<MlpConfig> {
        let v: Value = crate::json::parse(json)?;
        let obj = v.as_object().ok_or_else(|| {
            Error::config(
                "config",
                format!("expected a JSON object, got {}", type_of(&v)),
            )
        })?;
        let mut cfg = MlpConfig::default();
        for (k, val) in obj {
            match k.as_str() {
                "input_size" => cfg.input_size = positive_int(val, "input_size")?,
                "num_classes" => cfg.num_classes = positive_int(val, "num_classes")?,
                "layers" => {
                    let arr = val.as_array().ok_or_else(|| {
                        Error::config(
                            "layers",
                            format!("{}, expected a list of layers", type_of(val)),
                        )
                    })?;
                    cfg.layers = arr
                        .iter()
                        .enumerate()
                        .map(|(i, l)| parse_layer(i, l))
                        .collect::<Result<_>>()?;
                }
                other => {
                    return Err(Error::config(
                        other,
                        "unknown key, expected input_size, num_classes or layers",
                    ));
                }
            }
        }
        Ok(cfg)
    }

    /// Checks values built in Rust (the same rules as the JSON).
    pub fn validate(&self) -> Result<()> {
        if self.input_size == 0 {
            return Err(Error::config(
                "input_size",
                "0, expected a positive integer",
            ));
        }
        if self.num_classes == 0 {
            return Err(Error::config(
                "num_classes",
                "0, expected a positive integer",
            ));
        }
        for (i, l) in self.layers.iter().enumerate() {
            match l {
                LayerSpec::Linear { size: 0 } => {
                    return Err(Error::config(
                        format!("layers[{i}].size"),
                        "0, expected a positive integer",
                    ))
                }
                LayerSpec::Dropout { rate } if !(*rate > 0.0 && *rate < 1.0) => {
                    return Err(Error::config(
                        format!("layers[{i}].rate"),
                        format!("{rate}, expected a probability 0 < rate < 1"),
                    ))
                }
                _ => {}
            }
        }
        self.check_param_count()?;
        Ok(())
    }

    /// The parameters of every layer, counted with overflow-checked
    /// arithmetic before anything is allocated: a layer or a total over
    /// [`MAX_PARAMS`] is an error naming the layer (`layers[i]`, or
    /// `num_classes` for the appended linear layer) and the count.
    pub fn check_param_count(&self) -> Result<usize> {
        let over = |field: String, what: String| {
            Error::config(
                field,
                format!("{what}, more than the ceiling of {MAX_PARAMS} parameters (nnlab::models::init::MAX_PARAMS)"),
            )
        };
        let linear = |field: String, inp: usize, out: usize| -> Result<usize> {
            let n = inp.checked_mul(out).and_then(|w| w.checked_add(out));
            match n {
                Some(n) if n <= MAX_PARAMS => Ok(n),
                Some(n) => Err(over(
                    field,
                    format!("a linear layer {inp} → {out} has {n} parameters"),
                )),
                None => Err(over(
                    field,
                    format!(
                        "a linear layer {inp} → {out} has {} parameters",
                        inp as u128 * out as u128 + out as u128
                    ),
                )),
            }
        };
        let mut total = 0usize;
        let mut prev = self.input_size;
        for (i, l) in self.layers.iter().enumerate() {
            let n = match l {
                LayerSpec::Linear { size } => {
                    let n = linear(format!("layers[{i}]"), prev, *size)?;
                    prev = *size;
                    n
                }
                // weight and bias (BatchNorm's running statistics are buffers)
                LayerSpec::BatchNorm | LayerSpec::LayerNorm => prev.saturating_mul(2),
                _ => 0,
            };
            total = total.saturating_add(n);
            if total > MAX_PARAMS {
                return Err(over(
                    format!("layers[{i}]"),
                    format!("the layers up to this one have {total} parameters"),
                ));
            }
        }
        total = total.saturating_add(linear("num_classes".into(), prev, self.num_classes)?);
        if total > MAX_PARAMS {
            return Err(over(
                "num_classes".into(),
                format!("the model has {total} parameters in all"),
            ));
        }
        Ok(total)
    }

    /// Number of linear layers, the appended one included.
    pub fn depth(&self) -> usize {
        1 + self
            .layers
            .iter()
            .filter(|l| matches!(l, LayerSpec::Linear { .. }))
            .count()
    }
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Builder of hw1 MLPs (also what `from_json` produces).
#[derive(Clone, Debug)]
pub struct Mlp {
    pub config: MlpConfig,
    device: Option<Device>,
    dtype: DType,
}

impl Mlp {
    /// An empty config `input_size → num_classes`; add hidden layers with the
    /// methods below, then `build()`.
    pub fn new(input_size: usize, num_classes: usize) -> Mlp {
        Mlp {
            config: MlpConfig {
                input_size,
                num_classes,
                layers: Vec::new(),
            },
            device: None,
            dtype: DType::F32,
        }
    }
    fn push(mut self, l: LayerSpec) -> Mlp {
        self.config.layers.push(l);
        self
    }
    /// Device of the parameters (default `nnlab::device()`).
    pub fn device(mut self, d: &Device) -> Mlp {
        self.device = Some(d.clone());
        self
    }
    /// Dtype of the parameters (default f32; f64 for gradient checks).
    pub fn dtype(mut self, dtype: DType) -> Mlp {
        self.dtype = dtype;
        self
    }

    /// Builds the model from a parsed config on the default device, f32.
    pub fn from_config(config: MlpConfig) -> Result<Model> {
        Mlp {
            config,
            device: None,
            dtype: DType::F32,
        }
        .build()
    }

    /// Parses hw1's JSON config and builds the model.
    pub fn from_json(json: &str) -> Result<Model> {
        Mlp::from_config(MlpConfig::from_json(json)?)
    }

    /// Reads a JSON config file (`create_model_from_config(path)`).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Model> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        // checked here (build checks again) so that every error names the file
        let cfg = MlpConfig::from_json(&text)
            .and_then(|c| c.validate().map(|_| c))
            .map_err(|e| match e {
                Error::Json(j) => Error::format(path, format!("invalid JSON: {j}")),
                Error::Config { field, what } => Error::format(path, format!("{field}: {what}")),
                other => other,
            })?;
        Mlp::from_config(cfg)
    }

    /// Builds the `Model`: `layers.i` modules, a final `Linear(prev, num_classes)`.
    pub fn build(self) -> Result<Model> {
        self.config.validate()?;
        let device = match &self.device {
            Some(d) => d.clone(),
            None => crate::device()?,
        };
        let mut init = ParamInit::new(&device, self.dtype);
        let mut prev = self.config.input_size;
        let mut entries = Vec::new();
        for spec in &self.config.layers {
            let layer = match spec {
                LayerSpec::Linear { size } => {
                    let l = Linear::new(prev, *size, &mut init)?;
                    prev = *size;
                    Layer::Linear(l)
                }
                LayerSpec::Relu => Layer::ReLU,
                LayerSpec::Sigmoid => Layer::Sigmoid,
                LayerSpec::Tanh => Layer::Tanh,
                LayerSpec::LeakyRelu { slope } => Layer::LeakyReLU(*slope),
                LayerSpec::Dropout { rate } => Layer::Dropout(*rate),
                LayerSpec::BatchNorm => Layer::BatchNorm1d(BatchNorm::new(prev, 1, &mut init)?),
                LayerSpec::LayerNorm => Layer::LayerNorm(LayerNorm::new(prev, &mut init)?),
            };
            entries.push(Entry::module(format!("layers.{}", entries.len()), layer));
        }
        let last = Linear::new(prev, self.config.num_classes, &mut init)?;
        entries.push(Entry::module(
            format!("layers.{}", entries.len()),
            Layer::Linear(last),
        ));
        let n = self.config.depth();
        let name = if n <= 1 {
            format!("{n} layer")
        } else {
            format!("{n} layers")
        };
        Model::from_parts(
            name,
            "FullyConnectedModel",
            vec![self.config.input_size],
            true,
            entries,
            None,
            &device,
            self.dtype,
        )
    }
}

impl LayerStack for Mlp {
    fn layer(self, spec: LayerSpec) -> Mlp {
        self.push(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> String {
        match MlpConfig::from_json(json) {
            Ok(c) => panic!("expected an error for {json}, got {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses_hw1_config_with_defaults() -> crate::TestResult {
        let c = MlpConfig::from_json(
            r#"{"layers":[{"type":"linear","size":512},{"type":"dropout"},"relu",{"type":"leaky_relu"},{"type":"batch_norm"},{"type":"layer_norm"},"sigmoid","tanh"]}"#,
        )?;
        assert_eq!(c.input_size, 784);
        assert_eq!(c.num_classes, 10);
        assert_eq!(c.layers[1], LayerSpec::Dropout { rate: 0.5 });
        assert_eq!(c.layers[3], LayerSpec::LeakyRelu { slope: 0.01 });
        assert_eq!(c.layers.len(), 8);
        assert_eq!(c.depth(), 2);
        // serde round trip of the typed config
        let back: MlpConfig = serde_json::from_str(&serde_json::to_string(&c)?)?;
        assert_eq!(back, c);
        Ok(())
    }

    #[test]
    fn every_config_error_names_the_field() {
        let cases = [
            (
                r#"{"layers":[{"type":"linear"}]}"#,
                "layers[0].size: missing, expected a positive integer",
            ),
            (
                r#"{"layers":[{"type":"relu"},{"type":"conv"}]}"#,
                "layers[1].type: unknown layer type `conv`, expected one of linear",
            ),
            (
                r#"{"layers":[{"size":3}]}"#,
                "layers[0].type: missing, expected one of linear",
            ),
            (
                r#"{"layers":[{"type":3}]}"#,
                "layers[0].type: 3, expected a string",
            ),
            (
                r#"{"layers":[{"type":"linear","size":0}]}"#,
                "layers[0].size: 0, expected a positive integer",
            ),
            (
                r#"{"layers":[{"type":"linear","size":-4}]}"#,
                "layers[0].size: -4, expected a positive integer",
            ),
            (
                r#"{"layers":[{"type":"linear","size":2.5}]}"#,
                "layers[0].size: 2.5, expected a positive integer",
            ),
            (
                r#"{"layers":[{"type":"dropout","rate":0}]}"#,
                "layers[0].rate: 0, expected a probability 0 < rate < 1",
            ),
            (
                r#"{"layers":[{"type":"dropout","rate":-0.2}]}"#,
                "layers[0].rate: -0.2, expected a probability",
            ),
            (
                r#"{"layers":[{"type":"dropout","rate":1.5}]}"#,
                "layers[0].rate: 1.5, expected a probability",
            ),
            (
                r#"{"layers":[{"type":"linear","sze":4}]}"#,
                "layers[0].sze: unknown key for a `linear` layer, expected only size",
            ),
            (
                r#"{"layers":[{"type":"relu","size":4}]}"#,
                "layers[0].size: unknown key for a `relu` layer, expected no other key",
            ),
            (
                r#"{"layers":[{"type":"leaky_relu","slope":"x"}]}"#,
                "layers[0].slope: \"x\", expected a number",
            ),
            (r#"{"layers":[7]}"#, "layers[0]: 7, expected an object"),
            (
                r#"{"layers":{"type":"relu"}}"#,
                "layers: an object, expected a list of layers",
            ),
            (
                r#"{"input_size":0}"#,
                "input_size: 0, expected a positive integer",
            ),
            (
                r#"{"num_classes":"ten"}"#,
                "num_classes: \"ten\", expected a positive integer",
            ),
            (
                r#"{"hidden":[]}"#,
                "hidden: unknown key, expected input_size, num_classes or layers",
            ),
            (r#"[1, 2]"#, "config: expected a JSON object, got a list"),
        ];
        for (json, want) in cases {
            let e = err(json);
            assert!(e.starts_with(want), "{json}\n  got:  {e}\n  want: {want}");
        }
        assert!(err("{").starts_with("json: "), "{}", err("{"));
    }

    #[test]
    fn builder_validates_and_names() -> crate::TestResult {
        let e = Mlp::new(10, 3).linear(0).build().unwrap_err().to_string();
        assert_eq!(e, "layers[0].size: 0, expected a positive integer");
        let e = Mlp::new(10, 3)
            .dropout(1.0)
            .build()
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("layers[0].rate: 1, expected a probability"),
            "{e}"
        );
        let m = Mlp::new(10, 3).device(&Device::Cpu).build()?;
        assert_eq!(m.name(), "1 layer");
        assert_eq!(m.num_params(), 33);
        Ok(())
    }

    #[test]
    fn from_file_names_the_file() -> crate::TestResult {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("cfg.json");
        std::fs::write(&p, r#"{"layers":[{"type":"linear","size":-1}]}"#)?;
        let e = Mlp::from_file(&p).unwrap_err().to_string();
        assert!(
            e.contains("cfg.json") && e.contains("layers[0].size: -1"),
            "{e}"
        );
        let e = Mlp::from_file(dir.path().join("nope.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope.json"), "{e}");
        std::fs::write(&p, r#"{"layers":[{"type":"linear","size":16},"relu"]}"#)?;
        let m = Mlp::from_file(&p)?;
        assert_eq!(m.num_params(), 784 * 16 + 16 + 16 * 10 + 10);
        Ok(())
    }

    /// Issue 17: a 10⁶×10⁶ layer aborted the process allocating 8 TB and
    /// `num_classes = u64::MAX` panicked (capacity overflow): both are errors
    /// naming the layer and the count, before anything is allocated.
    #[test]
    fn parameter_ceiling_names_the_layer_and_the_count() -> crate::TestResult {
        let e = Mlp::from_json(
            r#"{"input_size": 1000000, "layers": [{"type": "linear", "size": 1000000}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("layers[0]:")
                && e.contains("1000000 → 1000000 has 1000001000000 parameters")
                && e.contains("MAX_PARAMS"),
            "{e}"
        );
        let e = Mlp::from_json(r#"{"num_classes": 18446744073709551615}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("num_classes:") && e.contains("784 → 18446744073709551615"),
            "{e}"
        );
        let e = Mlp::from_json(
            r#"{"input_size": 12000, "layers": [{"type": "linear", "size": 12000}, {"type": "linear", "size": 12000}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("layers[1]:") && e.contains("up to this one have 288024000"),
            "{e}"
        );
        let e = Mlp::new(1 << 20, 1 << 20).build().unwrap_err().to_string();
        assert!(e.starts_with("num_classes:"), "{e}");
        assert_eq!(
            MlpConfig::from_json(r#"{"layers": ["relu"]}"#)?.check_param_count()?,
            7850
        );
        Ok(())
    }

    /// Issue 17: a key given twice was accepted silently.
    #[test]
    fn duplicate_keys_are_errors() {
        let e = MlpConfig::from_json(r#"{"num_classes": 10, "num_classes": 3}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("duplicate key `num_classes`"), "{e}");
        let e = MlpConfig::from_json(r#"{"layers": [{"type": "linear", "size": 3, "size": 4}]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("duplicate key `size`"), "{e}");
    }
}
