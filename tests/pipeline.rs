//! The imaging pipeline end to end: objects that arrive are rendered in the
//! background, and their thumbnails and previews are served over HTTP with
//! ETags, to the right people only.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn wait_for_image(port: u16, token: &str, path: &str) -> (u16, String, Vec<u8>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = http_raw(port, path, token, None);
        if reply.0 != 404 || Instant::now() > deadline {
            return reply;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn arriving_images_get_thumbnails_and_previews_served_with_etags() {
    let mut server = Server::new();
    server.add_site("东山县医院", "DONGSHAN", &[]);
    server.add_site("西河县医院", "XIHE", &[]);
    let demo = server.dir.path().join("demo");
    let files = telediag_sample_data::write_demo_studies(&demo).unwrap();
    let ct = demo.join("ct_012.dcm").display().to_string();
    let us = demo.join("us_001.dcm").display().to_string();
    server.cli(&["import", "--site", "东山县医院", &ct, &us]);
    let Some(corpus) = pydicom_corpus() else { return };
    let sr = corpus.join("pydicom/test-SR.dcm").display().to_string();
    server.cli(&["import", "--site", "东山县医院", &sr]);
    server.start();
    let port = server.http_port;
    let admin = login(port, "admin", ADMIN_PASSWORD);
    assert!(files.len() > 2);

    let sop = telediag_sample_data::demo_uid("demo-ct-11");
    let (status, head, body) = wait_for_image(port, &admin, &format!("/api/instances/{sop}/thumbnail"));
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("content-type: image/jpeg"), "{head}");
    let thumb = image::load_from_memory(&body).unwrap().to_luma8();
    assert_eq!(thumb.dimensions(), (256, 256));
    let lung = thumb.get_pixel(50, 125)[0];
    let spine = thumb.get_pixel(128, 197)[0];
    assert!(lung < 30 && spine > 220, "not the windowed CT: lung {lung}, spine {spine}");

    // Revalidation answers 304 without the body.
    let etag = head.lines().find_map(|l| l.strip_prefix("etag: ")).unwrap().trim().to_owned();
    let (status, _, body) = http_raw(port, &format!("/api/instances/{sop}/thumbnail"), &admin, Some(&format!("If-None-Match: {etag}")));
    assert_eq!((status, body.len()), (304, 0));

    // The preview keeps full resolution (a PNG for a small image).
    let (status, head, body) = wait_for_image(port, &admin, &format!("/api/instances/{sop}/preview"));
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("content-type: image/png"));
    assert_eq!(image::load_from_memory(&body).unwrap().width(), 256);

    // The colour clip: a colour thumbnail of its first frame.
    let us_sop = telediag_sample_data::demo_uid("demo-us-1");
    let (status, _, body) = wait_for_image(port, &admin, &format!("/api/instances/{us_sop}/thumbnail"));
    assert_eq!(status, 200);
    let us_thumb = image::load_from_memory(&body).unwrap();
    assert_eq!((us_thumb.width(), us_thumb.height()), (256, 192));

    // An SR has no pixels: the reason, not an error page.
    let sr_sop = telediag_archive::part10::read_header(std::fs::File::open(&sr).unwrap()).unwrap().0.sop_instance_uid;
    let (status, _, body) = wait_for_image(port, &admin, &format!("/api/instances/{sr_sop}/thumbnail"));
    assert_eq!(status, 422);
    let reason: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(reason["error"].as_str().unwrap().starts_with("undecodable: not an image"), "{reason}");

    // The study says when it is ready, and which instances cannot be shown.
    let ct_study = telediag_sample_data::demo_uid("demo-ct-study");
    let (status, body) = http(port, "GET", &format!("/api/studies/{ct_study}"), Some(&admin), None);
    assert_eq!(status, 200, "{body}");
    let study: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(study["rendering"]["ready"], true, "{}", study["rendering"]);
    assert_eq!(study["rendering"]["thumbnails"], 1);
    let sr_path = std::path::Path::new(&sr);
    let (sr_meta, sr_offset) = telediag_archive::part10::read_header(std::fs::File::open(sr_path).unwrap()).unwrap();
    let sr_len = std::fs::metadata(sr_path).unwrap().len() - sr_offset;
    let sr_study = telediag_archive::scan::scan_file(sr_path, &sr_meta.transfer_syntax_uid, sr_offset, sr_len)
        .unwrap()
        .text(dicom_core::Tag(0x0020, 0x000D))
        .unwrap();
    let (_, body) = http(port, "GET", &format!("/api/studies/{sr_study}"), Some(&admin), None);
    let study: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(study["rendering"]["ready"], true, "{}", study["rendering"]);
    assert_eq!(study["rendering"]["undecodable"][0]["sop_instance_uid"], sr_sop.as_str(), "{}", study["rendering"]);

    // A series is shown by its middle instance.
    let series = telediag_sample_data::demo_uid("demo-ct-series");
    let (status, head, body) = http_raw(port, &format!("/api/series/{series}/thumbnail"), &admin, None);
    assert_eq!(status, 200, "{head}");
    assert_eq!(image::load_from_memory(&body).unwrap().width(), 256);

    // Another site's staff cannot see it; unknown instances are 404 too.
    let body = r#"{"username":"xihe","display_name":"x","password":"password-xihe","roles":["site_user"],"site":"西河县医院"}"#;
    assert_eq!(http(port, "POST", "/api/users", Some(&admin), Some(body)).0, 201);
    let xihe = login(port, "xihe", "password-xihe");
    assert_eq!(http_raw(port, &format!("/api/instances/{sop}/thumbnail"), &xihe, None).0, 404);
    assert_eq!(http_raw(port, &format!("/api/series/{series}/thumbnail"), &xihe, None).0, 404);
    assert_eq!(http_raw(port, "/api/instances/1.2.3.4/thumbnail", &admin, None).0, 404);
    assert_eq!(http_raw(port, &format!("/api/instances/{sop}/thumbnail"), "forged", None).0, 401);
    server.stop();
}
