//! Runs a closure on one of rayon's workers while another worker stays
//! awake polling the pool for work: the training loop of
//! [`Learner::fit`](crate::train::learner::Learner::fit).
//!
//! A step of a small model is a chain of short parallel ops (the products
//! of a batch of 64, the fused optimizer step): each hands half its work to
//! the pool and waits for it. Between two ops the second worker finds
//! nothing to do and goes to sleep, and the next op then wakes it with a
//! futex: a sleep and a wake per op, ≈ 10 % of an MLP's epoch. Here a
//! *poller* job holds that worker instead: it runs whatever the pool has
//! (`rayon::yield_now`), and when there is nothing it gives its core away
//! for a moment (`std::thread::yield_now`, so Candle's own threads and the
//! loader's batch thread still run at once) and looks again.
//!
//! [`arm`] (once a batch, from the loop) queues a poller when the run has
//! none. A poller ends when the closure is over (a guard marks it over on
//! a panic too) or after [`IDLE`] without work: a long single-threaded
//! stretch then costs no core, and a poller that a worker picked up in the
//! middle of a wait of its own never holds that wait for longer. With a
//! one-thread pool there is no poller (the one worker runs the loop).
//!
//! The numbers are the same: a poller only changes which thread runs a
//! piece of work and when, never how an op splits it.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a poller goes on without finding work before it ends. Chosen
/// by measurement (BENCHMARKS.md, "A worker kept awake"): against no
/// poller, 100 µs gave an MLP epoch −9 %, 500 µs −18 %, 2 ms −11 to −20 %
/// and a CNN's −5 to +3 %, no limit −9 % (and cifarcnn +6 to +8 %).
const IDLE: Duration = Duration::from_micros(500);

/// One [`run`]: whether it is over, whether it has a poller, its worker.
struct Run {
    done: AtomicBool,
    polling: AtomicBool,
    home: Option<usize>,
}

thread_local! {
    /// The run whose closure this thread is running, for [`arm`].
    static CURRENT: RefCell<Option<Arc<Run>>> = const { RefCell::new(None) };
}

/// `f()` on a worker of the current rayon pool (the global one outside any
/// pool), with a poller armed; the caller waits.
pub(crate) fn run<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| {
        if rayon::current_num_threads() < 2 {
            return f();
        }
        let run = Arc::new(Run {
            done: AtomicBool::new(false),
            polling: AtomicBool::new(false),
            home: rayon::current_thread_index(),
        });
        let outer = CURRENT.with(|c| c.replace(Some(run.clone())));
        let _over = Over { run, outer };
        arm();
        f()
    })
}

/// Queues a poller for the run this thread is in, unless it has one.
/// Does nothing outside [`run`].
pub(crate) fn arm() {
    CURRENT.with(|c| {
        if let Some(run) = c.borrow().as_ref() {
            if !run.polling.swap(true, Ordering::AcqRel) {
                let run = run.clone();
                rayon::spawn(move || poll(&run));
            }
        }
    })
}

/// Marks the run over and gives the thread back its outer run, when the
/// closure returns or unwinds.
struct Over {
    run: Arc<Run>,
    outer: Option<Arc<Run>>,
}

impl Drop for Over {
    fn drop(&mut self) {
        self.run.done.store(true, Ordering::Release);
        let outer = self.outer.take();
        CURRENT.with(|c| *c.borrow_mut() = outer);
    }
}

/// The poller: runs the pool's work until the run is over or [`IDLE`]
/// passes without any. On the run's own worker (which ran it while
/// waiting for something) it ends at once.
fn poll(run: &Run) {
    if rayon::current_thread_index() != run.home {
        let mut idle_since: Option<Instant> = None;
        while !run.done.load(Ordering::Acquire) {
            if rayon::yield_now() == Some(rayon::Yield::Executed) {
                idle_since = None;
                continue;
            }
            let since = *idle_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= IDLE {
                break;
            }
            std::thread::yield_now();
        }
    }
    run.polling.store(false, Ordering::Release);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the run this thread is in has a poller; None outside a run.
    fn polling() -> Option<bool> {
        CURRENT.with(|c| {
            c.borrow()
                .as_ref()
                .map(|r| r.polling.load(Ordering::Acquire))
        })
    }

    /// Waits up to 10 s for `cond`: the pool's other worker may be slow to
    /// get a core on a loaded machine.
    fn eventually(cond: impl Fn() -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        false
    }

    #[test]
    fn a_poller_comes_with_the_run_ends_when_idle_and_is_armed_again() -> crate::TestResult {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build()?;
        let seen = pool.install(|| {
            run(|| {
                let home = rayon::current_thread_index();
                let armed = polling();
                // the loop's worker sleeps: the poller finds no work and ends
                let ended = eventually(|| polling() == Some(false));
                arm();
                let again = polling();
                // work handed to the pool runs on the other worker meanwhile
                let (_, other) = rayon::join(
                    || std::thread::sleep(Duration::from_millis(20)),
                    rayon::current_thread_index,
                );
                (home.is_some(), armed, ended, again, other != home)
            })
        });
        assert_eq!(seen, (true, Some(true), true, Some(true), true));
        // outside a run there is nothing to arm
        arm();
        assert_eq!(polling(), None);
        Ok(())
    }

    #[test]
    fn a_one_thread_pool_gets_no_poller() -> crate::TestResult {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
        assert_eq!(pool.install(|| run(polling)), None);
        Ok(())
    }

    #[test]
    fn a_panic_in_the_closure_ends_the_run_and_its_poller() -> crate::TestResult {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build()?;
        let stash = std::sync::Mutex::new(None);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.install(|| {
                run(|| -> () {
                    if let Ok(mut s) = stash.lock() {
                        *s = CURRENT.with(|c| c.borrow().clone());
                    }
                    panic!("a callback panicked")
                })
            })
        }));
        assert!(caught.is_err(), "the panic reaches the caller");
        let the_run = stash.lock().map_err(|_| "stash poisoned")?.take();
        let the_run = the_run.ok_or("the closure saw no run")?;
        assert!(
            the_run.done.load(Ordering::Acquire),
            "the run is marked over"
        );
        assert!(
            eventually(|| !the_run.polling.load(Ordering::Acquire)),
            "its poller ended"
        );
        // the pool is free again: both workers take work
        let (a, b) = pool.install(|| {
            rayon::join(
                || {
                    std::thread::sleep(Duration::from_millis(20));
                    rayon::current_thread_index()
                },
                rayon::current_thread_index,
            )
        });
        assert_ne!(a, b);
        Ok(())
    }

    #[test]
    fn runs_from_two_threads_at_once_both_finish() -> crate::TestResult {
        let pool = Arc::new(rayon::ThreadPoolBuilder::new().num_threads(2).build()?);
        // each run: many short splits, as a training step's ops
        let work = |pool: Arc<rayon::ThreadPool>| {
            pool.install(|| {
                run(|| {
                    let mut total = 0u64;
                    for step in 0..2_000u64 {
                        arm();
                        let (a, b) = rayon::join(|| step, || step + 1);
                        total += a + b;
                    }
                    total
                })
            })
        };
        let (p1, p2) = (pool.clone(), pool.clone());
        let t1 = std::thread::spawn(move || work(p1));
        let t2 = std::thread::spawn(move || work(p2));
        let want: u64 = (0..2_000u64).map(|s| 2 * s + 1).sum();
        assert_eq!(t1.join().ok(), Some(want));
        assert_eq!(t2.join().ok(), Some(want));
        Ok(())
    }
}
