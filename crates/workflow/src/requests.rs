//! Read requests: one study (or one ECG) to be read for a site, its state,
//! and the one function that changes that state.
//!
//! ```text
//! received ──claim/rules──► assigned ──opened/saved──► reading ──author signs──► preliminary ──reviewer signs──► final
//!    ▲  ▲                      │                          │                         │                             │
//!    │  └──────── release, lapse, admin unlock ───────────┘      return (退回修改) ──┘ → reading       amendment ──► amended
//!    └──────── cancel (received, assigned, reading) → cancelled
//! ```
//!
//! Every change goes through [`transition_in`]: one conditional UPDATE of
//! the row that names the states it may come from (and, for a reader's own
//! acts, that they still hold it), and the event (who, when, from, to, why)
//! in the same transaction. Of concurrent changes exactly one applies.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;
use telediag_archive::db::now_ms;
use telediag_archive::sql::numbered;

use crate::Workflow;
use crate::actor::Actor;
use crate::error::{Result, WorkflowError};
use crate::policy::Priority;

/// Where a request is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    /// Waiting for a reader (in the pool).
    Received,
    /// A reader holds it (claimed or assigned) but has not started.
    Assigned,
    /// The reader has opened it or saved a draft.
    Reading,
    /// Signed by the reporting doctor; awaiting the reviewer.
    Preliminary,
    /// Signed by the reviewer (or by the reporting doctor at single-signature sites).
    Final,
    /// A final report was replaced by an amended version.
    Amended,
    Cancelled,
}

impl RequestState {
    pub const ALL: [RequestState; 7] = [
        RequestState::Received,
        RequestState::Assigned,
        RequestState::Reading,
        RequestState::Preliminary,
        RequestState::Final,
        RequestState::Amended,
        RequestState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Received => "received",
            RequestState::Assigned => "assigned",
            RequestState::Reading => "reading",
            RequestState::Preliminary => "preliminary",
            RequestState::Final => "final",
            RequestState::Amended => "amended",
            RequestState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<RequestState> {
        RequestState::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Still waiting for a report (counts towards the deadline).
    pub fn is_open(self) -> bool {
        matches!(self, RequestState::Received | RequestState::Assigned | RequestState::Reading | RequestState::Preliminary)
    }

    /// Held by a reader who has not signed yet.
    pub const HELD: &'static [RequestState] = &[RequestState::Assigned, RequestState::Reading];
}

/// How a request came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Registered by the site ahead of the images.
    Registered,
    /// Created when images arrived that no registration matched.
    Arrival,
}

/// A read request as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ReadRequest {
    pub id: i64,
    pub site_id: i64,
    pub site: String,
    pub origin: Origin,
    /// False for arrivals no registered request matched.
    pub reconciled: bool,
    pub state: RequestState,
    pub priority: Priority,
    pub modality: Option<String>,
    pub study_uid: Option<String>,
    pub study_date: Option<String>,
    pub patient_name: Option<String>,
    pub patient_sex: Option<String>,
    pub patient_age: Option<String>,
    pub patient_id: Option<String>,
    pub department: Option<String>,
    pub inpatient_number: Option<String>,
    pub bed_number: Option<String>,
    pub accession_number: Option<String>,
    pub requested_exam: Option<String>,
    pub clinical_history: Option<String>,
    pub requesting_physician: Option<String>,
    pub created_at: i64,
    /// When the images arrived (`None`: still missing).
    pub images_at: Option<i64>,
    pub deadline_at: Option<i64>,
    pub overdue: bool,
    pub assigned_to: Option<i64>,
    pub assigned_to_name: Option<String>,
    pub locked_until: Option<i64>,
    pub critical: bool,
    /// When the site first downloaded the final report (已打印).
    pub downloaded_at: Option<i64>,
    /// Set when the registration and the images name different patients
    /// (both identities, as text); the report cannot be signed until the
    /// site or an admin confirms they are one patient.
    pub identity_mismatch: Option<String>,
    pub identity_confirmed_at: Option<i64>,
}

impl ReadRequest {
    /// The two identities still await a confirmation.
    pub fn identity_unconfirmed(&self) -> bool {
        self.identity_mismatch.is_some() && self.identity_confirmed_at.is_none()
    }

    /// Refuses to sign over images whose patient differs from the
    /// registration's until the site or an admin has confirmed they are one.
    pub fn require_one_patient(&self) -> Result<()> {
        match &self.identity_mismatch {
            Some(both) if self.identity_unconfirmed() => Err(WorkflowError::conflict(format!(
                "the registration and the images name different patients ({both}); the site or an administrator confirms \
                 (POST /api/requests/{}/confirm-identity) before the report is signed",
                self.id
            ))),
            _ => Ok(()),
        }
    }
}

pub(crate) const REQUEST_COLUMNS: &str = "r.id, r.site_id, si.name, r.origin, r.reconciled, r.state, r.priority, r.modality,
    r.study_uid, r.study_date, r.patient_name, r.patient_sex, r.patient_age, r.patient_id, r.department,
    r.inpatient_number, r.bed_number, r.accession_number, r.requested_exam, r.clinical_history,
    r.requesting_physician, r.created_at, r.images_at, r.deadline_at, r.assigned_to, u.display_name, r.locked_until,
    CAST(EXISTS (SELECT 1 FROM critical_findings c WHERE c.request_id = r.id) AS INTEGER),
    (SELECT MIN(d.at) FROM report_downloads d JOIN reports rp ON rp.id = d.report_id WHERE rp.request_id = r.id),
    r.identity_mismatch, r.identity_confirmed_at";
pub(crate) const REQUEST_FROM: &str = "FROM read_requests r JOIN sites si ON si.id = r.site_id LEFT JOIN users u ON u.id = r.assigned_to";

/// A stored state name this build does not know is a broken database, not
/// a request to guess about.
pub(crate) fn stored_state(text: &str) -> Result<RequestState> {
    RequestState::parse(text).ok_or_else(|| WorkflowError::Unavailable(format!("read_requests.state holds {text:?}, not a known state")))
}

pub(crate) fn request_from_row(r: &AnyRow, now: i64) -> Result<ReadRequest> {
    let state = stored_state(r.get::<&str, _>(5))?;
    let deadline_at: Option<i64> = r.get(23);
    let origin = if r.get::<&str, _>(3) == "registered" { Origin::Registered } else { Origin::Arrival };
    Ok(ReadRequest {
        id: r.get(0),
        site_id: r.get(1),
        site: r.get(2),
        origin,
        reconciled: r.get::<i64, _>(4) != 0,
        state,
        priority: Priority::parse(r.get::<&str, _>(6)).unwrap_or_default(),
        modality: r.get(7),
        study_uid: r.get(8),
        study_date: r.get(9),
        patient_name: r.get(10),
        patient_sex: r.get(11),
        patient_age: r.get(12),
        patient_id: r.get(13),
        department: r.get(14),
        inpatient_number: r.get(15),
        bed_number: r.get(16),
        accession_number: r.get(17),
        requested_exam: r.get(18),
        clinical_history: r.get(19),
        requesting_physician: r.get(20),
        created_at: r.get(21),
        images_at: r.get(22),
        deadline_at,
        overdue: state.is_open() && deadline_at.is_some_and(|d| d < now),
        assigned_to: r.get(24),
        assigned_to_name: r.get(25),
        locked_until: r.get(26),
        critical: r.get::<i64, _>(27) != 0,
        downloaded_at: r.get(28),
        identity_mismatch: r.get(29),
        identity_confirmed_at: r.get(30),
    })
}

/// What else changes with a state: the holder and their lock.
#[derive(Debug, Clone, Copy, Default)]
pub struct Holder {
    /// `Some(None)` clears the reader, `Some(Some(id))` sets one, `None` keeps it.
    pub assigned_to: Option<Option<i64>>,
    pub locked_until: Option<Option<i64>>,
}

impl Holder {
    pub fn keep() -> Holder {
        Holder::default()
    }
    pub fn release() -> Holder {
        Holder { assigned_to: Some(None), locked_until: Some(None) }
    }
    pub fn to(reader: i64, until: i64) -> Holder {
        Holder { assigned_to: Some(Some(reader)), locked_until: Some(Some(until)) }
    }
    /// Keeps the reader (the author of record) and ends their lock.
    pub fn unlock() -> Holder {
        Holder { assigned_to: None, locked_until: Some(None) }
    }
}

/// A change of state: from which states (and, with `held_by`, only while
/// that reader holds it), to which, by whom, why, and what becomes of the holder.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    pub from: &'a [RequestState],
    pub held_by: Option<i64>,
    pub to: RequestState,
    /// `None` for the system (rules, lapsed locks).
    pub by: Option<i64>,
    pub note: Option<&'a str>,
    pub holder: Holder,
}

/// Applies `change` inside the caller's transaction if the request is in
/// one of its `from` states, recording the event; so a change of the
/// request and of what it holds (a report made final) commit together or
/// not at all. Returns false, changing nothing, when the request was not in
/// such a state: a concurrent change won. The only writer of
/// `read_requests.state`.
pub(crate) async fn transition_in(tx: &mut sqlx::AnyConnection, id: i64, change: Change<'_>) -> Result<bool> {
    let Change { from, held_by, to, by, note, holder } = change;
    let now = now_ms();
    let placeholders = vec!["?"; from.len()].join(", ");
    // `previous_state = state` reads the value before this UPDATE (SET sees
    // the old row), so RETURNING tells which state the change came from.
    let mut set = String::from("previous_state = state, state = ?, updated_at = ?");
    if holder.assigned_to.is_some() {
        set.push_str(", assigned_to = ?");
    }
    if holder.locked_until.is_some() {
        set.push_str(", locked_until = ?");
    }
    let held = if held_by.is_some() { " AND assigned_to = ?" } else { "" };
    // One conditional UPDATE decides the race: SQLite has one writer, and on
    // PostgreSQL the row lock makes a second UPDATE see the first's result.
    let sql =
        numbered(&format!("UPDATE read_requests SET {set} WHERE id = ? AND state IN ({placeholders}){held} RETURNING previous_state"));
    let mut query = sqlx::query_scalar::<_, String>(&sql).bind(to.as_str()).bind(now);
    if let Some(assigned) = holder.assigned_to {
        query = query.bind(assigned);
    }
    if let Some(until) = holder.locked_until {
        query = query.bind(until);
    }
    query = query.bind(id);
    for state in from {
        query = query.bind(state.as_str());
    }
    if let Some(reader) = held_by {
        query = query.bind(reader);
    }
    let Some(previous) = query.fetch_optional(&mut *tx).await? else { return Ok(false) };
    record_event(tx, id, Some(stored_state(&previous)?), to, by, note, now).await?;
    Ok(true)
}

/// Records an event without a change of state (a reconciliation, a
/// confirmation), or the first event of a new request (`from` = `None`).
pub(crate) async fn record_event(
    tx: &mut sqlx::AnyConnection,
    id: i64,
    from: Option<RequestState>,
    to: RequestState,
    by: Option<i64>,
    note: Option<&str>,
    at: i64,
) -> Result<()> {
    sqlx::query("INSERT INTO request_events (request_id, from_state, to_state, user_id, note, at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(id)
        .bind(from.map(RequestState::as_str))
        .bind(to.as_str())
        .bind(by)
        .bind(note)
        .bind(at)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// One recorded state change.
#[derive(Debug, Clone, Serialize)]
pub struct RequestEvent {
    pub from_state: Option<String>,
    pub to_state: String,
    pub user_id: Option<i64>,
    pub user_name: Option<String>,
    pub note: Option<String>,
    pub at: i64,
}

impl Workflow {
    /// A request by id, if `actor` may see it. Another site's request is
    /// "not found", exactly as a missing one.
    pub async fn request(&self, actor: &Actor, id: i64) -> Result<ReadRequest> {
        let request = self.request_unscoped(id).await?;
        if actor.sees_site(request.site_id)? { Ok(request) } else { Err(WorkflowError::not_found("read request")) }
    }

    /// A request by id for the system (rules, sweeps, intake).
    pub(crate) async fn request_unscoped(&self, id: i64) -> Result<ReadRequest> {
        let sql = format!("SELECT {REQUEST_COLUMNS} {REQUEST_FROM} WHERE r.id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(self.pool()).await?;
        request_from_row(&row.ok_or_else(|| WorkflowError::not_found("read request"))?, now_ms())
    }

    /// Applies `change` in a transaction of its own (see [`transition_in`]).
    pub(crate) async fn transition(&self, id: i64, change: Change<'_>) -> Result<bool> {
        let mut tx = self.pool().begin().await?;
        let changed = transition_in(&mut tx, id, change).await?;
        if changed {
            tx.commit().await?;
        }
        Ok(changed)
    }

    /// The worklist's version: the newest event's id, which every change
    /// of every request raises (what `/api/events` watches).
    pub async fn version(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM request_events").fetch_one(self.pool()).await?)
    }

    /// A request (that `actor` may see) and its history, oldest event first.
    pub async fn request_with_history(&self, actor: &Actor, id: i64) -> Result<(ReadRequest, Vec<RequestEvent>)> {
        let request = self.request(actor, id).await?;
        let rows = sqlx::query(
            "SELECT e.from_state, e.to_state, e.user_id, u.display_name, e.note, e.at
             FROM request_events e LEFT JOIN users u ON u.id = e.user_id WHERE e.request_id = $1 ORDER BY e.id",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        let events = rows
            .iter()
            .map(|r| RequestEvent {
                from_state: r.get(0),
                to_state: r.get(1),
                user_id: r.get(2),
                user_name: r.get(3),
                note: r.get(4),
                at: r.get(5),
            })
            .collect();
        Ok((request, events))
    }

    /// The site (or an admin) withdraws a request not yet reported.
    pub async fn cancel(&self, actor: &Actor, id: i64, reason: &str) -> Result<ReadRequest> {
        let request = self.request(actor, id).await?;
        if !(actor.has(crate::Role::SiteUser) || actor.has(crate::Role::Admin)) {
            return Err(WorkflowError::forbidden("cancelling requests"));
        }
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(WorkflowError::invalid("a cancellation needs a reason"));
        }
        let change = Change {
            from: &[RequestState::Received, RequestState::Assigned, RequestState::Reading],
            held_by: None,
            to: RequestState::Cancelled,
            by: Some(actor.id),
            note: Some(reason),
            holder: Holder::release(),
        };
        if !self.transition(id, change).await? {
            return Err(WorkflowError::conflict(format!("request {id} is {} and can no longer be cancelled", request.state.as_str())));
        }
        self.request(actor, id).await
    }
}
