//! The HTTP API as each kind of user sees it: nothing without a login, and a
//! county hospital's staff see their own hospital's studies only.

mod common;

use std::time::Duration;

use common::*;

/// Every route that needs a login, with a method and a body that would be
/// valid if the caller were allowed.
const PROTECTED: &[(&str, &str, Option<&str>)] = &[
    ("GET", "/api/me", None),
    ("POST", "/api/logout", None),
    ("GET", "/api/studies", None),
    ("GET", "/api/studies/1.2.3", None),
    ("GET", "/api/sites", None),
    ("POST", "/api/sites", Some(r#"{"name":"X","ae_titles":["XAE"]}"#)),
    ("DELETE", "/api/sites/X", None),
    ("POST", "/api/users", Some(r#"{"username":"x","display_name":"x","password":"12345678","roles":["radiologist"]}"#)),
];

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[test]
fn every_route_but_health_and_login_requires_authentication() {
    let mut server = Server::new();
    server.start();
    let (status, body) = http(server.http_port, "GET", "/api/health", None, None);
    assert_eq!((status, json(&body)["status"].as_str()), (200, Some("ok")));

    for (method, path, body) in PROTECTED {
        let (status, reply) = http(server.http_port, method, path, None, *body);
        assert_eq!(status, 401, "{method} {path} without a token: {reply}");
        assert!(json(&reply)["error"].as_str().is_some_and(|e| !e.is_empty()), "{method} {path}: no JSON reason");
        let (status, _) = http(server.http_port, method, path, Some("forged-token"), *body);
        assert_eq!(status, 401, "{method} {path} with a forged token");
    }
    let (status, reply) = http(server.http_port, "POST", "/api/login", None, Some(r#"{"username":"admin","password":"wrong"}"#));
    assert_eq!(status, 401, "{reply}");
    assert_eq!(json(&reply)["error"], "wrong username or password");
    // axum's own rejections leave as JSON too.
    let (status, reply) = http(server.http_port, "POST", "/api/login", None, Some("{not json"));
    assert_eq!(status, 400);
    assert!(json(&reply)["error"].as_str().is_some_and(|e| !e.is_empty()), "{reply}");
    let big = format!(r#"{{"username":"admin","password":"{}"}}"#, "x".repeat(2 * 1024 * 1024));
    let (status, reply) = http(server.http_port, "POST", "/api/login", None, Some(&big));
    assert_eq!(status, 413, "a body over 1 MiB: {reply}");
    assert!(json(&reply)["error"].as_str().is_some_and(|e| e.contains("length limit")), "{reply}");
    let (status, reply) = http(server.http_port, "DELETE", "/api/login", None, None);
    assert_eq!(status, 405);
    assert!(json(&reply)["error"].is_string(), "{reply}");

    // The default public_url (localhost:8080) is not where this server
    // listens: said at start and on the admin's dashboard.
    assert!(server.wait_for_log(&["public_url http://localhost:8080 names port 8080"]), "{}", server.log());
    let admin = login(server.http_port, "admin", ADMIN_PASSWORD);
    let (_, board) = http(server.http_port, "GET", "/api/dashboard", Some(&admin), None);
    assert!(json(&board)["notices"][0].as_str().is_some_and(|n| n.contains("QR code")), "{board}");

    // A logged-out token stops working.
    let token = login(server.http_port, "admin", ADMIN_PASSWORD);
    assert_eq!(http(server.http_port, "GET", "/api/me", Some(&token), None).0, 200);
    assert_eq!(http(server.http_port, "POST", "/api/logout", Some(&token), None).0, 204);
    assert_eq!(http(server.http_port, "GET", "/api/me", Some(&token), None).0, 401);
    server.stop();
}

#[test]
fn a_site_user_sees_only_their_site() {
    let mut server = Server::new();
    server.add_site("东山县医院", "DONGSHAN", &[]);
    server.add_site("西河县医院", "XIHE", &[]);
    let demo = server.dir.path().join("demo");
    telediag_sample_data::write_demo_studies(&demo).unwrap();
    // The CT goes to 东山, the CR and US to 西河.
    let ct: Vec<String> = std::fs::read_dir(&demo)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains("ct_"))
        .map(|p| p.display().to_string())
        .collect();
    let mut args = vec!["import", "--site", "东山县医院"];
    args.extend(ct.iter().map(String::as_str));
    server.cli(&args);
    let cr = demo.join("cr_001.dcm").display().to_string();
    let us = demo.join("us_001.dcm").display().to_string();
    server.cli(&["import", "--site", "西河县医院", &cr, &us]);
    server.start();
    let port = server.http_port;

    let admin = login(port, "admin", ADMIN_PASSWORD);
    for (username, site, roles) in [
        ("dongshan_tech", Some("东山县医院"), r#"["site_user"]"#),
        ("xihe_doctor", Some("西河县医院"), r#"["site_user"]"#),
        ("reader", None, r#"["radiologist"]"#),
    ] {
        let site = site.map(|s| format!(r#","site":"{s}""#)).unwrap_or_default();
        let body =
            format!(r#"{{"username":"{username}","display_name":"{username}","password":"password-{username}","roles":{roles}{site}}}"#);
        let (status, reply) = http(port, "POST", "/api/users", Some(&admin), Some(&body));
        assert_eq!(status, 201, "{reply}");
    }
    let dongshan = login(port, "dongshan_tech", "password-dongshan_tech");
    let xihe = login(port, "xihe_doctor", "password-xihe_doctor");
    let reader = login(port, "reader", "password-reader");

    let list = |token: &str| {
        let (status, body) = http(port, "GET", "/api/studies", Some(token), None);
        assert_eq!(status, 200, "{body}");
        json(&body)
    };
    let all = list(&reader);
    assert_eq!(all["total"], 3, "a centre reader sees every site: {all}");
    let mine = list(&dongshan);
    assert_eq!(mine["total"], 1, "{mine}");
    assert_eq!(mine["studies"][0]["site"], "东山县医院");
    assert_eq!(mine["studies"][0]["patient_name"], "Zhang^Wei=张^伟");
    assert_eq!(mine["studies"][0]["num_instances"], 24);
    let theirs = list(&xihe);
    assert_eq!(theirs["total"], 2, "{theirs}");

    // Asking for the other site's study by UID: not found, not forbidden (no leak).
    let xihe_study = theirs["studies"][0]["study_uid"].as_str().unwrap().to_owned();
    let (status, body) = http(port, "GET", &format!("/api/studies/{xihe_study}"), Some(&dongshan), None);
    assert_eq!(status, 404, "{body}");
    let (status, body) = http(port, "GET", &format!("/api/studies/{xihe_study}"), Some(&xihe), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["series"][0]["instances"].as_array().unwrap().len(), 1);
    // Filters cannot widen the scope.
    let (_, body) = http(port, "GET", "/api/studies?site=%E8%A5%BF%E6%B2%B3%E5%8E%BF%E5%8C%BB%E9%99%A2", Some(&dongshan), None);
    assert_eq!(json(&body)["total"], 0, "a site filter must not reach another site: {body}");

    // Sites: a site user sees only their own; only admins manage them.
    let (_, body) = http(port, "GET", "/api/sites", Some(&dongshan), None);
    let sites = json(&body);
    assert_eq!(sites.as_array().unwrap().len(), 1);
    assert_eq!(sites[0]["name"], "东山县医院");
    let (status, _) = http(port, "POST", "/api/sites", Some(&dongshan), Some(r#"{"name":"Evil","ae_titles":["EVIL"]}"#));
    assert_eq!(status, 403);
    let (status, _) = http(
        port,
        "POST",
        "/api/users",
        Some(&reader),
        Some(r#"{"username":"y","display_name":"y","password":"12345678","roles":["admin"]}"#),
    );
    assert_eq!(status, 403);
    let (status, body) = http(
        port,
        "POST",
        "/api/sites",
        Some(&admin),
        Some(r#"{"name":"南岭乡卫生院","ae_titles":["NANLING"],"networks":["10.20.0.0/16"]}"#),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = http(port, "POST", "/api/sites", Some(&admin), Some(r#"{"name":"重复","ae_titles":["NANLING"]}"#));
    assert_eq!(status, 409, "an AE title belongs to one site: {body}");
    let (status, body) = http(port, "DELETE", "/api/sites/东山县医院", Some(&admin), None);
    assert_eq!(status, 409, "a site with studies is kept: {body}");

    // Patient names never reach the log.
    let log = server.log();
    for name in ["张", "李", "王", "Zhang^Wei"] {
        assert!(!log.contains(name), "patient name fragment {name:?} found in the log");
    }
    server.stop();
}

/// Guessing passwords: an account locks after five failures in a row (even
/// the right password is refused then, with 429 and a reason), an admin
/// lifts the lock, and an address that fails twenty times waits.
#[test]
fn failed_logins_lock_the_account_and_then_the_address() {
    let mut server = Server::new();
    server.start();
    let port = server.http_port;
    let admin = login(port, "admin", ADMIN_PASSWORD);
    let body = r#"{"username":"guessed","display_name":"王医生","password":"right-password","roles":["radiologist"]}"#;
    assert_eq!(http(port, "POST", "/api/users", Some(&admin), Some(body)).0, 201);
    let attempt =
        |password: &str| http(port, "POST", "/api/login", None, Some(&format!(r#"{{"username":"guessed","password":"{password}"}}"#)));

    for _ in 0..5 {
        assert_eq!(attempt("wrong").0, 401);
    }
    let (status, reply) = attempt("right-password");
    assert_eq!(status, 429, "locked after five failures, whatever the password: {reply}");
    let reason = json(&reply)["error"].as_str().unwrap().to_owned();
    assert!(reason.contains("locked for 15 minutes after 5 failed logins") && reason.contains("administrator"), "{reason}");
    let raw = {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let body = r#"{"username":"guessed","password":"x"}"#;
        write!(stream, "POST /api/login HTTP/1.1\r\nHost: l\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).unwrap();
        out.to_ascii_lowercase()
    };
    let retry_after: u64 = raw.lines().find_map(|l| l.strip_prefix("retry-after: ")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    assert!((880..=900).contains(&retry_after), "a Retry-After of about 900 s: {raw}");

    let (_, users) = http(port, "GET", "/api/users", Some(&admin), None);
    let users = json(&users);
    let guessed = users.as_array().unwrap().iter().find(|u| u["username"] == "guessed").unwrap();
    assert_eq!(guessed["login"]["failed_logins"], 5);
    let id = guessed["id"].as_i64().unwrap();
    assert_eq!(http(port, "PATCH", &format!("/api/users/{id}"), Some(&admin), Some(r#"{"unlock":true}"#)).0, 204);
    assert_eq!(attempt("right-password").0, 200, "the admin lifted the lock");

    // Twenty attempts failing from one address make it wait: the five
    // above, the two refused by the lock, and thirteen across unknown
    // accounts (the correct login is not counted).
    for n in 0..13 {
        let body = format!(r#"{{"username":"nobody{n}","password":"x"}}"#);
        assert_eq!(http(port, "POST", "/api/login", None, Some(&body)).0, 401, "failure {n}");
    }
    let (status, reply) = attempt("right-password");
    assert_eq!(status, 429, "{reply}");
    assert!(json(&reply)["error"].as_str().unwrap().contains("too many failed logins from your address"), "{reply}");
    assert!(server.wait_for_log(&["login refused: too many failed logins from this address"]));
    server.stop();
}

/// A name that is no account locks like an account after five failures,
/// with the same answer: the lock does not tell which accounts exist.
#[test]
fn a_lock_does_not_tell_which_accounts_exist() {
    let mut server = Server::new();
    server.start();
    let port = server.http_port;
    let admin = login(port, "admin", ADMIN_PASSWORD);
    let body = r#"{"username":"real","display_name":"真医生","password":"real-password","roles":["radiologist"]}"#;
    assert_eq!(http(port, "POST", "/api/users", Some(&admin), Some(body)).0, 201);
    let mut answers = Vec::new();
    for name in ["real", "imaginary"] {
        for _ in 0..5 {
            let (status, _) = http(port, "POST", "/api/login", None, Some(&format!(r#"{{"username":"{name}","password":"wrong"}}"#)));
            assert_eq!(status, 401);
        }
        let (status, reply) = http(port, "POST", "/api/login", None, Some(&format!(r#"{{"username":"{name}","password":"wrong"}}"#)));
        answers.push((status, json(&reply)["error"].as_str().unwrap().to_owned()));
    }
    assert_eq!(answers[0], answers[1], "an account and a name that is none answer alike");
    assert_eq!(answers[0].0, 429);
    server.stop();
}

/// The data directory holds patients' images and doctors' signing keys:
/// nothing in it is readable by other accounts on the machine.
#[test]
fn the_data_directory_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mut server = Server::new();
    server.add_site("东山县医院", "DONGSHAN", &[]);
    let demo = server.dir.path().join("demo");
    telediag_sample_data::write_demo_studies(&demo).unwrap();
    server.cli(&["import", "--site", "东山县医院", &demo.join("cr_001.dcm").display().to_string()]);
    server.start();
    server.stop();
    let mut checked = 0;
    let mut pending = vec![server.data()];
    while let Some(path) = pending.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let mode = meta.permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} is {mode:o}", path.display());
        if meta.is_dir() {
            pending.extend(std::fs::read_dir(&path).unwrap().flatten().map(|e| e.path()));
        }
        checked += 1;
    }
    // On PostgreSQL + S3 the index and the object are elsewhere: the CA
    // key and staging remain.
    let expected = if server.backends.embedded() { 10 } else { 5 };
    assert!(checked > expected, "index, CA key and the object were checked ({checked} paths)");
    assert!(server.data().join("ca").exists());
    assert!(!server.backends.embedded() || server.data().join("index.db").exists());
}

/// Uploads are read whole (a reader needs the whole file); once answered,
/// their memory goes back to the system instead of staying with the
/// allocator: four 60 MB uploads leave the server near where it started.
#[test]
fn large_uploads_hand_their_memory_back() {
    let mut server = Server::new();
    server.add_site("东山县医院", "DONGSHAN", &[]);
    server.start();
    let admin = login(server.http_port, "admin", ADMIN_PASSWORD);
    let rss_kib = |field: &str| -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
        status.lines().find_map(|l| l.strip_prefix(field)).unwrap().trim().trim_end_matches("kB").trim().parse().unwrap()
    };
    let before = rss_kib("VmRSS:");
    let body = vec![0u8; 60 * 1024 * 1024];
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                let (status, reply) = post_bytes(
                    server.http_port,
                    "/api/ecg?site=%E4%B8%9C%E5%B1%B1%E5%8E%BF%E5%8C%BB%E9%99%A2",
                    &admin,
                    "application/octet-stream",
                    &body,
                );
                assert_eq!(status, 400, "{reply}");
            });
        }
    });
    let peak = rss_kib("VmHWM:");
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_kib("VmRSS:");
    assert!(peak > before + 100 * 1024, "the uploads were held in memory: {before} → peak {peak} KiB");
    assert!(after < before + 64 * 1024, "memory handed back: {before} KiB before, {after} KiB after (peak {peak} KiB)");
    server.stop();
}
