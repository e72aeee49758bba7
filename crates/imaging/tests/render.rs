//! Rendering real objects: the demo studies (whose anatomy is known) and, when
//! fetched, files of the public pydicom corpus in several transfer syntaxes.

use std::path::PathBuf;

use telediag_imaging::{ThumbnailFormat, make_thumbnail, render_file};

fn demo() -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let files = telediag_sample_data::write_demo_studies(dir.path()).unwrap();
    (dir, files)
}

fn mean(image: &image::GrayImage, x0: u32, y0: u32, x1: u32, y1: u32) -> f64 {
    let mut sum = 0u64;
    for y in y0..y1 {
        for x in x0..x1 {
            sum += u64::from(image.get_pixel(x, y)[0]);
        }
    }
    sum as f64 / f64::from((x1 - x0) * (y1 - y0))
}

#[test]
fn the_demo_ct_renders_with_its_soft_tissue_window() {
    let (_dir, files) = demo();
    let ct = files.iter().find(|p| p.ends_with("ct_012.dcm")).unwrap();
    let rendered = render_file(ct, 0).unwrap();
    assert_eq!(rendered.frames, 1);
    let grey = rendered.image.to_luma8();
    assert_eq!(grey.dimensions(), (256, 256));
    // Window 40/400: air and lung black, soft tissue mid-grey, bone white.
    let outside = mean(&grey, 0, 0, 20, 20);
    let lung = mean(&grey, 50, 120, 60, 130); // x ≈ -0.58, y ≈ -0.02 in the phantom
    let tissue = mean(&grey, 134, 108, 142, 116); // heart, 45 HU
    let spine = mean(&grey, 125, 194, 131, 200);
    assert!(outside < 5.0 && lung < 5.0, "air {outside}, lung {lung}");
    assert!((110.0..170.0).contains(&tissue), "soft tissue {tissue}");
    assert!(spine > 240.0, "bone {spine}");
}

#[test]
fn a_multi_frame_ultrasound_renders_every_frame_in_colour() {
    let (_dir, files) = demo();
    let us = files.iter().find(|p| p.ends_with("us_001.dcm")).unwrap();
    let first = render_file(us, 0).unwrap();
    assert_eq!(first.frames, 16);
    assert_eq!((first.image.width(), first.image.height()), (320, 240));
    assert!(first.image.color().has_color());
    let last = render_file(us, 15).unwrap();
    assert_ne!(first.image.to_rgb8().into_raw(), last.image.to_rgb8().into_raw(), "frames differ (the vessel moves)");
    assert!(render_file(us, 16).is_err());
    let thumb = make_thumbnail(&first.image, 256, 1.0, ThumbnailFormat::Jpeg).unwrap();
    assert_eq!((thumb.width, thumb.height), (256, 192));
    assert_eq!(&thumb.bytes[..2], &[0xFF, 0xD8], "a JPEG");
}

#[test]
fn objects_without_pixels_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let missing = render_file(&dir.path().join("none.dcm"), 0).unwrap_err().to_string();
    assert!(missing.contains("cannot open"), "{missing}");
}

mod common;
use common::corpus_root as corpus;

#[test]
fn corpus_files_in_the_supported_transfer_syntaxes_render_to_real_images() {
    let Some(corpus) = corpus() else { return };
    for (file, size) in [
        ("pydicom/CT_small.dcm", (128, 128)),          // explicit VR LE, signed 16-bit
        ("pydicom/MR_small_RLE.dcm", (64, 64)),        // RLE
        ("pydicom/MR_small_bigendian.dcm", (64, 64)),  // explicit VR BE
        ("pydicom/SC_rgb_jpeg_dcmtk.dcm", (100, 100)), // JPEG baseline, YBR
        ("pydicom/JPEG2000.dcm", (256, 1024)),         // JPEG 2000
        ("pydicom/SC_rgb_rle_16bit.dcm", (100, 100)),  // RLE, 16-bit RGB
        ("pydicom-data/US1_J2KR.dcm", (640, 480)),     // JPEG 2000 lossless, colour
    ] {
        let path = corpus.join(file);
        let rendered = render_file(&path, 0).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!((rendered.image.width(), rendered.image.height()), size, "{file}");
        let grey = rendered.image.to_luma8();
        let (min, max) = grey.pixels().fold((255u8, 0u8), |(lo, hi), p| (lo.min(p[0]), hi.max(p[0])));
        assert!(max - min > 100, "{file}: contrast only {min}..{max}: a blank or flat image");
    }
}
