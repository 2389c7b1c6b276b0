//! `nnlab optim2d`: runs one hand-written optimizer on a 2-D test function
//! and prints its trajectory (see `scratch::optim2d`).
//!
//! ```text
//! nnlab optim2d --function square_sum --optimizer adam --lr 0.1 --steps 100 --start 5,5 --json
//! {"trajectory":[[5.0,5.0],[4.9,4.9],…]}
//! ```

use nnlab::scratch::functions::Function2d;
use nnlab::scratch::optim2d::{Kind, Optimizer2d, Rule};
use nnlab::{Error, Result};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// square_sum | complex_sum | rosenbrock | himmelblau
    #[arg(long, default_value = "square_sum")]
    pub function: String,
    /// sgd | momentum | adagrad | rmsprop | adam
    #[arg(long, default_value = "adam")]
    pub optimizer: String,
    #[arg(long, default_value_t = 0.01)]
    pub lr: f64,
    /// μ of Momentum (default 0.9)
    #[arg(long)]
    pub momentum: Option<f64>,
    /// α of RMSprop (default 0.99)
    #[arg(long)]
    pub alpha: Option<f64>,
    /// β₁ of Adam (default 0.9)
    #[arg(long)]
    pub beta1: Option<f64>,
    /// β₂ of Adam (default 0.999)
    #[arg(long)]
    pub beta2: Option<f64>,
    /// ε (default 1e-10 for Adagrad, 1e-8 otherwise, as torch)
    #[arg(long)]
    pub eps: Option<f64>,
    #[arg(long, default_value_t = 100)]
    pub steps: usize,
    /// start point `x,y` (default 5,5)
    #[arg(long, default_value = "5,5", allow_hyphen_values = true)]
    pub start: String,
    /// the course notebook's rules (eps inside the root, uncorrected Adam)
    #[arg(long)]
    pub course: bool,
    /// print `{"trajectory":[[x,y],…]}` (the default prints a table)
    #[arg(long)]
    pub json: bool,
}

/// Parses `x,y`.
pub fn parse_point(s: &str) -> Result<[f64; 2]> {
    let bad = || {
        Error::config(
            "--start",
            format!("`{s}`: expected two numbers `x,y`, e.g. 5,-2"),
        )
    };
    let v: Vec<f64> = s
        .split(',')
        .map(|t| t.trim().parse::<f64>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| bad())?;
    match v[..] {
        [x, y] if x.is_finite() && y.is_finite() => Ok([x, y]),
        _ => Err(bad()),
    }
}

pub fn run(a: Args) -> Result<()> {
    let f: Function2d = a.function.parse()?;
    let kind: Kind = a.optimizer.parse()?;
    let d = Optimizer2d::new(kind, a.lr);
    let o = Optimizer2d {
        momentum: a.momentum.unwrap_or(d.momentum),
        alpha: a.alpha.unwrap_or(d.alpha),
        beta1: a.beta1.unwrap_or(d.beta1),
        beta2: a.beta2.unwrap_or(d.beta2),
        eps: a.eps.unwrap_or(d.eps),
        rule: if a.course { Rule::Course } else { Rule::Torch },
        ..d
    };
    let t = o.run(f, parse_point(&a.start)?, a.steps)?;
    if a.json {
        let v = serde_json::json!({ "trajectory": t.points, "values": t.values, "grad_norms": t.grad_norms });
        println!("{}", serde_json::to_string(&v)?);
    } else {
        println!("{}", t.to_dataframe()?);
    }
    Ok(())
}
