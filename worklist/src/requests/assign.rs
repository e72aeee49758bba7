//! Who reads what: reader credentials, assignment by rules, the pool and
//! its claims (抢单), locks that lapse, admin unlock and reassignment.
//!
//! A claim is one conditional UPDATE (`state = 'received'` → `assigned`),
//! so of many simultaneous claims exactly one changes the row and wins; the
//! others see no change and are told who holds it. A holder's lock is
//! extended by activity (opening, saving a draft); a lock left to lapse
//! returns the request to the pool (or to the rules).

use std::time::Duration;

use sqlx::Row;
use telediag_archive::Database;
use telediag_archive::db::now_ms;
use tokio::sync::watch;

use super::{AssignmentMode, Change, Holder, ReadRequest, RequestState, transition, visible_request};
use crate::AppState;
use crate::auth::{CurrentUser, Role};
use crate::error::ApiError;

/// The modalities and sites a reader may read. Empty lists mean "every":
/// a radiologist with no modality listed reads every imaging modality, an
/// ECG doctor every ECG.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Credentials {
    #[serde(default)]
    pub modalities: Vec<String>,
    /// Site names.
    #[serde(default)]
    pub sites: Vec<String>,
}

/// Credentials with sites resolved to ids, for checks.
#[derive(Debug, Clone, Default)]
pub struct ReaderScope {
    modalities: Vec<String>,
    site_ids: Vec<i64>,
}

pub async fn credentials(db: &Database, user_id: i64) -> Result<(Credentials, ReaderScope), ApiError> {
    let modalities: Vec<String> = sqlx::query_scalar("SELECT modality FROM reader_modalities WHERE user_id = ? ORDER BY modality")
        .bind(user_id)
        .fetch_all(db.pool())
        .await
        .map_err(ApiError::database)?;
    let sites = sqlx::query("SELECT s.id, s.name FROM reader_sites r JOIN sites s ON s.id = r.site_id WHERE r.user_id = ? ORDER BY s.name")
        .bind(user_id)
        .fetch_all(db.pool())
        .await
        .map_err(ApiError::database)?;
    let scope = ReaderScope { modalities: modalities.clone(), site_ids: sites.iter().map(|r| r.get(0)).collect() };
    Ok((Credentials { modalities, sites: sites.iter().map(|r| r.get(1)).collect() }, scope))
}

/// Replaces a reader's credentials.
pub async fn set_credentials(db: &Database, user_id: i64, credentials: &Credentials) -> Result<(), ApiError> {
    let mut site_ids = Vec::new();
    for name in &credentials.sites {
        site_ids.push(db.site_by_name(name).await?.id);
    }
    let mut tx = db.pool().begin().await.map_err(ApiError::database)?;
    sqlx::query("DELETE FROM reader_modalities WHERE user_id = ?").bind(user_id).execute(&mut *tx).await.map_err(ApiError::database)?;
    sqlx::query("DELETE FROM reader_sites WHERE user_id = ?").bind(user_id).execute(&mut *tx).await.map_err(ApiError::database)?;
    for modality in &credentials.modalities {
        let modality = modality.trim().to_uppercase();
        if modality.is_empty() || modality.len() > 16 || !modality.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(ApiError::bad_request(format!("a modality is a DICOM code such as CT or ECG, found {modality:?}")));
        }
        sqlx::query("INSERT OR IGNORE INTO reader_modalities (user_id, modality) VALUES (?, ?)")
            .bind(user_id)
            .bind(&modality)
            .execute(&mut *tx)
            .await
            .map_err(ApiError::database)?;
    }
    for site in site_ids {
        sqlx::query("INSERT OR IGNORE INTO reader_sites (user_id, site_id) VALUES (?, ?)")
            .bind(user_id)
            .bind(site)
            .execute(&mut *tx)
            .await
            .map_err(ApiError::database)?;
    }
    tx.commit().await.map_err(ApiError::database)?;
    Ok(())
}

/// May a user with `roles` and `scope` read a `modality` study from `site_id`?
pub fn may_read(roles: &[Role], scope: &ReaderScope, modality: Option<&str>, site_id: i64) -> bool {
    let modality = modality.unwrap_or("OT");
    let role_fits = if modality == "ECG" { roles.contains(&Role::EcgDoctor) } else { roles.contains(&Role::Radiologist) };
    role_fits
        && (scope.modalities.is_empty() || scope.modalities.iter().any(|m| m == modality))
        && (scope.site_ids.is_empty() || scope.site_ids.contains(&site_id))
}

/// Refuses `action` on `request` unless `user` is credentialed to read it
/// (role, modality and site): claiming, signing, co-signing, returning,
/// flagging and amending all go through here.
pub async fn require_credentialed(db: &Database, user: &CurrentUser, request: &ReadRequest, action: &str) -> Result<(), ApiError> {
    let (_, scope) = credentials(db, user.id).await?;
    if may_read(&user.roles, &scope, request.modality.as_deref(), request.site_id) {
        return Ok(());
    }
    Err(ApiError::forbidden(&format!(
        "{action} for {} from {} (not in your credentials)",
        request.modality.as_deref().unwrap_or("this modality"),
        request.site
    )))
}

/// Keeps the pool requests `user` is qualified to read.
pub async fn only_qualified(db: &Database, user: &CurrentUser, requests: Vec<ReadRequest>) -> Result<Vec<ReadRequest>, ApiError> {
    let (_, scope) = credentials(db, user.id).await?;
    Ok(requests.into_iter().filter(|r| may_read(&user.roles, &scope, r.modality.as_deref(), r.site_id)).collect())
}

fn lock_until(state: &AppState) -> i64 {
    now_ms() + state.config.lock_secs as i64 * 1000
}

/// Claims a pool request for the caller. Exactly one of many simultaneous
/// claims wins; the others get 409 naming the holder.
pub async fn claim(state: &AppState, user: &CurrentUser, id: i64) -> Result<ReadRequest, ApiError> {
    let db = state.archive.database();
    let request = visible_request(db, user, id).await?;
    require_credentialed(db, user, &request, "reading").await?;
    if request.study_uid.is_none() {
        return Err(ApiError::conflict("the images of this request have not arrived"));
    }
    let won = take_from_pool(state, id, user.id, Some(user.id), "claimed from the pool").await?;
    let now = visible_request(db, user, id).await?;
    if !won {
        let holder = now.assigned_to_name.clone().unwrap_or_else(|| "another reader".into());
        return Err(ApiError::conflict(format!("request {id} is {} by {holder}", now.state.as_str())));
    }
    Ok(now)
}

/// Moves a pool request to `reader` if it is still in the pool: the one
/// conditional change both claims and rules go through.
async fn take_from_pool(state: &AppState, id: i64, reader: i64, by: Option<i64>, note: &str) -> Result<bool, ApiError> {
    let change = Change {
        from: &[RequestState::Received],
        held_by: None,
        to: RequestState::Assigned,
        by,
        note: Some(note),
        holder: Holder::to(reader, lock_until(state)),
    };
    transition(state.archive.database(), id, change).await
}

/// The holder gives a request back, or an admin unlocks it: back to the pool.
pub async fn release(state: &AppState, user: &CurrentUser, id: i64) -> Result<ReadRequest, ApiError> {
    let db = state.archive.database();
    let request = visible_request(db, user, id).await?;
    let admin = user.has(Role::Admin);
    if !admin && request.assigned_to != Some(user.id) {
        return Err(ApiError::forbidden("releasing a request someone else holds"));
    }
    let held_by = if admin { None } else { Some(user.id) };
    let note = if admin { "unlocked by an admin" } else { "released by the reader" };
    if !transition(
        db,
        id,
        Change {
            from: &[RequestState::Assigned, RequestState::Reading],
            held_by,
            to: RequestState::Received,
            by: Some(user.id),
            note: Some(note),
            holder: Holder::release(),
        },
    )
    .await?
    {
        return Err(ApiError::conflict(format!("request {id} is {} and cannot be released", request.state.as_str())));
    }
    after_arrival(state, id).await?;
    visible_request(db, user, id).await
}

/// An admin assigns (or reassigns) a request to a qualified reader.
pub async fn assign_to(state: &AppState, admin: &CurrentUser, id: i64, reader_id: i64) -> Result<ReadRequest, ApiError> {
    let db = state.archive.database();
    let request = visible_request(db, admin, id).await?;
    admin.require(Role::Admin, "assigning requests")?;
    let reader = db.user_by_id(reader_id).await?.ok_or_else(|| ApiError::not_found("reader"))?;
    let reader: CurrentUser = reader.into();
    let (_, scope) = credentials(db, reader.id).await?;
    if !may_read(&reader.roles, &scope, request.modality.as_deref(), request.site_id) {
        return Err(ApiError::bad_request(format!("{} is not credentialed to read this request", reader.username)));
    }
    let note = format!("assigned to {} by {}", reader.display_name, admin.display_name);
    if !transition(
        db,
        id,
        Change {
            from: &[RequestState::Received, RequestState::Assigned, RequestState::Reading],
            held_by: None,
            to: RequestState::Assigned,
            by: Some(admin.id),
            note: Some(&note),
            holder: Holder::to(reader.id, lock_until(state)),
        },
    )
    .await?
    {
        return Err(ApiError::conflict(format!("request {id} is {} and cannot be reassigned", request.state.as_str())));
    }
    visible_request(db, admin, id).await
}

/// The holder is working: extend the lock, and mark the request `reading`.
pub async fn touch(state: &AppState, user: &CurrentUser, request: &ReadRequest) -> Result<(), ApiError> {
    let db = state.archive.database();
    if request.assigned_to != Some(user.id) {
        return Err(ApiError::conflict(match &request.assigned_to_name {
            Some(name) => format!("request {} is held by {name}: claim it first", request.id),
            None => format!("request {} is not assigned to you: claim it first", request.id),
        }));
    }
    let until = lock_until(state);
    if request.state == RequestState::Assigned {
        transition(
            db,
            request.id,
            Change {
                from: &[RequestState::Assigned],
                held_by: Some(user.id),
                to: RequestState::Reading,
                by: Some(user.id),
                note: None,
                holder: Holder { assigned_to: None, locked_until: Some(Some(until)) },
            },
        )
        .await?;
    } else {
        sqlx::query("UPDATE read_requests SET locked_until = ? WHERE id = ? AND assigned_to = ?")
            .bind(until)
            .bind(request.id)
            .bind(user.id)
            .execute(db.pool())
            .await
            .map_err(ApiError::database)?;
    }
    Ok(())
}

/// The assignment mode for a request: the modality's (config) over the site's.
async fn mode_for(state: &AppState, id: i64) -> Result<(AssignmentMode, ReadRequestKey), ApiError> {
    let row = sqlx::query(
        "SELECT r.site_id, r.modality, r.patient_id, s.assignment_mode FROM read_requests r JOIN sites s ON s.id = r.site_id WHERE r.id = ?",
    )
    .bind(id)
    .fetch_one(state.archive.database().pool())
    .await
    .map_err(ApiError::database)?;
    let key = ReadRequestKey { site_id: row.get(0), modality: row.get(1), patient_id: row.get(2) };
    let by_modality = key.modality.as_ref().and_then(|m| state.config.assignment_by_modality.get(m)).copied();
    let by_site = AssignmentMode::parse(row.get::<&str, _>(3)).unwrap_or(AssignmentMode::Pool);
    Ok((by_modality.unwrap_or(by_site), key))
}

struct ReadRequestKey {
    site_id: i64,
    modality: Option<String>,
    patient_id: Option<String>,
}

/// Called when a request becomes readable (or returns to the pool): assigns
/// it by rules when its site or modality is in automatic mode.
pub async fn after_arrival(state: &AppState, id: i64) -> Result<(), ApiError> {
    let (mode, key) = mode_for(state, id).await?;
    if mode == AssignmentMode::Auto {
        auto_assign(state, id, &key).await?;
    }
    Ok(())
}

/// Rules: among readers credentialed for the modality and site, the one who
/// holds this patient's other open requests; else the least loaded; ties to
/// the longest-standing account.
async fn auto_assign(state: &AppState, id: i64, key: &ReadRequestKey) -> Result<Option<i64>, ApiError> {
    let db = state.archive.database();
    let readers = sqlx::query(
        "SELECT u.id, u.roles, u.display_name,
                (SELECT COUNT(*) FROM read_requests r WHERE r.assigned_to = u.id AND r.state IN ('assigned', 'reading')),
                (SELECT COUNT(*) FROM read_requests r WHERE r.assigned_to = u.id AND r.state IN ('assigned', 'reading')
                    AND r.site_id = ? AND r.patient_id = ? AND r.id != ?)
         FROM users u WHERE u.disabled = 0 AND (u.roles LIKE '%radiologist%' OR u.roles LIKE '%ecg_doctor%') ORDER BY u.id",
    )
    .bind(key.site_id)
    .bind(&key.patient_id)
    .bind(id)
    .fetch_all(db.pool())
    .await
    .map_err(ApiError::database)?;
    let mut best: Option<(bool, i64, i64, String)> = None;
    for r in readers {
        let reader: i64 = r.get(0);
        let roles: Vec<Role> = r.get::<&str, _>(1).split(',').filter_map(Role::parse).collect();
        let (_, scope) = credentials(db, reader).await?;
        if !may_read(&roles, &scope, key.modality.as_deref(), key.site_id) {
            continue;
        }
        let same_patient = key.patient_id.as_deref().is_some_and(|p| !p.is_empty()) && r.get::<i64, _>(4) > 0;
        let load: i64 = r.get(3);
        let better = match &best {
            None => true,
            Some((bp, bl, _, _)) => (same_patient && !bp) || (same_patient == *bp && load < *bl),
        };
        if better {
            best = Some((same_patient, load, reader, r.get(2)));
        }
    }
    let Some((same_patient, load, reader, _)) = best else {
        tracing::info!(request = id, "no credentialed reader for automatic assignment; left in the pool");
        return Ok(None);
    };
    let note = if same_patient {
        "assigned by rules: reads this patient's other open request".to_string()
    } else {
        format!("assigned by rules: least workload ({load} open)")
    };
    let won = take_from_pool(state, id, reader, None, &note).await?;
    Ok(won.then_some(reader))
}

/// Returns requests whose holder's lock lapsed to the pool. Returns how many.
pub async fn release_lapsed(state: &AppState) -> Result<usize, ApiError> {
    let db = state.archive.database();
    let lapsed: Vec<(i64, i64)> =
        sqlx::query_as("SELECT id, assigned_to FROM read_requests WHERE state IN ('assigned', 'reading') AND locked_until < ?")
            .bind(now_ms())
            .fetch_all(db.pool())
            .await
            .map_err(ApiError::database)?;
    let mut released = 0;
    for (id, holder) in lapsed {
        if transition(
            db,
            id,
            Change {
                from: &[RequestState::Assigned, RequestState::Reading],
                held_by: Some(holder),
                to: RequestState::Received,
                by: None,
                note: Some("lock lapsed after inactivity"),
                holder: Holder::release(),
            },
        )
        .await?
        {
            released += 1;
            tracing::info!(request = id, "lock lapsed: back in the pool");
            after_arrival(state, id).await?;
        }
    }
    Ok(released)
}

/// Releases lapsed locks every few seconds until `stop`.
pub async fn run_lock_sweeper(state: AppState, mut stop: watch::Receiver<bool>) {
    let period = Duration::from_secs((state.config.lock_secs / 4).clamp(1, 30));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = stop.changed() => return,
        }
        if let Err(e) = release_lapsed(&state).await {
            tracing::warn!(error = %e.reason, "lock sweep failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_bind_role_modality_and_site() {
        let open = ReaderScope::default();
        let ct_at_1 = ReaderScope { modalities: vec!["CT".into()], site_ids: vec![1] };
        for (roles, scope, modality, site, expected) in [
            (vec![Role::Radiologist], &open, Some("CT"), 1, true),
            (vec![Role::Radiologist], &open, Some("ECG"), 1, false),
            (vec![Role::EcgDoctor], &open, Some("ECG"), 1, true),
            (vec![Role::EcgDoctor], &open, Some("CR"), 1, false),
            (vec![Role::Radiologist], &ct_at_1, Some("CT"), 1, true),
            (vec![Role::Radiologist], &ct_at_1, Some("MR"), 1, false),
            (vec![Role::Radiologist], &ct_at_1, Some("CT"), 2, false),
            (vec![Role::Reviewer], &open, Some("CT"), 1, false),
            (vec![Role::SiteUser], &open, Some("CT"), 1, false),
        ] {
            assert_eq!(may_read(&roles, scope, modality, site), expected, "{roles:?} {modality:?} site {site}");
        }
    }
}
