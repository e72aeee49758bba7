//! The workflow's state machines driven directly, as the HTTP layer, the
//! CLI and the workers drive them, on a real archive (the demo CR, stored
//! and indexed like a C-STORE): registration and arrival meet once however
//! they race; a report moves only through its own transitions, and a
//! signature is recorded only onto the version that was signed, by the
//! one who holds it. No PDFs here: signatures are recorded as the caller
//! hands them in (`SignedDocument`); the cryptography is tested in the
//! reports crate and through HTTP with `pdfsig` in `tests/worklist.rs`.

use std::path::PathBuf;

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use telediag_archive::accounts::NewUserRow;
use telediag_archive::sites::NewSite;
use telediag_archive::{Archive, ArchiveConfig, Durability, Origin};
use telediag_workflow::intake::NewRequest;
use telediag_workflow::reports::{AuthorSigned, DraftEdit, NewDraft, Opened, ReviewAct, Revision, SignedDocument};
use telediag_workflow::{Actor, Policy, ReportKind, ReportState, RequestState, Role, Workflow, WorkflowError};

struct Centre {
    dir: tempfile::TempDir,
    archive: Archive,
    workflow: Workflow,
    site_id: i64,
    technician: Actor,
    reader_a: Actor,
    reader_b: Actor,
    reviewer: Actor,
    cr: PathBuf,
}

/// Each test runs twice: on SQLite, and on a throwaway PostgreSQL cluster
/// (skipped with a message when PostgreSQL is not installed).
macro_rules! on_both_engines {
    ($name:ident, $threads:literal) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = $threads)]
            async fn sqlite() {
                super::$name(None).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = $threads)]
            async fn postgres() {
                let Some(server) = telediag_test_servers::Postgres::start() else { return };
                super::$name(Some(server.create_database("workflow"))).await
            }
        }
    };
}

async fn centre(policy: Policy, database_url: Option<String>) -> Centre {
    let dir = tempfile::tempdir().unwrap();
    let config =
        ArchiveConfig { data_dir: dir.path().join("data"), database_url, durability: Durability::Normal, storage: Default::default() };
    let archive = Archive::open(&config).await.unwrap();
    let db = archive.database();
    let site = db.add_site(&NewSite { name: "西河县医院".into(), ae_titles: vec!["XIHE".into()], networks: vec![] }).await.unwrap();
    let mut users = Vec::new();
    for (username, name, roles, site_id) in [
        ("xihe_tech", "西河 王医生", vec!["site_user"], Some(site.id)),
        ("li", "李医生", vec!["radiologist"], None),
        ("zhou", "周医生", vec!["radiologist"], None),
        ("chen", "陈主任", vec!["radiologist", "reviewer"], None),
    ] {
        let row = NewUserRow {
            username: username.into(),
            display_name: name.into(),
            password_hash: "not used".into(),
            roles: roles.into_iter().map(str::to_owned).collect(),
            site_id,
        };
        let id = db.insert_user(&row).await.unwrap();
        users.push(Actor::from(db.user_by_id(id).await.unwrap().unwrap()));
    }
    let demo = dir.path().join("demo");
    telediag_sample_data::write_demo_studies(&demo).unwrap();
    let workflow = Workflow::new(db.clone(), policy);
    let [technician, reader_a, reader_b, reviewer] = users.try_into().unwrap();
    Centre { cr: demo.join("cr_001.dcm"), dir, archive, workflow, site_id: site.id, technician, reader_a, reader_b, reviewer }
}

impl Centre {
    /// The demo CR as exam `label` of patient `patient_id`, dated today,
    /// stored and indexed. Returns its Study Instance UID.
    async fn images_arrive(&self, label: &str, patient_id: &str) -> String {
        let mut obj = dicom_object::open_file(&self.cr).unwrap();
        let uid = |what: &str| telediag_sample_data::demo_uid(&format!("{label}/{what}"));
        let today = telediag_reports::Timestamp::new(telediag_archive::db::now_ms(), 480).dicom_date();
        for (tag, vr, value) in [
            (tags::STUDY_INSTANCE_UID, VR::UI, uid("study")),
            (tags::SERIES_INSTANCE_UID, VR::UI, uid("series")),
            (tags::SOP_INSTANCE_UID, VR::UI, uid("instance")),
            (tags::ACCESSION_NUMBER, VR::SH, format!("ACC-{label}")),
            (tags::PATIENT_ID, VR::LO, patient_id.to_owned()),
            (tags::STUDY_DATE, VR::DA, today),
        ] {
            obj.put(DataElement::new(tag, vr, PrimitiveValue::from(value.as_str())));
        }
        obj.meta_mut().media_storage_sop_instance_uid = uid("instance");
        let path = self.dir.path().join(format!("{label}.dcm"));
        obj.write_to_file(&path).unwrap();
        let stored = self.archive.import_file(&path, &Origin { site_id: self.site_id, calling_ae: Some("XIHE".into()) }).await.unwrap();
        stored.indexed.wait().await.unwrap();
        uid("study")
    }

    async fn single_signature(&self) {
        sqlx::query("UPDATE sites SET single_signature = 1 WHERE id = $1")
            .bind(self.site_id)
            .execute(self.archive.database().pool())
            .await
            .unwrap();
    }

    async fn count(&self, sql: &str, value: &str) -> i64 {
        sqlx::query_scalar(sql).bind(value).fetch_one(self.archive.database().pool()).await.unwrap()
    }
}

fn registration(label: &str, patient_id: &str) -> NewRequest {
    NewRequest {
        site: None,
        patient_name: "李娜".into(),
        patient_sex: Some("F".into()),
        patient_age: None,
        patient_id: patient_id.into(),
        department: Some("呼吸内科".into()),
        inpatient_number: None,
        bed_number: None,
        accession_number: Some(format!("ACC-{label}")),
        modality: Some("CR".into()),
        requested_exam: "胸部正位片".into(),
        clinical_history: None,
        requesting_physician: None,
        priority: Default::default(),
    }
}

/// A signed document as the caller would have stored it.
fn document(tag: &str) -> SignedDocument {
    let token = format!("{:0>32}", tag.bytes().map(|b| format!("{b:02x}")).collect::<String>());
    SignedDocument { key: format!("reports/test/{tag}.pdf"), sha256: "ab".repeat(32), token: token[token.len() - 32..].to_owned() }
}

fn draft(text: &str) -> NewDraft {
    NewDraft {
        template: "cr-chest".into(),
        method: "胸部正位 DR".into(),
        findings: format!("{text}，心影大小形态如常。"),
        conclusion: "胸部未见明显异常（请医师确认）".into(),
        key_images: vec![],
    }
}

fn written(findings: &str, conclusion: &str, base: i64) -> DraftEdit {
    DraftEdit { findings: Some(findings.into()), conclusion: Some(conclusion.into()), base_updated_at: Some(base), ..DraftEdit::default() }
}

fn is_conflict<T: std::fmt::Debug>(result: Result<T, WorkflowError>) -> String {
    match result {
        Err(WorkflowError::Conflict(reason)) => reason,
        other => panic!("expected a conflict, found {other:?}"),
    }
}

on_both_engines!(a_registration_and_its_images_arriving_together_meet_exactly_once, 4);

/// A registration and its images arriving at the same moment, in either
/// order, twelve times over: each exam has exactly one live request, with
/// the images, reconciled — never a registration left waiting beside an
/// unreconciled arrival. A duplicated study.complete job adds nothing.
async fn a_registration_and_its_images_arriving_together_meet_exactly_once(database_url: Option<String>) {
    let c = centre(Policy::default(), database_url).await;
    for round in 0..12 {
        let label = format!("race-{round}");
        let patient = format!("P{round}");
        let study_uid = c.images_arrive(&label, &patient).await;
        let (wf, tech, new) = (c.workflow.clone(), c.technician.clone(), registration(&label, &patient));
        let register = tokio::spawn(async move { wf.register(&tech, &new).await });
        let complete = [0, 1].map(|_| {
            let (wf, uid) = (c.workflow.clone(), study_uid.clone());
            tokio::spawn(async move { wf.on_study_complete(&uid).await })
        });
        let registered = register.await.unwrap().expect("the registration is accepted in either order");
        let mut arrived = Vec::new();
        for job in complete {
            arrived.push(job.await.unwrap().expect("the arrival is accepted in either order"));
        }
        assert_eq!(arrived[0], arrived[1], "round {round}: one request reads the study");
        assert_eq!(registered.id, arrived[0], "round {round}: the registration and the images are one request");
        let live = c
            .count("SELECT COUNT(*) FROM read_requests WHERE accession_number = $1 AND state != 'cancelled'", &format!("ACC-{label}"))
            .await;
        assert_eq!(live, 1, "round {round}: exactly one live request for the exam");
        let request = c.workflow.request(&c.technician, registered.id).await.unwrap();
        assert!(request.reconciled && request.study_uid.as_deref() == Some(study_uid.as_str()), "round {round}: {request:?}");
        let reconciled = c
            .count(
                "SELECT COUNT(*) FROM request_events WHERE request_id = CAST($1 AS INTEGER) AND note LIKE '%reconciled%'",
                &registered.id.to_string(),
            )
            .await;
        assert_eq!(reconciled, 1, "round {round}: reconciled once");
    }
}

on_both_engines!(a_report_moves_only_through_its_own_transitions, 2);

/// Claim, write, sign, review, return, revise, amend: each step only from
/// the state it belongs to, and a signature recorded only onto the
/// version that was signed.
async fn a_report_moves_only_through_its_own_transitions(database_url: Option<String>) {
    let c = centre(Policy::default(), database_url).await;
    let wf = &c.workflow;
    let study = c.images_arrive("life", "P100").await;
    let id = wf.on_study_complete(&study).await.unwrap();

    // Two readers claim at once: one holds it, the other is told who.
    let (a, b) = tokio::join!(wf.claim(&c.reader_a, id), wf.claim(&c.reader_b, id));
    let (author, other, lost) = match (a, b) {
        (Ok(_), Err(e)) => (&c.reader_a, &c.reader_b, e),
        (Err(e), Ok(_)) => (&c.reader_b, &c.reader_a, e),
        both => panic!("exactly one claim wins: {both:?}"),
    };
    assert!(matches!(&lost, WorkflowError::Conflict(reason) if reason.contains(&author.display_name)), "{lost:?}");
    assert!(matches!(wf.open_report(other, id, async |_| draft("x")).await, Err(WorkflowError::Conflict(_))), "not theirs to open");

    let Opened::Created(v1) = wf.open_report(author, id, async |_| draft("双肺纹理清晰")).await.unwrap() else {
        panic!("a first draft")
    };
    assert_eq!(
        (v1.kind, v1.state, wf.request(author, id).await.unwrap().state),
        (ReportKind::Report, ReportState::Draft, RequestState::Reading)
    );
    let refused = wf.prepare_author_signature(author, id).await.unwrap_err();
    assert!(matches!(&refused, WorkflowError::Invalid(reason) if reason.contains("（请医师确认）")), "{refused:?}");
    assert!(matches!(wf.prepare_author_signature(other, id).await, Err(WorkflowError::Forbidden(_))));
    let v1 = wf.save_draft(author, id, &written("双肺纹理清晰，未见实变。", "胸部未见明显异常。", v1.updated_at)).await.unwrap();
    assert!(
        matches!(wf.save_draft(author, id, &written("旧", "旧", v1.updated_at - 1)).await, Err(WorkflowError::Conflict(_))),
        "a stale save"
    );

    // Signed as read, then changed before the signature is recorded: refused.
    let stale = wf.prepare_author_signature(author, id).await.unwrap();
    assert!(!stale.single_signature);
    wf.save_draft(author, id, &DraftEdit { method: Some("胸部正位 DR（立位）".into()), ..DraftEdit::default() }).await.unwrap();
    is_conflict(wf.record_author_signature(author, &stale, &document("stale"), 1).await);
    assert_eq!(wf.report(author, id).await.unwrap().1[0].state, ReportState::Draft, "nothing was signed");

    let signing = wf.prepare_author_signature(author, id).await.unwrap();
    let AuthorSigned::AwaitsReview(v1) = wf.record_author_signature(author, &signing, &document("author-1"), 10).await.unwrap() else {
        panic!("two signatures at this site")
    };
    assert_eq!((v1.state, v1.author_id, v1.author_signed_at), (ReportState::Preliminary, Some(author.id), Some(10)));
    assert_eq!(wf.request(author, id).await.unwrap().state, RequestState::Preliminary);
    assert!(matches!(wf.prepare_review(author, id, Revision::default()).await, Err(WorkflowError::Forbidden(_))), "not a reviewer");

    // The reviewer reads it; it is returned meanwhile: their signature is refused.
    let review =
        wf.prepare_review(&c.reviewer, id, Revision { base_updated_at: Some(v1.updated_at), ..Revision::default() }).await.unwrap();
    assert!(matches!(&review.act, ReviewAct::CoSign { author_document } if *author_document == document("author-1")));
    let returned = wf.return_to_author(&c.reviewer, id, "请补充心影描述").await.unwrap();
    assert_eq!((returned.state, returned.author_signed_at), (ReportState::Draft, None));
    let request = wf.request(author, id).await.unwrap();
    assert_eq!((request.state, request.assigned_to), (RequestState::Reading, Some(author.id)), "back in the author's hands");
    is_conflict(wf.record_review(&c.reviewer, &review, &document("cosign-stale"), 20).await);
    assert_eq!(wf.report(author, id).await.unwrap().1[0].state, ReportState::Draft, "nothing was made final");

    // Signed again; the reviewer revises the conclusion and signs as its editor.
    let signing = wf.prepare_author_signature(author, id).await.unwrap();
    wf.record_author_signature(author, &signing, &document("author-2"), 30).await.unwrap();
    let revision = Revision { conclusion: Some("双肺未见实变；心影不大。".into()), ..Revision::default() };
    let review = wf.prepare_review(&c.reviewer, id, revision).await.unwrap();
    assert!(matches!(&review.act, ReviewAct::Edit { edited } if edited.conclusion == "双肺未见实变；心影不大。"));
    let done = wf.record_review(&c.reviewer, &review, &document("edited"), 40).await.unwrap();
    assert_eq!((done.version.state, done.version.edited_by_reviewer), (ReportState::Final, true));
    assert_eq!(done.version.conclusion, "双肺未见实变；心影不大。", "the text the reviewer signed");
    assert_eq!((done.version.author_signed_at, done.version.reviewer_signed_at), (Some(30), Some(40)));
    assert_eq!(done.request.state, RequestState::Final);
    assert!(
        matches!(wf.return_to_author(&c.reviewer, id, "晚了").await, Err(WorkflowError::Conflict(_))),
        "a final report is not returned"
    );

    // An amendment: written, signed, co-signed; the first version superseded.
    assert!(matches!(wf.amend(author, id, ReportKind::Report).await, Err(WorkflowError::Invalid(_))));
    let v2 = wf.amend(author, id, ReportKind::Amendment).await.unwrap();
    assert_eq!((v2.version, v2.supersedes_version, v2.conclusion.as_str()), (2, Some(1), "双肺未见实变；心影不大。"));
    is_conflict(wf.amend(author, id, ReportKind::Addendum).await);
    let v2 = wf.save_draft(author, id, &written("更正：左下肺小结节。", "左下肺小结节，建议复查。", v2.updated_at)).await.unwrap();
    let signing = wf.prepare_author_signature(author, id).await.unwrap();
    assert_eq!(signing.draft.id, v2.id);
    wf.record_author_signature(author, &signing, &document("amend-author"), 50).await.unwrap();
    assert_eq!(wf.request(author, id).await.unwrap().state, RequestState::Final, "an amendment does not reopen the request");
    let review = wf.prepare_review(&c.reviewer, id, Revision::default()).await.unwrap();
    let amended = wf.record_review(&c.reviewer, &review, &document("amend-final"), 60).await.unwrap();
    assert_eq!(amended.supersedes_token.as_deref(), Some(document("edited").token.as_str()), "the DICOM export names what it replaces");
    assert_eq!(amended.request.state, RequestState::Amended);
    let (_, versions) = wf.report(&c.technician, id).await.unwrap();
    assert_eq!(versions.iter().map(|v| v.state).collect::<Vec<_>>(), [ReportState::Superseded, ReportState::Final]);

    let (_, history) = wf.request_with_history(&c.technician, id).await.unwrap();
    let states: Vec<&str> = history.iter().map(|e| e.to_state.as_str()).collect();
    assert_eq!(
        states,
        ["received", "assigned", "reading", "preliminary", "reading", "preliminary", "final", "amended"],
        "every change of state, once, in order"
    );
}

on_both_engines!(one_signature_is_final_at_once_and_a_lapsed_lock_signs_nothing, 2);

/// At a single-signature site the author's signature makes the report
/// final in one step; a signature prepared by a reader whose lock then
/// lapsed is not recorded.
async fn one_signature_is_final_at_once_and_a_lapsed_lock_signs_nothing(database_url: Option<String>) {
    let c = centre(Policy { lock_secs: 1, ..Policy::default() }, database_url).await;
    c.single_signature().await;
    let wf = &c.workflow;

    let study = c.images_arrive("lapse", "P200").await;
    let id = wf.on_study_complete(&study).await.unwrap();
    wf.claim(&c.reader_a, id).await.unwrap();
    wf.open_report(&c.reader_a, id, async |_| draft("双肺纹理清晰")).await.unwrap();
    let v = wf.report(&c.reader_a, id).await.unwrap().1.remove(0);
    wf.save_draft(&c.reader_a, id, &written("双肺纹理清晰。", "未见异常。", v.updated_at)).await.unwrap();
    let signing = wf.prepare_author_signature(&c.reader_a, id).await.unwrap();
    assert!(signing.single_signature);
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    assert_eq!(wf.release_lapsed().await.unwrap(), 1);
    is_conflict(wf.record_author_signature(&c.reader_a, &signing, &document("lapsed"), 1).await);
    let request = wf.request(&c.reader_a, id).await.unwrap();
    assert_eq!((request.state, request.assigned_to), (RequestState::Received, None), "back in the pool, unsigned");

    wf.claim(&c.reader_b, id).await.unwrap();
    let Opened::Existing(v) = wf.open_report(&c.reader_b, id, async |_| draft("x")).await.unwrap() else { panic!("the draft is kept") };
    let signing = wf.prepare_author_signature(&c.reader_b, id).await.unwrap();
    assert_eq!(signing.draft.id, v.id);
    let AuthorSigned::Final(done) = wf.record_author_signature(&c.reader_b, &signing, &document("single"), 5).await.unwrap() else {
        panic!("one signature makes it final")
    };
    assert_eq!((done.version.state, done.version.author_id, done.version.reviewer_id), (ReportState::Final, Some(c.reader_b.id), None));
    assert_eq!(done.request.state, RequestState::Final);
    assert_eq!(done.verifier, (c.reader_b.display_name.clone(), 5));
    let (author_key, final_key): (String, String) = sqlx::query_as("SELECT author_pdf_key, pdf_key FROM reports WHERE id = $1")
        .bind(done.version.id)
        .fetch_one(c.archive.database().pool())
        .await
        .unwrap();
    assert_eq!((author_key.as_str(), final_key.as_str()), ("reports/test/single.pdf", "reports/test/single.pdf"));
    assert!(c.reviewer.has(Role::Reviewer));
    assert!(
        matches!(wf.prepare_review(&c.reviewer, id, Revision::default()).await, Err(WorkflowError::Conflict(_))),
        "nothing awaits review"
    );
}
