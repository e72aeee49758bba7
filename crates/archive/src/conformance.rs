//! The index, job queue, accounts and sites, run against each engine: the
//! same calls, the same answers on SQLite and on PostgreSQL (a throwaway
//! cluster per test, from `telediag-test-servers`; skipped with a message
//! when PostgreSQL is not installed, a failure in CI).

use std::path::Path;
use std::time::Duration;

use crate::accounts::NewUserRow;
use crate::ingest::test_objects::{ct_in, ct_meta};
use crate::jobs::{JobKind, JobPayload, Settled};
use crate::search::{Condition, Key, Level, Matcher, Search};
use crate::{Archive, ArchiveConfig, Database, Durability, NewSite, Origin, Outcome, SopInstanceUid, part10};

/// An archive on `database_url` (`None`: SQLite in the data directory).
async fn archive(dir: &Path, database_url: Option<String>) -> Archive {
    let config = ArchiveConfig { data_dir: dir.to_owned(), database_url, durability: Durability::Full, storage: Default::default() };
    Archive::open(&config).await.expect("the archive opens")
}

/// Runs `check` on SQLite, then on PostgreSQL when it is installed.
async fn on_each_engine<F, Fut>(check: F)
where
    F: Fn(Archive) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    check(archive(&dir.path().join("sqlite"), None).await).await;
    if let Some(postgres) = telediag_test_servers::Postgres::start() {
        let url = postgres.create_database("conformance");
        let archive = archive(&dir.path().join("postgres"), Some(url)).await;
        check(archive).await;
    }
}

fn part10_of(sop: &str, study: &str, series: &str, pixel: u8) -> Vec<u8> {
    let mut bytes = part10::encode_header(&ct_meta(sop));
    bytes.extend(ct_in(sop, study, series, pixel));
    bytes
}

#[tokio::test(flavor = "multi_thread")]
async fn objects_are_indexed_versioned_and_found() {
    on_each_engine(|archive| async move {
        let db = archive.database();
        let site = db.add_site(&NewSite { name: "县医院".into(), ae_titles: vec!["CT1".into()], networks: vec![] }).await.unwrap();
        let origin = Origin { site_id: site.id, calling_ae: Some("CT1".into()) };
        for (i, sop) in ["1.2.3.1", "1.2.3.2", "1.2.3.3"].into_iter().enumerate() {
            let stored = archive.import_bytes(part10_of(sop, "1.2.3", "1.2.3.9", i as u8), &origin).await.unwrap();
            assert_eq!(stored.outcome, Outcome::Stored);
        }
        let again = archive.import_bytes(part10_of("1.2.3.1", "1.2.3", "1.2.3.9", 0), &origin).await.unwrap();
        assert_eq!(again.outcome, Outcome::Duplicate);
        let changed = archive.import_bytes(part10_of("1.2.3.1", "1.2.3", "1.2.3.9", 7), &origin).await.unwrap();
        assert_eq!(changed.outcome, Outcome::NewVersion(2));
        archive.wait_idle().await;

        assert_eq!(db.count_instances().await.unwrap(), 4);
        let versions = db.versions_of(&SopInstanceUid::parse("1.2.3.1").unwrap()).await.unwrap();
        assert_eq!(versions.iter().map(|v| v.version).collect::<Vec<_>>(), [2, 1], "newest first");

        let search = |conditions, level| Search { level, site_id: Some(site.id), conditions, limit: 10, offset: 0 };
        let studies = db.search_studies(&search(vec![], Level::Study)).await.unwrap();
        assert_eq!(studies.rows.len(), 1);
        let instances = db.search_instances(&search(vec![], Level::Instance)).await.unwrap();
        assert_eq!(instances.rows.len(), 3, "the newest version of each instance");
        let uids = Condition { key: Key::SopInstanceUid, matcher: Matcher::AnyOf(vec!["1.2.3.2".into(), "1.2.3.3".into()]) };
        assert_eq!(db.search_instances(&search(vec![uids], Level::Instance)).await.unwrap().rows.len(), 2);
        let patient = Condition { key: Key::PatientId, matcher: Matcher::Wildcard("p*".into()) };
        assert_eq!(db.count_matches(&search(vec![patient], Level::Study), Level::Study).await.unwrap(), 1, "ASCII case ignored");
        let elsewhere = Search { site_id: Some(site.id + 1), ..search(vec![], Level::Study) };
        assert!(db.search_studies(&elsewhere).await.unwrap().rows.is_empty(), "another site sees nothing");

        let page = db.list_studies(&crate::index::StudyQuery { site_id: Some(site.id), ..Default::default() }).await.unwrap();
        assert_eq!((page.total, page.studies.len()), (1, 1));
        assert_eq!(page.studies[0].num_instances, 3);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_are_claimed_once_retried_and_finished() {
    on_each_engine(|archive| async move {
        let db = archive.database();
        let first = db.enqueue_job(&JobPayload::StudyComplete { study_uid: "1.2.3".into() }).await.unwrap();
        db.enqueue_job(&JobPayload::StudyComplete { study_uid: "1.2.4".into() }).await.unwrap();
        let lease = Duration::from_secs(60);
        let (a, b) = tokio::join!(
            db.claim_job(&[JobKind::StudyComplete], "worker-a", lease),
            db.claim_job(&[JobKind::StudyComplete], "worker-b", lease)
        );
        let (a, b) = (a.unwrap().expect("a job"), b.unwrap().expect("a job"));
        assert_ne!(a.id, b.id, "two workers never claim one job");
        assert!(db.claim_job(&[JobKind::StudyComplete], "worker-c", lease).await.unwrap().is_none());
        assert!(db.claim_job(&[JobKind::InstanceRender], "worker-c", lease).await.unwrap().is_none());
        assert_eq!(db.complete_job(a.lease()).await.unwrap(), Settled::Recorded);
        assert_eq!(db.fail_job(b.lease(), "the study vanished", None).await.unwrap(), Settled::Recorded);
        assert_eq!(db.complete_job(b.lease()).await.unwrap(), Settled::LeaseLost, "a failed job is not then done");
        assert_eq!(db.count_jobs(JobKind::StudyComplete, "done").await.unwrap(), 1);
        assert_eq!(db.count_jobs(JobKind::StudyComplete, "failed").await.unwrap(), 1);
        assert!(first > 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn accounts_sessions_and_sites_keep_their_rules() {
    on_each_engine(|archive| async move {
        let db: &Database = archive.database();
        let site = db
            .add_site(&NewSite {
                name: "乡镇卫生院".into(), ae_titles: vec!["US1".into()], networks: vec!["10.1.0.0/16".parse().unwrap()]
            })
            .await
            .unwrap();
        assert!(
            db.add_site(&NewSite { name: "另一家".into(), ae_titles: vec!["US1".into()], networks: vec![] }).await.is_err(),
            "AE titles are unique"
        );
        let directory = db.site_directory().await.unwrap();
        assert!(directory.authorize("US1", "10.1.2.3".parse().unwrap()).is_ok());
        assert!(directory.authorize("US1", "10.2.0.1".parse().unwrap()).is_err());

        let user = NewUserRow {
            username: "tech".into(),
            display_name: "李技师".into(),
            password_hash: "$argon2id$…".into(),
            roles: vec!["site".into()],
            site_id: Some(site.id),
        };
        let id = db.insert_user(&user).await.unwrap();
        assert!(db.insert_user(&user).await.is_err(), "usernames are unique");
        assert_eq!(db.user_by_name("tech").await.unwrap().unwrap().id, id);
        assert_eq!(db.count_admins().await.unwrap(), 0);
        for _ in 0..5 {
            db.begin_login_attempt(id).await.unwrap();
        }
        assert!(db.login_lock(id).await.unwrap().locked_until.is_some(), "five failures lock the account");
        db.clear_login_failures(id).await.unwrap();
        db.insert_session("hash-1", id, crate::db::now_ms() + 60_000).await.unwrap();
        assert_eq!(db.session_user("hash-1").await.unwrap().unwrap().username, "tech");
        db.delete_session("hash-1").await.unwrap();
        assert!(db.session_user("hash-1").await.unwrap().is_none());
    })
    .await;
}

/// Two archives on one database, as two gateway processes are: each with
/// its own data directory (staging) and local objects.
async fn two_archives(dir: &Path, database_url: Option<String>) -> (Archive, Archive) {
    let url = database_url.unwrap_or_else(|| format!("sqlite://{}", dir.join("shared.db").display()));
    (archive(&dir.join("a"), Some(url.clone())).await, archive(&dir.join("b"), Some(url)).await)
}

/// Two sites sending objects of the same new study at the same moment, to
/// two processes: exactly one of them gets the study, on either engine.
#[tokio::test(flavor = "multi_thread")]
async fn a_new_study_uid_goes_to_one_site_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let mut engines = vec![("sqlite", None)];
    let postgres = telediag_test_servers::Postgres::start();
    if let Some(postgres) = &postgres {
        engines.push(("postgres", Some(postgres.create_database("claims"))));
    }
    for (engine, url) in engines {
        let (one, two) = two_archives(&dir.path().join(engine), url).await;
        let db = one.database();
        let a = db.add_site(&NewSite { name: "甲".into(), ae_titles: vec!["A".into()], networks: vec![] }).await.unwrap();
        let b = db.add_site(&NewSite { name: "乙".into(), ae_titles: vec!["B".into()], networks: vec![] }).await.unwrap();
        let (from_a, from_b) = (Origin { site_id: a.id, calling_ae: None }, Origin { site_id: b.id, calling_ae: None });
        for i in 0..16 {
            let (one, two, from_a, from_b) = (one.clone(), two.clone(), from_a.clone(), from_b.clone());
            {
                let study = format!("1.2.9.{i}");
                let (x, y) = tokio::join!(
                    one.import_bytes(part10_of(&format!("{study}.1"), &study, &format!("{study}.5"), 1), &from_a),
                    two.import_bytes(part10_of(&format!("{study}.2"), &study, &format!("{study}.6"), 2), &from_b)
                );
                let (a_stored, b_stored) = (x.is_ok(), y.is_ok());
                assert!(a_stored != b_stored, "{engine}: study {study} went to exactly one site (a: {a_stored}, b: {b_stored})");
                let (_, owner) = db.study_summary(&crate::StudyUid::parse(&study).unwrap()).await.unwrap().expect("the study is indexed");
                assert_eq!(owner, if a_stored { a.id } else { b.id }, "{engine}: the index agrees with the claim");
            }
        }
        // Refusals are recorded in the background.
        let mut recorded = 0;
        for _ in 0..50 {
            recorded = db.uid_collisions(100).await.unwrap().len();
            if recorded == 16 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(recorded, 16, "{engine}: every refusal recorded");
    }
}

/// The same instance with different bytes sent to two gateway processes on
/// one PostgreSQL at once: one is version 1, the other version 2, under two
/// keys; without the database's instance lock both would be "version 1".
#[tokio::test(flavor = "multi_thread")]
async fn two_processes_never_make_the_same_version() {
    let Some(postgres) = telediag_test_servers::Postgres::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = two_archives(dir.path(), Some(postgres.create_database("versions"))).await;
    let db = one.database();
    let site = db.add_site(&NewSite { name: "甲".into(), ae_titles: vec!["A".into()], networks: vec![] }).await.unwrap();
    let origin = Origin { site_id: site.id, calling_ae: None };
    for i in 0..12 {
        let sop = format!("1.2.8.{i}");
        let (x, y) = tokio::join!(
            one.import_bytes(part10_of(&sop, "1.2.8", "1.2.8.100", 1), &origin),
            two.import_bytes(part10_of(&sop, "1.2.8", "1.2.8.100", 2), &origin)
        );
        let mut outcomes = [x.unwrap().outcome, y.unwrap().outcome];
        outcomes.sort_by_key(|o| matches!(o, Outcome::NewVersion(_)));
        assert_eq!(outcomes, [Outcome::Stored, Outcome::NewVersion(2)], "instance {sop}");
        let versions = db.versions_of(&SopInstanceUid::parse(&sop).unwrap()).await.unwrap();
        assert_eq!(versions.len(), 2);
        assert_ne!(versions[0].object_key, versions[1].object_key);
    }
}

/// An advisory lock whose connection the server ended (a restart, an
/// administrator's `pg_terminate_backend`) is no longer held, and says so
/// when confirmed: a gateway then refuses to publish rather than race
/// another that took the lock meanwhile.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_advisory_lock_is_noticed() {
    let Some(postgres) = telediag_test_servers::Postgres::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let archive = archive(dir.path(), Some(postgres.create_database("locks"))).await;
    let db = archive.database();
    let mut lock = db.advisory_lock("instance 1.2.3").await.unwrap().expect("PostgreSQL has advisory locks");
    lock.confirm().await.expect("held");
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(l.pid) FROM pg_locks l WHERE l.locktype = 'advisory' AND l.pid <> pg_backend_pid()",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert_eq!(ended, [true], "one session held the lock");
    assert!(lock.confirm().await.is_err(), "the lock went with its session");
    let mut again = tokio::time::timeout(Duration::from_secs(10), db.advisory_lock("instance 1.2.3"))
        .await
        .expect("the lock is free again")
        .unwrap()
        .unwrap();
    again.confirm().await.unwrap();
}
