//! `nnlab optim2d` (to be written).

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> crate::Result<()> {
    Err(crate::Error::config("optim2d", "not built yet"))
}
