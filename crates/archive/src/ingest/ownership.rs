//! Which site a UID belongs to: the site that sent it first.
//!
//! County hospitals share nothing but the centre, and a UID is only a
//! string the sender chose. Without this check a site that learnt (or
//! guessed, or copied from a CD) another hospital's Study Instance UID could
//! add images to that hospital's study, or make a new version of its ECG.
//! So a study, a series and an instance are owned by the site whose object
//! first carried them, and an object from another site carrying one of them
//! is refused and recorded in `uid_collisions` for the administrator.
//!
//! Study and series owners are remembered in memory once looked up (a
//! study's three hundred slices ask once) and *reserved* before the index
//! is asked, so that two sites sending the same new UID at the same moment
//! cannot both find it free: the second finds the first's reservation. The
//! memory is bounded: when it is full it is cleared, at a moment when no
//! object is on its way to the index (so no reservation is still needed),
//! which only costs lookups. A separate `telediag import` process has its own memory and is
//! checked against the index alone.

use std::collections::HashMap;
use std::sync::Mutex;

use sqlx::Row;

use crate::db::{Database, DbError, now_ms};
use crate::uid::{SeriesUid, StudyUid};

/// Owners remembered before the memory is cleared.
const REMEMBERED: usize = 20_000;

/// What kind of UID was found held elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UidKind {
    Study,
    Series,
    Instance,
}

impl UidKind {
    pub fn as_str(self) -> &'static str {
        match self {
            UidKind::Study => "study",
            UidKind::Series => "series",
            UidKind::Instance => "instance",
        }
    }

    /// The attribute's name, for the sender's error comment.
    pub fn attribute(self) -> &'static str {
        match self {
            UidKind::Study => "Study Instance UID",
            UidKind::Series => "Series Instance UID",
            UidKind::Instance => "SOP Instance UID",
        }
    }
}

/// A UID the sender does not own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collision {
    pub kind: UidKind,
    pub uid: String,
    pub owner_site_id: i64,
}

/// The remembered and reserved owners of study and series UIDs.
#[derive(Default)]
pub(super) struct Owners {
    known: Mutex<HashMap<(UidKind, String), i64>>,
}

impl Owners {
    /// Checks that `site_id` may add an object to `study` / `series`:
    /// each is either unknown (and is now reserved for `site_id`) or already
    /// `site_id`'s.
    /// `quiet`: no object is between its check and its index row, so the
    /// memory may be cleared when full.
    pub(super) async fn check(
        &self,
        db: &Database,
        site_id: i64,
        study: &StudyUid,
        series: &SeriesUid,
        quiet: bool,
    ) -> Result<Option<Collision>, DbError> {
        let wanted = [(UidKind::Study, study.as_str()), (UidKind::Series, series.as_str())];
        // Reserve what is not yet known, so a concurrent sender from another
        // site finds the reservation; then ask the index about those.
        let mut reserved = Vec::new();
        {
            let mut known = self.known.lock().expect("owner memory poisoned");
            // Forgetting is safe only when no reservation is still needed:
            // nothing on its way to the index.
            if known.len() >= REMEMBERED && quiet {
                known.clear();
            }
            for (kind, uid) in wanted {
                match known.get(&(kind, uid.to_owned())) {
                    Some(&owner) if owner != site_id => {
                        // What this object reserved a moment ago goes back.
                        for (kind, uid) in &reserved {
                            known.remove(&(*kind, (*uid as &str).to_owned()));
                        }
                        return Ok(Some(Collision { kind, uid: uid.to_owned(), owner_site_id: owner }));
                    }
                    Some(_) => {}
                    None => {
                        known.insert((kind, uid.to_owned()), site_id);
                        reserved.push((kind, uid));
                    }
                }
            }
        }
        let mut collision = None;
        for &(kind, uid) in &reserved {
            let owner = match kind {
                UidKind::Study => study_owner(db, uid).await,
                _ => series_owner(db, uid).await,
            };
            match owner {
                Err(e) => {
                    self.release(&reserved, site_id);
                    return Err(e);
                }
                Ok(Some(owner)) if owner != site_id => {
                    self.known.lock().expect("owner memory poisoned").insert((kind, uid.to_owned()), owner);
                    collision = Some(Collision { kind, uid: uid.to_owned(), owner_site_id: owner });
                    break;
                }
                Ok(_) => {}
            }
        }
        if collision.is_some() {
            // The object will not be stored: what it reserved is given back
            // (the colliding UID now remembers its true owner instead).
            self.release(&reserved, site_id);
        }
        Ok(collision)
    }

    /// Gives back reservations for an object that was not stored.
    pub(super) fn release(&self, reserved: &[(UidKind, &str)], site_id: i64) {
        let mut known = self.known.lock().expect("owner memory poisoned");
        for &(kind, uid) in reserved {
            let key = (kind, uid.to_owned());
            if known.get(&key) == Some(&site_id) {
                known.remove(&key);
            }
        }
    }
}

async fn study_owner(db: &Database, study: &str) -> Result<Option<i64>, DbError> {
    let row = sqlx::query("SELECT site_id FROM studies WHERE study_uid = $1").bind(study).fetch_optional(db.pool()).await?;
    Ok(row.map(|r| r.get(0)))
}

async fn series_owner(db: &Database, series: &str) -> Result<Option<i64>, DbError> {
    let row = sqlx::query("SELECT st.site_id FROM series se JOIN studies st ON st.id = se.study_ref WHERE se.series_uid = $1")
        .bind(series)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// One refused object, for the administrator.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CollisionRecord {
    pub id: i64,
    pub at: i64,
    pub kind: String,
    pub uid: String,
    pub owner_site_id: i64,
    pub sender_site_id: i64,
    pub calling_ae: Option<String>,
    pub sop_instance_uid: String,
}

impl Database {
    /// Records an object refused for carrying another site's UID.
    pub async fn record_collision(
        &self,
        collision: &Collision,
        sender_site_id: i64,
        calling_ae: Option<&str>,
        sop_instance_uid: &str,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO uid_collisions (at, kind, uid, owner_site_id, sender_site_id, calling_ae, sop_instance_uid) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(now_ms())
        .bind(collision.kind.as_str())
        .bind(&collision.uid)
        .bind(collision.owner_site_id)
        .bind(sender_site_id)
        .bind(calling_ae)
        .bind(sop_instance_uid)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The most recent refused objects, newest first.
    pub async fn uid_collisions(&self, limit: i64) -> Result<Vec<CollisionRecord>, DbError> {
        let rows = sqlx::query(
            "SELECT id, at, kind, uid, owner_site_id, sender_site_id, calling_ae, sop_instance_uid \
             FROM uid_collisions ORDER BY id DESC LIMIT $1",
        )
        .bind(limit.clamp(1, 1000))
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| CollisionRecord {
                id: r.get(0),
                at: r.get(1),
                kind: r.get(2),
                uid: r.get(3),
                owner_site_id: r.get(4),
                sender_site_id: r.get(5),
                calling_ae: r.get(6),
                sop_instance_uid: r.get(7),
            })
            .collect())
    }
}
