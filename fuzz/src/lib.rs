//! Mutation fuzzing of nnlab's parsers on stable Rust (cargo-fuzz needs a
//! nightly toolchain): a deterministic mutator ([`mutate`]) changes small
//! valid seed files, each input goes to its parser ([`targets`]) under
//! `catch_unwind`, and the loop ([`run`]) counts panics and reads the peak
//! resident memory. The library's promise is that every input gives a value
//! or a typed error: 0 panics, 0 aborts, memory bounded by what the formats
//! allow.
//!
//! ```text
//! cargo run --release -p nnlab-fuzz -- --target all --inputs 1000000 --seed 1
//! cargo run -p nnlab-fuzz -- --seconds 3            # a short run of every target
//! ```
//!
//! The smoke test (`fuzz/tests/smoke.rs`, part of `cargo test --workspace`)
//! runs every target for a few seconds with a fixed seed. Results of the long
//! runs: `fuzz/README.md`.

pub mod mutate;
pub mod run;
pub mod targets;
