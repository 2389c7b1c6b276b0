//! The bounded smoke run: every target for 2 seconds (at most 20,000 inputs)
//! with seed 20231110; no input may panic, and the process stays under 1 GiB.

use nnlab_fuzz::run::{quiet_panics, run};
use nnlab_fuzz::targets::{Target, NAMES};
use std::time::Duration;

#[test]
fn every_parser_survives_a_short_mutation_run() {
    let dir =
        nnlab_fuzz::run::scratch_dir().join(format!("nnlab-fuzz-smoke-{}", std::process::id()));
    quiet_panics();
    let mut lines = Vec::new();
    let mut panics = 0;
    for name in NAMES {
        let t = Target::new(name, &dir).unwrap_or_else(|| panic!("target {name} has no seed"));
        let r = run(&t, 20231110, 20_000, Some(Duration::from_secs(2)), None);
        assert!(r.inputs > 50, "{}", r.line());
        panics += r.panics;
        lines.push(r.line());
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::panic::take_hook();
    println!("{}", lines.join("\n"));
    assert_eq!(panics, 0, "{}", lines.join("\n"));
    let rss = nnlab_fuzz::run::peak_rss_mib();
    assert!(rss < 1024.0, "peak RSS {rss:.0} MiB");
}
