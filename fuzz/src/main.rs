//! `nnlab-fuzz [--target NAME|all] [--inputs N] [--seconds S] [--seed N]
//! [--max-rss-mib M] [--crashes DIR]`: fuzzes each target, prints one line
//! per target; exits 1 when an input panicked or the peak resident memory
//! passed `--max-rss-mib` (default 2048).

use nnlab_fuzz::run::{quiet_panics, run};
use nnlab_fuzz::targets::{Target, NAMES};
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let num = |flag: &str, default: u64| -> u64 {
        match get(flag) {
            None => default,
            Some(v) => v.parse().unwrap_or_else(|_| {
                eprintln!("{flag}: `{v}`, expected a non-negative integer");
                std::process::exit(2)
            }),
        }
    };
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("nnlab-fuzz [--target {}|all] [--inputs N] [--seconds S] [--seed N] [--max-rss-mib M] [--crashes DIR]", NAMES.join("|"));
        return;
    }
    let which = get("--target").unwrap_or_else(|| "all".into());
    let names: Vec<&str> = if which == "all" {
        NAMES.to_vec()
    } else {
        vec![which.as_str()]
    };
    let inputs = num("--inputs", u64::MAX);
    let seconds = get("--seconds").map(|_| Duration::from_secs(num("--seconds", 0)));
    if inputs == u64::MAX && seconds.is_none() {
        eprintln!("give --inputs N or --seconds S");
        std::process::exit(2);
    }
    let seed = num("--seed", 1);
    let max_rss = num("--max-rss-mib", 2048) as f64;
    let crashes = get("--crashes").map(std::path::PathBuf::from);
    let dir = nnlab_fuzz::run::scratch_dir().join(format!("nnlab-fuzz-{}", std::process::id()));
    quiet_panics();
    let mut failed = false;
    for name in names {
        let Some(target) = Target::new(name, &dir) else {
            eprintln!(
                "unknown or unbuildable target `{name}`, expected one of {}",
                NAMES.join(", ")
            );
            std::process::exit(2);
        };
        let r = run(&target, seed, inputs, seconds, crashes.as_deref());
        println!("{}", r.line());
        if r.panics > 0 || r.peak_rss_mib > max_rss {
            failed = true;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    if failed {
        std::process::exit(1);
    }
}
