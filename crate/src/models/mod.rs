//! Models: one `Model` (a sequence of layers with torch state-dict names)
//! built from the course's JSON layer config (`Mlp`), a CNN builder, or the
//! `zoo` of every architecture of the course; `summary()` like torchinfo.

pub mod cnn;
pub mod init;
pub mod layer_stack;
pub mod layers;
pub mod mlp;
pub mod model;
pub mod summary;
pub mod zoo;
