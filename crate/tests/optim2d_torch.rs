//! torch.optim agreement: the hand-written 2-D optimizers of
//! `nnlab::scratch::optim2d` (default `Rule::Torch`) follow torch.optim's
//! trajectories in f64 to ≤ 1e-9 (absolute, per coordinate) at steps 1, 10,
//! 50 and 100, for every optimizer on every playground function.
//!
//! The expected points were produced once by this script (torch 2.15,
//! `$HOME/.cache/nnlab/torch-venv/bin/python`), optimizing a 2-element
//! float64 tensor; torch defaults everywhere except momentum = 0.9:
//!
//! ```python
//! import torch
//! torch.set_default_dtype(torch.float64)
//! F = {
//!  "square_sum": lambda p: 5*p[0]**2 + p[1]**2,
//!  "complex_sum": lambda p: (p[0]-3)**2 + 8*(p[1]-5)**4 + torch.sqrt(p[0]) + torch.sin(p[0]*p[1]),
//!  "rosenbrock": lambda p: (1-p[0])**2 + 100*(p[1]-p[0]**2)**2,
//!  "himmelblau": lambda p: (p[0]**2+p[1]-11)**2 + (p[0]+p[1]**2-7)**2,
//! }
//! START = {"square_sum": (5.0, 5.0), "complex_sum": (5.0, 4.0), "rosenbrock": (-1.0, 2.0), "himmelblau": (0.0, 0.0)}
//! LR = {  # (function, optimizer) -> lr
//!  "square_sum": dict(sgd=0.05, momentum=0.02, adagrad=0.5, rmsprop=0.05, adam=0.1),
//!  "complex_sum": dict(sgd=0.01, momentum=0.005, adagrad=0.3, rmsprop=0.02, adam=0.05),
//!  "rosenbrock": dict(sgd=5e-4, momentum=2e-4, adagrad=0.3, rmsprop=0.01, adam=0.05),
//!  "himmelblau": dict(sgd=0.01, momentum=0.005, adagrad=0.5, rmsprop=0.05, adam=0.1),
//! }
//! def make(name, params, lr):
//!     if name == "sgd": return torch.optim.SGD(params, lr=lr)
//!     if name == "momentum": return torch.optim.SGD(params, lr=lr, momentum=0.9)
//!     if name == "adagrad": return torch.optim.Adagrad(params, lr=lr)
//!     if name == "rmsprop": return torch.optim.RMSprop(params, lr=lr)
//!     if name == "adam": return torch.optim.Adam(params, lr=lr)
//! CHECK = [1, 10, 50, 100]
//! for f, fun in F.items():
//!     for o, lr in LR[f].items():
//!         p = torch.tensor(START[f], requires_grad=True)
//!         opt = make(o, [p], lr)
//!         pts = {}
//!         for t in range(1, 101):
//!             opt.zero_grad(); fun(p).backward(); opt.step()
//!             if t in CHECK: pts[t] = p.detach().tolist()
//!         assert all(v == v for v in p.tolist()), (f, o)
//!         body = ", ".join(f"({t}, [{pts[t][0]!r}, {pts[t][1]!r}])" for t in CHECK)
//!         print(f'    ("{f}", "{o}", {lr!r}, [{START[f][0]!r}, {START[f][1]!r}], [{body}]),')
//! ```

use nnlab::scratch::functions::Function2d;
use nnlab::scratch::optim2d::{Kind, Optimizer2d};

/// A test's result: any error fails the test with its message (`?` instead of `.unwrap()`).
type TestResult = Result<(), Box<dyn std::error::Error>>;

type Case = (
    &'static str,
    &'static str,
    f64,
    [f64; 2],
    [(usize, [f64; 2]); 4],
);

#[rustfmt::skip]
const TORCH: [Case; 20] = [
    ("square_sum", "sgd", 0.05, [5.0, 5.0], [(1, [2.5, 4.5]), (10, [0.0048828125, 1.7433922004999998]), (50, [4.440892098500626e-15, 0.02576887603660056]), (100, [3.944304526105059e-30, 0.0001328069944379374])]),
    ("square_sum", "momentum", 0.02, [5.0, 5.0], [(1, [4.0, 4.8]), (10, [0.021999353000000322, -0.7638670216446822]), (50, [-0.15249214569569466, -0.3407301295372051]), (100, [-0.014257055605913284, 0.016813118481987306])]),
    ("square_sum", "adagrad", 0.5, [5.0, 5.0], [(1, [4.500000000001, 4.5000000000050004]), (10, [2.7686560017663413, 2.768656001776328]), (50, [0.6854154055780131, 0.6854154055859023]), (100, [0.13693440909911805, 0.13693440910207955])]),
    ("square_sum", "rmsprop", 0.05, [5.0, 5.0], [(1, [4.500000001, 4.500000005]), (10, [2.7494555345691505, 2.7494555446911866]), (50, [0.5732990256318169, 0.5732990333422009]), (100, [0.059070099022080616, 0.05907010086119002])]),
    ("square_sum", "adam", 0.1, [5.0, 5.0], [(1, [4.90000000002, 4.9000000001]), (10, [4.007601620259972, 4.007601621083933]), (50, [0.9011191013939779, 0.9011191043660979]), (100, [-0.03900403167598908, -0.03900403122391927])]),
    ("complex_sum", "sgd", 0.01, [5.0, 4.0], [(1, [4.941440649549964, 4.29959589690933]), (10, [4.823272817750584, 4.806595667354057]), (50, [4.30865682657599, 5.360329573264604]), (100, [4.258285773032913, 5.407623912375096])]),
    ("complex_sum", "momentum", 0.005, [5.0, 4.0], [(1, [4.970720324774982, 4.149797948454665]), (10, [4.023262107851563, 5.592285273865397]), (50, [3.306254830578169, 5.24685728163847]), (100, [3.2556975941333315, 5.245536425131734])]),
    ("complex_sum", "adagrad", 0.3, [5.0, 4.0], [(1, [4.700000000005123, 4.299999999998999]), (10, [3.7288092566150572, 4.602963639998553]), (50, [3.4294387686604013, 4.983050524409477]), (100, [3.29454837021392, 5.198183361911636])]),
    ("complex_sum", "rmsprop", 0.02, [5.0, 4.0], [(1, [4.800000003415338, 4.199999999332434]), (10, [3.9658956007225465, 4.47326718309691]), (50, [3.5170918738168924, 4.855321740222439]), (100, [3.360160700368877, 5.094592023238939])]),
    ("complex_sum", "adam", 0.05, [5.0, 4.0], [(1, [4.950000000085383, 4.049999999983311]), (10, [4.50622893768615, 4.453438626383839]), (50, [3.5015131146503498, 4.94806140939457]), (100, [3.303415110659443, 5.176911226456111])]),
    ("rosenbrock", "sgd", 0.0005, [-1.0, 2.0], [(1, [-1.198, 1.9]), (10, [-1.35002620262477, 1.8302241905889867]), (50, [-1.3386270977924069, 1.7995877313933513]), (100, [-1.32421465723757, 1.7612247600664295])]),
    ("rosenbrock", "momentum", 0.0002, [-1.0, 2.0], [(1, [-1.0792, 1.96]), (10, [-1.1041030737864599, 1.782649553414257]), (50, [-1.1449241082924724, 1.2822555991746227]), (100, [-1.0533378679446628, 1.116527672121344])]),
    ("rosenbrock", "adagrad", 0.3, [-1.0, 2.0], [(1, [-1.2999999999999243, 1.70000000000015]), (10, [-1.2938211938618778, 1.6808145500427412]), (50, [-1.2617269768495298, 1.5987931187475348]), (100, [-1.2204997351356026, 1.4964503638093607])]),
    ("rosenbrock", "rmsprop", 0.01, [-1.0, 2.0], [(1, [-1.0999999999747474, 1.9000000000500001]), (10, [-1.2970658425857018, 1.719582806145626]), (50, [-1.2975096274081446, 1.6902665724665435]), (100, [-1.284126764156553, 1.6557153267503988])]),
    ("rosenbrock", "adam", 0.05, [-1.0, 2.0], [(1, [-1.0499999999987373, 1.9500000000025]), (10, [-1.3983065286387795, 1.6037037885172556]), (50, [-1.2478841202925621, 1.617863226675426]), (100, [-1.2333488612862618, 1.5275597739674704])]),
    ("himmelblau", "sgd", 0.01, [0.0, 0.0], [(1, [0.14, 0.22]), (10, [2.8941497282576396, 2.172385146929446]), (50, [2.999999545210649, 2.0000010979573823]), (100, [2.9999999999998406, 2.000000000000385])]),
    ("himmelblau", "momentum", 0.005, [0.0, 0.0], [(1, [0.07, 0.11]), (10, [3.3622286837339135, 2.1902080029846624]), (50, [3.655193837545655, -1.664179950806818]), (100, [3.591011137529182, -1.8393196646943817])]),
    ("himmelblau", "adagrad", 0.5, [0.0, 0.0], [(1, [0.4999999999964286, 0.4999999999977273]), (10, [2.7039425497270924, 2.1494465606082964]), (50, [2.9997552136914747, 2.000463631401904]), (100, [2.999999912056778, 2.0000001667450213])]),
    ("himmelblau", "rmsprop", 0.05, [0.0, 0.0], [(1, [0.4999999964285713, 0.49999999772727255]), (10, [2.7129562217872776, 2.152429869930947]), (50, [2.9999128632356444, 2.000164559329801]), (100, [2.9999999993839723, 2.0000000011637984])]),
    ("himmelblau", "adam", 0.1, [0.0, 0.0], [(1, [0.0999999999285714, 0.09999999995454543]), (10, [1.013206362671835, 1.0141023903012403]), (50, [2.9441265187939725, 1.8264629787393474]), (100, [3.0001544654402097, 2.0170104540159315])]),
];

#[test]
fn trajectories_match_torch_optim_in_f64() -> TestResult {
    let mut worst = 0.0f64;
    for (f, o, lr, start, checks) in TORCH {
        let f: Function2d = f.parse()?;
        let kind: Kind = o.parse()?;
        let t = Optimizer2d::new(kind, lr).run(f, start, 100)?;
        assert_eq!(t.points.len(), 101);
        assert_eq!(t.points[0], start);
        for (step, expected) in checks {
            for i in 0..2 {
                let err = (t.points[step][i] - expected[i]).abs();
                worst = worst.max(err);
                assert!(
                    err <= 1e-9,
                    "{f} {o} lr {lr} step {step}: {:?} vs torch {expected:?}",
                    t.points[step]
                );
            }
        }
    }
    println!("largest deviation from torch.optim: {worst:e}");
    Ok(())
}

#[test]
fn course_rules_differ_from_torch() -> TestResult {
    // eps inside the root (course) vs outside (torch), and uncorrected Adam:
    // visibly different trajectories with the same hyperparameters
    for kind in [Kind::Adagrad, Kind::RmsProp, Kind::Adam] {
        let o = Optimizer2d {
            eps: 1e-2,
            ..Optimizer2d::new(kind, 0.05)
        };
        let a = o.run(Function2d::SquareSum, [5.0, 5.0], 20)?;
        let b = o.course().run(Function2d::SquareSum, [5.0, 5.0], 20)?;
        let d = (a.points[20][0] - b.points[20][0]).abs();
        assert!(d > 1e-6, "{kind:?}: {d}");
    }
    Ok(())
}
