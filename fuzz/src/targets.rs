//! The parsers under fuzz, each with its seed inputs (small valid files
//! built here, or the SVHN fixtures of `crate/tests/fixtures`), its
//! dictionary and how an input reaches it.
//!
//! | target | entry point | input |
//! |---|---|---|
//! | `idx` | `idx::read_images`, `idx::read_labels` | a file, raw or gzip |
//! | `cifar` | `cifar::read_archive` | a `.tar.gz` file |
//! | `svhn` | `svhn::read` | a `.mat` file |
//! | `digits` | `digits::read` | a CSV file, raw or gzip |
//! | `folder-cache` | `image_folder::read_cache_file` | an image-folder cache file |
//! | `config` | `MlpConfig::from_json` (+ `build` when small) | JSON text |
//! | `checkpoint` | `checkpoint::load` + `Model::load_state_dict` | a safetensors file |
//!
//! Gzip formats are fed four ways: the plain bytes mutated then gzipped (to
//! reach the parser behind the decompressor), the gzip bytes mutated (the
//! decompressor), two gzip members, and the plain bytes as they are.

use crate::mutate::{mutate, Rng};
use candle_core::{DType, Device};
use nnlab::data::{cifar, digits, idx, image_folder, svhn};
use nnlab::models::layer_stack::LayerStack;
use nnlab::models::mlp::{Mlp, MlpConfig};
use nnlab::models::model::Model;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Names of every target, in run order.
pub const NAMES: [&str; 7] = [
    "idx",
    "cifar",
    "svhn",
    "digits",
    "folder-cache",
    "config",
    "checkpoint",
];

/// How mutated bytes become the input.
#[derive(Clone, Copy, PartialEq)]
enum Wrap {
    /// As they are.
    Plain,
    /// Gzip formats (see the module doc).
    Gzip,
}

/// One parser under fuzz.
pub struct Target {
    pub name: &'static str,
    seeds: Vec<Vec<u8>>,
    dict: Vec<&'static [u8]>,
    wrap: Wrap,
    /// A scratch file for inputs read from disk.
    file: PathBuf,
    classes: Vec<String>,
    model: Option<Model>,
}

/// What one input did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Outcome {
    Parsed,
    Refused,
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = e.write_all(bytes);
    e.finish().unwrap_or_default()
}

fn idx_file(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

fn cifar_tar(records: &[(u8, usize)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        let _ = h.set_path(name);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        let _ = b.append(&h, data);
    };
    let batch = |n: usize, label: u8| -> Vec<u8> {
        (0..n)
            .flat_map(|i| {
                std::iter::once(label).chain((0..3072).map(move |j| ((i * 7 + j) % 256) as u8))
            })
            .collect()
    };
    for (i, &(label, n)) in records.iter().enumerate() {
        let name = if i + 1 == records.len() {
            "test_batch.bin".to_string()
        } else {
            format!("data_batch_{}.bin", i + 1)
        };
        add(&format!("cifar-10-batches-bin/{name}"), &batch(n, label));
    }
    add(
        "cifar-10-batches-bin/batches.meta.txt",
        nnlab::data::cifar::CLASSES.join("\n").as_bytes(),
    );
    b.into_inner().unwrap_or_default()
}

fn digits_csv(rows: usize) -> Vec<u8> {
    (0..rows)
        .map(|r| {
            let mut v: Vec<String> = (0..64).map(|i| ((i + r) % 17).to_string()).collect();
            v.push((r % 10).to_string());
            v.join(",")
        })
        .collect::<Vec<_>>()
        .join("\n")
        .into_bytes()
}

/// A tiny image folder's cache file, written by a real load.
fn folder_cache(dir: &Path) -> (Vec<u8>, Vec<String>) {
    let root = dir.join("folder");
    let cache = dir.join("folder-cache");
    for (c, v) in [("a_cls", 10u8), ("b_cls", 200)] {
        let d = root.join(c);
        let _ = std::fs::create_dir_all(&d);
        for k in 0..2u8 {
            let img = image::RgbImage::from_pixel(4, 3, image::Rgb([v, k, 7]));
            let _ = img.save(d.join(format!("{k}.png")));
        }
    }
    let r = image_folder::ImageFolder::new(&root)
        .cache_dir(&cache)
        .load_report();
    let bytes = r
        .ok()
        .and_then(|r| r.cache_path)
        .and_then(|p| std::fs::read(p).ok())
        .unwrap_or_default();
    (bytes, vec!["a_cls".into(), "b_cls".into()])
}

/// The model the checkpoint seeds are saved from (and loaded into).
fn tiny_model() -> Option<Model> {
    Mlp::new(4, 2)
        .linear(3)
        .relu()
        .batch_norm()
        .device(&Device::Cpu)
        .dtype(DType::F32)
        .build()
        .ok()
}

fn checkpoint_seed(dir: &Path, model: &Model) -> Vec<u8> {
    let p = dir.join("seed.safetensors");
    let mut opt = nnlab::train::optim::Adam::new(0.01);
    let _ = nnlab::train::optim::Optimizer::attach(&mut opt, model.named_params());
    let history = nnlab::train::history::History::new("seed");
    let _ = nnlab::train::checkpoint::save(&p, model, &opt, None, &history);
    std::fs::read(&p).unwrap_or_default()
}

const SVHN_FIXTURES: [&[u8]; 4] = [
    include_bytes!("../../crate/tests/fixtures/svhn/x_y_uint8.mat"),
    include_bytes!("../../crate/tests/fixtures/svhn/x_y_uint8_z.mat"),
    include_bytes!("../../crate/tests/fixtures/svhn/x_y_double.mat"),
    include_bytes!("../../crate/tests/fixtures/svhn/x_y_double_z.mat"),
];

const JSON_DICT: [&[u8]; 24] = [
    b"18446744073709551615",
    b"4294967296",
    b"1000000",
    b"-1",
    b"0",
    b"1e309",
    b"0.5",
    b"null",
    b"true",
    b"[",
    b"]",
    b"{",
    b"}",
    b",",
    b"\"",
    b"\"size\"",
    b"\"type\"",
    b"\"layers\"",
    b"\"num_classes\": ",
    b"\"input_size\": ",
    b"{\"type\": \"linear\", \"size\": 4096}",
    b"\"batch_norm\"",
    b"\"rate\": 1",
    b"\"slope\": ",
];

const BINARY_DICT: [&[u8]; 8] = [
    b"\x00\x00\x08\x03",
    b"\x00\x00\x08\x01",
    b"\xff\xff\xff\xff",
    b"\x00\x00\x00\x00",
    b"\x1f\x8b\x08\x00",
    b"IM",
    b"MI",
    b"\x0f\x00\x00\x00",
];

impl Target {
    /// The target `name` with its seeds, its scratch files in `dir`.
    pub fn new(name: &str, dir: &Path) -> Option<Target> {
        let _ = std::fs::create_dir_all(dir);
        let mut t = Target {
            name: NAMES.iter().copied().find(|n| *n == name)?,
            seeds: vec![],
            dict: BINARY_DICT.to_vec(),
            wrap: Wrap::Plain,
            file: dir.join(format!("input-{name}")),
            classes: vec![],
            model: None,
        };
        match name {
            "idx" => {
                let px: Vec<u8> = (0..48).collect();
                t.seeds = vec![
                    idx_file(idx::IMAGES_MAGIC, &[3, 4, 4], &px),
                    idx_file(idx::LABELS_MAGIC, &[3], &[1, 2, 3]),
                    idx_file(idx::IMAGES_MAGIC, &[1, 28, 28], &[9; 784]),
                ];
                t.wrap = Wrap::Gzip;
            }
            "cifar" => {
                t.seeds = vec![
                    cifar_tar(&[(3, 2), (9, 1)]),
                    cifar_tar(&[(0, 1), (1, 1), (2, 1)]),
                ];
                t.wrap = Wrap::Gzip;
            }
            "svhn" => {
                t.seeds = SVHN_FIXTURES.iter().map(|s| s.to_vec()).collect();
                t.file = dir.join("input-svhn.mat");
            }
            "digits" => {
                t.seeds = vec![digits_csv(3), digits_csv(12)];
                t.dict = vec![
                    b",", b"\n", b"16", b"17", b"9", b"10", b"-1", b"1.5", b"\xff", b" ",
                ];
                t.wrap = Wrap::Gzip;
            }
            "folder-cache" => {
                let (bytes, classes) = folder_cache(dir);
                t.seeds = vec![bytes];
                t.classes = classes;
                t.dict.extend(JSON_DICT);
            }
            "config" => {
                t.seeds = vec![
                    br#"{"input_size": 784, "num_classes": 10, "layers": [{"type": "linear", "size": 512}, {"type": "relu"}, {"type": "dropout", "rate": 0.3}, {"type": "batch_norm"}]}"#.to_vec(),
                    br#"{"layers": ["relu", {"type": "leaky_relu", "slope": 0.1}, {"type": "linear", "size": 16}, "layer_norm", "tanh", "sigmoid"]}"#.to_vec(),
                    br#"{"input_size": 64, "num_classes": 10, "layers": []}"#.to_vec(),
                ];
                t.dict = JSON_DICT.to_vec();
            }
            "checkpoint" => {
                let model = tiny_model()?;
                t.seeds = vec![checkpoint_seed(dir, &model)];
                t.model = Some(model);
                t.dict.extend(JSON_DICT);
                t.file = dir.join("input.safetensors");
            }
            _ => return None,
        }
        t.seeds.retain(|s| !s.is_empty());
        if t.seeds.is_empty() {
            return None;
        }
        Some(t)
    }

    /// Input number `i` of the stream `rng`: a seed, mutated (and wrapped).
    pub fn input(&self, rng: &mut Rng) -> Vec<u8> {
        let mut d = self.seeds[rng.below(self.seeds.len())].clone();
        if self.name == "config" && rng.chance(2) {
            // structure-aware: edit the parsed JSON, so most inputs parse
            if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&d) {
                for _ in 0..1 + rng.below(3) {
                    edit_json(rng, &mut v);
                }
                return serde_json::to_vec(&v).unwrap_or(d);
            }
        }
        match self.wrap {
            Wrap::Plain => {
                mutate(rng, &mut d, &self.seeds, &self.dict);
                d
            }
            Wrap::Gzip => match rng.below(4) {
                0 => {
                    mutate(rng, &mut d, &self.seeds, &self.dict);
                    gz(&d)
                }
                1 => {
                    let mut g = gz(&d);
                    let others: Vec<Vec<u8>> = self.seeds.iter().map(|s| gz(s)).collect();
                    mutate(rng, &mut g, &others, &self.dict);
                    g
                }
                2 => {
                    mutate(rng, &mut d, &self.seeds, &self.dict);
                    let cut = rng.below(d.len() + 1);
                    let mut two = gz(&d[..cut]);
                    two.extend(gz(&d[cut..]));
                    two
                }
                _ => {
                    mutate(rng, &mut d, &self.seeds, &self.dict);
                    d
                }
            },
        }
    }

    /// Feeds one input to the parser: Ok for parsed, Err for a typed error.
    pub fn run(&self, input: &[u8]) -> Outcome {
        let outcome = |ok: bool| {
            if ok {
                Outcome::Parsed
            } else {
                Outcome::Refused
            }
        };
        let write = |bytes: &[u8]| std::fs::write(&self.file, bytes).is_ok();
        match self.name {
            "idx" => {
                if !write(input) {
                    return Outcome::Refused;
                }
                let a = idx::read_images(&self.file).is_ok();
                let b = idx::read_labels(&self.file).is_ok();
                outcome(a || b)
            }
            "cifar" => outcome(write(input) && cifar::read_archive(&self.file).is_ok()),
            "svhn" => outcome(write(input) && svhn::read(&self.file, "fuzz").is_ok()),
            "digits" => outcome(write(input) && digits::read(&self.file).is_ok()),
            "folder-cache" => outcome(
                write(input) && image_folder::read_cache_file(&self.file, &self.classes).is_some(),
            ),
            "config" => {
                let text = String::from_utf8_lossy(input);
                match MlpConfig::from_json(&text) {
                    Ok(cfg) => {
                        // build the small ones (the ceiling itself is tested in nnlab)
                        if cfg.check_param_count().is_ok_and(|n| n <= 20_000) {
                            let mut m =
                                Mlp::new(cfg.input_size, cfg.num_classes).device(&Device::Cpu);
                            m.config = cfg;
                            outcome(m.build().is_ok())
                        } else {
                            Outcome::Parsed
                        }
                    }
                    Err(_) => Outcome::Refused,
                }
            }
            "checkpoint" => {
                if !write(input) {
                    return Outcome::Refused;
                }
                match nnlab::train::checkpoint::load(&self.file, &Device::Cpu) {
                    Ok(ck) => match &self.model {
                        Some(m) => outcome(m.load_state_dict(&ck.model).is_ok()),
                        None => Outcome::Parsed,
                    },
                    Err(_) => Outcome::Refused,
                }
            }
            _ => Outcome::Refused,
        }
    }
}

/// A value the structured JSON edits put in.
fn interesting_json(rng: &mut Rng) -> serde_json::Value {
    use serde_json::json;
    let layer_types = [
        "linear",
        "relu",
        "sigmoid",
        "tanh",
        "leaky_relu",
        "dropout",
        "batch_norm",
        "layer_norm",
        "conv",
    ];
    match rng.below(12) {
        0 => json!(0),
        1 => json!(-1),
        2 => json!(u64::MAX),
        3 => json!(1e308),
        4 => json!(0.5),
        5 => json!(1 + rng.below(5000)),
        6 => json!(1_000_000),
        7 => json!(layer_types[rng.below(layer_types.len())]),
        8 => json!(null),
        9 => json!({"type": layer_types[rng.below(layer_types.len())], "size": 1 + rng.below(64)}),
        10 => json!([]),
        _ => json!({}),
    }
}

/// One random structural edit somewhere in `v`: replace a value, add or
/// remove a key, duplicate or remove a list element.
fn edit_json(rng: &mut Rng, v: &mut serde_json::Value) {
    use serde_json::Value;
    const KEYS: [&str; 8] = [
        "size",
        "rate",
        "slope",
        "type",
        "input_size",
        "num_classes",
        "layers",
        "extra",
    ];
    match v {
        Value::Object(m) if !m.is_empty() && rng.chance(2) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            let k = &keys[rng.below(keys.len())];
            if let Some(child) = m.get_mut(k) {
                edit_json(rng, child);
            }
        }
        Value::Object(m) => match rng.below(3) {
            0 if !m.is_empty() => {
                let keys: Vec<String> = m.keys().cloned().collect();
                m.remove(&keys[rng.below(keys.len())]);
            }
            _ => {
                m.insert(
                    KEYS[rng.below(KEYS.len())].to_string(),
                    interesting_json(rng),
                );
            }
        },
        Value::Array(a) if !a.is_empty() && rng.chance(2) => {
            let i = rng.below(a.len());
            edit_json(rng, &mut a[i]);
        }
        Value::Array(a) => match rng.below(3) {
            0 if !a.is_empty() => {
                let i = rng.below(a.len());
                let e = a[i].clone();
                a.insert(i, e);
            }
            1 if !a.is_empty() => {
                a.remove(rng.below(a.len()));
            }
            _ => a.push(interesting_json(rng)),
        },
        other => *other = interesting_json(rng),
    }
}
