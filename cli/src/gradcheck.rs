//! `nnlab gradcheck`: checks the hand-written backward of every scratch layer
//! and of a whole network against finite differences and Candle autograd
//! (see `scratch::gradcheck`).
//!
//! ```text
//! nnlab gradcheck --json
//! {"checks":[{"layer":"Linear(5→4)","param":"weight","max_abs_err":…,"max_rel_err":…,…},…]}
//! ```

use nnlab::scratch::gradcheck;
use nnlab::Result;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// seed of the random inputs and weights
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// print `{"checks":[…]}` (the default prints the table)
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> Result<()> {
    let checks = gradcheck::check_all(a.seed)?;
    if a.json {
        let rows: Vec<serde_json::Value> = checks
            .iter()
            .map(|c| {
                serde_json::json!({
                    "layer": c.layer, "param": c.param, "numel": c.numel, "checked": c.checked,
                    "max_abs_err": c.max_abs_err, "max_rel_err": c.max_rel_err,
                    "max_abs_err_autograd": c.max_abs_err_autograd, "max_rel_err_autograd": c.max_rel_err_autograd,
                    "kink_margin": if c.kink_margin.is_finite() { Some(c.kink_margin) } else { None },
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string(&serde_json::json!({ "checks": rows }))?
        );
    } else {
        println!("{}", gradcheck::to_dataframe(&checks)?);
    }
    Ok(())
}
