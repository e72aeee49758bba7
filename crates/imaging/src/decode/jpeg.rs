//! JPEG baseline (8-bit), extended (12-bit) and lossless (2 to 16 bit)
//! through libjpeg-turbo 3's TurboJPEG API.
//!
//! Why libjpeg-turbo: the pure-Rust decoders refuse 12-bit DCT data, which
//! CR/DX and older CT archives are full of; libjpeg-turbo 3 decodes every
//! precision of every JPEG process DICOM uses, is the library DCMTK and most
//! viewers descend from (IJG), and its SIMD makes 8-bit baseline fast.

use turbojpeg_sys as tj;

use super::StoredFrame;
use crate::RenderError;
use crate::pixel_module::PixelModule;
use crate::turbo;

pub(super) fn decode(bytes: &[u8], module: &PixelModule) -> Result<StoredFrame, RenderError> {
    turbo::with_decompressor(|handle| decode_with(handle, bytes, module)).map_err(RenderError::Decode)?
}

fn decode_with(handle: tj::tjhandle, bytes: &[u8], module: &PixelModule) -> Result<StoredFrame, RenderError> {
    // A non-zero return is an error, or only a warning (for example a
    // sequential scan header with odd Ss/Se values, which several DICOM
    // encoders write): the image is then complete and is kept, as GDCM and
    // DCMTK keep it.
    let check = |status: i32, what: &str| -> Result<(), RenderError> {
        // SAFETY: the handle is valid; the message is a NUL-terminated string it owns.
        if status == 0 || unsafe { tj::tj3GetErrorCode(handle) } == tj::TJERR_TJERR_WARNING as i32 {
            return Ok(());
        }
        Err(RenderError::Decode(format!("JPEG {what}: {}", turbo::error_message(handle))))
    };
    // SAFETY: `bytes` outlives the call; libjpeg-turbo only reads it.
    check(unsafe { tj::tj3DecompressHeader(handle, bytes.as_ptr(), bytes.len() as tj::size_t) }, "header")?;
    let get = |param: tj::TJPARAM| unsafe { tj::tj3Get(handle, param as i32) };
    let (width, height) = (get(tj::TJPARAM_TJPARAM_JPEGWIDTH), get(tj::TJPARAM_TJPARAM_JPEGHEIGHT));
    let precision = get(tj::TJPARAM_TJPARAM_PRECISION);
    let grey =
        get(tj::TJPARAM_TJPARAM_SUBSAMP) == tj::TJSAMP_TJSAMP_GRAY || get(tj::TJPARAM_TJPARAM_COLORSPACE) == tj::TJCS_TJCS_GRAY as i32;
    if width as u32 != module.columns || height as u32 != module.rows {
        return Err(RenderError::Decode(format!(
            "the JPEG stream is {width}x{height}, the dataset says {}x{}",
            module.columns, module.rows
        )));
    }
    let (format, spp) = if grey { (tj::TJPF_TJPF_GRAY, 1u16) } else { (tj::TJPF_TJPF_RGB, 3u16) };
    if spp != module.samples_per_pixel {
        return Err(RenderError::Decode(format!("the JPEG stream has {spp} components, the dataset says {}", module.samples_per_pixel)));
    }
    let count = width as usize * height as usize * usize::from(spp);
    // libjpeg takes three components without a JFIF or Adobe marker for
    // YCbCr. When the dataset says RGB and no marker says otherwise, the
    // dataset is right (PS3.5 8.2.1): the components are read as stored.
    let colour_space = get(tj::TJPARAM_TJPARAM_COLORSPACE);
    if !grey
        && precision <= 8
        && module.photometric == "RGB"
        && colour_space == tj::TJCS_TJCS_YCbCr as i32
        && colour_marker(bytes).is_none()
    {
        let samples = components_as_stored(handle, bytes, width, height, get(tj::TJPARAM_TJPARAM_SUBSAMP), &check)?;
        return Ok(StoredFrame::new(module, 3, "RGB".into(), samples.into_iter().map(u32::from), 0));
    }
    // SAFETY (all three): the destination holds width × height × components
    // samples of the precision's type, packed (pitch 0).
    // libjpeg converts YCbCr streams to RGB; RGB streams stay RGB.
    let photometric = if grey { module.photometric.clone() } else { "RGB".into() };
    Ok(match precision {
        2..=8 => {
            let mut out = vec![0u8; count];
            check(
                unsafe { tj::tj3Decompress8(handle, bytes.as_ptr(), bytes.len() as tj::size_t, out.as_mut_ptr(), 0, format) },
                "decoding",
            )?;
            StoredFrame::new(module, spp, photometric, out.into_iter().map(u32::from), 0)
        }
        9..=12 => {
            let mut out = vec![0i16; count];
            check(
                unsafe { tj::tj3Decompress12(handle, bytes.as_ptr(), bytes.len() as tj::size_t, out.as_mut_ptr(), 0, format) },
                "decoding",
            )?;
            StoredFrame::new(module, spp, photometric, out.into_iter().map(|v| u32::from(v as u16)), 0)
        }
        13..=16 => {
            let mut out = vec![0u16; count];
            check(
                unsafe { tj::tj3Decompress16(handle, bytes.as_ptr(), bytes.len() as tj::size_t, out.as_mut_ptr(), 0, format) },
                "decoding",
            )?;
            StoredFrame::new(module, spp, photometric, out.into_iter().map(u32::from), 0)
        }
        other => return Err(RenderError::Decode(format!("JPEG precision {other} bits is not a JPEG precision"))),
    })
}

/// The three components without colour conversion, chroma upsampled by
/// replication when subsampled.
fn components_as_stored(
    handle: tj::tjhandle,
    bytes: &[u8],
    width: i32,
    height: i32,
    subsampling: i32,
    check: &dyn Fn(i32, &str) -> Result<(), RenderError>,
) -> Result<Vec<u8>, RenderError> {
    // SAFETY: pure size computations.
    let size = |c: i32| unsafe { (tj::tj3YUVPlaneWidth(c, width, subsampling), tj::tj3YUVPlaneHeight(c, height, subsampling)) };
    let sizes = [size(0), size(1), size(2)];
    if sizes.iter().any(|&(w, h)| w <= 0 || h <= 0) {
        return Err(RenderError::Decode(format!("JPEG chroma subsampling {subsampling} has no plane layout")));
    }
    let mut planes: Vec<Vec<u8>> = sizes.iter().map(|&(w, h)| vec![0u8; w as usize * h as usize]).collect();
    let mut pointers: Vec<*mut u8> = planes.iter_mut().map(|p| p.as_mut_ptr()).collect();
    let mut strides: Vec<i32> = sizes.iter().map(|&(w, _)| w).collect();
    // SAFETY: each plane holds its stride × height bytes, as libjpeg-turbo
    // computed them for this image.
    check(
        unsafe {
            tj::tj3DecompressToYUVPlanes8(handle, bytes.as_ptr(), bytes.len() as tj::size_t, pointers.as_mut_ptr(), strides.as_mut_ptr())
        },
        "decoding",
    )?;
    let (w, h) = (width as usize, height as usize);
    let factor = |full: usize, plane: i32| (full / (plane as usize).max(1)).max(1);
    let mut samples = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            for (c, &(pw, ph)) in sizes.iter().enumerate() {
                let (px, py) = (x / factor(w, pw), y / factor(h, ph));
                samples.push(planes[c][py * pw as usize + px]);
            }
        }
    }
    Ok(samples)
}

/// What a JFIF (APP0) or Adobe (APP14) marker says of the colour space:
/// `Some(true)` for YCbCr, `Some(false)` for RGB, `None` without either.
fn colour_marker(bytes: &[u8]) -> Option<bool> {
    let mut at = 2; // after SOI
    while at + 4 <= bytes.len() && bytes[at] == 0xFF {
        let marker = bytes[at + 1];
        if marker == 0xDA || marker == 0xD9 {
            return None; // start of scan: no more headers
        }
        let length = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        let payload = bytes.get(at + 4..at + 2 + length)?;
        match marker {
            0xE0 if payload.starts_with(b"JFIF\0") => return Some(true),
            0xEE if payload.starts_with(b"Adobe") => return Some(payload.get(11).is_some_and(|&t| t != 0)),
            _ => {}
        }
        at += 2 + length;
    }
    None
}
