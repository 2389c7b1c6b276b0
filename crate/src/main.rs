//! The `nnlab` command line.

use clap::{Parser, Subcommand};
use nnlab::cli;

#[derive(Parser, Debug)]
#[command(name = "nnlab", version, about = "nnlab: datasets, training and teaching tools of the course")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Dataset information and downloads.
    Data(cli::data::Args),
    /// Hand-written optimizers on 2-D test functions.
    Optim2d(cli::optim2d::Args),
    /// Gradient check of every scratch layer and a whole network.
    Gradcheck(cli::gradcheck::Args),
    /// Trains a model on a course dataset.
    Train(cli::train::Args),
    /// Layer-by-layer summary of a model (torchinfo layout).
    Summary(cli::summary::Args),
    /// One case of the side-by-side benchmark (bench/run).
    Bench(cli::bench::Args),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Data(a) => cli::data::run(a),
        Command::Optim2d(a) => cli::optim2d::run(a),
        Command::Gradcheck(a) => cli::gradcheck::run(a),
        Command::Summary(a) => cli::summary::run(a),
        Command::Train(a) => cli::train::run(a),
        Command::Bench(a) => cli::bench::run(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
