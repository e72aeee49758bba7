//! Demo studies for a centre that has just been installed.
//!
//! [`write_demo_studies`] writes three small studies as DICOM Part 10 files,
//! the kind a county hospital sends: a 24-slice chest CT of a phantom, a chest
//! CR, and a 16-frame abdominal ultrasound clip. [`write_demo_ecg`] adds a
//! resting 12-lead ECG ([`demo_ecg`]) for the ECG doctors. Patient, institution and
//! description text is Chinese, stored as GB18030 (Specific Character Set
//! `GB18030`) like many domestic modalities do. UIDs and pixels are
//! deterministic, so loading the demo twice stores nothing new.
//!
//! The pixel content is drawn to be recognisable when rendered: an axial CT
//! slice with body outline, lungs, heart and spine in Hounsfield units; a
//! chest radiograph with lung fields and ribs; an ultrasound sector with
//! speckle and a moving vessel with colour Doppler flow.

mod ecg;

pub use ecg::{demo_ecg, write_demo_ecg};

use std::path::{Path, PathBuf};

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

/// Why the demo could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot create {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cannot write demo object {path}: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error("cannot make the demo ECG: {0}")]
    Ecg(String),
}

const CT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2";
const CR_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.1";
const US_MULTIFRAME_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.3.1";
const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";

/// The demo's hospital, as written into every object.
pub const DEMO_INSTITUTION: &str = "演示县人民医院";

/// A UID under the 2.25 (UUID-derived) root, from a 128-bit FNV-1a hash of
/// `label`: stable across runs, unique per label.
pub fn demo_uid(label: &str) -> String {
    let mut hash: u128 = 0x6c62272e07bb014262b821756295c58d;
    for byte in label.bytes() {
        hash ^= u128::from(byte);
        hash = hash.wrapping_mul(0x0000000001000000000000000000013B);
    }
    format!("2.25.{}", hash >> 1)
}

struct Patient {
    id: &'static str,
    name: &'static str,
    sex: &'static str,
    birth_date: &'static str,
}

struct Study<'a> {
    key: &'a str,
    patient: &'a Patient,
    accession: &'a str,
    date: &'a str,
    time: &'a str,
    description: &'a str,
    referring: &'a str,
}

fn text(obj: &mut InMemDicomObject, tag: Tag, vr: VR, value: &str) {
    obj.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
}

fn u16_value(obj: &mut InMemDicomObject, tag: Tag, value: u16) {
    obj.put(DataElement::new(tag, VR::US, PrimitiveValue::from(value)));
}

fn base_object(study: &Study, modality: &str, series_key: &str, series_description: &str, body_part: &str) -> InMemDicomObject {
    let mut obj = InMemDicomObject::new_empty();
    text(&mut obj, tags::SPECIFIC_CHARACTER_SET, VR::CS, "GB18030");
    text(&mut obj, tags::STUDY_DATE, VR::DA, study.date);
    text(&mut obj, tags::SERIES_DATE, VR::DA, study.date);
    text(&mut obj, tags::STUDY_TIME, VR::TM, study.time);
    text(&mut obj, tags::ACCESSION_NUMBER, VR::SH, study.accession);
    text(&mut obj, tags::MODALITY, VR::CS, modality);
    text(&mut obj, tags::MANUFACTURER, VR::LO, "Telediag demo");
    text(&mut obj, tags::INSTITUTION_NAME, VR::LO, DEMO_INSTITUTION);
    text(&mut obj, tags::REFERRING_PHYSICIAN_NAME, VR::PN, study.referring);
    text(&mut obj, tags::STUDY_DESCRIPTION, VR::LO, study.description);
    text(&mut obj, tags::SERIES_DESCRIPTION, VR::LO, series_description);
    text(&mut obj, tags::PATIENT_NAME, VR::PN, study.patient.name);
    text(&mut obj, tags::PATIENT_ID, VR::LO, study.patient.id);
    text(&mut obj, tags::PATIENT_BIRTH_DATE, VR::DA, study.patient.birth_date);
    text(&mut obj, tags::PATIENT_SEX, VR::CS, study.patient.sex);
    text(&mut obj, tags::BODY_PART_EXAMINED, VR::CS, body_part);
    text(&mut obj, tags::STUDY_INSTANCE_UID, VR::UI, &demo_uid(study.key));
    text(&mut obj, tags::SERIES_INSTANCE_UID, VR::UI, &demo_uid(series_key));
    text(&mut obj, tags::STUDY_ID, VR::SH, "1");
    text(&mut obj, tags::SERIES_NUMBER, VR::IS, "1");
    obj
}

/// The Image Pixel module of a 12-bit-in-16 MONOCHROME2 image.
fn monochrome12(obj: &mut InMemDicomObject, rows: usize, columns: usize, pixels: Vec<u16>) {
    u16_value(obj, tags::SAMPLES_PER_PIXEL, 1);
    text(obj, tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2");
    u16_value(obj, tags::ROWS, rows as u16);
    u16_value(obj, tags::COLUMNS, columns as u16);
    u16_value(obj, tags::BITS_ALLOCATED, 16);
    u16_value(obj, tags::BITS_STORED, 12);
    u16_value(obj, tags::HIGH_BIT, 11);
    u16_value(obj, tags::PIXEL_REPRESENTATION, 0);
    obj.put(DataElement::new(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U16(pixels.into())));
}

fn save(mut obj: InMemDicomObject, sop_class: &str, sop_instance: &str, path: &Path) -> Result<(), DemoError> {
    text(&mut obj, tags::SOP_CLASS_UID, VR::UI, sop_class);
    text(&mut obj, tags::SOP_INSTANCE_UID, VR::UI, sop_instance);
    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(sop_class)
        .media_storage_sop_instance_uid(sop_instance)
        .transfer_syntax(EXPLICIT_VR_LE)
        .implementation_class_uid("2.25.207935834215372512436906541223094150914")
        .implementation_version_name("TELEDIAG_DEMO");
    let file = obj.with_meta(meta).map_err(|e| DemoError::Write { path: path.to_owned(), reason: e.to_string() })?;
    file.write_to_file(path).map_err(|e| DemoError::Write { path: path.to_owned(), reason: e.to_string() })
}

fn inside_ellipse(x: f32, y: f32, cx: f32, cy: f32, rx: f32, ry: f32) -> bool {
    let (dx, dy) = ((x - cx) / rx, (y - cy) / ry);
    dx * dx + dy * dy <= 1.0
}

/// Hounsfield units of the phantom at (x, y) in [-1, 1]² on slice z in [0, 1].
fn phantom_hu(x: f32, y: f32, z: f32) -> f32 {
    let lung_scale = 0.8 + 0.2 * (std::f32::consts::PI * z).sin();
    if !inside_ellipse(x, y, 0.0, 0.05, 0.85, 0.62) {
        return -1000.0;
    }
    if inside_ellipse(x, y, 0.0, 0.55, 0.09, 0.09) {
        return 700.0; // vertebral body
    }
    if inside_ellipse(x, y, 0.0, 0.62, 0.04, 0.04) {
        return 30.0; // spinal canal
    }
    if inside_ellipse(x, y, 0.08, -0.12, 0.18 * lung_scale, 0.17 * lung_scale) {
        return 45.0; // heart, anterior and to the patient's left
    }
    if inside_ellipse(x, y, -0.05, 0.28, 0.05, 0.05) {
        return 250.0; // contrast in the descending aorta
    }
    if inside_ellipse(x, y, -0.42, 0.05, 0.27 * lung_scale, 0.44 * lung_scale)
        || inside_ellipse(x, y, 0.44, 0.05, 0.25 * lung_scale, 0.44 * lung_scale)
    {
        // lung parenchyma with a small nodule on a few slices
        if (0.4..0.6).contains(&z) && inside_ellipse(x, y, -0.45, -0.15, 0.035, 0.035) {
            return 20.0;
        }
        return -850.0;
    }
    if !inside_ellipse(x, y, 0.0, 0.05, 0.8, 0.57) {
        return -100.0; // subcutaneous fat
    }
    40.0
}

fn write_ct(dir: &Path) -> Result<usize, DemoError> {
    const SIZE: usize = 256;
    const SLICES: usize = 24;
    let patient = Patient { id: "DEMO0001", name: "Zhang^Wei=张^伟", sex: "M", birth_date: "19620314" };
    let study = Study {
        key: "demo-ct-study",
        patient: &patient,
        accession: "CT20261123001",
        date: "20261123",
        time: "083015",
        description: "胸部CT平扫",
        referring: "Zhao^Min=赵^敏",
    };
    for slice in 0..SLICES {
        let mut obj = base_object(&study, "CT", "demo-ct-series", "胸部 5mm 轴位", "CHEST");
        let z = slice as f32 / (SLICES - 1) as f32;
        let mut pixels = Vec::with_capacity(SIZE * SIZE);
        for row in 0..SIZE {
            for col in 0..SIZE {
                let x = col as f32 / (SIZE - 1) as f32 * 2.0 - 1.0;
                let y = row as f32 / (SIZE - 1) as f32 * 2.0 - 1.0;
                // small deterministic texture so soft tissue is not flat
                let texture = (((row * 31 + col * 17 + slice * 7) % 13) as f32 - 6.0) * 1.5;
                let hu = phantom_hu(x, y, z) + if phantom_hu(x, y, z) > -900.0 { texture } else { 0.0 };
                pixels.push((hu + 1024.0).clamp(0.0, 4095.0) as u16);
            }
        }
        monochrome12(&mut obj, SIZE, SIZE, pixels);
        text(&mut obj, tags::RESCALE_INTERCEPT, VR::DS, "-1024");
        text(&mut obj, tags::RESCALE_SLOPE, VR::DS, "1");
        text(&mut obj, tags::RESCALE_TYPE, VR::LO, "HU");
        text(&mut obj, tags::WINDOW_CENTER, VR::DS, "40\\-600");
        text(&mut obj, tags::WINDOW_WIDTH, VR::DS, "400\\1500");
        text(&mut obj, tags::PIXEL_SPACING, VR::DS, "1.367\\1.367");
        text(&mut obj, tags::SLICE_THICKNESS, VR::DS, "5");
        let position = format!("-175\\-175\\{}", -(slice as i32) * 5);
        text(&mut obj, tags::IMAGE_POSITION_PATIENT, VR::DS, &position);
        text(&mut obj, tags::IMAGE_ORIENTATION_PATIENT, VR::DS, "1\\0\\0\\0\\1\\0");
        text(&mut obj, tags::INSTANCE_NUMBER, VR::IS, &(slice + 1).to_string());
        let path = dir.join(format!("ct_{:03}.dcm", slice + 1));
        save(obj, CT_IMAGE_STORAGE, &demo_uid(&format!("demo-ct-{slice}")), &path)?;
    }
    Ok(SLICES)
}

fn write_cr(dir: &Path) -> Result<usize, DemoError> {
    const SIZE: usize = 768;
    let patient = Patient { id: "DEMO0002", name: "Li^Na=李^娜", sex: "F", birth_date: "19780602" };
    let study = Study {
        key: "demo-cr-study",
        patient: &patient,
        accession: "CR20261123007",
        date: "20261123",
        time: "091200",
        description: "胸部正位片",
        referring: "Sun^Li=孙^丽",
    };
    let mut obj = base_object(&study, "CR", "demo-cr-series", "胸部 后前位", "CHEST");
    let mut pixels = Vec::with_capacity(SIZE * SIZE);
    for row in 0..SIZE {
        for col in 0..SIZE {
            let x = col as f32 / (SIZE - 1) as f32 * 2.0 - 1.0;
            let y = row as f32 / (SIZE - 1) as f32 * 2.0 - 1.0;
            // attenuation: higher = brighter (bone, soft tissue); lungs dark
            let mut value: f32 = 300.0;
            if inside_ellipse(x, y, 0.0, 0.1, 0.85, 1.0) {
                value = 1900.0;
            }
            let left = inside_ellipse(x, y, -0.36, -0.05, 0.3, 0.62);
            let right = inside_ellipse(x, y, 0.36, -0.05, 0.3, 0.62);
            if left || right {
                value = 900.0 + 250.0 * (y + 1.0);
                // ribs: curved bright bands across the lung fields
                let rib_phase = (y * 9.0 + 0.8 * x * x * 9.0).sin();
                if rib_phase > 0.75 {
                    value += 450.0;
                }
            }
            if inside_ellipse(x, y, 0.12, 0.25, 0.24, 0.3) {
                value = 2300.0; // heart shadow
            }
            if x.abs() < 0.06 && y > -0.9 {
                value = value.max(2600.0); // spine
            }
            let noise = (((row * 13 + col * 7) % 11) as f32 - 5.0) * 6.0;
            pixels.push((value + noise).clamp(0.0, 4095.0) as u16);
        }
    }
    monochrome12(&mut obj, SIZE, SIZE, pixels);
    text(&mut obj, tags::WINDOW_CENTER, VR::DS, "1800");
    text(&mut obj, tags::WINDOW_WIDTH, VR::DS, "3000");
    text(&mut obj, tags::IMAGER_PIXEL_SPACING, VR::DS, "0.5\\0.5");
    text(&mut obj, tags::VIEW_POSITION, VR::CS, "PA");
    text(&mut obj, tags::INSTANCE_NUMBER, VR::IS, "1");
    save(obj, CR_IMAGE_STORAGE, &demo_uid("demo-cr-1"), &dir.join("cr_001.dcm"))?;
    Ok(1)
}

fn write_us(dir: &Path) -> Result<usize, DemoError> {
    const WIDTH: usize = 320;
    const HEIGHT: usize = 240;
    const FRAMES: usize = 16;
    let patient = Patient { id: "DEMO0003", name: "Wang^Fang=王^芳", sex: "F", birth_date: "19900921" };
    let study = Study {
        key: "demo-us-study",
        patient: &patient,
        accession: "US20261123015",
        date: "20261123",
        time: "101500",
        description: "腹部彩超",
        referring: "Zhou^Jun=周^军",
    };
    let mut obj = base_object(&study, "US", "demo-us-series", "肝脏 动态", "ABDOMEN");
    let mut pixels = Vec::with_capacity(WIDTH * HEIGHT * 3 * FRAMES);
    let mut seed: u32 = 0x9e3779b9;
    for frame in 0..FRAMES {
        let vessel_y = 130.0 + 12.0 * (frame as f32 / FRAMES as f32 * std::f32::consts::TAU).sin();
        for row in 0..HEIGHT {
            for col in 0..WIDTH {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                let (dx, dy) = (col as f32 - WIDTH as f32 / 2.0, row as f32 + 10.0);
                let angle = dx.atan2(dy);
                let depth = (dx * dx + dy * dy).sqrt();
                let in_sector = angle.abs() < 0.6 && depth > 20.0 && depth < 230.0;
                let mut grey = 0.0;
                // Colour Doppler in the vessel: red towards the probe, blue away,
                // brightest on the axis (laminar flow), the direction beating.
                let mut flow = None;
                if in_sector {
                    let speckle = (seed % 90) as f32;
                    grey = 60.0 + speckle * (1.0 - depth / 400.0);
                    let vessel = ((row as f32 - vessel_y) / 10.0).powi(2) + ((col as f32 - 175.0) / 40.0).powi(2);
                    if vessel < 1.0 {
                        grey = 10.0;
                        let velocity = (1.0 - vessel) * (frame as f32 / FRAMES as f32 * std::f32::consts::TAU).cos();
                        flow = Some(velocity);
                    }
                }
                let g = grey.clamp(0.0, 255.0) as u8;
                match flow {
                    Some(v) if v > 0.05 => pixels.extend([(90.0 + 165.0 * v) as u8, (40.0 * v) as u8, 20]),
                    Some(v) if v < -0.05 => pixels.extend([20, (60.0 * -v) as u8, (90.0 + 165.0 * -v) as u8]),
                    _ => pixels.extend([g, g, g]),
                }
            }
        }
    }
    u16_value(&mut obj, tags::SAMPLES_PER_PIXEL, 3);
    text(&mut obj, tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "RGB");
    u16_value(&mut obj, tags::PLANAR_CONFIGURATION, 0);
    text(&mut obj, tags::NUMBER_OF_FRAMES, VR::IS, &FRAMES.to_string());
    obj.put(DataElement::new(tags::FRAME_INCREMENT_POINTER, VR::AT, PrimitiveValue::Tags(vec![tags::FRAME_TIME].into())));
    text(&mut obj, tags::FRAME_TIME, VR::DS, "66.7");
    u16_value(&mut obj, tags::ROWS, HEIGHT as u16);
    u16_value(&mut obj, tags::COLUMNS, WIDTH as u16);
    u16_value(&mut obj, tags::BITS_ALLOCATED, 8);
    u16_value(&mut obj, tags::BITS_STORED, 8);
    u16_value(&mut obj, tags::HIGH_BIT, 7);
    u16_value(&mut obj, tags::PIXEL_REPRESENTATION, 0);
    text(&mut obj, tags::INSTANCE_NUMBER, VR::IS, "1");
    obj.put(DataElement::new(tags::PIXEL_DATA, VR::OB, PrimitiveValue::U8(pixels.into())));
    save(obj, US_MULTIFRAME_STORAGE, &demo_uid("demo-us-1"), &dir.join("us_001.dcm"))?;
    Ok(1)
}

/// Writes the demo studies into `dir` (created if missing). Returns the paths
/// of the files written.
pub fn write_demo_studies(dir: &Path) -> Result<Vec<PathBuf>, DemoError> {
    std::fs::create_dir_all(dir).map_err(|source| DemoError::Io { path: dir.to_owned(), source })?;
    write_ct(dir)?;
    write_cr(dir)?;
    write_us(dir)?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| DemoError::Io { path: dir.to_owned(), source })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_stable_valid_and_distinct() {
        let a = demo_uid("demo-ct-1");
        assert_eq!(a, demo_uid("demo-ct-1"));
        assert_ne!(a, demo_uid("demo-ct-2"));
        assert!(a.len() <= 64 && a.bytes().all(|b| b.is_ascii_digit() || b == b'.'), "{a}");
    }

    #[test]
    fn names_are_written_as_gb18030() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_demo_studies(dir.path()).unwrap();
        assert_eq!(files.len(), 26);
        let bytes = std::fs::read(dir.path().join("cr_001.dcm")).unwrap();
        // 李 in GB18030 is C0 EE; in UTF-8 it would be E6 9D 8E.
        assert!(bytes.windows(2).any(|w| w == [0xC0, 0xEE]), "GB18030 bytes for 李 not found");
        assert!(!bytes.windows(3).any(|w| w == [0xE6, 0x9D, 0x8E]), "name was written as UTF-8");
        let phantom = phantom_hu(-0.42, 0.05, 0.5);
        assert!(phantom < -700.0, "lung should be air-like, got {phantom}");
        assert!(phantom_hu(0.0, 0.55, 0.5) > 500.0, "spine should be bone");
    }
}
