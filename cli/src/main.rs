//! The `nnlab` command line: one file per subcommand, each with its clap
//! `Args` and a `run(args) -> Result<()>`. It lives in its own package so the
//! library that notebooks compile (`:dep nnlab`) does not build clap or the
//! benchmark harness.

use clap::{Parser, Subcommand};

mod bench;
mod data;
mod devicecheck;
mod gradcheck;
mod optim2d;
mod summary;
mod train;

/// A unit test's result: any error fails the test with its message (`?` instead of `.unwrap()`).
#[cfg(test)]
type TestResult = Result<(), Box<dyn std::error::Error>>;

#[derive(Parser, Debug)]
#[command(
    name = "nnlab",
    version,
    about = "nnlab: datasets, training and teaching tools of the course"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Dataset information and downloads.
    Data(data::Args),
    /// Hand-written optimizers on 2-D test functions.
    Optim2d(optim2d::Args),
    /// Gradient check of every scratch layer and a whole network.
    Gradcheck(gradcheck::Args),
    /// The course's models on a GPU against the CPU: values, gradients, training, checkpoints.
    Devicecheck(devicecheck::Args),
    /// Trains a model on a course dataset.
    Train(train::Args),
    /// Layer-by-layer summary of a model (torchinfo layout).
    Summary(summary::Args),
    /// One case of the side-by-side benchmark (bench/run).
    Bench(bench::Args),
}

fn main() {
    let cli = Cli::parse();
    nnlab::tune_process();
    let result = match cli.command {
        Command::Data(a) => data::run(a),
        Command::Optim2d(a) => optim2d::run(a),
        Command::Gradcheck(a) => gradcheck::run(a),
        Command::Devicecheck(a) => devicecheck::run(a),
        Command::Summary(a) => summary::run(a),
        Command::Train(a) => train::run(a),
        Command::Bench(a) => bench::run(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
