//! Fuzzing Telediag's parsers of untrusted bytes on the stable toolchain.
//!
//! - [`targets`]: one function per parser (PDU, DIMSE, Part 10 header,
//!   dataset scanner, SCP-ECG, aECG, WFDB, DICOM waveform, multipart
//!   uploads, pixel decoding), and seeds made in code.
//! - [`coverage`]: SanitizerCoverage hooks, so that a build with the
//!   `sancov` codegen flags is coverage-guided like AFL or libFuzzer.
//! - [`mutate`]: what is done to an input between runs.
//! - [`limits`]: the allocator and the watchdog that turn an allocation
//!   over 256 MiB or a run over its time limit into a saved finding.
//!
//! `src/main.rs` is the driver (`fuzz/run.sh` builds and runs it);
//! `tests/regressions.rs` replays every saved finding in `cargo test`.

pub mod coverage;
pub mod limits;
pub mod mutate;
pub mod targets;
