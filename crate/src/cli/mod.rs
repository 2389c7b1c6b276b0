//! The `nnlab` command line: one file per subcommand, each with its clap
//! `Args` and a `run(args) -> Result<()>`.

pub mod bench;
pub mod data;
pub mod gradcheck;
pub mod optim2d;
pub mod summary;
pub mod train;
