//! How requests come to be: a study completes (every ECG is a study too),
//! or a site registers a request ahead of its images. The two meet here.
//!
//! Matching a completed study to a registered request (reconciling): same
//! site and accession number; failing that, same site, patient ID,
//! modality and date (the study's date within a day of the day the request
//! was registered, in the centre's time). A study nothing matches becomes an
//! `arrival` request and is listed as unreconciled until a registration
//! matches it; a registration nothing matches waits with "images missing".
//!
//! Both directions choose and update in one transaction that holds the
//! database's write lock from its start (`BEGIN IMMEDIATE`), with the
//! update guarded (`study_uid IS NULL`, `reconciled = 0`): an arrival and a
//! registration racing for one exam meet exactly once.

use std::time::Duration;

use serde::Deserialize;
use sqlx::Row;
use telediag_archive::db::now_ms;
use telediag_archive::jobs::{JobKind, JobPayload};
use tokio::sync::watch;

use crate::Workflow;
use crate::actor::{Actor, Role, Scope};
use crate::error::{Result, WorkflowError};
use crate::policy::Priority;
use crate::requests::{ReadRequest, RequestState, record_event, stored_state};

/// Modalities that describe a study's documents, not what was examined.
const NON_EXAM_MODALITIES: &[&str] = &["SR", "DOC", "PR", "KO", "REG", "SEG"];

/// The modality a request is read as: the first examined one (ECG, CT, …).
pub fn primary_modality(modalities: &str) -> Option<String> {
    let all: Vec<&str> = modalities.split('\\').filter(|m| !m.is_empty()).collect();
    all.iter().find(|m| !NON_EXAM_MODALITIES.contains(m)).or(all.first()).map(|m| m.to_string())
}

/// Age as Chinese forms print it, from DICOM dates (YYYYMMDD): 67岁, 8月, 12天.
pub fn age_at(birth_date: &str, on: &str) -> Option<String> {
    let parse = |d: &str| -> Option<(i64, i64, i64)> {
        let d: String = d.chars().filter(char::is_ascii_digit).collect();
        if d.len() != 8 {
            return None;
        }
        Some((d[..4].parse().ok()?, d[4..6].parse().ok()?, d[6..].parse().ok()?))
    };
    let (by, bm, bd) = parse(birth_date)?;
    let (y, m, d) = parse(on)?;
    let mut months = (y - by) * 12 + (m - bm);
    if d < bd {
        months -= 1;
    }
    if months < 0 {
        return None;
    }
    if months >= 12 {
        Some(format!("{}岁", months / 12))
    } else if months >= 1 {
        Some(format!("{months}月"))
    } else {
        use telediag_reports::time::days_from_civil;
        let day = |y: i64, m: i64, d: i64| days_from_civil(y, m as u32, d as u32);
        Some(format!("{}天", (day(y, m, d) - day(by, bm, bd)).max(0)))
    }
}

/// The registration's patient and the images' patient, when they differ:
/// by patient ID (both given), or by name where the two can be compared
/// (the images' ideographic group against a Chinese name; Latin against
/// Latin — a modality that stores only pinyin says nothing either way).
/// `images_name` is a DICOM PN value.
pub fn identity_mismatch(registered: (&str, &str), images: (&str, Option<&str>)) -> Option<String> {
    let (registered_id, registered_name) = (registered.0.trim(), registered.1.trim());
    let (images_id, images_pn) = (images.0.trim(), images.1.unwrap_or("").trim());
    let squash =
        |s: &str| s.chars().filter(|c| !c.is_whitespace() && *c != '^' && *c != '·').flat_map(char::to_lowercase).collect::<String>();
    let ideographic = images_pn.split('=').nth(1).filter(|g| !g.trim_matches('^').is_empty());
    let has_cjk = |s: &str| s.chars().any(|c| ('\u{3400}'..='\u{9fff}').contains(&c));
    // Like with like: a Chinese name against the ideographic group, a Latin
    // one against the alphabetic group.
    let alphabetic = images_pn.split('=').next().filter(|g| !g.trim_matches('^').is_empty());
    let comparable = match (has_cjk(registered_name), ideographic) {
        (true, Some(group)) => Some(group.to_owned()),
        (true, None) if alphabetic.is_some_and(has_cjk) => alphabetic.map(str::to_owned),
        (true, None) => None,
        (false, _) => alphabetic.filter(|g| !has_cjk(g)).map(str::to_owned),
    };
    let ids_differ = !registered_id.is_empty() && !images_id.is_empty() && registered_id != images_id;
    let names_differ =
        comparable.is_some_and(|name| !squash(&name).is_empty() && !registered_name.is_empty() && squash(&name) != squash(registered_name));
    (ids_differ || names_differ).then(|| {
        let shown = telediag_archive::person_name::display(images_pn);
        format!("登记：{registered_name}（{registered_id}）；影像：{shown}（{images_id}）")
    })
}

/// What the index knows of a study, as a request needs it.
struct StudyFacts {
    site_id: i64,
    patient_id: String,
    /// As a person reads it (张伟).
    patient_name: Option<String>,
    /// As stored (Zhang^Wei=张^伟), for comparing with a registration.
    raw_patient_name: Option<String>,
    patient_sex: Option<String>,
    birth_date: Option<String>,
    accession: Option<String>,
    study_date: Option<String>,
    description: Option<String>,
    referring: Option<String>,
    modality: Option<String>,
}

impl StudyFacts {
    fn age(&self) -> Option<String> {
        age_at(self.birth_date.as_deref()?, self.study_date.as_deref()?)
    }
}

/// The study dates (YYYYMMDD) that count as "the same date" as an instant:
/// its calendar day in the centre's offset and the days either side. A
/// request registered at 23:50 is often imaged after midnight, and a
/// modality's clock or time zone may be a few hours off the centre's.
fn dates_near(unix_ms: i64, offset_minutes: i32) -> [String; 3] {
    const DAY_MS: i64 = 86_400_000;
    [-DAY_MS, 0, DAY_MS].map(|shift| telediag_reports::Timestamp::new(unix_ms + shift, offset_minutes).dicom_date())
}

/// A registered request waiting for these images: (id, how it matched).
async fn find_registration(tx: &mut sqlx::AnyConnection, facts: &StudyFacts, offset_minutes: i32) -> Result<Option<(i64, &'static str)>> {
    if let Some(accession) = &facts.accession {
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM read_requests WHERE site_id = $1 AND accession_number = $2 AND study_uid IS NULL
               AND state != 'cancelled' ORDER BY created_at LIMIT 1",
        )
        .bind(facts.site_id)
        .bind(accession)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(id) = id {
            return Ok(Some((id, "accession number")));
        }
    }
    if facts.patient_id.is_empty() {
        return Ok(None);
    }
    let candidates = sqlx::query(
        "SELECT id, created_at, modality FROM read_requests WHERE site_id = $1 AND patient_id = $2 AND study_uid IS NULL
           AND state != 'cancelled' ORDER BY created_at",
    )
    .bind(facts.site_id)
    .bind(&facts.patient_id)
    .fetch_all(&mut *tx)
    .await?;
    for row in candidates {
        let created: i64 = row.get(1);
        let modality: Option<String> = row.get(2);
        let same_day = facts.study_date.as_ref().is_some_and(|d| dates_near(created, offset_minutes).contains(d));
        let same_modality = modality.is_none() || modality == facts.modality;
        if same_day && same_modality {
            return Ok(Some((row.get(0), "patient ID, date and modality")));
        }
    }
    Ok(None)
}

/// A request registered by a site ahead of its images.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    /// Required for admins; a site user registers for their own site.
    pub site: Option<String>,
    pub patient_name: String,
    pub patient_sex: Option<String>,
    pub patient_age: Option<String>,
    pub patient_id: String,
    pub department: Option<String>,
    pub inpatient_number: Option<String>,
    pub bed_number: Option<String>,
    /// Exam number / accession number: the first key of reconciliation.
    pub accession_number: Option<String>,
    pub modality: Option<String>,
    pub requested_exam: String,
    pub clinical_history: Option<String>,
    pub requesting_physician: Option<String>,
    #[serde(default)]
    pub priority: Priority,
}

/// The longest clinical history a registration may carry.
const MAX_CLINICAL_HISTORY: usize = 500;

/// Binds a registration's fields in the order both of its statements name
/// them: patient name, sex, age, department, inpatient and bed numbers,
/// accession, requested exam, clinical history, requesting physician.
macro_rules! bind_registration {
    ($query:expr, $new:expr, $accession:expr) => {
        $query
            .bind($new.patient_name.trim())
            .bind(&$new.patient_sex)
            .bind(&$new.patient_age)
            .bind(&$new.department)
            .bind(&$new.inpatient_number)
            .bind(&$new.bed_number)
            .bind(&$accession)
            .bind($new.requested_exam.trim())
            .bind(&$new.clinical_history)
            .bind(&$new.requesting_physician)
    };
}

impl NewRequest {
    /// Checks what a registration must hold, before anything is written.
    fn check(&self) -> Result<()> {
        if self.patient_name.trim().is_empty() || self.patient_id.trim().is_empty() || self.requested_exam.trim().is_empty() {
            return Err(WorkflowError::invalid("a read request needs patient_name, patient_id and requested_exam"));
        }
        // Printed in every page's header of the report: a few lines at most.
        if let Some(history) = self.clinical_history.as_deref().filter(|h| h.chars().count() > MAX_CLINICAL_HISTORY) {
            return Err(WorkflowError::invalid(format!(
                "clinical_history holds {} characters; at most {MAX_CLINICAL_HISTORY} are printed on the report",
                history.chars().count()
            )));
        }
        if let Some(sex) = &self.patient_sex
            && !["M", "F", "O", "男", "女", "其他"].contains(&sex.as_str())
        {
            return Err(WorkflowError::invalid(format!("patient_sex must be M, F or O, found {sex:?}")));
        }
        Ok(())
    }
}

impl Workflow {
    /// Claims `study.complete` jobs and turns each into (or onto) a request,
    /// until `stop`.
    pub async fn run_intake(self, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            match self.db.claim_job(&[JobKind::StudyComplete], "worklist", Duration::from_secs(60)).await {
                Ok(Some(job)) => {
                    let JobPayload::StudyComplete { study_uid } = &job.payload else {
                        let reason = format!("expected a study.complete job, found {:?}", job.payload.kind());
                        let _ = self.db.fail_job(job.lease(), &reason, None).await;
                        continue;
                    };
                    match self.on_study_complete(study_uid).await {
                        Ok(id) => {
                            tracing::info!(study_uid = %study_uid, request = id, "read request ready");
                            let _ = self.db.complete_job(job.lease()).await;
                        }
                        Err(e) => {
                            tracing::warn!(study_uid = %study_uid, error = %e, "cannot create the read request");
                            let _ = self.db.fail_job(job.lease(), &e.to_string(), Some(Duration::from_secs(30))).await;
                        }
                    }
                }
                Ok(None) => {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                        _ = stop.changed() => return,
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim worklist jobs");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn study_facts(&self, study_uid: &str) -> Result<StudyFacts> {
        let uid = telediag_archive::StudyUid::parse(study_uid).map_err(|e| WorkflowError::invalid(e.to_string()))?;
        let (study, site_id) = self.db.study_summary(&uid).await?.ok_or_else(|| WorkflowError::not_found("study"))?;
        let blank = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        Ok(StudyFacts {
            site_id,
            modality: primary_modality(&study.modalities),
            patient_id: study.patient_id,
            // A request is read by people: 张伟, not Zhang^Wei=张^伟.
            patient_name: blank(study.patient_name.as_deref().map(telediag_archive::person_name::display)),
            raw_patient_name: blank(study.patient_name.clone()),
            patient_sex: blank(study.patient_sex),
            birth_date: blank(study.patient_birth_date),
            accession: blank(study.accession_number),
            study_date: blank(study.study_date),
            description: blank(study.description),
            referring: blank(study.referring_physician.as_deref().map(telediag_archive::person_name::display)),
        })
    }

    /// Makes sure a request reads `study_uid`: the one it already has, a
    /// registration it reconciles, or a new arrival. Returns its id.
    pub async fn on_study_complete(&self, study_uid: &str) -> Result<i64> {
        let facts = self.study_facts(study_uid).await?;
        let now = now_ms();
        // The existing request, the registration chosen and its update are
        // one transaction holding the write lock: a registration arriving
        // meanwhile sees either no arrival or a reconciled one.
        let mut tx = self.db.begin_exclusive("workflow.intake").await?;
        let existing: Option<i64> =
            sqlx::query_scalar("SELECT id FROM read_requests WHERE study_uid = $1").bind(study_uid).fetch_optional(&mut *tx).await?;
        if let Some(id) = existing {
            // The study grew (more images, or our own report written back): keep the request.
            return Ok(id);
        }
        let id = match find_registration(&mut tx, &facts, self.policy.utc_offset_minutes).await? {
            Some((id, how)) => self.attach_images(&mut tx, id, how, study_uid, &facts, now).await?,
            None => {
                let deadline = self.policy.turnaround.deadline(now, Priority::Routine, facts.modality.as_deref());
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO read_requests (site_id, origin, reconciled, state, priority, modality, study_uid, study_date,
                        patient_name, patient_sex, patient_age, patient_id, accession_number, requested_exam,
                        requesting_physician, created_at, images_at, deadline_at, updated_at)
                     VALUES ($1, 'arrival', 0, 'received', 'routine', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id",
                )
                .bind(facts.site_id)
                .bind(&facts.modality)
                .bind(study_uid)
                .bind(&facts.study_date)
                .bind(&facts.patient_name)
                .bind(&facts.patient_sex)
                .bind(facts.age())
                .bind(&facts.patient_id)
                .bind(&facts.accession)
                .bind(&facts.description)
                .bind(&facts.referring)
                .bind(now)
                .bind(now)
                .bind(deadline)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                record_event(&mut tx, id, None, RequestState::Received, None, Some("images arrived, no registered request"), now).await?;
                id
            }
        };
        tx.commit().await?;
        self.after_arrival(id).await?;
        Ok(id)
    }

    /// Attaches a study's images to registered request `id` (in the
    /// caller's transaction); guarded so that it happens once.
    async fn attach_images(
        &self,
        tx: &mut sqlx::AnyConnection,
        id: i64,
        how: &str,
        study_uid: &str,
        facts: &StudyFacts,
        now: i64,
    ) -> Result<i64> {
        let (priority, registered_id, registered_name): (String, Option<String>, Option<String>) =
            sqlx::query_as("SELECT priority, patient_id, patient_name FROM read_requests WHERE id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        let mismatch = identity_mismatch(
            (registered_id.as_deref().unwrap_or(""), registered_name.as_deref().unwrap_or("")),
            (&facts.patient_id, facts.raw_patient_name.as_deref()),
        );
        let priority = Priority::parse(&priority).unwrap_or_default();
        let deadline = self.policy.turnaround.deadline(now, priority, facts.modality.as_deref());
        let attached = sqlx::query(
            "UPDATE read_requests SET study_uid = $1, images_at = $2, deadline_at = $3, reconciled = 1,
                study_date = COALESCE(study_date, $4), modality = COALESCE(modality, $5),
                patient_name = COALESCE(patient_name, $6), patient_sex = COALESCE(patient_sex, $7),
                patient_age = COALESCE(patient_age, $8), identity_mismatch = $9, updated_at = $10
             WHERE id = $11 AND study_uid IS NULL",
        )
        .bind(study_uid)
        .bind(now)
        .bind(deadline)
        .bind(&facts.study_date)
        .bind(&facts.modality)
        .bind(&facts.patient_name)
        .bind(&facts.patient_sex)
        .bind(facts.age())
        .bind(&mismatch)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if attached == 0 {
            return Err(WorkflowError::conflict("the registered request took other images meanwhile"));
        }
        let note = match &mismatch {
            None => format!("images arrived, reconciled by {how}"),
            Some(both) => {
                tracing::warn!(request = id, "reconciled images and registration differ in identity; awaiting confirmation");
                format!("images arrived, reconciled by {how}, but the patient differs ({both}): to be confirmed")
            }
        };
        let state: String = sqlx::query_scalar("SELECT state FROM read_requests WHERE id = $1").bind(id).fetch_one(&mut *tx).await?;
        let state = stored_state(&state)?;
        record_event(tx, id, Some(state), state, None, Some(&note), now).await?;
        Ok(id)
    }

    /// The site (or an admin) confirms that a request's registration and
    /// images are one patient, which lets its report be signed. Recorded in
    /// the history.
    pub async fn confirm_identity(&self, actor: &Actor, id: i64) -> Result<ReadRequest> {
        let request = self.request(actor, id).await?;
        if !(actor.has(Role::SiteUser) || actor.has(Role::Admin)) {
            return Err(WorkflowError::forbidden("confirming a patient's identity (the site or an admin does)"));
        }
        let Some(both) = request.identity_mismatch.as_deref().filter(|_| request.identity_unconfirmed()) else {
            return Err(WorkflowError::conflict("this request has no differing identities awaiting confirmation"));
        };
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        let changed = sqlx::query(
            "UPDATE read_requests SET identity_confirmed_by = $1, identity_confirmed_at = $2, updated_at = $3
             WHERE id = $4 AND identity_mismatch IS NOT NULL AND identity_confirmed_at IS NULL",
        )
        .bind(actor.id)
        .bind(now)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Err(WorkflowError::conflict("the identities were confirmed meanwhile"));
        }
        let note = format!("confirmed as one patient: {both}");
        record_event(&mut tx, id, Some(request.state), request.state, Some(actor.id), Some(&note), now).await?;
        tx.commit().await?;
        tracing::info!(request = id, by = %actor.username, "reconciled identities confirmed");
        self.request(actor, id).await
    }

    /// Registers `new` for the actor's site (an admin names the site);
    /// attaches it at once to images that already arrived unreconciled.
    pub async fn register(&self, actor: &Actor, new: &NewRequest) -> Result<ReadRequest> {
        let site_id = match actor.scope()? {
            Scope::Site(site) if actor.has(Role::SiteUser) => site,
            _ if actor.has(Role::Admin) => {
                let name = new.site.as_deref().ok_or_else(|| WorkflowError::invalid("an admin registering a request names its site"))?;
                self.db.site_by_name(name).await?.id
            }
            _ => return Err(WorkflowError::forbidden("registering read requests")),
        };
        new.check()?;
        let modality = new.modality.as_ref().map(|m| m.trim().to_uppercase()).filter(|m| !m.is_empty());
        let accession = new.accession_number.as_ref().map(|a| a.trim().to_owned()).filter(|a| !a.is_empty());
        let now = now_ms();

        // The choice of arrival and its reconciliation are one transaction
        // that holds the write lock from its start: two registrations of one
        // exam at once reconcile it once (the other is told it is registered).
        let mut tx = self.db.begin_exclusive("workflow.intake").await?;
        if let Some(accession) = &accession {
            let registered: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM read_requests WHERE site_id = $1 AND accession_number = $2 AND state != 'cancelled'
                   AND (origin = 'registered' OR reconciled = 1) ORDER BY created_at LIMIT 1",
            )
            .bind(site_id)
            .bind(accession)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(existing) = registered {
                return Err(WorkflowError::conflict(format!("exam {accession} is already registered as request {existing}")));
            }
        }
        // Images that came first, unreconciled, for the same exam?
        let mut arrival: Option<i64> = None;
        if let Some(accession) = &accession {
            arrival = sqlx::query_scalar(
                "SELECT id FROM read_requests WHERE site_id = $1 AND origin = 'arrival' AND reconciled = 0
                   AND accession_number = $2 AND state != 'cancelled' ORDER BY created_at LIMIT 1",
            )
            .bind(site_id)
            .bind(accession)
            .fetch_optional(&mut *tx)
            .await?;
        }
        if arrival.is_none() {
            let [yesterday, today, tomorrow] = dates_near(now, self.policy.utc_offset_minutes);
            arrival = sqlx::query_scalar(
                "SELECT id FROM read_requests WHERE site_id = $1 AND origin = 'arrival' AND reconciled = 0
                   AND patient_id = $2 AND study_date IN ($3, $4, $5) AND ($6 IS NULL OR modality = $7) AND state != 'cancelled'
                 ORDER BY created_at LIMIT 1",
            )
            .bind(site_id)
            .bind(new.patient_id.trim())
            .bind(&yesterday)
            .bind(&today)
            .bind(&tomorrow)
            .bind(&modality)
            .bind(&modality)
            .fetch_optional(&mut *tx)
            .await?;
        }

        let id = match arrival {
            Some(id) => {
                let (images_at, arrived_modality, study_uid, state): (i64, Option<String>, Option<String>, String) =
                    sqlx::query_as("SELECT images_at, modality, study_uid, state FROM read_requests WHERE id = $1")
                        .bind(id)
                        .fetch_one(&mut *tx)
                        .await?;
                // Read through the transaction: it holds the write lock, and
                // waiting for another pool connection meanwhile could stall
                // every other writer.
                let images_patient: Option<(String, Option<String>)> = match &study_uid {
                    Some(uid) => {
                        sqlx::query_as(
                            "SELECT p.patient_id, p.name FROM studies s JOIN patients p ON p.id = s.patient_ref WHERE s.study_uid = $1",
                        )
                        .bind(uid)
                        .fetch_optional(&mut *tx)
                        .await?
                    }
                    None => None,
                };
                let mismatch = images_patient.and_then(|(patient_id, name)| {
                    let name = name.filter(|n| !n.trim().is_empty());
                    identity_mismatch((new.patient_id.trim(), new.patient_name.trim()), (&patient_id, name.as_deref()))
                });
                let deadline = self.policy.turnaround.deadline(images_at, new.priority, arrived_modality.as_deref());
                let query = sqlx::query(
                    "UPDATE read_requests SET reconciled = 1, priority = $1, patient_name = $2, patient_sex = COALESCE($3, patient_sex),
                        patient_age = COALESCE($4, patient_age), department = $5, inpatient_number = $6, bed_number = $7,
                        accession_number = COALESCE($8, accession_number), requested_exam = $9, clinical_history = $10,
                        requesting_physician = COALESCE($11, requesting_physician), created_by = $12, deadline_at = $13,
                        identity_mismatch = $14, updated_at = $15
                     WHERE id = $16 AND reconciled = 0",
                )
                .bind(new.priority.as_str());
                let reconciled = bind_registration!(query, new, accession)
                    .bind(actor.id)
                    .bind(deadline)
                    .bind(&mismatch)
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if reconciled != 1 {
                    return Err(WorkflowError::conflict("the images were reconciled with another registration meanwhile"));
                }
                let note = match &mismatch {
                    None => "registered; reconciled with images already received".to_owned(),
                    Some(both) => {
                        format!("registered; reconciled with images already received, but the patient differs ({both}): to be confirmed")
                    }
                };
                let state = stored_state(&state)?;
                record_event(&mut tx, id, Some(state), state, Some(actor.id), Some(&note), now).await?;
                id
            }
            None => {
                let query = sqlx::query_scalar(
                    "INSERT INTO read_requests (site_id, origin, reconciled, state, priority, modality, patient_id, patient_name,
                        patient_sex, patient_age, department, inpatient_number, bed_number, accession_number, requested_exam,
                        clinical_history, requesting_physician, created_by, created_at, updated_at)
                     VALUES ($1, 'registered', 1, 'received', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING id",
                )
                .bind(site_id)
                .bind(new.priority.as_str())
                .bind(&modality)
                .bind(new.patient_id.trim());
                let id: i64 = bind_registration!(query, new, accession).bind(actor.id).bind(now).bind(now).fetch_one(&mut *tx).await?;
                record_event(&mut tx, id, None, RequestState::Received, Some(actor.id), Some("registered; images awaited"), now).await?;
                id
            }
        };
        tx.commit().await?;
        if arrival.is_some() {
            self.after_arrival(id).await?;
        }
        self.request(actor, id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_different_patient_id_or_comparable_name_is_a_mismatch() {
        for (registered, images, differs) in [
            (("DS1", "张伟"), ("DS1", Some("Zhang^Wei=张^伟")), false),
            (("DS1", "张伟"), ("DS2", Some("Zhang^Wei=张^伟")), true),
            (("DS1", "张伟"), ("DS1", Some("Li^Na=李^娜")), true),
            (("DS1", "张伟"), ("DS1", Some("Zhang^Wei")), false), // pinyin only: not comparable
            (("DS1", "张伟"), ("DS1", Some("李^娜")), true),
            (("DS1", "Zhang Wei"), ("DS1", Some("ZHANG^WEI")), false),
            (("DS1", "Zhang Wei"), ("DS1", Some("Li^Na")), true),
            (("DS1", "Zhang Wei"), ("DS1", Some("Zhang^Wei=张^伟")), false), // Latin against Latin
            (("", "张伟"), ("P9", Some("=张^伟")), false),
            (("DS1", "张伟"), ("", None), false),
        ] {
            let found = identity_mismatch(registered, images);
            assert_eq!(found.is_some(), differs, "{registered:?} / {images:?}: {found:?}");
        }
        assert_eq!(
            identity_mismatch(("DS1", "张伟"), ("DS2", Some("Li^Na=李^娜"))).unwrap(),
            "登记：张伟（DS1）；影像：李娜（DS2）",
            "both identities are shown"
        );
    }

    #[test]
    fn ages_print_in_years_months_or_days() {
        for (birth, on, expected) in [
            ("19590301", "20261123", Some("67岁")),
            ("19591124", "20261123", Some("66岁")),
            ("20260301", "20261123", Some("8月")),
            ("20261111", "20261123", Some("12天")),
            ("20260215", "20260310", Some("23天")),
            ("20241220", "20250105", Some("16天")),
            ("2026", "20261123", None),
            ("20270101", "20261123", None),
        ] {
            assert_eq!(age_at(birth, on).as_deref(), expected, "{birth} on {on}");
        }
    }

    #[test]
    fn near_dates_span_the_day_either_side_in_the_centres_offset() {
        // 2026-11-23T16:30:05Z is 2026-11-24 00:30 in Beijing.
        assert_eq!(dates_near(1_795_451_405_000, 480), ["20261123", "20261124", "20261125"]);
        assert_eq!(dates_near(1_795_451_405_000, 0), ["20261122", "20261123", "20261124"]);
    }

    #[test]
    fn the_primary_modality_skips_report_objects() {
        assert_eq!(primary_modality("CT\\SR").as_deref(), Some("CT"));
        assert_eq!(primary_modality("DOC\\ECG\\SR").as_deref(), Some("ECG"));
        assert_eq!(primary_modality("SR").as_deref(), Some("SR"));
        assert_eq!(primary_modality(""), None);
    }
}
