//! The index-growth benchmark: the ingest rate of the index as it grows
//! from empty to a million instances (see `bench/scaleout/README.md`).
//!
//! At every milestone a sample of instances is indexed as C-STORE ingest
//! indexes them: each instance's stored versions are looked up (the
//! duplicate check), rows are committed in groups of eight (eight
//! associations' group commit) with a sync point each second, and every row
//! queues its render job. Between milestones the index is filled through
//! the direct import path, in transactions of 500 rows on four connections
//! at once (whole studies each). Studies hold 300 instances in one series,
//! one patient each, as a CT would.
//!
//! usage: index_growth DATABASE_URL [total=1000000] [every=50000] [sample=3000]
//! prints TSV: instances in the index, instances/s of the sample.

use std::time::{Duration, Instant};

use telediag_archive::index::{InstanceRecord, PatientAttributes, SeriesAttributes, StudyAttributes};
use telediag_archive::{Database, Durability, NewSite, SeriesUid, SopClassUid, SopInstanceUid, StudyUid, TransferSyntaxUid};

/// Instances per study (and per series).
const PER_STUDY: u64 = 300;

fn record(site_id: i64, n: u64) -> InstanceRecord {
    let (study_no, i) = (n / PER_STUDY, n % PER_STUDY + 1);
    let study = format!("1.2.826.0.1.3680043.10.999.{study_no}");
    let series = format!("{study}.1");
    let sop = format!("{series}.{i}");
    InstanceRecord {
        site_id,
        calling_ae: Some("BENCH".into()),
        study_uid: StudyUid::parse(&study).unwrap(),
        series_uid: SeriesUid::parse(&series).unwrap(),
        object_key: format!("originals/{study}/{series}/{sop}.dcm"),
        sop_instance_uid: SopInstanceUid::parse(&sop).unwrap(),
        sop_class_uid: SopClassUid::parse("1.2.840.10008.5.1.4.1.1.2").unwrap(),
        transfer_syntax_uid: TransferSyntaxUid::parse("1.2.840.10008.1.2.1").unwrap(),
        version: 1,
        conflict: false,
        size_bytes: 526_000,
        content_hash: format!("{:032x}", u128::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)),
        received_at: telediag_archive::db::now_ms(),
        patient: PatientAttributes {
            patient_id: format!("P{study_no:08}"),
            name: Some(format!("王^{study_no}=王^{study_no}")),
            sex: Some(if study_no % 2 == 0 { "F" } else { "M" }.into()),
            birth_date: Some("19580101".into()),
        },
        study: StudyAttributes {
            accession_number: Some(format!("A{study_no:08}")),
            study_date: Some(format!("2026{:02}{:02}", study_no % 12 + 1, study_no % 28 + 1)),
            study_time: Some("101500".into()),
            description: Some("胸部CT平扫".into()),
            referring_physician: Some("李^医生".into()),
            institution: Some("东山县人民医院".into()),
            study_id: Some(study_no.to_string()),
        },
        series: SeriesAttributes {
            modality: Some("CT".into()),
            body_part: Some("CHEST".into()),
            description: Some("1.25mm".into()),
            series_number: Some(1),
            performed_start_date: None,
            performed_start_time: None,
        },
        instance_number: Some(i as i64),
        number_of_frames: None,
        rows: Some(512),
        columns: Some(512),
        bits_allocated: Some(16),
    }
}

fn check(results: Vec<Result<(), String>>) {
    if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
        panic!("a row was rejected: {e}");
    }
}

/// `count` instances from `first` as C-STORE ingest indexes them; the rate.
async fn sample(db: &Database, site_id: i64, first: u64, count: u64) -> f64 {
    let started = Instant::now();
    let mut synced = Instant::now();
    let mut n = first;
    while n < first + count {
        let group: Vec<InstanceRecord> = (n..(n + 8).min(first + count)).map(|n| record(site_id, n)).collect();
        for r in &group {
            let versions = db.versions_of(&r.sop_instance_uid).await.unwrap();
            assert!(versions.is_empty(), "every sampled instance is new");
        }
        check(db.index_records(&group.iter().collect::<Vec<_>>()).await);
        if synced.elapsed() >= Duration::from_secs(1) {
            db.make_durable().await.unwrap();
            synced = Instant::now();
        }
        n += group.len() as u64;
    }
    db.make_durable().await.unwrap();
    count as f64 / started.elapsed().as_secs_f64()
}

/// Fills `first..end` through the direct import path, on four connections
/// (each its own whole studies).
async fn fill(db: &Database, site_id: i64, first: u64, end: u64) {
    const TASKS: u64 = 4;
    let share = (end - first).div_ceil(TASKS).div_ceil(PER_STUDY) * PER_STUDY;
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let (db, from, to) = (db.clone(), first + task * share, (first + (task + 1) * share).min(end));
        tasks.spawn(async move {
            let mut n = from;
            while n < to {
                let rows: Vec<InstanceRecord> = (n..(n + 500).min(to)).map(|n| record(site_id, n)).collect();
                check(db.index_records(&rows.iter().collect::<Vec<_>>()).await);
                n += rows.len() as u64;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a fill task");
    }
    db.make_durable().await.unwrap();
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args.next().expect("usage: index_growth DATABASE_URL [total] [every] [sample]");
    let mut number = |default: u64| args.next().map_or(default, |a| a.parse().expect("a number"));
    let (total, every, sample_size) = (number(1_000_000), number(50_000), number(3_000));
    let db = Database::open(&url, Durability::Full).await.expect("the database opens");
    let site = db.add_site(&NewSite { name: "基准医院".into(), ae_titles: vec!["BENCH".into()], networks: vec![] }).await.unwrap();
    println!("instances\tinstances_per_s");
    let mut indexed = 0;
    loop {
        let rate = sample(&db, site.id, indexed, sample_size).await;
        println!("{indexed}\t{rate:.1}");
        indexed += sample_size;
        if indexed >= total {
            break;
        }
        let next = (indexed / every + 1) * every;
        fill(&db, site.id, indexed, next.min(total)).await;
        indexed = next.min(total);
    }
}
