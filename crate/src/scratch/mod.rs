//! The teaching half: layers with hand-written forward and backward,
//! gradient checking, and optimizers on 2-D functions.

pub mod functions;
pub mod optim2d;
