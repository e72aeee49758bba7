//! The 12-lead page: what is drawn where, checked on the rasterised PNG.

mod common;

use telediag_ecg::render::{Layout, png, svg};
use telediag_ecg::{analyse, read_path};

#[test]
fn three_by_four_page_has_every_lead_its_calibration_and_the_measurements() {
    let Some(root) = common::corpus() else { return };
    let record = read_path(&root.join("dicom/waveform_ecg.dcm")).unwrap();
    let analysis = analyse(&record);
    let page = svg(&record, &analysis, Layout::ThreeByFour);
    for label in telediag_ecg::leads::STANDARD_LEADS {
        assert!(page.contains(&format!(">{label}</text>")), "lead {label} unlabelled");
    }
    // Four rows (3 + rhythm strip), each with its 1 mV calibration pulse.
    assert_eq!(page.matches("v-10h3v10").count(), 4);
    assert!(page.contains("25 mm/s · 10 mm/mV · 0.5–40 Hz, notch 50 Hz"));
    assert!(page.contains(&format!("PR {} ms", analysis.measurements.pr_ms.unwrap())));
    assert!(page.contains("RITMO SINUSALE"), "device statements shown");

    let bytes = png(&page, 1800).unwrap();
    let pixmap = resvg::tiny_skia::Pixmap::decode_png(&bytes).unwrap();
    assert_eq!((pixmap.width(), pixmap.height()), (1800, 1273));
    // Each of the 4 trace rows has dark ink (the trace), the header too.
    let dark_in = |y0: u32, y1: u32| {
        (y0..y1)
            .flat_map(|y| (0..pixmap.width()).map(move |x| (x, y)))
            .filter(|&(x, y)| {
                let p = pixmap.pixel(x, y).unwrap();
                p.red() < 80 && p.green() < 80 && p.blue() < 80
            })
            .count()
    };
    let mm = 1800.0 / 297.0;
    let grid_top = (42.0 * mm) as u32;
    let row_h = ((210.0 - 50.0) / 4.0 * mm) as u32;
    for row in 0..4 {
        let ink = dark_in(grid_top + row * row_h, grid_top + (row + 1) * row_h);
        assert!(ink > 3000, "row {row} has only {ink} dark pixels");
    }
    assert!(dark_in(0, grid_top) > 2000, "header text missing");
}

#[test]
fn six_by_two_and_twelve_by_one_layouts_draw_all_twelve_leads() {
    let Some(root) = common::corpus() else { return };
    let record = read_path(&root.join("wfdb/s0010_re.hea")).unwrap();
    let analysis = analyse(&record);
    for (layout, pulses, gain) in [(Layout::SixByTwo, 6, "10 mm/mV"), (Layout::TwelveByOne, 12, "5 mm/mV")] {
        let page = svg(&record, &analysis, layout);
        let traces = page.matches("stroke-linejoin=\"round\"").count();
        assert_eq!(traces, 12, "{layout:?}");
        assert_eq!(page.matches("h1v-").count(), pulses, "one calibration pulse per row, {layout:?}");
        assert!(page.contains(gain), "{layout:?}");
    }
}

#[test]
fn a_page_drawn_over_the_cached_paper_is_the_page_drawn_whole() {
    let Some(root) = common::corpus() else { return };
    let record = read_path(&root.join("ecgtoolkit/Example.scp")).unwrap();
    let page = svg(&record, &analyse(&record), Layout::ThreeByFour);
    // One more space in the paper's tag: png() no longer recognises it and
    // draws every element itself.
    assert!(page.contains("<g id=\"paper\">"));
    let whole = page.replacen("<g id=\"paper\">", "<g id=\"paper\" >", 1);
    for width in [1800, 480] {
        let (cached, drawn) = (png(&page, width).unwrap(), png(&whole, width).unwrap());
        // Opaque RGB, compressed for a county hospital's line (was 2.7 MB).
        assert!(cached.len() < 600 << 10, "a {width} px page of {} bytes", cached.len());
        let decode = |bytes: &[u8]| resvg::tiny_skia::Pixmap::decode_png(bytes).unwrap();
        let (cached, drawn) = (decode(&cached), decode(&drawn));
        assert_eq!((cached.width(), cached.height()), (drawn.width(), drawn.height()));
        let differing = cached.pixels().iter().zip(drawn.pixels()).filter(|(a, b)| a != b).count();
        assert_eq!(differing, 0, "{differing} pixels differ at {width} px");
        // And the page is not blank: grid pink and trace ink are both there
        // (at 480 px a 0.28 mm trace is half a pixel wide: grey, not black).
        assert!(cached.pixels().iter().any(|p| p.red() > 200 && p.green() < 210 && p.blue() < 210));
        let ink = if width == 1800 { 60 } else { 140 };
        assert!(cached.pixels().iter().any(|p| p.red() < ink && p.green() < ink && p.blue() < ink), "no trace at {width} px");
    }
}
