//! The centre beyond one process: gateways, workers and a web process as
//! separate `telediag` processes on one PostgreSQL and one S3-compatible
//! bucket (real servers from `telediag-test-servers`), DCMTK's storescu as
//! the hospitals, and the faults a centre meets: a gateway killed mid-push,
//! a worker killed mid-job, the database restarted, the bucket gone quiet.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use sqlx::Row;
use telediag_test_servers::{Postgres, S3Server};

/// One PostgreSQL database and one bucket, shared by every process.
struct Backends {
    postgres: Postgres,
    s3: S3Server,
    database_url: String,
    bucket: String,
    /// Where each process gets its data directory (staging, CA).
    root: tempfile::TempDir,
}

impl Backends {
    /// `None` (with a message) when PostgreSQL or moto is not installed;
    /// a failure instead in CI (`TELEDIAG_REQUIRE_SERVERS=1`).
    fn start(name: &str) -> Option<Backends> {
        let postgres = Postgres::start()?;
        let s3 = S3Server::start()?;
        let database_url = postgres.create_database(name);
        s3.create_bucket(name);
        Some(Backends { postgres, s3, database_url, bucket: name.to_owned(), root: tempfile::tempdir().unwrap() })
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("TELEDIAG_DATABASE_URL", self.database_url.clone()),
            ("TELEDIAG_S3_BUCKET", self.bucket.clone()),
            ("TELEDIAG_S3_ENDPOINT", self.s3.endpoint()),
            ("TELEDIAG_S3_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "telediag-test".into()),
            ("AWS_SECRET_ACCESS_KEY", "telediag-test".into()),
            ("TELEDIAG_ADMIN_PASSWORD", ADMIN_PASSWORD.into()),
            ("TELEDIAG_DEMO", "false".into()),
            ("TELEDIAG_STUDY_STABLE_SECS", "2".into()),
            // A killed worker's jobs are taken over within seconds here.
            ("TELEDIAG_JOB_LEASE_SECS", "5".into()),
            ("RUST_LOG", "info,sqlx=warn".into()),
        ]
    }

    /// Runs a `telediag` subcommand (site and user administration) against
    /// the shared database.
    fn cli(&self, args: &[&str]) -> String {
        let out = telediag().arg("--data").arg(self.root.path().join("admin")).args(args).envs(self.env()).output().unwrap();
        assert!(out.status.success(), "telediag {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    async fn database(&self) -> telediag_archive::Database {
        telediag_archive::Database::open(&self.database_url, telediag_archive::Durability::Normal).await.unwrap()
    }

    /// Starts `telediag <role>` with its own data directory `name`.
    fn run(&self, name: &str, role: Role) -> Node {
        let mut node = Node {
            name: name.to_owned(),
            data: self.root.path().join(name),
            log: self.root.path().join(format!("{name}.log")),
            role,
            port: free_port(),
            env: self.env(),
            child: None,
        };
        node.launch();
        node
    }

    fn originals(&self) -> Vec<String> {
        self.s3.keys(&self.bucket, "originals/")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Gateway,
    Worker,
    Web,
}

/// One `telediag` process.
struct Node {
    name: String,
    data: PathBuf,
    log: PathBuf,
    role: Role,
    /// DICOM port of a gateway, HTTP port of a web process.
    port: u16,
    env: Vec<(&'static str, String)>,
    child: Option<Child>,
}

impl Node {
    fn launch(&mut self) {
        let log = std::fs::File::options().create(true).append(true).open(&self.log).unwrap();
        let mut command = telediag();
        command.arg("--data").arg(&self.data);
        match self.role {
            Role::Gateway => command.args(["gateway", "--dicom-port", &self.port.to_string()]),
            Role::Worker => command.arg("worker"),
            Role::Web => command.args(["web", "--http-port", &self.port.to_string()]),
        };
        command.envs(self.env.iter().cloned()).stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log);
        self.child = Some(command.spawn().unwrap());
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let ready = match self.role {
                Role::Worker => self.log_text().contains("Telediag worker is running"),
                _ => std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok(),
            };
            if ready {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("{} exited with {status} during start:\n{}", self.name, self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{} did not start:\n{}", self.name, self.log_text());
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: the crash path.
    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `count` copies of a real CT slice (pydicom's CT_small.dcm) as one new
/// study and series with fresh UIDs, as `../shared/bench/gen_corpus.sh`
/// makes its studies (DCMTK's dcmodify).
fn clone_series(dir: &Path, root: &str, count: usize) -> Vec<CorpusFile> {
    let source = pydicom_corpus().expect("the pydicom corpus").join("pydicom/CT_small.dcm");
    std::fs::create_dir_all(dir).unwrap();
    for i in 1..=count {
        let file = dir.join(format!("IM{i:05}.dcm"));
        std::fs::copy(&source, &file).unwrap();
        let status = Command::new("dcmodify")
            .args(["-nb", "-q"])
            .args(["-m", &format!("(0020,000D)={root}.1"), "-m", &format!("(0020,000E)={root}.2")])
            .args(["-m", &format!("(0008,0018)={root}.3.{i}"), "-i", &format!("(0020,0013)={i}")])
            .arg(&file)
            .status()
            .unwrap();
        assert!(status.success(), "dcmodify failed on {}", file.display());
    }
    part10_files(dir)
}

/// A storescu run in the background, its verbose log in a file that can be
/// watched while it sends.
struct Push {
    child: Child,
    log: PathBuf,
}

impl Push {
    fn start(port: u16, calling_ae: &str, files: &[CorpusFile], profile: &Path, log: PathBuf) -> Push {
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new("storescu")
            .args(["-v", "-nh", "-aet", calling_ae, "-aec", AE, "-xf"])
            .arg(profile)
            .arg("Corpus")
            .args(["127.0.0.1", &port.to_string()])
            .args(files.iter().map(|f| &f.path))
            .env("TCP_NODELAY", "1")
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        Push { child, log }
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn acknowledged(&self) -> usize {
        acknowledged(&self.text()).len()
    }

    /// Waits until `count` objects are acknowledged.
    fn wait_for_acks(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.acknowledged() < count {
            assert!(Instant::now() < deadline, "only {} of {count} acknowledged:\n{}", self.acknowledged(), self.text());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for storescu to end; its log.
    fn finish(mut self) -> String {
        self.child.wait().unwrap();
        self.text()
    }
}

/// Polls `check` until it returns true (up to `limit`), then says `what`
/// it waited for when it never did.
async fn wait_until<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "waited {limit:?} for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn scalar(db: &telediag_archive::Database, sql: &str) -> i64 {
    sqlx::query(sql).fetch_one(db.pool()).await.unwrap().get::<i64, _>(0)
}

/// What every test checks at the end: each instance indexed once as
/// version 1, its original in the bucket once and byte-identical to what
/// was sent, one render job each that ran once, one thumbnail each.
async fn assert_stored_once(backends: &Backends, files: &[CorpusFile]) {
    let db = backends.database().await;
    let sops: HashSet<&str> = files.iter().map(|f| f.sop_instance_uid.as_str()).collect();
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM instances").await, sops.len() as i64, "each instance indexed once");
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM instances WHERE version > 1").await, 0, "no instance became a second version");
    let originals = backends.originals();
    assert_eq!(originals.len(), sops.len(), "each original in the bucket once");
    let copy = tempfile::tempdir().unwrap();
    backends.s3.download(&backends.bucket, "originals/", copy.path());
    for file in files {
        let versions = db.versions_of(&telediag_archive::SopInstanceUid::parse(&file.sop_instance_uid).unwrap()).await.unwrap();
        let stored = std::fs::read(copy.path().join(&versions[0].object_key)).expect("the original is in the bucket");
        let (_, header_len) = telediag_archive::part10::read_header(std::io::Cursor::new(&stored)).unwrap();
        assert!(stored[header_len as usize..] == file.dataset()[..], "{} is stored byte for byte", file.path.display());
    }
    wait_until(Duration::from_secs(120), "every render job to finish", || async {
        scalar(&db, "SELECT COUNT(*) FROM jobs WHERE kind = 'instance.render' AND state <> 'done'").await == 0
    })
    .await;
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM jobs WHERE kind = 'instance.render'").await, sops.len() as i64, "one render job each");
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) FROM derived WHERE kind = 'thumbnail' AND object_key IS NOT NULL").await,
        sops.len() as i64,
        "one thumbnail each"
    );
    assert_eq!(backends.s3.keys(&backends.bucket, "derived/").len() % sops.len(), 0, "derived objects: the same set for each instance");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_gateways_two_workers_and_a_web_process_share_one_database_and_bucket() {
    if !require_tool("storescu") || !require_tool("dcmodify") || pydicom_corpus().is_none() {
        return;
    }
    let Some(backends) = Backends::start("scaleout") else { return };
    backends.cli(&["site", "add", "东山县医院", "--ae", "DONGSHAN"]);
    backends.cli(&["site", "add", "西河县医院", "--ae", "XIHE"]);
    let dongshan = clone_series(&backends.root.path().join("corpus/dongshan"), "1.2.826.0.1.3680043.10.901", 120);
    let xihe = clone_series(&backends.root.path().join("corpus/xihe"), "1.2.826.0.1.3680043.10.902", 60);
    let profile = backends.root.path().join("storescu.cfg");
    storescu_profile(&dongshan, &profile);

    let gateways = [backends.run("gateway-1", Role::Gateway), backends.run("gateway-2", Role::Gateway)];
    let _workers = [backends.run("worker-1", Role::Worker), backends.run("worker-2", Role::Worker)];
    let web = backends.run("web", Role::Web);

    // Each hospital sends its study to both gateways at once: every
    // instance arrives twice, at two processes, at about the same moment.
    let logs = backends.root.path();
    let mut pushes = Vec::new();
    for (files, ae) in [(&dongshan, "DONGSHAN"), (&xihe, "XIHE")] {
        for g in &gateways {
            pushes.push(Push::start(g.port, ae, files, &profile, logs.join(format!("{ae}-{}.log", g.name))));
        }
    }
    for (push, expected) in pushes.into_iter().zip([120, 120, 60, 60]) {
        let log = push.finish();
        assert_eq!(acknowledged(&log).len(), expected, "every object acknowledged by both gateways:\n{log}");
    }
    let all: Vec<CorpusFile> = dongshan.iter().chain(&xihe).cloned().collect();
    assert_stored_once(&backends, &all).await;

    // One read request per study, made by one worker's intake.
    let db = backends.database().await;
    wait_until(Duration::from_secs(60), "a read request per study", || async {
        scalar(&db, "SELECT COUNT(*) FROM read_requests").await >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM read_requests").await, 2, "each read request created once");
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM jobs WHERE kind = 'study.complete' AND attempts > 1").await, 0);

    // QIDO through the web process lists both studies, whole.
    let admin = login(web.port, "admin", ADMIN_PASSWORD);
    let (status, body) = http(web.port, "GET", "/dicom-web/studies?includefield=00201208", Some(&admin), None);
    assert_eq!(status, 200, "{body}");
    let studies: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut counts: Vec<i64> =
        studies.as_array().unwrap().iter().map(|s| s["00201208"]["Value"][0].as_i64().expect("NumberOfStudyRelatedInstances")).collect();
    counts.sort();
    assert_eq!(counts, [60, 120]);
    // A thumbnail a worker made, served by the web process from the bucket.
    let sop = &dongshan[7].sop_instance_uid;
    let (status, head, body) = http_raw(web.port, &format!("/api/instances/{sop}/thumbnail"), &admin, None);
    assert_eq!(status, 200, "{head}");
    assert!(image::load_from_memory(&body).is_ok(), "a decodable thumbnail");
    for gateway in &gateways {
        assert!(!gateway.log_text().contains("ERROR"), "{}:\n{}", gateway.name, gateway.log_text());
    }
}

/// One hospital's study and a centre of one gateway, one worker and one web
/// process on fresh backends, for the fault tests.
struct Centre {
    files: Vec<CorpusFile>,
    profile: PathBuf,
    gateway: Node,
    _worker: Node,
    web: Node,
    /// The admin's token on the web process.
    admin: String,
}

impl Centre {
    /// `None` when a tool or server is missing (see [`Backends::start`]).
    fn start(name: &str, uid_root: &str, count: usize) -> Option<(Backends, Centre)> {
        if !require_tool("storescu") || !require_tool("dcmodify") || pydicom_corpus().is_none() {
            return None;
        }
        let backends = Backends::start(name)?;
        backends.cli(&["site", "add", "东山县医院", "--ae", "DONGSHAN"]);
        let files = clone_series(&backends.root.path().join("corpus"), uid_root, count);
        let profile = backends.root.path().join("storescu.cfg");
        storescu_profile(&files, &profile);
        let gateway = backends.run("gateway-1", Role::Gateway);
        let _worker = backends.run("worker-1", Role::Worker);
        let web = backends.run("web", Role::Web);
        let admin = login(web.port, "admin", ADMIN_PASSWORD);
        Some((backends, Centre { files, profile, gateway, _worker, web, admin }))
    }
}

/// The failures storescu was told of, with their status lines.
fn refusals(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains("Received Store Response") && !l.contains("(Success)")).collect()
}

/// A gateway killed (SIGKILL) a third of the way through a 300-instance
/// push, and a worker killed while it renders: every instance acknowledged
/// before the kill is in the bucket and the index; the hospital's resend
/// of the whole study to the other gateway stores each instance once; the
/// killed gateway, restarted, finishes its staging; the other worker takes
/// the killed one's jobs when their leases lapse.
#[tokio::test(flavor = "multi_thread")]
async fn killed_gateways_and_workers_lose_and_duplicate_nothing() {
    if !require_tool("storescu") || !require_tool("dcmodify") || pydicom_corpus().is_none() {
        return;
    }
    let Some(backends) = Backends::start("killed") else { return };
    backends.cli(&["site", "add", "东山县医院", "--ae", "DONGSHAN"]);
    let files = clone_series(&backends.root.path().join("corpus"), "1.2.826.0.1.3680043.10.903", 300);
    let profile = backends.root.path().join("storescu.cfg");
    storescu_profile(&files, &profile);
    let mut first = backends.run("gateway-1", Role::Gateway);
    let second = backends.run("gateway-2", Role::Gateway);
    let mut worker = backends.run("worker-1", Role::Worker);

    let push = Push::start(first.port, "DONGSHAN", &files, &profile, backends.root.path().join("push-1.log"));
    push.wait_for_acks(100);
    first.kill9();
    let log = push.finish();
    let acked: HashSet<PathBuf> = acknowledged(&log).into_iter().collect();
    assert!((100..300).contains(&acked.len()), "the kill came mid-push: {} acknowledged", acked.len());

    // What was acknowledged is already in the index and the bucket, before
    // anything is restarted.
    let db = backends.database().await;
    let originals: HashSet<String> = backends.originals().into_iter().collect();
    for file in files.iter().filter(|f| acked.contains(&f.path)) {
        let sop = telediag_archive::SopInstanceUid::parse(&file.sop_instance_uid).unwrap();
        let versions = db.versions_of(&sop).await.unwrap();
        // The last rows may wait in the killed gateway's staging for its
        // restart; the objects themselves are in the bucket.
        assert!(versions.len() <= 1, "{sop} indexed once at most");
        let key = format!("originals/1.2.826.0.1.3680043.10.903.1/1.2.826.0.1.3680043.10.903.2/{sop}.dcm");
        assert!(originals.contains(&key), "acknowledged {sop} is in the bucket");
    }

    // The hospital resends the whole study, to the other gateway, while
    // the worker renders; the worker is killed mid-job.
    let resend = Push::start(second.port, "DONGSHAN", &files, &profile, backends.root.path().join("push-2.log"));
    let holder = format!("pipeline@%:{}", worker.pid());
    wait_until(Duration::from_secs(60), "the worker to hold jobs it is rendering", || async {
        let sql = format!("SELECT COUNT(*) FROM jobs WHERE state = 'running' AND locked_by LIKE '{holder}'");
        scalar(&db, &sql).await >= 1
    })
    .await;
    worker.kill9();
    let log = resend.finish();
    assert_eq!(acknowledged(&log).len(), 300, "the resend is acknowledged whole:\n{log}");
    let staged_by_the_killed_gateway = staged_files(&first.data);
    first.launch();
    let _other_worker = backends.run("worker-2", Role::Worker);
    assert_stored_once(&backends, &files).await;
    let retried = scalar(&db, "SELECT COUNT(*) FROM jobs WHERE kind = 'instance.render' AND attempts > 1").await;
    assert!(retried >= 1, "the killed worker's jobs in hand were taken over when their leases lapsed");
    // The restarted gateway finished what the killed one left in staging.
    let left = staged_files(&first.data);
    assert!(left.is_empty(), "staging still holds {left:?} (the kill left {})", staged_by_the_killed_gateway.len());
}

/// Files with bytes in a data directory's staging (empty ones are made
/// ahead for senders and never used).
fn staged_files(data: &Path) -> Vec<PathBuf> {
    let dirs = std::fs::read_dir(data.join("staging")).into_iter().flatten().flatten();
    let files = dirs.filter_map(|d| std::fs::read_dir(d.path()).ok()).flat_map(|files| files.flatten());
    files
        .map(|f| f.path())
        .filter(|p| p.file_name().is_some_and(|n| n != "lock") && std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
        .collect()
}

/// PostgreSQL stopped mid-push and started again: while it is down the
/// sender is refused with 0xA700 and a reason and the web API answers 503
/// with one; afterwards both work again without a restart, and the resend
/// of what was refused stores everything once.
#[tokio::test(flavor = "multi_thread")]
async fn a_database_restart_mid_push_is_survived() {
    let Some((mut backends, Centre { files, profile, gateway, _worker, web, admin })) =
        Centre::start("restart", "1.2.826.0.1.3680043.10.904", 300)
    else {
        return;
    };

    let push = Push::start(gateway.port, "DONGSHAN", &files, &profile, backends.root.path().join("push-1.log"));
    push.wait_for_acks(80);
    backends.postgres.stop();
    let (status, body) = http(web.port, "GET", "/api/studies", Some(&admin), None);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("index database unavailable"), "{body}");
    std::thread::sleep(Duration::from_secs(3));
    backends.postgres.start_again();
    let log = push.finish();
    let refused = refusals(&log);
    assert!(!refused.is_empty(), "objects sent while the database was down were refused:\n{log}");
    assert!(refused.iter().all(|l| l.contains("Refused: OutOfResources")), "0xA700 each: {refused:?}");
    let logged = gateway.log_text().lines().any(|l| l.contains("0xA700") && l.contains("database"));
    assert!(logged, "the gateway logged the refusals with their status and reason:\n{}", gateway.log_text());

    // Service resumes by itself.
    let mut answered = false;
    for _ in 0..100 {
        if http(web.port, "GET", "/api/studies", Some(&admin), None).0 == 200 {
            answered = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(answered, "the web API answers again");
    let log = Push::start(gateway.port, "DONGSHAN", &files, &profile, backends.root.path().join("push-2.log")).finish();
    assert_eq!(acknowledged(&log).len(), 300, "the resend is acknowledged whole:\n{log}");
    assert_stored_once(&backends, &files).await;
}

/// The bucket stops answering for longer than a request may take: the
/// sender is refused with 0xA700 and a reason, the web API's image reads
/// answer 503 with one; when it answers again, both resume by themselves.
#[tokio::test(flavor = "multi_thread")]
async fn a_silent_bucket_is_reported_and_survived() {
    let Some((backends, Centre { files, profile, gateway, _worker, web, admin })) =
        Centre::start("silent", "1.2.826.0.1.3680043.10.905", 120)
    else {
        return;
    };

    let push = Push::start(gateway.port, "DONGSHAN", &files, &profile, backends.root.path().join("push-1.log"));
    push.wait_for_acks(40);
    backends.s3.pause();
    let sop = &files[3].sop_instance_uid;
    let (status, _, body) = http_raw(
        web.port,
        &format!("/dicom-web/studies/1.2.826.0.1.3680043.10.905.1/series/1.2.826.0.1.3680043.10.905.2/instances/{sop}"),
        &admin,
        Some("Accept: application/dicom"),
    );
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("object store"), "{body}");
    std::thread::sleep(Duration::from_secs(10));
    backends.s3.resume();
    let log = push.finish();
    let refused = refusals(&log);
    assert!(!refused.is_empty(), "objects sent while the bucket was silent were refused:\n{log}");
    assert!(refused.iter().all(|l| l.contains("Refused: OutOfResources")), "0xA700 each: {refused:?}");
    assert!(gateway.log_text().contains("object store unavailable"), "the gateway logged why");

    let log = Push::start(gateway.port, "DONGSHAN", &files, &profile, backends.root.path().join("push-2.log")).finish();
    assert_eq!(acknowledged(&log).len(), 120, "the resend is acknowledged whole:\n{log}");
    assert_stored_once(&backends, &files).await;
}
