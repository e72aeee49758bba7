//! The correctness oracle: every image in the public pydicom + pydicom-data
//! corpus is decoded by us and by GDCM (`gdcmconv --raw`, Debian
//! `libgdcm-tools`), frame by frame. Lossless transfer syntaxes must give the
//! same stored values bit for bit; lossy ones a PSNR of at least 40 dB.
//! Files that are not images or are corrupt must give an error, never a
//! panic. The test names every file that fails and why.

use std::path::{Path, PathBuf};
use std::process::Command;

use telediag_imaging::{PixelModule, RenderError, StoredFrame, decode_file, render_file};

const LOSSY: &[&str] = &[
    "1.2.840.10008.1.2.4.50",  // JPEG baseline
    "1.2.840.10008.1.2.4.51",  // JPEG extended
    "1.2.840.10008.1.2.4.81",  // JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.91",  // JPEG 2000
    "1.2.840.10008.1.2.4.203", // HTJ2K
];

/// Frames compared per file; the corpus's long cine loops repeat themselves.
const MAX_FRAMES: u32 = 8;

mod common;

fn corpus() -> Option<Vec<PathBuf>> {
    let root = common::corpus_root()?;
    let mut files = Vec::new();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if !path.file_name().unwrap().to_string_lossy().starts_with('.') {
                files.push(path);
            }
        }
    }
    files.sort();
    Some(files)
}

fn gdcm_available() -> bool {
    Command::new("gdcmconv").arg("--version").output().is_ok_and(|o| o.status.success())
}

/// A reference decoder's output: an uncompressed little-endian file.
struct Reference {
    by: &'static str,
    path: PathBuf,
}

fn run(program: &str, args: &[&str], input: &Path, output: &Path) -> Option<()> {
    let _ = std::fs::remove_file(output);
    let status = Command::new(program).args(args).arg(input).arg(output).output().ok()?;
    (status.status.success() && output.exists()).then_some(())
}

/// GDCM's decoding (`gdcmconv --raw`).
fn gdcm(path: &Path, scratch: &Path) -> Option<Reference> {
    let out = scratch.join("gdcm.dcm");
    run("gdcmconv", &["--raw"], path, &out).map(|_| Reference { by: "GDCM", path: out })
}

/// DCMTK's decoding, the second opinion where GDCM fails or disagrees:
/// dcmdjpeg, dcmdjpls, dcmdrle, or dcmconv for uncompressed data (DCMTK
/// has no JPEG 2000 decoder).
fn dcmtk(path: &Path, transfer_syntax: &str, scratch: &Path) -> Option<Reference> {
    let out = scratch.join("dcmtk.dcm");
    let (program, args): (&str, &[&str]) = match transfer_syntax {
        "1.2.840.10008.1.2.4.50" | "1.2.840.10008.1.2.4.51" | "1.2.840.10008.1.2.4.57" | "1.2.840.10008.1.2.4.70" => ("dcmdjpeg", &["+cn"]),
        "1.2.840.10008.1.2.4.80" | "1.2.840.10008.1.2.4.81" => ("dcmdjpls", &[]),
        "1.2.840.10008.1.2.5" => ("dcmdrle", &[]),
        "1.2.840.10008.1.2" | "1.2.840.10008.1.2.1" | "1.2.840.10008.1.2.2" | "1.2.840.10008.1.2.1.99" => ("dcmconv", &["+te"]),
        _ => return None,
    };
    run(program, args, path, &out).map(|_| Reference { by: "DCMTK", path: out })
}

enum Verdict {
    Identical(&'static str),
    Close(&'static str, f64),
    /// Malformed or not an image: refused with this reason.
    Refused(String),
    /// We decode it, no reference decoder does.
    NoOracle,
    Failed(String),
}

fn ybr_to_rgb(frame: &StoredFrame) -> Vec<i64> {
    frame
        .samples
        .to_i64_vec()
        .chunks_exact(3)
        .flat_map(|p| {
            let (y, cb, cr) = (p[0] as f64, p[1] as f64 - 128.0, p[2] as f64 - 128.0);
            [y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb].map(|v| v.round().clamp(0.0, 255.0) as i64)
        })
        .collect()
}

fn psnr(a: &[i64], b: &[i64], bits: u16) -> f64 {
    let mse = a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum::<f64>() / a.len() as f64;
    let peak = ((1u64 << bits.min(32)) - 1) as f64;
    if mse == 0.0 { f64::INFINITY } else { 10.0 * (peak * peak / mse).log10() }
}

fn compare_frame(ours: &StoredFrame, theirs: &StoredFrame, lossy: bool) -> Result<Option<f64>, String> {
    if (ours.rows, ours.columns, ours.samples_per_pixel) != (theirs.rows, theirs.columns, theirs.samples_per_pixel) {
        return Err(format!(
            "shape {}x{}x{} vs {}x{}x{}",
            ours.columns, ours.rows, ours.samples_per_pixel, theirs.columns, theirs.rows, theirs.samples_per_pixel
        ));
    }
    // GDCM and DCMTK leave JPEG's YCbCr as YBR_FULL where libjpeg gives RGB.
    let (reference, converted) = if ours.photometric == "RGB" && theirs.photometric == "YBR_FULL" {
        (ybr_to_rgb(theirs), true)
    } else if ours.photometric != theirs.photometric {
        return Err(format!("photometric {} vs {}", ours.photometric, theirs.photometric));
    } else {
        (theirs.samples.to_i64_vec(), false)
    };
    let ours_samples = ours.samples.to_i64_vec();
    if ours_samples == reference {
        return Ok(None);
    }
    let value = psnr(&ours_samples, &reference, ours.bits_stored);
    let first = ours_samples.iter().zip(&reference).position(|(a, b)| a != b).unwrap();
    let detail = format!("first difference at sample {first}: {} vs {}", ours_samples[first], reference[first]);
    if lossy || converted {
        if value >= 40.0 {
            return Ok(Some(value));
        }
        return Err(format!("PSNR {value:.1} dB < 40 ({detail})"));
    }
    Err(format!("lossless but differs (PSNR {value:.1} dB; {detail})"))
}

fn decode_guarded(path: &Path, frame: u32) -> Result<(PixelModule, StoredFrame), RenderError> {
    std::panic::catch_unwind(|| decode_file(path, frame))
        .unwrap_or_else(|_| Err(RenderError::Decode(format!("PANIC decoding frame {}", frame + 1))))
}

/// Why a reference did not confirm our decoding.
enum Mismatch {
    /// The reference's output cannot be read back (it wrote a broken file).
    Unusable,
    Differs(String),
}
use Mismatch::{Differs, Unusable};

/// Our frames against one reference: `Ok(None)` identical, `Ok(Some(dB))`
/// lossy within bounds.
fn against(path: &Path, first: &StoredFrame, module: &PixelModule, reference: &Reference) -> Result<Option<f64>, Mismatch> {
    let lossy = LOSSY.contains(&module.transfer_syntax.as_str());
    let mut worst: Option<f64> = None;
    for frame in 0..module.frames.min(MAX_FRAMES) {
        let ours = if frame == 0 {
            first.clone()
        } else {
            decode_guarded(path, frame).map_err(|e| Differs(format!("frame {}: {e}", frame + 1)))?.1
        };
        let Ok((_, theirs)) = decode_guarded(&reference.path, frame) else {
            return Err(Unusable);
        };
        match compare_frame(&ours, &theirs, lossy).map_err(|e| Differs(format!("frame {} vs {}: {e}", frame + 1, reference.by)))? {
            None => {}
            Some(db) => worst = Some(worst.map_or(db, |w: f64| w.min(db))),
        }
    }
    Ok(worst)
}

fn judge(path: &Path, scratch: &Path) -> Verdict {
    let transfer_syntax = telediag_imaging::render::open(path).map(|o| o.meta().transfer_syntax().to_string()).unwrap_or_default();
    let (module, first) = match decode_guarded(path, 0) {
        Ok(decoded) => decoded,
        Err(e @ (RenderError::Open { .. } | RenderError::NoPixelData | RenderError::Invalid(_))) => {
            // Malformed files and non-images are refused with a reason.
            return Verdict::Refused(e.to_string());
        }
        Err(e) => {
            let reference_decodes = gdcm(path, scratch)
                .or_else(|| dcmtk(path, transfer_syntax.trim_end_matches('\0'), scratch))
                .is_some_and(|r| decode_file(&r.path, 0).is_ok());
            return if reference_decodes {
                Verdict::Failed(format!("a reference decodes it, we do not: {e}"))
            } else {
                Verdict::Refused(e.to_string())
            };
        }
    };
    // Rendering must not fail where decoding succeeded.
    match std::panic::catch_unwind(|| render_file(path, 0)) {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Verdict::Failed(format!("decodes but does not render: {e}")),
        Err(_) => return Verdict::Failed("PANIC while rendering".into()),
    }
    let mut disagreements = Vec::new();
    for reference in [gdcm(path, scratch), dcmtk(path, &module.transfer_syntax, scratch)].into_iter().flatten() {
        match against(path, &first, &module, &reference) {
            Ok(None) => return Verdict::Identical(reference.by),
            Ok(Some(db)) => return Verdict::Close(reference.by, db),
            Err(Differs(e)) => disagreements.push(e),
            Err(Unusable) => {}
        }
    }
    if disagreements.is_empty() { Verdict::NoOracle } else { Verdict::Failed(disagreements.join("; ")) }
}

#[test]
fn every_corpus_image_decodes_as_gdcm_decodes_it() {
    let Some(files) = corpus() else { return };
    if !gdcm_available() {
        if std::env::var_os("CI").is_some() {
            panic!("gdcmconv missing: .ci/run must install libgdcm-tools");
        }
        eprintln!("SKIP: gdcmconv (libgdcm-tools) not installed");
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let (mut identical, mut by_dcmtk, mut close, mut refused, mut failures) = (0, 0, 0, Vec::new(), Vec::new());
    for path in &files {
        let name = path.strip_prefix(path.ancestors().nth(2).unwrap()).unwrap().display().to_string();
        match judge(path, scratch.path()) {
            Verdict::Identical(by) => {
                identical += 1;
                if std::env::var_os("ORACLE_VERBOSE").is_some() {
                    eprintln!("same    {name} as {by}");
                }
                if by == "DCMTK" {
                    by_dcmtk += 1;
                    eprintln!("DCMTK   {name}: bit-identical to DCMTK (GDCM fails or differs)");
                }
            }
            Verdict::Close(by, db) => {
                close += 1;
                eprintln!("lossy   {name}: PSNR {db:.1} dB against {by}");
            }
            Verdict::Refused(reason) => refused.push(format!("{name}: {reason}")),
            Verdict::NoOracle => eprintln!("NO ORACLE {name}: decoded, but neither GDCM nor DCMTK decodes it"),
            Verdict::Failed(reason) => failures.push(format!("{name}: {reason}")),
        }
    }
    eprintln!(
        "{identical} bit-identical ({by_dcmtk} of them to DCMTK where GDCM fails or differs), {close} lossy at 40 dB or more, {} refused:",
        refused.len()
    );
    for line in &refused {
        eprintln!("  refused {line}");
    }
    assert!(failures.is_empty(), "{} of {} files fail the GDCM oracle:\n{}", failures.len(), files.len(), failures.join("\n"));
    assert!(identical >= 100, "only {identical} files compared bit for bit: is the corpus complete?");
}

#[test]
fn a_render_error_names_what_is_wrong() {
    let Some(files) = corpus() else { return };
    let truncated = files.iter().find(|p| p.ends_with("MR_truncated.dcm")).expect("MR_truncated.dcm in the corpus");
    let message = render_file(truncated, 0).unwrap_err().to_string();
    assert!(message.contains("truncated") || message.contains("cannot open"), "{message}");
    let sr = files.iter().find(|p| p.ends_with("test-SR.dcm")).unwrap();
    assert!(matches!(render_file(sr, 0), Err(RenderError::NoPixelData)));
}

#[test]
fn reading_one_frame_agrees_with_reading_the_whole_file() {
    let Some(files) = corpus() else { return };
    let mut compared = 0;
    let mut failures = Vec::new();
    for path in &files {
        let Ok((module, _)) = telediag_imaging::render::decode_file_whole(path, 0) else { continue };
        // The first, a middle and the last frame.
        for frame in [0, module.frames / 2, module.frames - 1] {
            let whole = telediag_imaging::render::decode_file_whole(path, frame).map(|d| d.1);
            let lazy = decode_file(path, frame).map(|d| d.1);
            match (whole, lazy) {
                (Ok(a), Ok(b)) if a == b => compared += 1,
                (Ok(_), Ok(_)) => failures.push(format!("{}: frame {} differs", path.display(), frame + 1)),
                (Ok(_), Err(e)) => failures.push(format!("{}: frame {}: {e}", path.display(), frame + 1)),
                (Err(e), _) => failures.push(format!("{}: frame {} whole: {e}", path.display(), frame + 1)),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(compared > 300, "only {compared} frames compared");
}
