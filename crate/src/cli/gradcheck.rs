//! `nnlab gradcheck` (to be written).

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> crate::Result<()> {
    Err(crate::Error::config("gradcheck", "not built yet"))
}
