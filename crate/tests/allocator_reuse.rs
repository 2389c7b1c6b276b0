//! `device::tune_allocator` keeps a freed block above glibc's largest mmap
//! threshold (32 MiB) for the next allocation, also on a thread started
//! after it: a 64 MiB buffer allocated, freed and allocated again faults
//! its 16 384 pages of 4 KiB only the first time. With glibc's defaults (or
//! with `M_MMAP_MAX` = 0 alone) the worker thread gets an arena of its own,
//! which maps such a block and unmaps it on free, so every allocation
//! faults all its pages again.
//!
//! A file of its own: the test needs a process whose arenas no other test
//! has touched (one harness thread, then the worker started here). Where
//! transparent huge pages are always on, a 64 MiB block faults a few dozen
//! 2 MiB pages either way, and the test only checks that the second time
//! costs no more than the first.

/// Minor page faults of the calling thread so far.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn minor_faults() -> i64 {
    // SAFETY: `rusage` is plain integers, for which all zeros is a value.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes one `rusage` through the pointer it is given.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) };
    u.ru_minflt
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn a_freed_64_mib_buffer_comes_back_without_page_faults_on_a_new_thread() {
    nnlab::device::tune_allocator();
    let worker = std::thread::spawn(|| {
        let len = (64 << 20) / 4;
        let fill = || std::hint::black_box(vec![1f32; len]).len();
        let first = minor_faults();
        fill();
        let between = minor_faults();
        fill();
        (between - first, minor_faults() - between)
    });
    let (first, again) = worker.join().expect("the worker thread");
    let thp =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    if thp.contains("[always]") {
        // 2 MiB pages: a few dozen faults either way, the count cannot tell
        assert!(
            again <= first,
            "{again} page faults again, {first} the first time"
        );
        return;
    }
    // the first allocation faults its pages in (fresh heap), the second reuses them
    assert!(
        first > 10_000,
        "{first} page faults for a fresh 64 MiB buffer"
    );
    assert!(
        again < 1_000,
        "{again} page faults for a 64 MiB buffer allocated again (first: {first})"
    );
}
