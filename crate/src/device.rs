//! Where tensors live and where randomness comes from.
//!
//! `device()` is CUDA when the crate is built with `--features cuda` and a GPU
//! answers, else the CPU; `NNLAB_DEVICE=cpu|cuda|cuda:N` overrides.
//! `seed(s)` sets the base seed; every random thing of the library (weight
//! init, shuffling, dropout masks, augmentation) draws from [`rng`] with its
//! own stream name, so the same seed gives the same history on CPU.
//!
//! ```
//! nnlab::seed(42);
//! let dev = nnlab::device().unwrap();
//! assert!(dev.is_cpu() || dev.is_cuda());
//! ```

use crate::{Error, Result};
use candle_core::Device;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::sync::atomic::{AtomicU64, Ordering};

static BASE_SEED: AtomicU64 = AtomicU64::new(0);
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The device tensors are created on: see the module doc.
pub fn device() -> Result<Device> {
    match std::env::var("NNLAB_DEVICE") {
        Ok(v) if !v.trim().is_empty() => parse_device(v.trim()),
        _ => Ok(default_device()),
    }
}

fn default_device() -> Device {
    #[cfg(feature = "cuda")]
    {
        if let Ok(d) = Device::new_cuda(0) {
            return d;
        }
    }
    Device::Cpu
}

/// Parses `cpu`, `cuda` or `cuda:N`.
pub fn parse_device(s: &str) -> Result<Device> {
    let bad = |what: String| Error::config("NNLAB_DEVICE", what);
    if s == "cpu" {
        return Ok(Device::Cpu);
    }
    let ordinal = if s == "cuda" {
        0
    } else if let Some(n) = s.strip_prefix("cuda:") {
        n.parse::<usize>().map_err(|_| {
            bad(format!(
                "`{s}`: expected cpu, cuda or cuda:N with N a GPU index"
            ))
        })?
    } else {
        return Err(bad(format!("`{s}`: expected cpu, cuda or cuda:N")));
    };
    if !cfg!(feature = "cuda") {
        return Err(bad(format!(
            "`{s}`: this build has no CUDA support; rebuild with `--features cuda`"
        )));
    }
    Device::new_cuda(ordinal).map_err(|e| bad(format!("`{s}`: no such GPU ({e})")))
}

/// `cpu` or `cuda:N`: the name [`parse_device`] takes back.
pub fn name(d: &Device) -> String {
    match d.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

/// Sets the base seed of every random stream of the library.
pub fn seed(s: u64) {
    BASE_SEED.store(s, Ordering::SeqCst);
    COUNTER.store(0, Ordering::SeqCst);
}

/// The current base seed.
pub fn base_seed() -> u64 {
    BASE_SEED.load(Ordering::SeqCst)
}

/// A generator for the stream `name` derived from the base seed and `extra`
/// (an epoch, a layer index): the same inputs always give the same numbers.
pub fn rng(name: &str, extra: u64) -> StdRng {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325; // FNV-1a of the stream name
    for b in name.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    StdRng::seed_from_u64(splitmix(base_seed() ^ splitmix(h ^ splitmix(extra))))
}

/// A generator that differs at each call (dropout masks, weight init of
/// successive layers), reproducible after `seed(s)`.
pub fn next_rng(name: &str) -> StdRng {
    rng(name, COUNTER.fetch_add(1, Ordering::SeqCst))
}

/// Tunes the process for training on the CPU: [`tune_allocator`] and
/// [`tune_threads`]. One explicit call, at the start of a program or in a
/// notebook's first cell, before the first tensor operation (Candle's thread
/// pool reads its setting when it starts); calling it again does nothing.
/// Training is correct without it, only slower (a BasicCNN step about twice
/// as slow on glibc, measured in BENCHMARKS.md). The `nnlab` command line
/// and the benchmarks call it; the library never does it behind your back.
///
/// ```
/// nnlab::tune_process();
/// ```
pub fn tune_process() {
    tune_allocator();
    tune_threads();
}

/// Keeps freed memory inside the process instead of handing it back to the
/// OS (glibc: `mallopt(M_MMAP_THRESHOLD, 32 MiB)`, `M_TRIM_THRESHOLD` = max,
/// `M_MMAP_MAX` = 0 so that blocks above 32 MiB come from the heap too,
/// and `M_ARENA_MAX` = 1: one arena for every thread, every allocation).
/// A training step allocates and frees the same large buffers every batch;
/// with glibc's defaults each of them comes back as fresh pages, a page
/// fault per 4 KiB — measured here, half of a BasicCNN step (67 → 35 ms).
///
/// 32 MiB is the largest threshold glibc accepts, so a larger block (a
/// batch of 256 MRI images is 50 MiB, and so is each activation of it) is
/// still mapped and unmapped at every step; `M_MMAP_MAX` = 0 stops that in
/// the main arena. A worker thread allocates from an arena of its own,
/// whose 64 MiB heaps glibc unmaps as soon as they are free (and a larger
/// block gets a mapping of its own), so `M_ARENA_MAX` = 1 puts the threads
/// started afterwards in the main arena, whose heap is kept. An MRI epoch:
/// 9.5–11.5 → 8.0–8.2 s, peak memory +95 MB; the one lock the threads then
/// share costs the small-tensor models 2–4 % (BENCHMARKS.md, "Large blocks
/// from the heap"). Resident memory stays at its peak instead of shrinking
/// between steps. Part of [`tune_process`]; a no-op elsewhere than
/// Linux/glibc, and done once per process.
pub fn tune_allocator() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only changes allocator parameters; every value is in range.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
            libc::mallopt(libc::M_MMAP_MAX, 0);
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    });
}

/// Candle's elementwise thread pool (one worker per extra core) spins
/// 25,000 times after each job before it sleeps. On two cores that spinning
/// worker takes a core from the convolution's threads: 18.8 % of the
/// samples of a BasicCNN epoch in `perf`. Sets
/// `CANDLE_BARRIER_POOL_SPIN_LIMIT` to 100 unless it is set already; it
/// takes effect when Candle's pool has not started yet (call
/// [`tune_process`] before the first tensor operation). Done once per process.
pub fn tune_threads() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os(SPIN_VAR).is_none() {
            std::env::set_var(SPIN_VAR, "100");
        }
    });
}

const SPIN_VAR: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";

/// Moves the `next_rng` counter to `position`: the Learner sets it at the
/// start of every epoch so dropout masks depend only on (seed, epoch, call).
pub fn set_stream_position(position: u64) {
    COUNTER.store(position, Ordering::SeqCst);
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn parse_device_names() -> crate::TestResult {
        assert!(parse_device("cpu")?.is_cpu());
        assert_eq!(name(&parse_device("cpu")?), "cpu");
        let e = parse_device("gpu").unwrap_err().to_string();
        assert!(e.contains("NNLAB_DEVICE") && e.contains("gpu"), "{e}");
        Ok(())
    }

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: u64 = rng("shuffle", 3).random();
        let b: u64 = rng("shuffle", 3).random();
        let c: u64 = rng("shuffle", 4).random();
        let d: u64 = rng("init", 3).random();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }
}
