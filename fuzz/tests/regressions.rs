//! Every finding the fuzzer ever made, replayed: `fuzz/regressions/<target>/`
//! holds the inputs that once crashed, hung or over-allocated (and some
//! hostile inputs written by hand); each must now simply return. Then every
//! target runs its built-in seeds through a few thousand blind mutations,
//! so a target that panics at once fails here before any fuzzing run.

use std::path::Path;

use telediag_fuzz::limits::{self, LimitedAllocator};
use telediag_fuzz::mutate::{Rng, havoc};
use telediag_fuzz::targets::{TARGETS, builtin_seeds, target};

/// The fuzz driver's allocator: an allocation over 256 MiB while a finding
/// runs saves it and aborts, so a regression of an `oom` finding fails here.
#[global_allocator]
static ALLOCATOR: LimitedAllocator = LimitedAllocator;

#[test]
fn every_saved_finding_now_returns() {
    let scratch = tempfile::tempdir().unwrap();
    limits::set_findings_dir(scratch.path());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
    let mut replayed = 0;
    for dir in std::fs::read_dir(&root).unwrap().flatten().filter(|e| e.path().is_dir()) {
        let name = dir.file_name().to_string_lossy().into_owned();
        let target = target(&name).unwrap_or_else(|| panic!("regressions/{name}: no such target"));
        for file in std::fs::read_dir(dir.path()).unwrap().flatten() {
            let path = file.path();
            if path.extension().is_some_and(|e| e == "txt" || e == "md") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let started = std::time::Instant::now();
            {
                let _running = limits::running(&bytes);
                (target.run)(&bytes);
            }
            assert!(started.elapsed() < std::time::Duration::from_secs(10), "{} took {:?}", path.display(), started.elapsed());
            replayed += 1;
        }
    }
    assert!(replayed > 0, "the regression corpus is empty");
}

#[test]
fn every_target_survives_its_seeds_mutated() {
    for target in TARGETS {
        let seeds = builtin_seeds(target.name);
        let seeds = if seeds.is_empty() { vec![Vec::new()] } else { seeds };
        let mut rng = Rng::new(0x7e1e_d1a6);
        for n in 0..2_000 {
            let mut input = seeds[n % seeds.len()].clone();
            havoc(&mut rng, &mut input, &seeds[(n + 1) % seeds.len()], 64 * 1024);
            (target.run)(&input);
        }
    }
}
