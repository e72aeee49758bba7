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
//! The first site to send a study or series UID *claims* it in the index
//! (`uid_claims`) before the object is published; an insert that keeps
//! whichever claim came first decides between concurrent senders. So two sites
//! sending the same new UID at the same moment, to one gateway or to two
//! gateways in different processes, cannot both find it free. Claims are
//! remembered in memory once made or found (a study's three hundred slices
//! ask once); a claim never changes, so the memory is only ever cleared,
//! when full, never wrong.

use std::collections::HashMap;
use std::sync::Mutex;

use sqlx::Row;

use crate::db::{Database, DbError, now_ms};
use crate::uid::{SeriesUid, StudyUid};

/// Claims remembered before the memory is cleared.
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

/// The remembered owners of study and series UIDs.
#[derive(Default)]
pub(super) struct Owners {
    known: Mutex<HashMap<(UidKind, String), i64>>,
}

impl Owners {
    /// Checks that `site_id` may add an object to `study` / `series`: each
    /// is either unclaimed (and is now claimed for `site_id`) or already
    /// `site_id`'s.
    pub(super) async fn check(
        &self,
        db: &Database,
        site_id: i64,
        study: &StudyUid,
        series: &SeriesUid,
    ) -> Result<Option<Collision>, DbError> {
        let uids = [(UidKind::Study, study.as_str()), (UidKind::Series, series.as_str())];
        // Both are looked at before either is claimed: an object refused for
        // its series must not leave its study claimed for the sender.
        let mut owners = [None, None];
        for ((kind, uid), owner) in uids.iter().zip(&mut owners) {
            *owner = match self.remembered(*kind, uid) {
                Some(known) => Some(known),
                None => owner_of(db, *kind, uid).await?,
            };
            if let Some(other) = owner.filter(|owner| *owner != site_id) {
                self.remember(*kind, uid, other);
                return Ok(Some(Collision { kind: *kind, uid: (*uid).to_owned(), owner_site_id: other }));
            }
        }
        for ((kind, uid), owner) in uids.into_iter().zip(owners) {
            let owner = match owner {
                Some(owner) => owner,
                None => claim(db, kind, uid, site_id).await?,
            };
            self.remember(kind, uid, owner);
            if owner != site_id {
                return Ok(Some(Collision { kind, uid: uid.to_owned(), owner_site_id: owner }));
            }
        }
        Ok(None)
    }

    fn remembered(&self, kind: UidKind, uid: &str) -> Option<i64> {
        self.known.lock().expect("owner memory poisoned").get(&(kind, uid.to_owned())).copied()
    }

    fn remember(&self, kind: UidKind, uid: &str, owner: i64) {
        let mut known = self.known.lock().expect("owner memory poisoned");
        if known.len() >= REMEMBERED {
            known.clear();
        }
        known.insert((kind, uid.to_owned()), owner);
    }
}

/// Who has claimed `uid`, if anyone.
async fn owner_of(db: &Database, kind: UidKind, uid: &str) -> Result<Option<i64>, DbError> {
    let row = sqlx::query("SELECT site_id FROM uid_claims WHERE kind = $1 AND uid = $2")
        .bind(kind.as_str())
        .bind(uid)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.map(|r| r.get::<i64, _>(0)))
}

/// Claims `uid` for `site_id` unless it is claimed already; returns its
/// owner either way. Committed at once, with the configured durability: a
/// claim must outlive any object acknowledged under it.
async fn claim(db: &Database, kind: UidKind, uid: &str, site_id: i64) -> Result<i64, DbError> {
    sqlx::query("INSERT INTO uid_claims (kind, uid, site_id, at) VALUES ($1, $2, $3, $4) ON CONFLICT (kind, uid) DO NOTHING")
        .bind(kind.as_str())
        .bind(uid)
        .bind(site_id)
        .bind(now_ms())
        .execute(db.pool())
        .await?;
    owner_of(db, kind, uid).await?.ok_or_else(|| DbError::Conflict(format!("the claim on {} {uid} vanished", kind.as_str())))
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
