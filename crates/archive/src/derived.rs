//! Derived objects: thumbnails and previews made from the originals.
//!
//! They live in a tree parallel to the originals,
//! `derived/<study>/<series>/<sop>.<kind>.<ext>`: one directory per series,
//! not one per instance, because on ext4 every new directory is an inode
//! allocation that cost the receiving server more CPU than writing the file.
//! They can always be rebuilt, so they are written atomically (a temporary
//! file, then a rename) but not fsynced. The `derived` table records each key, so objects
//! made under an earlier layout stay found; it also says why an instance could
//! not be rendered.

use sqlx::Row;

use crate::db::{Database, DbError, now_ms};
use crate::jobs::{Lease, Settled};
use crate::store::{ObjectKey, StoreError};
use crate::uid::SopInstanceUid;

/// What a derived object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DerivedKind {
    /// 256 px on the long side, JPEG.
    Thumbnail,
    /// Full resolution, 8-bit.
    Preview,
    /// An ECG's analysis (intervals, axes, QRS positions) as JSON.
    EcgMeasurements,
    /// An ECG's 12-lead page as SVG.
    EcgPage,
}

impl DerivedKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DerivedKind::Thumbnail => "thumbnail",
            DerivedKind::Preview => "preview",
            DerivedKind::EcgMeasurements => "ecg-measurements",
            DerivedKind::EcgPage => "ecg-page",
        }
    }
}

/// The key of a derived object of the instance `sop` stored under `original`
/// (`originals/<study>/<series>/…`).
pub fn derived_key(original: &ObjectKey, sop: &SopInstanceUid, kind: DerivedKind, extension: &str) -> Result<ObjectKey, StoreError> {
    let Some(series_path) = crate::layout::series_path_of(original) else {
        return Err(StoreError::InvalidKey { key: original.to_string(), reason: "is not the key of an original object" });
    };
    ObjectKey::new(format!("derived/{series_path}/{sop}.{}.{extension}", kind.as_str()))
}

/// A derived object as recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DerivedRecord {
    pub sop_instance_uid: String,
    pub kind: String,
    /// `None` when rendering failed.
    pub object_key: Option<String>,
    pub content_type: Option<String>,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub frames: Option<i64>,
    pub size_bytes: Option<i64>,
    pub etag: Option<String>,
    /// `undecodable: <reason>`.
    pub error: Option<String>,
}

impl DerivedRecord {
    /// The record of an instance that cannot be rendered.
    pub fn undecodable(sop: &SopInstanceUid, kind: DerivedKind, reason: &str) -> DerivedRecord {
        DerivedRecord {
            sop_instance_uid: sop.to_string(),
            kind: kind.as_str().into(),
            object_key: None,
            content_type: None,
            width: None,
            height: None,
            frames: None,
            size_bytes: None,
            etag: None,
            error: Some(format!("undecodable: {reason}")),
        }
    }
}

impl Database {
    /// Records (replacing) what the job held by `lease` made — derived
    /// objects, or why they cannot be made — and marks the job done, in one
    /// transaction: the queue never says done without the records. A lease
    /// lost meanwhile records nothing (the job's current holder will).
    /// Committed without its own fsync: lost in a power cut, the job runs
    /// again.
    pub async fn record_derived(&self, lease: Lease, records: &[DerivedRecord]) -> Result<Settled, DbError> {
        let mut tx = self.redoable().begin().await?;
        for record in records {
            sqlx::query(
                "INSERT INTO derived (sop_instance_uid, kind, object_key, content_type, width, height, frames, size_bytes,
                   etag, error, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (sop_instance_uid, kind) DO UPDATE SET object_key = excluded.object_key,
                   content_type = excluded.content_type, width = excluded.width, height = excluded.height,
                   frames = excluded.frames, size_bytes = excluded.size_bytes, etag = excluded.etag,
                   error = excluded.error, created_at = excluded.created_at",
            )
            .bind(&record.sop_instance_uid)
            .bind(&record.kind)
            .bind(&record.object_key)
            .bind(&record.content_type)
            .bind(record.width)
            .bind(record.height)
            .bind(record.frames)
            .bind(record.size_bytes)
            .bind(&record.etag)
            .bind(&record.error)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        }
        if !crate::jobs::mark_done(&mut tx, lease).await? {
            tx.rollback().await?;
            return Ok(Settled::LeaseLost);
        }
        tx.commit().await?;
        Ok(Settled::Recorded)
    }

    /// The derived object of `kind` for `sop`, if any was made (or failed).
    pub async fn derived(&self, sop: &SopInstanceUid, kind: DerivedKind) -> Result<Option<DerivedRecord>, DbError> {
        let row = sqlx::query(
            "SELECT sop_instance_uid, kind, object_key, content_type, width, height, frames, size_bytes, etag, error
             FROM derived WHERE sop_instance_uid = $1 AND kind = $2",
        )
        .bind(sop.as_str())
        .bind(kind.as_str())
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| DerivedRecord {
            sop_instance_uid: r.get(0),
            kind: r.get(1),
            object_key: r.get(2),
            content_type: r.get(3),
            width: r.get(4),
            height: r.get(5),
            frames: r.get(6),
            size_bytes: r.get(7),
            etag: r.get(8),
            error: r.get(9),
        }))
    }

    /// Where the original object of `sop` (latest version) is stored: its
    /// owning site, for access checks, its object key and its size.
    pub async fn instance_object(&self, sop: &SopInstanceUid) -> Result<Option<StoredInstance>, DbError> {
        let row = sqlx::query(
            "SELECT st.site_id, i.object_key, i.size_bytes FROM instances i JOIN series se ON se.id = i.series_ref
             JOIN studies st ON st.id = se.study_ref WHERE i.sop_instance_uid = $1 ORDER BY i.version DESC LIMIT 1",
        )
        .bind(sop.as_str())
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| StoredInstance { site_id: r.get(0), object_key: r.get(1), size_bytes: r.get(2) }))
    }

    /// The site that owns the study of `sop` (latest version), for access checks.
    pub async fn instance_site(&self, sop: &SopInstanceUid) -> Result<Option<i64>, DbError> {
        Ok(sqlx::query_scalar(
            "SELECT st.site_id FROM instances i JOIN series se ON se.id = i.series_ref JOIN studies st ON st.id = se.study_ref
             WHERE i.sop_instance_uid = $1 ORDER BY i.version DESC LIMIT 1",
        )
        .bind(sop.as_str())
        .fetch_optional(self.pool())
        .await?)
    }
}

/// Where an instance's original object is, as [`Database::instance_object`] finds it.
#[derive(Debug, Clone)]
pub struct StoredInstance {
    pub site_id: i64,
    pub object_key: String,
    pub size_bytes: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_objects_sit_in_a_tree_parallel_to_the_originals() {
        let sop = SopInstanceUid::parse("1.2.3.4.5").unwrap();
        let original = ObjectKey::new("originals/1.2.3/1.2.3.4/1.2.3.4.5.v2.dcm").unwrap();
        let key = derived_key(&original, &sop, DerivedKind::Thumbnail, "jpg").unwrap();
        assert_eq!(key.as_str(), "derived/1.2.3/1.2.3.4/1.2.3.4.5.thumbnail.jpg");
        let key = derived_key(&original, &sop, DerivedKind::EcgMeasurements, "json").unwrap();
        assert_eq!(key.as_str(), "derived/1.2.3/1.2.3.4/1.2.3.4.5.ecg-measurements.json");
        let elsewhere = ObjectKey::new("reports/1.2.3/report.pdf").unwrap();
        assert!(derived_key(&elsewhere, &sop, DerivedKind::Preview, "png").is_err());
    }
}
