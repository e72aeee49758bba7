//! `telediag-fuzz`: runs one target until a time or execution budget is
//! spent, coverage-guided when built with the sancov flags (`fuzz/run.sh`).
//!
//! ```text
//! telediag-fuzz list
//! telediag-fuzz run <target> [--seconds N] [--execs N] [--seeds DIR]... [--out DIR] [--seed N]
//! telediag-fuzz replay <target> FILE...
//! ```
//!
//! `run` prints one summary line (target, executions, rate, corpus, edges,
//! findings, peak memory) and exits 1 if anything was found: a panic is
//! saved as `<out>/<target>/crash-<hash>` with its message beside it; an
//! allocation over 256 MiB or a run over `--hang-secs` aborts the process
//! after saving `oom` or `hang` there.

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use telediag_fuzz::limits::{self, LimitedAllocator};
use telediag_fuzz::mutate::{Rng, havoc};
use telediag_fuzz::{coverage, targets};

#[global_allocator]
static ALLOCATOR: LimitedAllocator = LimitedAllocator;

/// Inputs grow no larger; seeds are cut to this.
const MAX_INPUT: usize = 512 * 1024;
/// Seed files read per target, smallest first (corpora hold large CTs).
const MAX_SEEDS: usize = 400;

struct Options {
    target: &'static targets::Target,
    seconds: Option<u64>,
    execs: Option<u64>,
    seeds: Vec<PathBuf>,
    out: PathBuf,
    seed: u64,
    hang: Duration,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("list") => {
            for t in targets::TARGETS {
                println!("{:<10} {}", t.name, t.about);
            }
            ExitCode::SUCCESS
        }
        Some("run") => match parse(&args[1..]) {
            Ok(options) => run(options),
            Err(e) => usage(&e),
        },
        Some("replay") => {
            let Some(target) = args.get(1).and_then(|n| targets::target(n)) else { return usage("replay needs a target") };
            limits::explain_instead_of_saving();
            for file in &args[2..] {
                let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{file}: {e}"));
                let started = Instant::now();
                let _running = limits::running(&bytes);
                (target.run)(&bytes);
                println!("{file}: ok in {:?}", started.elapsed());
            }
            ExitCode::SUCCESS
        }
        _ => usage("a command: list, run or replay"),
    }
}

fn usage(problem: &str) -> ExitCode {
    eprintln!(
        "telediag-fuzz: {problem}\nusage: telediag-fuzz list | run <target> [--seconds N] [--execs N] [--seeds DIR]... [--out DIR] [--seed N] [--hang-secs N] | replay <target> FILE..."
    );
    ExitCode::from(2)
}

fn parse(args: &[String]) -> Result<Options, String> {
    let name = args.first().ok_or("run needs a target")?;
    let target = targets::target(name).ok_or_else(|| format!("no target {name:?}; see `list`"))?;
    let mut options = Options {
        target,
        seconds: None,
        execs: None,
        seeds: Vec::new(),
        out: PathBuf::from("fuzz/findings"),
        seed: 1,
        hang: Duration::from_secs(10),
    };
    let mut rest = args[1..].iter();
    while let Some(flag) = rest.next() {
        let mut value = || rest.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: &String| v.parse::<u64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--seconds" => options.seconds = Some(number(value()?)?),
            "--execs" => options.execs = Some(number(value()?)?),
            "--seeds" => options.seeds.push(PathBuf::from(value()?)),
            "--out" => options.out = PathBuf::from(value()?),
            "--seed" => options.seed = number(value()?)?,
            "--hang-secs" => options.hang = Duration::from_secs(number(value()?)?),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if options.seconds.is_none() && options.execs.is_none() {
        options.seconds = Some(60);
    }
    Ok(options)
}

/// Files under `dirs` the target takes, smallest first, cut to `MAX_INPUT`.
fn load_seeds(target: &targets::Target, dirs: &[PathBuf]) -> Vec<Vec<u8>> {
    let mut files = Vec::new();
    let mut pending: Vec<PathBuf> = dirs.to_vec();
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                pending.extend(entries.flatten().map(|e| e.path()));
            }
        } else if let Ok(meta) = path.metadata() {
            let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
            if (target.seeds)(&name) {
                files.push((meta.len(), path));
            }
        }
    }
    files.sort();
    let mut seeds = targets::builtin_seeds(target.name);
    for (_, path) in files.into_iter().take(MAX_SEEDS) {
        if let Ok(mut bytes) = std::fs::read(&path) {
            bytes.truncate(MAX_INPUT);
            seeds.push(bytes);
        }
    }
    if seeds.is_empty() {
        seeds.push(Vec::new());
    }
    seeds
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

fn run(options: Options) -> ExitCode {
    let target = options.target;
    let findings = options.out.join(target.name);
    std::fs::create_dir_all(&findings).unwrap_or_else(|e| panic!("{}: {e}", findings.display()));
    limits::set_findings_dir(&findings);
    limits::start_watchdog(options.hang);
    // Panics are findings, reported in the summary, not on stderr each time.
    let last_panic = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let hook_panic = last_panic.clone();
    std::panic::set_hook(Box::new(move |info| {
        if let Ok(mut message) = hook_panic.try_lock() {
            *message = info.to_string();
        }
    }));

    let mut seen = coverage::Seen::default();
    let guided = coverage::guards() > 0;
    let mut corpus: Vec<Vec<u8>> = Vec::new();
    let mut crashes: HashSet<u64> = HashSet::new();
    let mut execs: u64 = 0;
    let started = Instant::now();

    // Every seed runs once; those showing new coverage start the corpus.
    for seed in load_seeds(target, &options.seeds) {
        execute(target, &seed, &findings, &last_panic, &mut crashes);
        execs += 1;
        if seen.merge() || !guided {
            corpus.push(seed);
        }
    }
    if corpus.is_empty() {
        corpus.push(Vec::new());
    }
    let seeded = corpus.len();

    let mut rng = Rng::new(options.seed);
    let mut input = Vec::with_capacity(MAX_INPUT);
    let deadline = options.seconds.map(|s| started + Duration::from_secs(s));
    loop {
        if options.execs.is_some_and(|n| execs >= n) || deadline.is_some_and(|d| execs.is_multiple_of(64) && Instant::now() >= d) {
            break;
        }
        let pick = rng.below(corpus.len());
        let other = rng.below(corpus.len());
        input.clear();
        input.extend_from_slice(&corpus[pick]);
        havoc(&mut rng, &mut input, &corpus[other], MAX_INPUT);
        execute(target, &input, &findings, &last_panic, &mut crashes);
        execs += 1;
        if guided && seen.merge() && corpus.len() < 50_000 {
            corpus.push(input.clone());
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "target={} execs={execs} seconds={seconds:.1} execs_per_s={:.0} coverage={} edges={} seeds={seeded} corpus={} findings={} peak_mib={:.1}",
        target.name,
        execs as f64 / seconds.max(1e-9),
        if guided { "sancov" } else { "none" },
        seen.edges,
        corpus.len(),
        crashes.len(),
        limits::peak_bytes() as f64 / (1024.0 * 1024.0),
    );
    if crashes.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

/// Runs one input; a panic is saved (once per distinct input) and reported.
fn execute(target: &targets::Target, input: &[u8], findings: &Path, last_panic: &std::sync::Mutex<String>, crashes: &mut HashSet<u64>) {
    coverage::reset();
    let outcome = {
        let _running = limits::running(input);
        catch_unwind(AssertUnwindSafe(|| (target.run)(input)))
    };
    if outcome.is_err() {
        let hash = fnv(input);
        if crashes.insert(hash) {
            let path = findings.join(format!("crash-{hash:016x}"));
            let _ = std::fs::write(&path, input);
            let message = last_panic.lock().map(|m| m.clone()).unwrap_or_default();
            let _ = std::fs::write(path.with_extension("txt"), &message);
            eprintln!("{}: crash saved as {}: {message}", target.name, path.display());
        }
    }
}
