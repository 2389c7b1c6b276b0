//! `nnlab summary` (to be written).

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> crate::Result<()> {
    Err(crate::Error::config("summary", "not built yet"))
}
