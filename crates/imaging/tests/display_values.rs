//! Rendered pixel values for the cases a radiologist notices first: palette
//! colour, signed data without a window, MONOCHROME1, YBR, 12-bit JPEG and
//! the LUT sequences. Values are asserted, and whole images are compared
//! with DCMTK's `dcm2pnm` rendering of the same file where DCMTK is there.

use std::path::{Path, PathBuf};
use std::process::Command;

use image::{DynamicImage, GenericImageView};
use telediag_imaging::{decode_file, render_file};

mod common;

fn corpus(name: &str) -> Option<PathBuf> {
    let root = common::corpus_root()?;
    let path = ["pydicom", "pydicom-data"].iter().map(|d| root.join(d).join(name)).find(|p| p.exists());
    Some(path.unwrap_or_else(|| panic!("{name} not in the corpus")))
}

fn render(path: &Path) -> DynamicImage {
    render_file(path, 0).unwrap_or_else(|e| panic!("{}: {e}", path.display())).image
}

/// DCMTK's rendering (`dcmj2pnm`, which reads the JPEG family too), or
/// `None` (with a note) where DCMTK is not installed. DCMTK failing on an
/// installed machine is a test failure, never a skip.
fn dcmtk(path: &Path, options: &[&str]) -> Option<DynamicImage> {
    if Command::new("dcmj2pnm").arg("--version").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "dcmj2pnm (dcmtk) missing: .ci/run installs it");
        eprintln!("SKIP: dcmj2pnm not available");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dcmtk.png");
    let run = Command::new("dcmj2pnm").arg("+on").args(options).arg(path).arg(&out).output().unwrap();
    assert!(run.status.success(), "dcmj2pnm {options:?} {}: {}", path.display(), String::from_utf8_lossy(&run.stderr));
    Some(image::open(&out).unwrap())
}

/// Largest per-sample difference between two images of the same size.
fn max_difference(ours: &DynamicImage, theirs: &DynamicImage) -> u8 {
    assert_eq!(ours.dimensions(), theirs.dimensions());
    let (a, b) = if ours.color().has_color() || theirs.color().has_color() {
        (ours.to_rgb8().into_raw(), theirs.to_rgb8().into_raw())
    } else {
        (ours.to_luma8().into_raw(), theirs.to_luma8().into_raw())
    };
    a.iter().zip(&b).map(|(x, y)| x.abs_diff(*y)).max().unwrap_or(0)
}

fn rgb(image: &DynamicImage, x: u32, y: u32) -> [u8; 3] {
    image.to_rgb8().get_pixel(x, y).0
}

fn near(actual: [u8; 3], expected: [u8; 3], tolerance: u8) -> bool {
    actual.iter().zip(expected).all(|(a, e)| a.abs_diff(e) <= tolerance)
}

#[test]
fn palette_colour_images_are_shown_through_their_lookup_tables() {
    let Some(path) = corpus("OT-PAL-8-face.dcm") else { return };
    let ours = render(&path);
    assert!(ours.color().has_color(), "a PALETTE COLOR image renders in colour");
    assert_eq!(rgb(&ours, 0, 0), [0, 0, 0]);
    // Values read off the palette for the stored index at these pixels.
    assert!(near(rgb(&ours, 320, 240), [109, 109, 109], 1), "{:?}", rgb(&ours, 320, 240));
    assert!(near(rgb(&ours, 320, 100), [182, 204, 68], 1), "{:?}", rgb(&ours, 320, 100));
    let coloured = ours.to_rgb8().pixels().filter(|p| p.0[0].abs_diff(p.0[2]) > 30).count();
    assert!(coloured > 640 * 480 / 4, "only {coloured} pixels have colour");
    if let Some(theirs) = dcmtk(&path, &[]) {
        assert!(max_difference(&ours, &theirs) <= 1, "differs from DCMTK by {}", max_difference(&ours, &theirs));
    }
}

#[test]
fn a_segmented_palette_is_expanded() {
    // DCMTK does not expand segmented palettes; GDCM does (`--apply-lut`),
    // into 16-bit RGB.
    let Some(path) = corpus("gdcm-US-ALOKA-16.dcm") else { return };
    let ours = render(&path).to_rgb8();
    assert!(ours.pixels().filter(|p| p.0[0] != p.0[2]).count() > 1000, "the palette gives colour");
    if Command::new("gdcmconv").arg("--version").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "gdcmconv missing: .ci/run installs libgdcm-tools");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gdcm.dcm");
    let run = Command::new("gdcmconv").args(["--raw", "--apply-lut"]).arg(&path).arg(&out).output().unwrap();
    assert!(run.status.success(), "gdcmconv: {}", String::from_utf8_lossy(&run.stderr));
    let (_, theirs) = decode_file(&out, 0).unwrap();
    let their_samples = theirs.samples.to_i64_vec();
    assert_eq!(their_samples.len(), ours.as_raw().len());
    let shift = theirs.bits_stored.saturating_sub(8);
    let worst = their_samples.iter().zip(ours.as_raw()).map(|(&t, &o)| ((t >> shift) - i64::from(o)).abs()).max().unwrap();
    assert!(worst <= 1, "differs from GDCM's palette expansion by {worst}");
}

#[test]
fn signed_ct_without_a_window_gets_a_usable_one() {
    let Some(path) = corpus("CT_small.dcm") else { return };
    let (module, stored) = decode_file(&path, 0).unwrap();
    assert!(module.signed);
    let ours = render(&path).to_luma8();
    let (w, h) = ours.dimensions();
    let mean = ours.as_raw().iter().map(|&v| f64::from(v)).sum::<f64>() / f64::from(w * h);
    assert!((40.0..=200.0).contains(&mean), "mean grey {mean:.0}: the window is lost");
    // The brightest and darkest stored values land at the ends of the scale.
    let samples = stored.samples.to_i64_vec();
    let (min_at, max_at) = {
        let (mut lo, mut hi) = (0, 0);
        for (i, &v) in samples.iter().enumerate() {
            if v < samples[lo] {
                lo = i;
            }
            if v > samples[hi] {
                hi = i;
            }
        }
        (lo, hi)
    };
    assert_eq!(ours.as_raw()[min_at], 0);
    assert_eq!(ours.as_raw()[max_at], 255);
}

#[test]
fn monochrome1_is_inverted_and_windowed_as_dcmtk_does() {
    let Some(path) = corpus("RG3_UNCR.dcm") else { return };
    let ours = render(&path);
    // Window 550/1024 on 10-bit data, MONOCHROME1: the collimated edge
    // (stored 0) is white, the bone is light grey.
    assert_eq!(ours.to_luma8().get_pixel(0, 0).0[0], 255);
    assert_eq!(ours.to_luma8().get_pixel(880, 880).0[0], 188);
    if let Some(theirs) = dcmtk(&path, &["+Wi", "1"]) {
        assert!(max_difference(&ours, &theirs) <= 1, "differs from DCMTK by {}", max_difference(&ours, &theirs));
    }
}

#[test]
fn ybr_full_and_ybr_full_422_show_the_same_colours_as_rgb() {
    let Some(rgb_path) = corpus("SC_rgb.dcm") else { return };
    let reference = render(&rgb_path);
    // The test card's bars: red, light red, green, light green, blue, ...
    let bars = [[255, 0, 0], [255, 128, 128], [0, 255, 0], [128, 255, 128], [0, 0, 255], [128, 128, 255], [0, 0, 0], [64, 64, 64]];
    for (i, bar) in bars.iter().enumerate() {
        assert_eq!(rgb(&reference, 50, 5 + 10 * i as u32), *bar);
    }
    for name in ["SC_ybr_full_uncompressed.dcm", "SC_ybr_full_422_uncompressed.dcm", "SC_rgb_jpeg_dcmtk.dcm"] {
        let ours = render(&corpus(name).unwrap());
        for (i, bar) in bars.iter().enumerate() {
            let pixel = rgb(&ours, 50, 5 + 10 * i as u32);
            assert!(near(pixel, *bar, 8), "{name} bar {i}: {pixel:?}, expected {bar:?}");
        }
        let difference = max_difference(&ours, &reference);
        assert!(difference <= 12, "{name} differs from the RGB card by {difference} (edges of chroma subsampling)");
    }
}

#[test]
fn twelve_bit_jpeg_keeps_its_twelve_bits() {
    let Some(path) = corpus("JPGExtended.dcm") else { return };
    let (module, stored) = decode_file(&path, 0).unwrap();
    assert_eq!((module.bits_stored, module.transfer_syntax.as_str()), (12, "1.2.840.10008.1.2.4.51"));
    // Stored values as DCMTK's dcmdjpeg (IJG 12-bit) decodes them.
    assert_eq!(stored.samples.get(0), 1);
    assert_eq!(stored.samples.get(100 * 512 + 200), 53);
    assert_eq!(stored.samples.to_i64_vec().iter().max(), Some(&264));
    let ours = render(&path);
    if let Some(theirs) = dcmtk(&path, &["+Wm"]) {
        // Our percentile window is narrower than DCMTK's min-max: compare
        // only that both show the same anatomy, i.e. correlate strongly.
        let (a, b) = (ours.to_luma8().into_raw(), theirs.to_luma8().into_raw());
        let mean = |v: &[u8]| v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64;
        let (ma, mb) = (mean(&a), mean(&b));
        let cov: f64 = a.iter().zip(&b).map(|(&x, &y)| (f64::from(x) - ma) * (f64::from(y) - mb)).sum();
        let var = |v: &[u8], m: f64| v.iter().map(|&x| (f64::from(x) - m).powi(2)).sum::<f64>();
        let correlation = cov / (var(&a, ma) * var(&b, mb)).sqrt();
        assert!(correlation > 0.95, "correlation with DCMTK's rendering {correlation:.3}");
    }
}

#[test]
fn a_voi_lut_sequence_is_applied() {
    let Some(path) = corpus("vlut_04.dcm") else { return };
    let ours = render(&path);
    if let Some(theirs) = dcmtk(&path, &["+Wl", "1"]) {
        let difference = max_difference(&ours, &theirs);
        assert!(difference <= 1, "differs from DCMTK by {difference}");
    }
}

#[test]
fn a_modality_lut_sequence_is_applied() {
    use telediag_imaging::display::{DisplayTransform, ModalityLut, Voi, VoiFunction, to_image};
    // 12 bits in 16, signed, through a 4096-entry modality LUT; no VOI, so
    // both sides window the modality values from their minimum to maximum.
    let Some(path) = corpus("mlut_18.dcm") else { return };
    let object = telediag_imaging::render::open(&path).unwrap();
    let (module, stored) = decode_file(&path, 0).unwrap();
    let mut transform = DisplayTransform::read(&object, &module, 0).unwrap();
    let ModalityLut::Table(lut) = &transform.modality else { panic!("no modality LUT: {:?}", transform.modality) };
    assert_eq!((lut.first, lut.entries.len()), (-2048, 4096));
    let values: Vec<f64> =
        stored.samples.to_i64_vec().iter().map(|&v| f64::from(lut.entries[(v - lut.first).clamp(0, 4095) as usize])).collect();
    let (low, high) = values.iter().fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    transform.voi = Voi::Window { center: (low + high) / 2.0 + 0.5, width: high - low + 1.0, function: VoiFunction::Linear };
    let ours = to_image(&stored, &transform).unwrap();
    if let Some(theirs) = dcmtk(&path, &["+Wm"]) {
        let difference = max_difference(&ours, &theirs);
        assert!(difference <= 1, "differs from DCMTK by {difference}");
    }
}

#[test]
fn a_supplemental_palette_colours_its_range_only() {
    let Some(path) = corpus("eCT_Supplemental.dcm") else { return };
    let (_, stored) = decode_file(&path, 0).unwrap();
    let ours = render(&path).to_rgb8();
    let (mut in_range, mut coloured_in_range, mut grey_outside) = (0, 0, 0);
    for (&value, pixel) in stored.samples.to_i64_vec().iter().zip(ours.pixels()) {
        let [r, g, b] = pixel.0;
        if (1024..1124).contains(&value) {
            in_range += 1;
            coloured_in_range += usize::from(r != g || g != b);
        } else {
            grey_outside += usize::from(r == g && g == b);
        }
    }
    assert!(in_range > 0, "no pixel in the palette's range");
    assert!(coloured_in_range * 10 > in_range * 9, "{coloured_in_range} of {in_range} in-range pixels in colour");
    assert_eq!(grey_outside, stored.samples.len() - in_range, "pixels outside the palette stay grey");
}
