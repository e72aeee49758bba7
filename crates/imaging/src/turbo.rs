//! libjpeg-turbo's TurboJPEG handles, one of each kind per thread, and JPEG
//! encoding of 8-bit previews and thumbnails.
//!
//! Encoding goes through libjpeg-turbo too, since it is linked for decoding
//! anyway: its SIMD encoder takes a fifth of the time of `image`'s pure-Rust
//! one for a 256-pixel thumbnail, and far less for a full-size preview.

use std::cell::RefCell;
use std::ffi::CStr;

use turbojpeg_sys as tj;

/// A TurboJPEG instance, destroyed with its thread.
struct Handle(tj::tjhandle);

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle came from tj3Init and is destroyed once.
        unsafe { tj::tj3Destroy(self.0) }
    }
}

thread_local! {
    static DECOMPRESSOR: RefCell<Option<Handle>> = const { RefCell::new(None) };
    static COMPRESSOR: RefCell<Option<Handle>> = const { RefCell::new(None) };
}

type Slot = std::thread::LocalKey<RefCell<Option<Handle>>>;

/// Runs `f` with this thread's handle of `kind`, made on first use; an
/// error only when libjpeg-turbo cannot make one.
fn with_handle<R>(slot: &'static Slot, kind: tj::TJINIT, f: impl FnOnce(tj::tjhandle) -> R) -> Result<R, String> {
    slot.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            // SAFETY: plain constructor; a null result is checked.
            let handle = unsafe { tj::tj3Init(kind as i32) };
            if handle.is_null() {
                return Err("libjpeg-turbo could not start".into());
            }
            *slot = Some(Handle(handle));
        }
        Ok(f(slot.as_ref().expect("set above").0))
    })
}

/// Runs `f` with this thread's decompressor.
pub(crate) fn with_decompressor<R>(f: impl FnOnce(tj::tjhandle) -> R) -> Result<R, String> {
    with_handle(&DECOMPRESSOR, tj::TJINIT_TJINIT_DECOMPRESS, f)
}

/// The last error of `handle`.
pub(crate) fn error_message(handle: tj::tjhandle) -> String {
    // SAFETY: the handle is valid; the message is a NUL-terminated string it owns.
    unsafe { CStr::from_ptr(tj::tj3GetErrorStr(handle)) }.to_string_lossy().into_owned()
}

/// Encodes packed 8-bit grey (`channels` 1) or RGB (3) pixels as a baseline
/// JPEG of `quality`, without chroma subsampling (colour Doppler and
/// annotations keep their edges).
pub fn encode_jpeg(pixels: &[u8], width: u32, height: u32, channels: u8, quality: u8) -> Result<Vec<u8>, String> {
    let (format, subsampling) = match channels {
        1 => (tj::TJPF_TJPF_GRAY, tj::TJSAMP_TJSAMP_GRAY),
        3 => (tj::TJPF_TJPF_RGB, tj::TJSAMP_TJSAMP_444),
        other => return Err(format!("cannot encode {other} channels as JPEG, expected 1 or 3")),
    };
    let expected = width as usize * height as usize * usize::from(channels);
    if pixels.len() != expected || width == 0 || height == 0 || width > i32::MAX as u32 || height > i32::MAX as u32 {
        return Err(format!("{} bytes for a {width}x{height}x{channels} image, expected {expected}", pixels.len()));
    }
    with_handle(&COMPRESSOR, tj::TJINIT_TJINIT_COMPRESS, |handle| {
        // SAFETY: the handle is a compressor; the source holds width ×
        // height × channels bytes, packed (pitch 0); libjpeg-turbo
        // allocates the output, which is copied and freed below.
        unsafe {
            tj::tj3Set(handle, tj::TJPARAM_TJPARAM_QUALITY as i32, i32::from(quality));
            tj::tj3Set(handle, tj::TJPARAM_TJPARAM_SUBSAMP as i32, subsampling);
            let mut output: *mut u8 = std::ptr::null_mut();
            let mut size: tj::size_t = 0;
            let status = tj::tj3Compress8(handle, pixels.as_ptr(), width as i32, 0, height as i32, format, &mut output, &mut size);
            let result = if status == 0 && !output.is_null() {
                Ok(std::slice::from_raw_parts(output, size as usize).to_vec())
            } else {
                Err(format!("JPEG encoding failed: {}", error_message(handle)))
            };
            tj::tj3Free(output.cast());
            result
        }
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grey_and_colour_round_trip() {
        // A horizontal ramp: a lossy codec at quality 90 keeps it within a few levels.
        let grey: Vec<u8> = (0..64 * 16).map(|i| ((i % 64) * 4) as u8).collect();
        let jpeg = encode_jpeg(&grey, 64, 16, 1, 90).unwrap();
        let decoded = image::load_from_memory(&jpeg).unwrap().to_luma8();
        assert_eq!(decoded.dimensions(), (64, 16));
        let worst = decoded.as_raw().iter().zip(&grey).map(|(&a, &b)| a.abs_diff(b)).max().unwrap();
        assert!(worst <= 6, "grey differs by {worst}");

        let rgb: Vec<u8> = (0..32 * 8).flat_map(|i| [200u8, (i % 32 * 8) as u8, 30]).collect();
        let jpeg = encode_jpeg(&rgb, 32, 8, 3, 90).unwrap();
        let decoded = image::load_from_memory(&jpeg).unwrap().to_rgb8();
        let worst = decoded.as_raw().iter().zip(&rgb).map(|(&a, &b)| a.abs_diff(b)).max().unwrap();
        assert!(worst <= 8, "colour differs by {worst}");
    }

    #[test]
    fn wrong_sizes_are_refused() {
        assert!(encode_jpeg(&[0; 10], 4, 4, 1, 90).unwrap_err().contains("expected 16"));
        assert!(encode_jpeg(&[0; 16], 4, 4, 2, 90).is_err());
    }
}
