//! MNIST train (`train-images-idx3-ubyte.gz` + labels) → `Dataset`, median of 5.
//! Run: `NNLAB_DATA_MIRROR=/work/shared/data cargo bench -p nnlab --bench data_load`
//! (reads `<mirror>/mnist/`; prints a notice and exits when the variable is unset).

use std::time::Instant;

fn main() {
    nnlab::tune_process();
    let Some(m) = std::env::var_os("NNLAB_DATA_MIRROR") else {
        eprintln!("NNLAB_DATA_MIRROR is not set: nothing to time");
        return;
    };
    let dir = std::path::Path::new(&m).join("mnist");
    let classes: Vec<String> = (0..10).map(|d| d.to_string()).collect();
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let ds = nnlab::data::idx::read(
            "mnist/train",
            dir.join("train-images-idx3-ubyte.gz"),
            dir.join("train-labels-idx1-ubyte.gz"),
            classes.clone(),
        )
        .expect("MNIST train");
        times.push(t.elapsed().as_secs_f64());
        assert_eq!(ds.len(), 60_000);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    println!(
        "mnist train .gz -> Dataset: median {:.3} s (min {:.3}, max {:.3}, 5 runs)",
        times[2], times[0], times[4]
    );
}
