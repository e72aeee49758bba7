//! Shared harness for the cross-process tests: start the real `telediag`
//! binary on free ports with a fresh data directory, find the real tools
//! (DCMTK), and read what the server stored.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const ADMIN_PASSWORD: &str = "test-admin-password";
pub const AE: &str = "TELEDIAG";

/// Where a test server keeps its index and objects. The suite runs twice in
/// CI (`.ci/run`): on the embedded defaults, and with
/// `TELEDIAG_TEST_POSTGRES` (a PostgreSQL server's URL, without a database)
/// and `TELEDIAG_TEST_S3` (an S3-compatible endpoint) set, where every
/// server gets a database and a bucket of its own on those servers.
#[derive(Debug, Clone)]
pub enum Backends {
    /// SQLite and `data/objects`.
    Embedded,
    Shared {
        database_url: String,
        endpoint: String,
        bucket: String,
    },
}

impl Backends {
    fn for_new_server() -> Backends {
        let (Ok(postgres), Ok(endpoint)) = (std::env::var("TELEDIAG_TEST_POSTGRES"), std::env::var("TELEDIAG_TEST_S3")) else {
            return Backends::Embedded;
        };
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!("t{}x{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let created = Command::new("psql")
            .arg(format!("{}/postgres", postgres.trim_end_matches('/')))
            .args(["-q", "-c", &format!("CREATE DATABASE {name}")])
            .output()
            .expect("psql runs");
        assert!(created.status.success(), "CREATE DATABASE {name}: {}", String::from_utf8_lossy(&created.stderr));
        telediag_test_servers::s3::create_bucket(&endpoint, &name);
        Backends::Shared { database_url: format!("{}/{name}", postgres.trim_end_matches('/')), endpoint, bucket: name }
    }

    /// The environment that points `telediag` at these backends.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Backends::Embedded => Vec::new(),
            Backends::Shared { database_url, endpoint, bucket } => vec![
                ("TELEDIAG_DATABASE_URL", database_url.clone()),
                ("TELEDIAG_S3_BUCKET", bucket.clone()),
                ("TELEDIAG_S3_ENDPOINT", endpoint.clone()),
                ("TELEDIAG_S3_REGION", "us-east-1".into()),
                ("AWS_ACCESS_KEY_ID", "telediag-test".into()),
                ("AWS_SECRET_ACCESS_KEY", "telediag-test".into()),
            ],
        }
    }

    pub fn embedded(&self) -> bool {
        matches!(self, Backends::Embedded)
    }
}

/// Whether this run's servers use the embedded backends; a test that
/// inspects SQLite's file or the local object directory itself returns
/// early (with a message) otherwise.
pub fn embedded_backends_only(what: &str) -> bool {
    let embedded = std::env::var_os("TELEDIAG_TEST_POSTGRES").is_none() || std::env::var_os("TELEDIAG_TEST_S3").is_none();
    if !embedded {
        eprintln!("SKIP on PostgreSQL + S3: {what}");
    }
    embedded
}

/// Returns whether `tool` is on PATH. When it is not: fails under CI (where
/// `.ci/run` installs it), skips with a message on a developer machine.
pub fn require_tool(tool: &str) -> bool {
    let found = Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var_os("CI").is_some() {
            panic!("{tool} is not installed; .ci/run must install it");
        }
        eprintln!("SKIP: {tool} not installed (apt-get install dcmtk)");
    }
    found
}

/// Whether every check holds (`(present, what to install)`). When some do
/// not: fails under CI (where `.ci/run` provides them all), skips with a
/// message naming what is missing on a developer machine.
pub fn require_all(checks: &[(bool, &str)]) -> bool {
    let missing: Vec<&str> = checks.iter().filter(|(present, _)| !present).map(|(_, what)| *what).collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("missing {}; .ci/run must provide it", missing.join(", "));
    }
    eprintln!("SKIP: missing {}", missing.join(", "));
    false
}

/// The pydicom + pydicom-data test files, fetched by sample-data/fetch-pydicom.sh.
pub fn pydicom_corpus() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-data/pydicom");
    if dir.join(".complete").exists() {
        return Some(dir);
    }
    if std::env::var_os("CI").is_some() {
        panic!("pydicom corpus missing: .ci/run must run sample-data/fetch-pydicom.sh");
    }
    eprintln!("SKIP: pydicom corpus missing; run sample-data/fetch-pydicom.sh");
    None
}

/// A port for a server a test starts. Taken below Linux's ephemeral range
/// (32768–60999): a port the kernel handed out for `bind(0)` may be handed
/// again to any outgoing connection (a storescu, a readiness probe) before
/// the server binds it, which made tests fail with "address in use". Each
/// port is given out once per test process.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = 20_000 + (std::process::id() * 613) % 12_000;
    loop {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (20_000 + (base - 20_000 + offset) % 12_000) as u16;
        if TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
}

pub fn telediag() -> Command {
    Command::new(env!("CARGO_BIN_EXE_telediag"))
}

/// A running (or stopped) Telediag server with its own data directory.
pub struct Server {
    pub dir: tempfile::TempDir,
    pub dicom_port: u16,
    pub http_port: u16,
    pub backends: Backends,
    child: Option<Child>,
}

impl Server {
    /// A server with no sites yet; add them with [`Server::add_site`] before [`Server::start`].
    pub fn new() -> Server {
        Server {
            dir: tempfile::tempdir().unwrap(),
            dicom_port: free_port(),
            http_port: free_port(),
            backends: Backends::for_new_server(),
            child: None,
        }
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs a `telediag` subcommand against this data directory.
    pub fn cli(&self, args: &[&str]) -> Output {
        let out = self.command().args(args).output().unwrap();
        assert!(out.status.success(), "telediag {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        out
    }

    /// `telediag --data <data>` on this server's backends, for any subcommand.
    pub fn command(&self) -> Command {
        let mut command = telediag();
        command.arg("--data").arg(self.data()).env("TELEDIAG_ADMIN_PASSWORD", ADMIN_PASSWORD).envs(self.backends.env());
        command
    }

    pub fn add_site(&self, name: &str, ae: &str, networks: &[&str]) {
        let mut args = vec!["site", "add", name, "--ae", ae];
        for n in networks {
            args.extend(["--network", n]);
        }
        self.cli(&args);
    }

    pub fn start(&mut self) {
        self.start_with(&[]);
    }

    pub fn start_with(&mut self, env: &[(&str, &str)]) {
        self.launch(false, env);
    }

    /// Starts as `serve` does on a fresh machine: the demo hospital, its
    /// users (passwords from [`Server::demo_password`]) and studies.
    pub fn start_demo(&mut self, env: &[(&str, &str)]) {
        self.launch(true, env);
    }

    /// The password `serve` gave a demo user, from `demo-credentials.txt`.
    pub fn demo_password(&self, username: &str) -> String {
        let credentials = std::fs::read_to_string(self.data().join("demo-credentials.txt")).unwrap();
        let line = credentials.lines().find(|l| l.split_whitespace().next() == Some(username));
        line.and_then(|l| l.split_whitespace().nth(1)).unwrap_or_else(|| panic!("no {username} in {credentials}")).to_owned()
    }

    /// The signing enrolment code `serve` made for a demo doctor, from
    /// `demo-credentials.txt`.
    pub fn demo_enrolment_code(&self, username: &str) -> String {
        let credentials = std::fs::read_to_string(self.data().join("demo-credentials.txt")).unwrap();
        let line = credentials.lines().find(|l| l.split_whitespace().next() == Some(username));
        let code = line.and_then(|l| l.split("signing enrolment code ").nth(1));
        code.map(|c| c.trim().to_owned()).unwrap_or_else(|| panic!("no enrolment code for {username} in {credentials}"))
    }

    fn launch(&mut self, demo: bool, env: &[(&str, &str)]) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::File::options().create(true).append(true).open(self.dir.path().join("server.log")).unwrap();
        let mut command = self.command();
        command
            .args(["serve", "--dicom-port", &self.dicom_port.to_string(), "--http-port", &self.http_port.to_string()])
            .args(if demo { None } else { Some("--no-demo") })
            .env("RUST_LOG", "info,sqlx=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (k, v) in env {
            command.env(k, v);
        }
        self.child = Some(command.spawn().unwrap());
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.dicom_port)).is_ok() && TcpStream::connect(("127.0.0.1", self.http_port)).is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("server exited with {status} during start:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not open its ports:\n{}", self.log());
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGTERM and wait: the graceful path.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe_kill(child.id(), "TERM");
            let deadline = Instant::now() + Duration::from_secs(40);
            while Instant::now() < deadline {
                if child.try_wait().unwrap().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            panic!("server ignored SIGTERM for 40 s");
        }
    }

    /// SIGKILL: the crash path.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Waits (up to 5 s) for a log line containing every one of `parts`:
    /// the server logs after it answers, so a line may trail the reply.
    pub fn wait_for_log(&self, parts: &[&str]) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if self.log().lines().any(|l| parts.iter().all(|p| l.contains(p))) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Opens the index database (for checks; the server may be running).
    pub async fn database(&self) -> telediag_archive::Database {
        let url = match &self.backends {
            Backends::Embedded => format!("sqlite://{}", self.data().join("index.db").display()),
            Backends::Shared { database_url, .. } => database_url.clone(),
        };
        telediag_archive::Database::open(&url, telediag_archive::Durability::Normal).await.unwrap()
    }

    /// Where the stored objects are, as files: `data/objects`, or a fresh
    /// copy of the bucket (made with boto3, a client independent of the one
    /// under test).
    pub fn objects_dir(&self) -> PathBuf {
        match &self.backends {
            Backends::Embedded => self.data().join("objects"),
            Backends::Shared { endpoint, bucket, .. } => {
                let copy = self.dir.path().join("bucket-copy");
                let _ = std::fs::remove_dir_all(&copy);
                std::fs::create_dir_all(&copy).unwrap();
                telediag_test_servers::s3::download(endpoint, bucket, "", &copy);
                copy
            }
        }
    }

    /// The bytes of a stored object. From a bucket, the copy made last is
    /// read when it has the key (an original's key is never written twice).
    pub fn object(&self, key: &str) -> Vec<u8> {
        let copied = self.dir.path().join("bucket-copy").join(key);
        if !self.backends.embedded() && copied.exists() {
            return std::fs::read(copied).unwrap();
        }
        std::fs::read(self.objects_dir().join(key)).unwrap()
    }

    /// Files left in staging directories (partial or unindexed objects).
    /// Empty files are not among them: those are made ahead for senders and
    /// never used (an object's file holds its Part 10 header from the start).
    pub fn staged_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if let Ok(dirs) = std::fs::read_dir(self.data().join("staging")) {
            for dir in dirs.flatten() {
                if let Ok(files) = std::fs::read_dir(dir.path()) {
                    out.extend(
                        files
                            .flatten()
                            .map(|f| f.path())
                            .filter(|p| p.file_name().is_some_and(|n| n != "lock") && std::fs::metadata(p).is_ok_and(|m| m.len() > 0)),
                    );
                }
            }
        }
        out
    }

    /// Empty staging files, made ahead for a site's next objects.
    pub fn staging_files_made_ahead(&self) -> usize {
        let Ok(dirs) = std::fs::read_dir(self.data().join("staging")) else { return 0 };
        let files = dirs.flatten().filter_map(|dir| std::fs::read_dir(dir.path()).ok()).flat_map(|files| files.flatten());
        files.filter(|f| f.path().extension().is_some_and(|e| e == "part") && f.metadata().is_ok_and(|m| m.len() == 0)).count()
    }

    /// Every original object file (under objects/originals).
    pub fn original_files(&self) -> Vec<PathBuf> {
        let objects = self.objects_dir();
        let mut out = Vec::new();
        walk(&objects.join("originals"), &mut out);
        out
    }

    /// Every file under objects/.
    pub fn object_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk(&self.objects_dir(), &mut out);
        out
    }
}

/// Every file under `dir`.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() { walk(&p, out) } else { out.push(p) }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // moto keeps objects in memory: a server's bucket goes with it.
        if let Backends::Shared { endpoint, bucket, .. } = &self.backends {
            telediag_test_servers::s3::delete_bucket(endpoint, bucket);
        }
    }
}

pub fn unsafe_kill(pid: u32, signal: &str) {
    let _ = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status();
}

/// A Part 10 file of the corpus, as the sender has it.
#[derive(Debug, Clone)]
pub struct CorpusFile {
    pub path: PathBuf,
    pub meta: telediag_archive::FileMeta,
    pub dataset_offset: usize,
    /// SOP Instance UID in the dataset: what storescu sends, which a few test
    /// files disagree on with their meta group.
    pub sop_instance_uid: String,
}

impl CorpusFile {
    pub fn dataset(&self) -> Vec<u8> {
        std::fs::read(&self.path).unwrap()[self.dataset_offset..].to_vec()
    }
}

/// Every file under `dir` that has a Part 10 header.
pub fn part10_files(dir: &Path) -> Vec<CorpusFile> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok((meta, offset)) = telediag_archive::part10::read_header(std::fs::File::open(&p).unwrap()) {
                let dataset_len = std::fs::metadata(&p).unwrap().len() - offset;
                let sop_instance_uid = telediag_archive::scan::scan_file(&p, &meta.transfer_syntax_uid, offset, dataset_len)
                    .ok()
                    .and_then(|found| found.text(dicom_core::Tag(0x0008, 0x0018)))
                    .unwrap_or_else(|| meta.sop_instance_uid.clone());
                files.push(CorpusFile { path: p, meta, dataset_offset: offset as usize, sop_instance_uid });
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files
}

/// A DCMTK storescu configuration whose one profile proposes, for each
/// (SOP class, transfer syntax) in `files`, a context with exactly that
/// transfer syntax, so every object travels as it is stored: no conversion.
pub fn storescu_profile(files: &[CorpusFile], path: &Path) {
    let mut pairs: Vec<(String, String)> =
        files.iter().map(|f| (f.meta.sop_class_uid.clone(), f.meta.transfer_syntax_uid.clone())).collect();
    pairs.sort();
    pairs.dedup();
    assert!(pairs.len() <= 128, "{} presentation contexts do not fit one association", pairs.len());
    let mut syntaxes: Vec<&String> = pairs.iter().map(|(_, ts)| ts).collect();
    syntaxes.sort();
    syntaxes.dedup();
    let mut cfg = String::from("[[TransferSyntaxes]]\n");
    for (i, ts) in syntaxes.iter().enumerate() {
        cfg.push_str(&format!("[TS{i}]\nTransferSyntax1 = {ts}\n"));
    }
    cfg.push_str("\n[[PresentationContexts]]\n[Corpus]\n");
    for (i, (class, ts)) in pairs.iter().enumerate() {
        let index = syntaxes.iter().position(|s| *s == ts).unwrap();
        cfg.push_str(&format!("PresentationContext{} = {class}\\TS{index}\n", i + 1));
    }
    cfg.push_str("\n[[Profiles]]\n[Corpus]\nPresentationContexts = Corpus\n");
    std::fs::write(path, cfg).unwrap();
}

/// Runs storescu for `files` as `calling_ae`; returns its verbose log.
pub fn storescu(port: u16, calling_ae: &str, files: &[CorpusFile], profile: &Path) -> String {
    storescu_to(port, AE, calling_ae, files, profile)
}

/// Runs storescu against any called AE.
pub fn storescu_to(port: u16, called_ae: &str, calling_ae: &str, files: &[CorpusFile], profile: &Path) -> String {
    let mut command = Command::new("storescu");
    command
        .args(["-v", "-nh", "-aet", calling_ae, "-aec", called_ae, "-xf"])
        .arg(profile)
        .arg("Corpus")
        .args(["127.0.0.1", &port.to_string()])
        .args(files.iter().map(|f| &f.path))
        .env("TCP_NODELAY", "1");
    let out = command.output().unwrap();
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Files storescu reports as sent successfully, in order.
pub fn acknowledged(log: &str) -> Vec<PathBuf> {
    let mut sent = Vec::new();
    let mut current: Option<PathBuf> = None;
    for line in log.lines() {
        if let Some(file) = line.strip_prefix("I: Sending file: ") {
            current = Some(PathBuf::from(file.trim()));
        } else if line.contains("Received Store Response (Success)")
            && let Some(file) = current.take()
        {
            sent.push(file);
        }
    }
    sent
}

/// A bodyless request over raw HTTP/1.1 with `headers` (whole lines, each
/// ending in CRLF) as given: status and lower-cased head. For what the
/// JSON helpers cannot send: preflights, cookies, CSRF headers.
pub fn http_head(port: u16, method: &str, path: &str, headers: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).unwrap();
    let reply = String::from_utf8_lossy(&reply).to_string();
    let status = reply.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, reply.split("\r\n\r\n").next().unwrap().to_lowercase())
}

/// A raw HTTP/1.1 GET: status, lower-cased head, body bytes (a chunked
/// body decoded).
pub fn http_raw(port: u16, path: &str, token: &str, extra_header: Option<&str>) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let extra = extra_header.map(|h| format!("{h}\r\n")).unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n{extra}\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = &response[split + 4..];
    let body = if head.contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_vec() };
    (status, head, body)
}

/// A minimal HTTP/1.1 client for the API tests (no client library needed
/// for a handful of JSON requests to localhost).
pub fn http(port: u16, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() {
        request.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (head, payload) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let payload = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        String::from_utf8_lossy(&dechunk(payload.as_bytes())).into_owned()
    } else {
        payload.to_owned()
    };
    (status, payload)
}

/// A chunked body's bytes.
fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
        let Some(size) = std::str::from_utf8(&rest[..end]).ok().and_then(|s| usize::from_str_radix(s.trim(), 16).ok()) else { break };
        if size == 0 || rest.len() < end + 2 + size {
            break;
        }
        out.extend_from_slice(&rest[end + 2..end + 2 + size]);
        rest = &rest[(end + 4 + size).min(rest.len())..];
    }
    out
}

/// POSTs `body` with `content_type`; returns status and body text.
pub fn post_bytes(port: u16, path: &str, token: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    send_bytes(port, "POST", path, token, &[("Content-Type", content_type)], body)
}

/// Sends `body` with `headers` (a PKCS#12 file and its passwords, say);
/// returns status and body text.
pub fn send_bytes(port: u16, method: &str, path: &str, token: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let extra: String = headers.iter().map(|(name, value)| format!("{name}: {value}\r\n")).collect();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n{extra}Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
}

pub fn login(port: u16, username: &str, password: &str) -> String {
    let (status, body) = http(port, "POST", "/api/login", None, Some(&format!(r#"{{"username":"{username}","password":"{password}"}}"#)));
    assert_eq!(status, 200, "login as {username}: {body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    json["token"].as_str().unwrap().to_owned()
}

/// DCMTK's storescp in bit-preserving mode: the reference for what a sender
/// really put on the wire (storescu re-encodes datasets, dropping group
/// lengths and fixing padding, so the file on disk is not what is sent).
pub struct ReferenceReceiver {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

impl ReferenceReceiver {
    pub fn start(ae: &str) -> ReferenceReceiver {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Command::new("storescp")
            .args(["+B", "+uf", "+xa", "-aet", ae, "-od"])
            .arg(dir.path())
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "storescp did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        ReferenceReceiver { dir, port, child }
    }

    /// The datasets received, by SOP Instance UID.
    pub fn datasets(&self) -> std::collections::HashMap<String, Vec<Vec<u8>>> {
        let mut out: std::collections::HashMap<String, Vec<Vec<u8>>> = std::collections::HashMap::new();
        for entry in std::fs::read_dir(self.dir.path()).unwrap().flatten() {
            let bytes = std::fs::read(entry.path()).unwrap();
            if let Ok((meta, offset)) = telediag_archive::part10::read_header(&bytes[..]) {
                out.entry(meta.sop_instance_uid).or_default().push(bytes[offset as usize..].to_vec());
            }
        }
        out
    }
}

impl Drop for ReferenceReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Appends one explicit VR little endian element, padded to even length.
pub fn explicit_element(out: &mut Vec<u8>, group: u16, elem: u16, vr: &[u8; 2], value: &[u8]) {
    let mut value = value.to_vec();
    if value.len() % 2 == 1 {
        value.push(if vr == b"UI" { 0 } else { b' ' });
    }
    out.extend(group.to_le_bytes());
    out.extend(elem.to_le_bytes());
    out.extend(vr);
    if vr == b"OW" || vr == b"OB" {
        out.extend([0, 0]);
        out.extend((value.len() as u32).to_le_bytes());
    } else {
        out.extend((value.len() as u16).to_le_bytes());
    }
    out.extend(value);
}

/// A small CT dataset (explicit VR little endian, GB18030 name 张三).
pub fn ct_dataset(sop_instance: &str, study: &str) -> Vec<u8> {
    let element = explicit_element;
    let mut ds = Vec::new();
    element(&mut ds, 0x0008, 0x0005, b"CS", b"GB18030");
    element(&mut ds, 0x0008, 0x0016, b"UI", "1.2.840.10008.5.1.4.1.1.2".as_bytes());
    element(&mut ds, 0x0008, 0x0018, b"UI", sop_instance.as_bytes());
    element(&mut ds, 0x0008, 0x0060, b"CS", b"CT");
    element(&mut ds, 0x0010, 0x0010, b"PN", &[0xd5, 0xc5, 0xc8, 0xfd]);
    element(&mut ds, 0x0010, 0x0020, b"LO", b"P123");
    element(&mut ds, 0x0020, 0x000D, b"UI", study.as_bytes());
    element(&mut ds, 0x0020, 0x000E, b"UI", format!("{study}.1").as_bytes());
    element(&mut ds, 0x7FE0, 0x0010, b"OW", &[0x55; 4096]);
    ds
}

/// [`ct_dataset`] as a Part 10 file at `path`, for storescu.
pub fn ct_part10_file(path: &Path, sop_instance: &str, study: &str) -> PathBuf {
    write_ct_part10(path, sop_instance, &ct_dataset(sop_instance, study))
}

/// A CT Image Storage `dataset` (explicit VR little endian) written as a
/// Part 10 file at `path`.
pub fn write_ct_part10(path: &Path, sop_instance: &str, dataset: &[u8]) -> PathBuf {
    let meta = telediag_archive::FileMeta {
        sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
        sop_instance_uid: sop_instance.into(),
        transfer_syntax_uid: "1.2.840.10008.1.2.1".into(),
        source_ae_title: None,
    };
    let mut bytes = telediag_archive::part10::encode_header(&meta);
    bytes.extend(dataset);
    std::fs::write(path, bytes).unwrap();
    path.to_owned()
}
