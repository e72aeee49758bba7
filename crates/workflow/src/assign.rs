//! Who reads what: reader credentials, assignment by rules, the pool and
//! its claims (抢单), locks that lapse, admin unlock and reassignment.
//!
//! A claim is one conditional change (`received` → `assigned`), so of many
//! simultaneous claims exactly one changes the row and wins; the others see
//! no change and are told who holds it. A holder's lock is extended by
//! activity (opening, saving a draft); a lock left to lapse returns the
//! request to the pool (or to the rules).

use std::time::Duration;

use sqlx::Row;
use telediag_archive::db::now_ms;
use tokio::sync::watch;

use crate::Workflow;
use crate::actor::{Actor, Role};
use crate::error::{Result, WorkflowError};
use crate::policy::AssignmentMode;
use crate::requests::{Change, Holder, ReadRequest, RequestState};

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

/// May a user with `roles` and `scope` read a `modality` study from `site_id`?
pub fn may_read(roles: &[Role], scope: &ReaderScope, modality: Option<&str>, site_id: i64) -> bool {
    let modality = modality.unwrap_or("OT");
    let role_fits = if modality == "ECG" { roles.contains(&Role::EcgDoctor) } else { roles.contains(&Role::Radiologist) };
    role_fits
        && (scope.modalities.is_empty() || scope.modalities.iter().any(|m| m == modality))
        && (scope.site_ids.is_empty() || scope.site_ids.contains(&site_id))
}

/// Who would take a request by rules, and why.
struct Candidate {
    reader: i64,
    same_patient: bool,
    load: i64,
}

impl Workflow {
    /// A reader's credentials, as named and as resolved for checks.
    pub async fn credentials(&self, user_id: i64) -> Result<(Credentials, ReaderScope)> {
        let modalities: Vec<String> = sqlx::query_scalar("SELECT modality FROM reader_modalities WHERE user_id = $1 ORDER BY modality")
            .bind(user_id)
            .fetch_all(self.pool())
            .await?;
        let sites =
            sqlx::query("SELECT s.id, s.name FROM reader_sites r JOIN sites s ON s.id = r.site_id WHERE r.user_id = $1 ORDER BY s.name")
                .bind(user_id)
                .fetch_all(self.pool())
                .await?;
        let scope = ReaderScope { modalities: modalities.clone(), site_ids: sites.iter().map(|r| r.get(0)).collect() };
        Ok((Credentials { modalities, sites: sites.iter().map(|r| r.get(1)).collect() }, scope))
    }

    /// Replaces a reader's credentials.
    pub async fn set_credentials(&self, user_id: i64, credentials: &Credentials) -> Result<()> {
        let mut modalities = Vec::new();
        for modality in &credentials.modalities {
            let modality = modality.trim().to_uppercase();
            if modality.is_empty() || modality.len() > 16 || !modality.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(WorkflowError::invalid(format!("a modality is a DICOM code such as CT or ECG, found {modality:?}")));
            }
            modalities.push(modality);
        }
        let mut site_ids = Vec::new();
        for name in &credentials.sites {
            site_ids.push(self.db.site_by_name(name).await?.id);
        }
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM reader_modalities WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM reader_sites WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
        for modality in &modalities {
            sqlx::query("INSERT INTO reader_modalities (user_id, modality) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(user_id)
                .bind(modality)
                .execute(&mut *tx)
                .await?;
        }
        for site in site_ids {
            sqlx::query("INSERT INTO reader_sites (user_id, site_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(user_id)
                .bind(site)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Refuses `action` on `request` unless `actor` is credentialed to read
    /// it (role, modality and site): claiming, signing, co-signing,
    /// returning, flagging and amending all go through here.
    pub async fn require_credentialed(&self, actor: &Actor, request: &ReadRequest, action: &str) -> Result<()> {
        let (_, scope) = self.credentials(actor.id).await?;
        if may_read(&actor.roles, &scope, request.modality.as_deref(), request.site_id) {
            return Ok(());
        }
        Err(WorkflowError::forbidden(format!(
            "{action} for {} from {} (not in your credentials)",
            request.modality.as_deref().unwrap_or("this modality"),
            request.site
        )))
    }

    /// Keeps the requests `actor` is qualified to read.
    pub(crate) async fn only_qualified(&self, actor: &Actor, requests: Vec<ReadRequest>) -> Result<Vec<ReadRequest>> {
        let (_, scope) = self.credentials(actor.id).await?;
        Ok(requests.into_iter().filter(|r| may_read(&actor.roles, &scope, r.modality.as_deref(), r.site_id)).collect())
    }

    /// Claims a pool request for `actor`. Exactly one of many simultaneous
    /// claims wins; the others are told who holds it.
    pub async fn claim(&self, actor: &Actor, id: i64) -> Result<ReadRequest> {
        let request = self.request(actor, id).await?;
        if !actor.is_reader() {
            return Err(WorkflowError::forbidden("claiming requests (readers do)"));
        }
        self.require_credentialed(actor, &request, "reading").await?;
        if request.study_uid.is_none() {
            return Err(WorkflowError::conflict("the images of this request have not arrived"));
        }
        let won = self.take_from_pool(id, actor.id, Some(actor.id), "claimed from the pool").await?;
        let now = self.request(actor, id).await?;
        if !won {
            let holder = now.assigned_to_name.clone().unwrap_or_else(|| "another reader".into());
            return Err(WorkflowError::conflict(format!("request {id} is {} by {holder}", now.state.as_str())));
        }
        Ok(now)
    }

    /// Moves a pool request to `reader` if it is still in the pool: the one
    /// conditional change both claims and rules go through.
    async fn take_from_pool(&self, id: i64, reader: i64, by: Option<i64>, note: &str) -> Result<bool> {
        let change = Change {
            from: &[RequestState::Received],
            held_by: None,
            to: RequestState::Assigned,
            by,
            note: Some(note),
            holder: Holder::to(reader, self.policy.lock_until(now_ms())),
        };
        self.transition(id, change).await
    }

    /// The holder gives a request back, or an admin unlocks it: back to the pool.
    pub async fn release(&self, actor: &Actor, id: i64) -> Result<ReadRequest> {
        let request = self.request(actor, id).await?;
        let admin = actor.has(Role::Admin);
        if !admin && request.assigned_to != Some(actor.id) {
            return Err(WorkflowError::forbidden("releasing a request someone else holds"));
        }
        let change = Change {
            from: RequestState::HELD,
            held_by: if admin { None } else { Some(actor.id) },
            to: RequestState::Received,
            by: Some(actor.id),
            note: Some(if admin { "unlocked by an admin" } else { "released by the reader" }),
            holder: Holder::release(),
        };
        if !self.transition(id, change).await? {
            return Err(WorkflowError::conflict(format!("request {id} is {} and cannot be released", request.state.as_str())));
        }
        self.after_arrival(id).await?;
        self.request(actor, id).await
    }

    /// An admin assigns (or reassigns) a request to a credentialed reader.
    pub async fn assign_to(&self, admin: &Actor, id: i64, reader_id: i64) -> Result<ReadRequest> {
        let request = self.request(admin, id).await?;
        admin.require(Role::Admin, "assigning requests")?;
        let reader: Actor = self.db.user_by_id(reader_id).await?.ok_or_else(|| WorkflowError::not_found("reader"))?.into();
        let (_, scope) = self.credentials(reader.id).await?;
        if !may_read(&reader.roles, &scope, request.modality.as_deref(), request.site_id) {
            return Err(WorkflowError::invalid(format!("{} is not credentialed to read this request", reader.username)));
        }
        let note = format!("assigned to {} by {}", reader.display_name, admin.display_name);
        let change = Change {
            from: &[RequestState::Received, RequestState::Assigned, RequestState::Reading],
            held_by: None,
            to: RequestState::Assigned,
            by: Some(admin.id),
            note: Some(&note),
            holder: Holder::to(reader.id, self.policy.lock_until(now_ms())),
        };
        if !self.transition(id, change).await? {
            return Err(WorkflowError::conflict(format!("request {id} is {} and cannot be reassigned", request.state.as_str())));
        }
        self.request(admin, id).await
    }

    /// The holder is working: extend the lock, and mark the request `reading`.
    pub(crate) async fn touch(&self, actor: &Actor, request: &ReadRequest) -> Result<()> {
        if request.assigned_to != Some(actor.id) {
            return Err(WorkflowError::conflict(match &request.assigned_to_name {
                Some(name) => format!("request {} is held by {name}: claim it first", request.id),
                None => format!("request {} is not assigned to you: claim it first", request.id),
            }));
        }
        let until = self.policy.lock_until(now_ms());
        if request.state == RequestState::Assigned {
            let change = Change {
                from: &[RequestState::Assigned],
                held_by: Some(actor.id),
                to: RequestState::Reading,
                by: Some(actor.id),
                note: None,
                holder: Holder { assigned_to: None, locked_until: Some(Some(until)) },
            };
            self.transition(request.id, change).await?;
        } else {
            sqlx::query("UPDATE read_requests SET locked_until = $1 WHERE id = $2 AND assigned_to = $3")
                .bind(until)
                .bind(request.id)
                .bind(actor.id)
                .execute(self.pool())
                .await?;
        }
        Ok(())
    }

    /// Called when a request becomes readable (or returns to the pool):
    /// assigns it by rules when its modality (config) or else its site is
    /// in automatic mode.
    pub(crate) async fn after_arrival(&self, id: i64) -> Result<()> {
        let row = sqlx::query(
            "SELECT r.site_id, r.modality, r.patient_id, s.assignment_mode FROM read_requests r JOIN sites s ON s.id = r.site_id WHERE r.id = $1",
        )
        .bind(id)
        .fetch_one(self.pool())
        .await?;
        let (site_id, modality, patient_id): (i64, Option<String>, Option<String>) = (row.get(0), row.get(1), row.get(2));
        let by_modality = modality.as_ref().and_then(|m| self.policy.assignment_by_modality.get(m)).copied();
        let by_site = AssignmentMode::parse(row.get::<&str, _>(3)).unwrap_or(AssignmentMode::Pool);
        if by_modality.unwrap_or(by_site) == AssignmentMode::Auto {
            self.auto_assign(id, site_id, modality.as_deref(), patient_id.as_deref()).await?;
        }
        Ok(())
    }

    /// Rules: among readers credentialed for the modality and site, the one
    /// who holds this patient's other open requests; else the least loaded;
    /// ties to the longest-standing account.
    async fn auto_assign(&self, id: i64, site_id: i64, modality: Option<&str>, patient_id: Option<&str>) -> Result<Option<i64>> {
        let readers = sqlx::query(
            "SELECT u.id, u.roles,
                    (SELECT COUNT(*) FROM read_requests r WHERE r.assigned_to = u.id AND r.state IN ('assigned', 'reading')),
                    (SELECT COUNT(*) FROM read_requests r WHERE r.assigned_to = u.id AND r.state IN ('assigned', 'reading')
                        AND r.site_id = $1 AND r.patient_id = $2 AND r.id != $3)
             FROM users u WHERE u.disabled = 0 AND (u.roles LIKE '%radiologist%' OR u.roles LIKE '%ecg_doctor%') ORDER BY u.id",
        )
        .bind(site_id)
        .bind(patient_id)
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        let mut best: Option<Candidate> = None;
        for r in readers {
            let reader: i64 = r.get(0);
            let roles: Vec<Role> = r.get::<&str, _>(1).split(',').filter_map(Role::parse).collect();
            let (_, scope) = self.credentials(reader).await?;
            if !may_read(&roles, &scope, modality, site_id) {
                continue;
            }
            let same_patient = patient_id.is_some_and(|p| !p.is_empty()) && r.get::<i64, _>(3) > 0;
            let load: i64 = r.get(2);
            let better = match &best {
                None => true,
                Some(b) => (same_patient && !b.same_patient) || (same_patient == b.same_patient && load < b.load),
            };
            if better {
                best = Some(Candidate { reader, same_patient, load });
            }
        }
        let Some(chosen) = best else {
            tracing::info!(request = id, "no credentialed reader for automatic assignment; left in the pool");
            return Ok(None);
        };
        let note = if chosen.same_patient {
            "assigned by rules: reads this patient's other open request".to_string()
        } else {
            format!("assigned by rules: least workload ({} open)", chosen.load)
        };
        let won = self.take_from_pool(id, chosen.reader, None, &note).await?;
        Ok(won.then_some(chosen.reader))
    }

    /// Returns requests whose holder's lock lapsed to the pool. Returns how many.
    pub async fn release_lapsed(&self) -> Result<usize> {
        let lapsed: Vec<(i64, i64)> =
            sqlx::query_as("SELECT id, assigned_to FROM read_requests WHERE state IN ('assigned', 'reading') AND locked_until < $1")
                .bind(now_ms())
                .fetch_all(self.pool())
                .await?;
        let mut released = 0;
        for (id, holder) in lapsed {
            let change = Change {
                from: RequestState::HELD,
                held_by: Some(holder),
                to: RequestState::Received,
                by: None,
                note: Some("lock lapsed after inactivity"),
                holder: Holder::release(),
            };
            if self.transition(id, change).await? {
                released += 1;
                tracing::info!(request = id, "lock lapsed: back in the pool");
                self.after_arrival(id).await?;
            }
        }
        Ok(released)
    }

    /// Releases lapsed locks every few seconds until `stop`.
    pub async fn run_lock_sweeper(self, mut stop: watch::Receiver<bool>) {
        let period = Duration::from_secs((self.policy.lock_secs / 4).clamp(1, 30));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = stop.changed() => return,
            }
            if let Err(e) = self.release_lapsed().await {
                tracing::warn!(error = %e, "lock sweep failed");
            }
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
