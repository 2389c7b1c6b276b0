//! The fuzz loop: inputs from a seeded stream, each fed to its target under
//! `catch_unwind`; panics counted (the first few inputs kept), peak resident
//! memory read from `/proc/self/status` (`VmHWM`). An abort (an allocation
//! that fails, a stack overflow) ends the process: the run then reports
//! nothing, which `scripts/fuzz` records as a failure.

use crate::mutate::Rng;
use crate::targets::{Outcome, Target};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub target: String,
    pub seed: u64,
    pub inputs: u64,
    pub parsed: u64,
    pub refused: u64,
    pub panics: u64,
    /// The first panic's message and the input number that caused it.
    pub first_panic: Option<(u64, String)>,
    /// Inputs that panicked, written to the crash folder.
    pub saved: Vec<PathBuf>,
    pub seconds: f64,
    /// Peak resident memory of the whole process so far, MiB.
    pub peak_rss_mib: f64,
}

impl Report {
    /// One line: `idx: 1000000 inputs (23.1 % parsed), 0 panics, peak RSS 41 MiB, 75.3 s`.
    pub fn line(&self) -> String {
        let pct = if self.inputs == 0 {
            0.0
        } else {
            100.0 * self.parsed as f64 / self.inputs as f64
        };
        let mut s = format!(
            "{}: {} inputs ({pct:.1} % parsed), {} panics, peak RSS {:.0} MiB, {:.1} s (seed {})",
            self.target, self.inputs, self.panics, self.peak_rss_mib, self.seconds, self.seed
        );
        if let Some((i, msg)) = &self.first_panic {
            s += &format!("\n  first panic at input {i}: {msg}");
        }
        for p in &self.saved {
            s += &format!("\n  saved {}", p.display());
        }
        s
    }
}

static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Replaces the panic hook by one that records the message quietly.
pub fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let msg = match info.payload().downcast_ref::<&str>() {
            Some(s) => s.to_string(),
            None => info
                .payload()
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_default(),
        };
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        if let Ok(mut g) = LAST_PANIC.lock() {
            *g = Some(format!("{msg}{at}"));
        }
    }));
}

/// Where inputs are written: `/dev/shm` (tmpfs) when there is one, else the
/// temp dir. On ext4, a file truncated and written again is flushed to disk
/// on close (`auto_da_alloc`): 3 ms an input instead of microseconds.
pub fn scratch_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// Peak resident memory of this process (`VmHWM`), MiB; 0 where unknown.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Runs `target` on inputs `0..inputs` of the stream `seed`, stopping early
/// after `time` when given; panicking inputs (the first 5) go to `crashes`.
pub fn run(
    target: &Target,
    seed: u64,
    inputs: u64,
    time: Option<Duration>,
    crashes: Option<&Path>,
) -> Report {
    let mut rng = Rng::new(seed ^ fnv(target.name));
    let start = Instant::now();
    let mut r = Report {
        target: target.name.to_string(),
        seed,
        ..Report::default()
    };
    for i in 0..inputs {
        if i % 256 == 0 && time.is_some_and(|t| start.elapsed() >= t) {
            break;
        }
        let input = target.input(&mut rng);
        r.inputs += 1;
        match catch_unwind(AssertUnwindSafe(|| target.run(&input))) {
            Ok(Outcome::Parsed) => r.parsed += 1,
            Ok(Outcome::Refused) => r.refused += 1,
            Err(_) => {
                r.panics += 1;
                let msg = LAST_PANIC
                    .lock()
                    .ok()
                    .and_then(|mut g| g.take())
                    .unwrap_or_default();
                if r.first_panic.is_none() {
                    r.first_panic = Some((i, msg));
                }
                if let Some(dir) = crashes.filter(|_| r.saved.len() < 5) {
                    let _ = std::fs::create_dir_all(dir);
                    let p = dir.join(format!("{}-seed{seed}-input{i}.bin", target.name));
                    if std::fs::write(&p, &input).is_ok() {
                        r.saved.push(p);
                    }
                }
            }
        }
    }
    r.seconds = start.elapsed().as_secs_f64();
    r.peak_rss_mib = peak_rss_mib();
    r
}

/// FNV-1a of a name: each target draws its own stream from one seed.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}
