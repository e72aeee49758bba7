//! What the index records about each stored object, and the queries the
//! worklist and the CLI ask of it.
//!
//! Rows are only ever added by [`crate::indexer`]'s group commit; this module
//! holds the statements it runs and the read side.

use serde::Serialize;
use sqlx::{Row, Transaction};

use crate::db::{Database, DbError};
use crate::sql::SqlBuilder;
use crate::uid::{SeriesUid, SopClassUid, SopInstanceUid, StudyUid, TransferSyntaxUid};

/// Patient-level attributes as found in an object, decoded to UTF-8.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PatientAttributes {
    pub patient_id: String,
    pub name: Option<String>,
    pub sex: Option<String>,
    pub birth_date: Option<String>,
}

/// Study-level attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StudyAttributes {
    pub accession_number: Option<String>,
    pub study_date: Option<String>,
    pub study_time: Option<String>,
    pub description: Option<String>,
    pub referring_physician: Option<String>,
    pub institution: Option<String>,
    pub study_id: Option<String>,
}

/// Series-level attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SeriesAttributes {
    pub modality: Option<String>,
    pub body_part: Option<String>,
    pub description: Option<String>,
    pub series_number: Option<i64>,
    /// Performed Procedure Step Start Date and Time, for QIDO's series level.
    pub performed_start_date: Option<String>,
    pub performed_start_time: Option<String>,
}

/// One stored object version, ready to index.
#[derive(Debug, Clone)]
pub struct InstanceRecord {
    pub site_id: i64,
    pub calling_ae: Option<String>,
    pub study_uid: StudyUid,
    pub series_uid: SeriesUid,
    pub sop_instance_uid: SopInstanceUid,
    pub sop_class_uid: SopClassUid,
    pub transfer_syntax_uid: TransferSyntaxUid,
    pub version: i64,
    pub conflict: bool,
    pub object_key: String,
    pub size_bytes: i64,
    pub content_hash: String,
    pub received_at: i64,
    pub patient: PatientAttributes,
    pub study: StudyAttributes,
    pub series: SeriesAttributes,
    pub instance_number: Option<i64>,
    pub number_of_frames: Option<i64>,
    /// Image size and Bits Allocated, for QIDO's instance level.
    pub rows: Option<i64>,
    pub columns: Option<i64>,
    pub bits_allocated: Option<i64>,
}

/// An earlier stored version of a SOP instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVersion {
    pub version: i64,
    pub content_hash: String,
    pub object_key: String,
    /// The site whose study holds this version: the instance's owner.
    pub site_id: i64,
}

fn add_modality(list: &str, modality: Option<&str>) -> String {
    let mut items: Vec<&str> = list.split('\\').filter(|m| !m.is_empty()).collect();
    if let Some(m) = modality.filter(|m| !m.is_empty())
        && !items.contains(&m)
    {
        items.push(m);
        items.sort_unstable();
    }
    items.join("\\")
}

/// Adds `rec` (patient, study, series as needed) inside `tx`.
pub(crate) async fn insert_instance(tx: &mut Transaction<'_, sqlx::Any>, rec: &InstanceRecord) -> Result<(), DbError> {
    let name_groups = crate::person_name::groups(rec.patient.name.as_deref().unwrap_or_default());
    let patient_key = if rec.patient.patient_id.is_empty() { format!("study:{}", rec.study_uid) } else { rec.patient.patient_id.clone() };
    let patient_ref: i64 = sqlx::query_scalar(
        "INSERT INTO patients (site_id, patient_key, patient_id, name, sex, birth_date,
           name_alphabetic, name_ideographic, name_phonetic) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (site_id, patient_key) DO UPDATE SET
           name_alphabetic = CASE WHEN patients.name IS NULL THEN excluded.name_alphabetic ELSE patients.name_alphabetic END,
           name_ideographic = CASE WHEN patients.name IS NULL THEN excluded.name_ideographic ELSE patients.name_ideographic END,
           name_phonetic = CASE WHEN patients.name IS NULL THEN excluded.name_phonetic ELSE patients.name_phonetic END,
           name = COALESCE(patients.name, excluded.name),
           sex = COALESCE(patients.sex, excluded.sex),
           birth_date = COALESCE(patients.birth_date, excluded.birth_date)
         RETURNING id",
    )
    .bind(rec.site_id)
    .bind(&patient_key)
    .bind(&rec.patient.patient_id)
    .bind(&rec.patient.name)
    .bind(&rec.patient.sex)
    .bind(&rec.patient.birth_date)
    .bind(&name_groups[0])
    .bind(&name_groups[1])
    .bind(&name_groups[2])
    .fetch_one(&mut **tx)
    .await?;

    // What exists already, in one round trip: each statement is a message to
    // SQLite's worker thread and back, and this runs once per object.
    let (study_ref, modalities, series_ref): (Option<i64>, Option<String>, Option<i64>) = sqlx::query_as(
        "SELECT s.id, s.modalities, (SELECT id FROM series WHERE series_uid = $2)
         FROM (SELECT 1 AS one) AS anchor LEFT JOIN studies s ON s.study_uid = $1",
    )
    .bind(rec.study_uid.as_str())
    .bind(rec.series_uid.as_str())
    .fetch_one(&mut **tx)
    .await?;
    // A resent SOP instance (a new version) is not a new instance.
    let new_instances = i64::from(rec.version == 1);
    let new_series = i64::from(series_ref.is_none());
    let study_ref: i64 = match study_ref {
        Some(id) => {
            let modalities = add_modality(modalities.as_deref().unwrap_or_default(), rec.series.modality.as_deref());
            sqlx::query(
                "UPDATE studies SET last_received_at = $1, status = 'receiving', completed_at = NULL,
                   modalities = $2, size_bytes = size_bytes + $3,
                   num_instances = num_instances + $4, num_series = num_series + $5,
                   accession_number = COALESCE(accession_number, $6), study_date = COALESCE(study_date, $7),
                   study_time = COALESCE(study_time, $8), description = COALESCE(description, $9),
                   referring_physician = COALESCE(referring_physician, $10), institution = COALESCE(institution, $11),
                   study_id = COALESCE(study_id, $12)
                 WHERE id = $13",
            )
            .bind(rec.received_at)
            .bind(modalities)
            .bind(rec.size_bytes)
            .bind(new_instances)
            .bind(new_series)
            .bind(&rec.study.accession_number)
            .bind(&rec.study.study_date)
            .bind(&rec.study.study_time)
            .bind(&rec.study.description)
            .bind(&rec.study.referring_physician)
            .bind(&rec.study.institution)
            .bind(&rec.study.study_id)
            .bind(id)
            .execute(&mut **tx)
            .await?;
            id
        }
        None => {
            sqlx::query_scalar(
                "INSERT INTO studies (study_uid, patient_ref, site_id, accession_number, study_date, study_time,
                   description, referring_physician, institution, modalities, size_bytes, num_instances, num_series,
                   first_received_at, last_received_at, study_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING id",
            )
            .bind(rec.study_uid.as_str())
            .bind(patient_ref)
            .bind(rec.site_id)
            .bind(&rec.study.accession_number)
            .bind(&rec.study.study_date)
            .bind(&rec.study.study_time)
            .bind(&rec.study.description)
            .bind(&rec.study.referring_physician)
            .bind(&rec.study.institution)
            .bind(add_modality("", rec.series.modality.as_deref()))
            .bind(rec.size_bytes)
            .bind(new_instances)
            .bind(new_series)
            .bind(rec.received_at)
            .bind(rec.received_at)
            .bind(&rec.study.study_id)
            .fetch_one(&mut **tx)
            .await?
        }
    };

    let series_ref = match series_ref {
        Some(id) => {
            sqlx::query("UPDATE series SET size_bytes = size_bytes + $1, num_instances = num_instances + $2 WHERE id = $3")
                .bind(rec.size_bytes)
                .bind(new_instances)
                .bind(id)
                .execute(&mut **tx)
                .await?;
            id
        }
        None => {
            sqlx::query_scalar(
                "INSERT INTO series (series_uid, study_ref, modality, body_part, description, series_number, size_bytes,
                   num_instances, performed_start_date, performed_start_time)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            )
            .bind(rec.series_uid.as_str())
            .bind(study_ref)
            .bind(&rec.series.modality)
            .bind(&rec.series.body_part)
            .bind(&rec.series.description)
            .bind(rec.series.series_number)
            .bind(rec.size_bytes)
            .bind(new_instances)
            .bind(&rec.series.performed_start_date)
            .bind(&rec.series.performed_start_time)
            .fetch_one(&mut **tx)
            .await?
        }
    };

    sqlx::query(
        "INSERT INTO instances (sop_instance_uid, version, series_ref, sop_class_uid, transfer_syntax_uid,
           instance_number, number_of_frames, size_bytes, content_hash, object_key, calling_ae, received_at, conflict,
           rows, columns, bits_allocated)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(rec.sop_instance_uid.as_str())
    .bind(rec.version)
    .bind(series_ref)
    .bind(rec.sop_class_uid.as_str())
    .bind(rec.transfer_syntax_uid.as_str())
    .bind(rec.instance_number)
    .bind(rec.number_of_frames)
    .bind(rec.size_bytes)
    .bind(&rec.content_hash)
    .bind(&rec.object_key)
    .bind(&rec.calling_ae)
    .bind(rec.received_at)
    .bind(i64::from(rec.conflict))
    .bind(rec.rows)
    .bind(rec.columns)
    .bind(rec.bits_allocated)
    .execute(&mut **tx)
    .await?;
    // Every stored version is rendered (thumbnail, preview) by the pipeline.
    let render = crate::jobs::JobPayload::InstanceRender {
        sop_instance_uid: rec.sop_instance_uid.as_str().to_owned(),
        object_key: rec.object_key.clone(),
    };
    crate::jobs::enqueue_in(tx, &render, rec.received_at).await
}

/// A filter for [`Database::list_studies`]. Empty fields match everything.
/// (What an HTTP client may ask is the HTTP layer's to parse.)
#[derive(Debug, Clone, Default)]
pub struct StudyQuery {
    /// Only this site's studies (set by the caller's authorisation, not the client).
    pub site_id: Option<i64>,
    pub site: Option<String>,
    pub patient_id: Option<String>,
    /// Substring of the patient's name.
    pub patient_name: Option<String>,
    pub accession_number: Option<String>,
    pub modality: Option<String>,
    /// Study date range, `YYYYMMDD`, inclusive.
    pub date_from: Option<String>,
    pub date_to: Option<String>,
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// A study as listed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StudySummary {
    pub study_uid: String,
    pub site: String,
    pub patient_id: String,
    /// As stored (DICOM PN: `Zhang^Wei=张^伟`).
    pub patient_name: Option<String>,
    /// As a person reads it (张伟), see [`crate::person_name`].
    pub patient_display_name: Option<String>,
    pub patient_sex: Option<String>,
    pub patient_birth_date: Option<String>,
    pub accession_number: Option<String>,
    pub study_date: Option<String>,
    pub study_time: Option<String>,
    pub description: Option<String>,
    pub referring_physician: Option<String>,
    pub institution: Option<String>,
    pub modalities: String,
    pub num_series: i64,
    pub num_instances: i64,
    pub size_bytes: i64,
    pub status: String,
    pub first_received_at: i64,
    pub last_received_at: i64,
    pub completed_at: Option<i64>,
}

/// One page of studies.
#[derive(Debug, Clone, Serialize)]
pub struct StudyPage {
    pub total: i64,
    pub offset: i64,
    pub limit: i64,
    pub studies: Vec<StudySummary>,
}

/// A stored object as listed in a study.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct InstanceSummary {
    pub sop_instance_uid: String,
    pub version: i64,
    pub sop_class_uid: String,
    pub transfer_syntax_uid: String,
    pub instance_number: Option<i64>,
    pub number_of_frames: Option<i64>,
    pub size_bytes: i64,
    pub content_hash: String,
    pub object_key: String,
    pub calling_ae: Option<String>,
    pub received_at: i64,
    pub conflict: bool,
}

/// A series with its objects.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesDetail {
    pub series_uid: String,
    pub modality: Option<String>,
    pub body_part: Option<String>,
    pub description: Option<String>,
    pub series_number: Option<i64>,
    pub num_instances: i64,
    pub size_bytes: i64,
    pub instances: Vec<InstanceSummary>,
}

/// A study with its series and objects.
#[derive(Debug, Clone, Serialize)]
pub struct StudyDetail {
    #[serde(flatten)]
    pub summary: StudySummary,
    pub site_id: i64,
    pub series: Vec<SeriesDetail>,
    /// Rendering state: ready once every instance has a thumbnail or a
    /// recorded reason why it cannot have one.
    pub rendering: RenderingState,
}

/// How far the pipeline has got with a study.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RenderingState {
    pub ready: bool,
    pub thumbnails: i64,
    pub pending: i64,
    /// Instances that cannot be rendered, with the reason.
    pub undecodable: Vec<Undecodable>,
}

/// An instance the pipeline could not render.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Undecodable {
    pub sop_instance_uid: String,
    pub reason: String,
}

const STUDY_COLUMNS: &str = "s.study_uid, si.name, p.patient_id, p.name, p.sex, p.birth_date, s.accession_number,
    s.study_date, s.study_time, s.description, s.referring_physician, s.institution, s.modalities, s.num_series,
    s.num_instances, s.size_bytes, s.status, s.first_received_at, s.last_received_at, s.completed_at, s.site_id";
const STUDY_FROM: &str = "FROM studies s JOIN patients p ON p.id = s.patient_ref JOIN sites si ON si.id = s.site_id";

/// The `WHERE` clause of a study list: every condition the query sets.
fn push_study_filter(sql: &mut SqlBuilder, q: &StudyQuery) {
    let mut joiner = " WHERE ";
    let mut next = |sql: &mut SqlBuilder| {
        sql.push(joiner);
        joiner = " AND ";
    };
    if let Some(site_id) = q.site_id {
        next(sql);
        sql.push("s.site_id = ").push_bind(site_id);
    }
    let text = |value: &Option<String>| value.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
    let conditions: [(&str, Option<String>, &str); 8] = [
        ("si.name = ", text(&q.site), ""),
        ("p.patient_id = ", text(&q.patient_id), ""),
        ("LOWER(p.name) LIKE LOWER(", text(&q.patient_name).map(|v| format!("%{}%", like_escape(&v))), ") ESCAPE '!'"),
        ("s.accession_number = ", text(&q.accession_number), ""),
        (
            "LOWER('\\' || s.modalities || '\\') LIKE LOWER(",
            text(&q.modality).map(|v| format!("%\\{}\\%", like_escape(&v))),
            ") ESCAPE '!'",
        ),
        ("s.study_date >= ", text(&q.date_from), ""),
        ("s.study_date <= ", text(&q.date_to), ""),
        ("s.status = ", text(&q.status), ""),
    ];
    for (before, value, after) in conditions {
        if let Some(value) = value {
            next(sql);
            sql.push(before).push_bind(value).push(after);
        }
    }
}

fn study_from_row(r: &sqlx::any::AnyRow) -> StudySummary {
    StudySummary {
        study_uid: r.get(0),
        site: r.get(1),
        patient_id: r.get(2),
        patient_name: r.get(3),
        patient_display_name: r.get::<Option<String>, _>(3).map(|n| crate::person_name::display(&n)),
        patient_sex: r.get(4),
        patient_birth_date: r.get(5),
        accession_number: r.get(6),
        study_date: r.get(7),
        study_time: r.get(8),
        description: r.get(9),
        referring_physician: r.get(10),
        institution: r.get(11),
        modalities: r.get(12),
        num_series: r.get(13),
        num_instances: r.get(14),
        size_bytes: r.get(15),
        status: r.get(16),
        first_received_at: r.get(17),
        last_received_at: r.get(18),
        completed_at: r.get(19),
    }
}

impl Database {
    /// Every stored version of `sop`, newest first.
    pub async fn versions_of(&self, sop: &SopInstanceUid) -> Result<Vec<StoredVersion>, DbError> {
        let rows = sqlx::query(
            "SELECT i.version, i.content_hash, i.object_key, st.site_id FROM instances i \
             JOIN series se ON se.id = i.series_ref JOIN studies st ON st.id = se.study_ref \
             WHERE i.sop_instance_uid = $1 ORDER BY i.version DESC",
        )
        .bind(sop.as_str())
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| StoredVersion { version: r.get(0), content_hash: r.get(1), object_key: r.get(2), site_id: r.get(3) })
            .collect())
    }

    /// A page of studies, newest received first.
    pub async fn list_studies(&self, q: &StudyQuery) -> Result<StudyPage, DbError> {
        let limit = q.limit.unwrap_or(50).clamp(1, 500);
        let offset = q.offset.unwrap_or(0).max(0);
        let mut count = SqlBuilder::new(format!("SELECT COUNT(*) {STUDY_FROM}"));
        push_study_filter(&mut count, q);
        let total = count.query_scalar::<i64>().fetch_one(self.pool()).await?;

        let mut list = SqlBuilder::new(format!("SELECT {STUDY_COLUMNS} {STUDY_FROM}"));
        push_study_filter(&mut list, q);
        list.push(" ORDER BY s.last_received_at DESC, s.id DESC LIMIT ").push_bind(limit).push(" OFFSET ").push_bind(offset);
        let rows = list.query().fetch_all(self.pool()).await?;
        Ok(StudyPage { total, offset, limit, studies: rows.iter().map(study_from_row).collect() })
    }

    /// A study as listed, and the id of its site; `None` when it does not exist.
    pub async fn study_summary(&self, uid: &StudyUid) -> Result<Option<(StudySummary, i64)>, DbError> {
        let sql = format!("SELECT {STUDY_COLUMNS} {STUDY_FROM} WHERE s.study_uid = $1");
        let row = sqlx::query(&sql).bind(uid.as_str()).fetch_optional(self.pool()).await?;
        Ok(row.map(|r| (study_from_row(&r), r.get(20))))
    }

    /// A study with its series and instances; `None` when it does not exist or
    /// (with `site_id`) belongs to another site — the two are not told apart.
    pub async fn study_detail(&self, uid: &StudyUid, site_id: Option<i64>) -> Result<Option<StudyDetail>, DbError> {
        let Some((summary, owner)) = self.study_summary(uid).await? else {
            return Ok(None);
        };
        if site_id.is_some_and(|s| s != owner) {
            return Ok(None);
        }
        let series_rows = sqlx::query(
            "SELECT se.id, se.series_uid, se.modality, se.body_part, se.description, se.series_number,
                    se.num_instances, se.size_bytes
             FROM series se JOIN studies s ON s.id = se.study_ref WHERE s.study_uid = $1
             ORDER BY se.series_number, se.series_uid",
        )
        .bind(uid.as_str())
        .fetch_all(self.pool())
        .await?;
        let mut series = Vec::with_capacity(series_rows.len());
        for r in series_rows {
            let series_ref: i64 = r.get(0);
            let instances = sqlx::query(
                "SELECT sop_instance_uid, version, sop_class_uid, transfer_syntax_uid, instance_number,
                        number_of_frames, size_bytes, content_hash, object_key, calling_ae, received_at, conflict
                 FROM instances WHERE series_ref = $1 ORDER BY instance_number, sop_instance_uid, version",
            )
            .bind(series_ref)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|i| InstanceSummary {
                sop_instance_uid: i.get(0),
                version: i.get(1),
                sop_class_uid: i.get(2),
                transfer_syntax_uid: i.get(3),
                instance_number: i.get(4),
                number_of_frames: i.get(5),
                size_bytes: i.get(6),
                content_hash: i.get(7),
                object_key: i.get(8),
                calling_ae: i.get(9),
                received_at: i.get(10),
                conflict: i.get::<i64, _>(11) != 0,
            })
            .collect();
            series.push(SeriesDetail {
                series_uid: r.get(1),
                modality: r.get(2),
                body_part: r.get(3),
                description: r.get(4),
                series_number: r.get(5),
                num_instances: r.get(6),
                size_bytes: r.get(7),
                instances,
            });
        }
        let rendering = self.rendering_state(uid).await?;
        Ok(Some(StudyDetail { summary, site_id: owner, series, rendering }))
    }

    /// Thumbnails made, still pending, and undecodable instances of a study
    /// (latest version of each instance).
    async fn rendering_state(&self, uid: &StudyUid) -> Result<RenderingState, DbError> {
        let rows = sqlx::query(
            "SELECT i.sop_instance_uid, d.object_key, d.error
             FROM instances i JOIN series se ON se.id = i.series_ref JOIN studies st ON st.id = se.study_ref
             LEFT JOIN derived d ON d.sop_instance_uid = i.sop_instance_uid AND d.kind = 'thumbnail'
             WHERE st.study_uid = $1
               AND i.version = (SELECT MAX(version) FROM instances j WHERE j.sop_instance_uid = i.sop_instance_uid)",
        )
        .bind(uid.as_str())
        .fetch_all(self.pool())
        .await?;
        let (mut thumbnails, mut pending, mut undecodable) = (0, 0, Vec::new());
        for r in rows {
            let (sop, key, error): (String, Option<String>, Option<String>) = (r.get(0), r.get(1), r.get(2));
            match (key, error) {
                (Some(_), _) => thumbnails += 1,
                (None, Some(reason)) => undecodable.push(Undecodable { sop_instance_uid: sop, reason }),
                (None, None) => pending += 1,
            }
        }
        Ok(RenderingState { ready: pending == 0, thumbnails, pending, undecodable })
    }

    /// The middle instance (by instance number) of a series, which stands for
    /// the series in thumbnails, and the site owning it.
    pub async fn series_representative(&self, series_uid: &str) -> Result<Option<(String, i64)>, DbError> {
        let rows = sqlx::query(
            "SELECT i.sop_instance_uid, st.site_id FROM instances i JOIN series se ON se.id = i.series_ref
             JOIN studies st ON st.id = se.study_ref
             WHERE se.series_uid = $1 AND i.version = 1
             ORDER BY i.instance_number, i.sop_instance_uid",
        )
        .bind(series_uid)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.get(rows.len() / 2).map(|r| (r.get(0), r.get(1))))
    }

    /// The first waveform instance (an ECG) of a study, if it has one.
    pub async fn first_waveform_instance(&self, study_uid: &str) -> Result<Option<String>, DbError> {
        Ok(sqlx::query_scalar(
            "SELECT i.sop_instance_uid FROM instances i JOIN series se ON se.id = i.series_ref JOIN studies s ON s.id = se.study_ref
             WHERE s.study_uid = $1 AND i.sop_class_uid LIKE $2 || '%' ORDER BY i.id LIMIT 1",
        )
        .bind(study_uid)
        .bind(crate::uid::WAVEFORM_SOP_CLASS_PREFIX)
        .fetch_optional(self.pool())
        .await?)
    }

    /// The body part a study's series name (the first that names one).
    pub async fn study_body_part(&self, study_uid: &str) -> Result<Option<String>, DbError> {
        Ok(sqlx::query_scalar(
            "SELECT se.body_part FROM series se JOIN studies s ON s.id = se.study_ref
             WHERE s.study_uid = $1 AND se.body_part IS NOT NULL ORDER BY se.id LIMIT 1",
        )
        .bind(study_uid)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Number of stored object versions (all sites).
    pub async fn count_instances(&self) -> Result<i64, DbError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM instances").fetch_one(self.pool()).await?)
    }
}

fn like_escape(v: &str) -> String {
    v.replace('!', "!!").replace('%', "!%").replace('_', "!_")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Durability;
    use crate::sites::NewSite;

    fn record(site_id: i64, series: &str, modality: &str, sop: &str, version: i64, size_bytes: i64) -> InstanceRecord {
        InstanceRecord {
            site_id,
            calling_ae: Some("COUNTY1".into()),
            study_uid: StudyUid::parse("1.2.840.99.1").unwrap(),
            series_uid: SeriesUid::parse(series).unwrap(),
            sop_instance_uid: SopInstanceUid::parse(sop).unwrap(),
            sop_class_uid: SopClassUid::parse("1.2.840.10008.5.1.4.1.1.2").unwrap(),
            transfer_syntax_uid: TransferSyntaxUid::parse("1.2.840.10008.1.2.1").unwrap(),
            version,
            conflict: version > 1,
            object_key: format!("originals/{sop}.v{version}.dcm"),
            size_bytes,
            content_hash: format!("{version:032x}"),
            received_at: 1_700_000_000_000,
            patient: PatientAttributes { patient_id: "P1".into(), name: Some("张三".into()), ..Default::default() },
            study: StudyAttributes { accession_number: Some("A1".into()), ..Default::default() },
            series: SeriesAttributes { modality: Some(modality.into()), ..Default::default() },
            instance_number: Some(1),
            number_of_frames: None,
            rows: None,
            columns: None,
            bits_allocated: None,
        }
    }

    /// The study's and series' counters are kept up as rows arrive: a new
    /// version adds bytes but is not a new instance.
    #[tokio::test]
    async fn counts_sizes_and_modalities_follow_the_rows() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&format!("sqlite://{}", dir.path().join("index.db").display()), Durability::Full).await.unwrap();
        let site = db.add_site(&NewSite { name: "County 1".into(), ae_titles: vec!["COUNTY1".into()], networks: vec![] }).await.unwrap();
        let rows = [
            record(site.id, "1.2.840.99.1.1", "CT", "1.2.840.99.1.1.1", 1, 100),
            record(site.id, "1.2.840.99.1.1", "CT", "1.2.840.99.1.1.2", 1, 200),
            record(site.id, "1.2.840.99.1.2", "SR", "1.2.840.99.1.2.1", 1, 40),
            record(site.id, "1.2.840.99.1.1", "CT", "1.2.840.99.1.1.1", 2, 101),
        ];
        for row in &rows {
            let mut tx = db.redoable().begin().await.unwrap();
            insert_instance(&mut tx, row).await.unwrap();
            tx.commit().await.unwrap();
        }
        let detail = db.study_detail(&rows[0].study_uid, Some(site.id)).await.unwrap().unwrap();
        let study = &detail.summary;
        assert_eq!((study.num_series, study.num_instances, study.size_bytes), (2, 3, 441));
        assert_eq!(study.modalities, "CT\\SR");
        let counts: Vec<_> =
            detail.series.iter().map(|s| (s.series_uid.as_str(), s.num_instances, s.size_bytes, s.instances.len())).collect();
        assert_eq!(counts, [("1.2.840.99.1.1", 2, 401, 3), ("1.2.840.99.1.2", 1, 40, 1)]);
    }

    #[test]
    fn modalities_accumulate_sorted_without_repeats() {
        assert_eq!(add_modality("", Some("CT")), "CT");
        assert_eq!(add_modality("CT", Some("SR")), "CT\\SR");
        assert_eq!(add_modality("CT\\SR", Some("CT")), "CT\\SR");
        assert_eq!(add_modality("SR", Some("CT")), "CT\\SR");
        assert_eq!(add_modality("CT", None), "CT");
    }
}
