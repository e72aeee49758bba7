//! Read requests: the worklist itself.
//!
//! A request is one study (or one ECG) to be read for a site. It is created
//! when a study completes, or registered ahead by the site and reconciled
//! with the images when they arrive ([`intake`]); it is assigned by rules or
//! claimed from the pool ([`assign`]); every change of state is recorded
//! with who and when. This module holds the types, the row mapping, the one
//! place state changes are written, and the queries.

pub mod assign;
pub mod intake;
pub mod routes;

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use telediag_archive::Database;
use telediag_archive::db::now_ms;

use crate::auth::{CurrentUser, Role, Scope};
use crate::error::ApiError;

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
        use RequestState::*;
        [Received, Assigned, Reading, Preliminary, Final, Amended, Cancelled].into_iter().find(|st| st.as_str() == s)
    }

    /// Still waiting for a report (counts towards the deadline).
    pub fn is_open(self) -> bool {
        matches!(self, RequestState::Received | RequestState::Assigned | RequestState::Reading | RequestState::Preliminary)
    }
}

/// How urgent: sets the turnaround deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Stat,
    Urgent,
    #[default]
    Routine,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Stat => "stat",
            Priority::Urgent => "urgent",
            Priority::Routine => "routine",
        }
    }
    pub fn parse(s: &str) -> Option<Priority> {
        [Priority::Stat, Priority::Urgent, Priority::Routine].into_iter().find(|p| p.as_str() == s)
    }
}

/// How a site's (or a modality's) requests reach readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentMode {
    /// Qualified readers see the pool and claim (抢单).
    Pool,
    /// Assigned by rules: credentials, same patient, least workload.
    Auto,
}

impl AssignmentMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AssignmentMode::Pool => "pool",
            AssignmentMode::Auto => "auto",
        }
    }
    pub fn parse(s: &str) -> Option<AssignmentMode> {
        [AssignmentMode::Pool, AssignmentMode::Auto].into_iter().find(|m| m.as_str() == s)
    }
}

/// A read request as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ReadRequest {
    pub id: i64,
    pub site_id: i64,
    pub site: String,
    /// `registered` by the site ahead of the images, or created on `arrival`.
    pub origin: String,
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
}

pub(crate) const REQUEST_COLUMNS: &str = "r.id, r.site_id, si.name, r.origin, r.reconciled, r.state, r.priority, r.modality,
    r.study_uid, r.study_date, r.patient_name, r.patient_sex, r.patient_age, r.patient_id, r.department,
    r.inpatient_number, r.bed_number, r.accession_number, r.requested_exam, r.clinical_history,
    r.requesting_physician, r.created_at, r.images_at, r.deadline_at, r.assigned_to, u.display_name, r.locked_until,
    EXISTS (SELECT 1 FROM critical_findings c WHERE c.request_id = r.id),
    (SELECT MIN(d.at) FROM report_downloads d JOIN reports rp ON rp.id = d.report_id WHERE rp.request_id = r.id),
    r.identity_mismatch, r.identity_confirmed_at";
pub(crate) const REQUEST_FROM: &str = "FROM read_requests r JOIN sites si ON si.id = r.site_id LEFT JOIN users u ON u.id = r.assigned_to";

pub(crate) fn request_from_row(r: &SqliteRow, now: i64) -> ReadRequest {
    let state = RequestState::parse(r.get::<&str, _>(5)).unwrap_or(RequestState::Received);
    let deadline_at: Option<i64> = r.get(23);
    ReadRequest {
        id: r.get(0),
        site_id: r.get(1),
        site: r.get(2),
        origin: r.get(3),
        reconciled: r.get(4),
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
        critical: r.get(27),
        downloaded_at: r.get(28),
        identity_mismatch: r.get(29),
        identity_confirmed_at: r.get(30),
    }
}

/// A request by id, if the caller may see it. Another site's request is
/// "not found", exactly as a missing one.
pub async fn visible_request(db: &Database, user: &CurrentUser, id: i64) -> Result<ReadRequest, ApiError> {
    let sql = format!("SELECT {REQUEST_COLUMNS} {REQUEST_FROM} WHERE r.id = ?");
    let row = sqlx::query(&sql).bind(id).fetch_optional(db.pool()).await.map_err(ApiError::database)?;
    let request = row.map(|r| request_from_row(&r, now_ms())).ok_or_else(|| ApiError::not_found("read request"))?;
    match user.scope()? {
        Scope::Site(site) if site != request.site_id => Err(ApiError::not_found("read request")),
        _ => Ok(request),
    }
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

/// Applies `change` if the request is in one of its `from` states,
/// recording the event in the same transaction. Returns false, changing nothing, when the request was not
/// in such a state: a concurrent change won. This is the only writer of
/// `read_requests.state`.
pub async fn transition(db: &Database, id: i64, change: Change<'_>) -> Result<bool, ApiError> {
    let mut tx = db.pool().begin().await.map_err(ApiError::database)?;
    let changed = transition_in(&mut tx, id, change).await?;
    if changed {
        tx.commit().await.map_err(ApiError::database)?;
    }
    Ok(changed)
}

/// [`transition`] inside the caller's transaction, so that a change of the
/// request and of what it holds (a report made final) commit together or
/// not at all.
pub async fn transition_in(tx: &mut sqlx::SqliteConnection, id: i64, change: Change<'_>) -> Result<bool, ApiError> {
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
    let sql = format!("UPDATE read_requests SET {set} WHERE id = ? AND state IN ({placeholders}){held} RETURNING previous_state");
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
    let previous = query.fetch_optional(&mut *tx).await.map_err(ApiError::database)?;
    let Some(previous) = previous else { return Ok(false) };
    record_event(tx, id, Some(&previous), to, by, note, now).await?;
    Ok(true)
}

pub(crate) async fn record_event(
    tx: &mut sqlx::SqliteConnection,
    id: i64,
    from: Option<&str>,
    to: RequestState,
    by: Option<i64>,
    note: Option<&str>,
    at: i64,
) -> Result<(), ApiError> {
    sqlx::query("INSERT INTO request_events (request_id, from_state, to_state, user_id, note, at) VALUES (?, ?, ?, ?, ?, ?)")
        .bind(id)
        .bind(from)
        .bind(to.as_str())
        .bind(by)
        .bind(note)
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(ApiError::database)?;
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

pub async fn history(db: &Database, id: i64) -> Result<Vec<RequestEvent>, ApiError> {
    let rows = sqlx::query(
        "SELECT e.from_state, e.to_state, e.user_id, u.display_name, e.note, e.at
         FROM request_events e LEFT JOIN users u ON u.id = e.user_id WHERE e.request_id = ? ORDER BY e.id",
    )
    .bind(id)
    .fetch_all(db.pool())
    .await
    .map_err(ApiError::database)?;
    Ok(rows
        .iter()
        .map(|r| RequestEvent {
            from_state: r.get(0),
            to_state: r.get(1),
            user_id: r.get(2),
            user_name: r.get(3),
            note: r.get(4),
            at: r.get(5),
        })
        .collect())
}

/// Filters of the request lists.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RequestQuery {
    /// `mine` (assigned to me), `pool` (claimable by me), `overdue`, or all visible.
    pub view: Option<String>,
    pub site: Option<String>,
    pub modality: Option<String>,
    pub priority: Option<Priority>,
    pub state: Option<String>,
    /// Requests created on or after / before, as Unix ms.
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub unreconciled: Option<bool>,
    pub limit: Option<i64>,
}

/// The requests the caller may see matching `q`, soonest deadline first.
pub async fn list(db: &Database, user: &CurrentUser, q: &RequestQuery) -> Result<Vec<ReadRequest>, ApiError> {
    /// A value for the next `?`, in clause order.
    enum Arg {
        Text(String),
        Int(i64),
    }
    let now = now_ms();
    let mut clauses: Vec<&str> = Vec::new();
    let mut args: Vec<Arg> = Vec::new();
    if let Scope::Site(site) = user.scope()? {
        clauses.push("r.site_id = ?");
        args.push(Arg::Int(site));
    }
    match q.view.as_deref() {
        None | Some("all") => {}
        Some("mine") => {
            clauses.push("r.assigned_to = ? AND r.state IN ('assigned', 'reading', 'preliminary')");
            args.push(Arg::Int(user.id));
        }
        // Credentials are checked on the rows (see below).
        Some("pool") => clauses.push("r.state = 'received' AND r.study_uid IS NOT NULL"),
        Some("review") => {
            user.require(Role::Reviewer, "the review list")?;
            clauses.push("r.state = 'preliminary'");
        }
        Some("overdue") => {
            clauses.push("r.state IN ('received', 'assigned', 'reading', 'preliminary') AND r.deadline_at < ?");
            args.push(Arg::Int(now));
        }
        Some(other) => return Err(ApiError::bad_request(format!("view must be mine, pool, review, overdue or all, found {other:?}"))),
    }
    if let Some(state) = &q.state {
        RequestState::parse(state).ok_or_else(|| ApiError::bad_request(format!("unknown state {state:?}")))?;
    }
    let texts = [
        ("si.name = ?", q.site.clone()),
        ("r.modality = ?", q.modality.clone()),
        ("r.priority = ?", q.priority.map(|p| p.as_str().to_owned())),
        ("r.state = ?", q.state.clone()),
    ];
    for (clause, value) in texts {
        if let Some(value) = value {
            clauses.push(clause);
            args.push(Arg::Text(value));
        }
    }
    if q.unreconciled == Some(true) {
        clauses.push("r.origin = 'arrival' AND r.reconciled = 0");
    }
    for (clause, value) in [("r.created_at >= ?", q.from), ("r.created_at < ?", q.to)] {
        if let Some(value) = value {
            clauses.push(clause);
            args.push(Arg::Int(value));
        }
    }
    let limit = q.limit.unwrap_or(500).clamp(1, 5000);
    let where_clause = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
    let sql = format!(
        "SELECT {REQUEST_COLUMNS} {REQUEST_FROM} {where_clause}
         ORDER BY r.deadline_at IS NULL, r.deadline_at, r.created_at LIMIT {limit}"
    );
    let mut query = sqlx::query(&sql);
    for arg in args {
        query = match arg {
            Arg::Text(text) => query.bind(text),
            Arg::Int(number) => query.bind(number),
        };
    }
    let rows = query.fetch_all(db.pool()).await.map_err(ApiError::database)?;
    let requests = rows.iter().map(|r| request_from_row(r, now)).collect();
    if q.view.as_deref() == Some("pool") {
        return assign::only_qualified(db, user, requests).await;
    }
    Ok(requests)
}

/// Counters like a PACS upload board.
#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
pub struct Counters {
    pub received_today: i64,
    pub read_today: i64,
    pub awaiting_report: i64,
    pub awaiting_review: i64,
    pub overdue: i64,
    pub images_missing: i64,
    pub unreconciled: i64,
}

/// One site's counters.
#[derive(Debug, Clone, Serialize)]
pub struct SiteCounters {
    pub site_id: i64,
    pub site: String,
    #[serde(flatten)]
    pub counters: Counters,
}

/// The dashboard: counters per site and overall; a site user sees their site only.
pub async fn dashboard(db: &Database, user: &CurrentUser, start_of_today: i64) -> Result<(Counters, Vec<SiteCounters>), ApiError> {
    let now = now_ms();
    let site_filter = match user.scope()? {
        Scope::Site(site) => format!("WHERE si.id = {site}"),
        Scope::AllSites => String::new(),
    };
    let sql = format!(
        "SELECT si.id, si.name,
            COALESCE(SUM(r.images_at >= ?1), 0),
            COALESCE(SUM(EXISTS (SELECT 1 FROM reports rp WHERE rp.request_id = r.id AND rp.version = 1 AND rp.author_signed_at >= ?1)), 0),
            COALESCE(SUM(r.state IN ('received', 'assigned', 'reading') AND r.study_uid IS NOT NULL), 0),
            COALESCE(SUM(r.state = 'preliminary'), 0),
            COALESCE(SUM(r.state IN ('received', 'assigned', 'reading', 'preliminary') AND r.deadline_at < ?2), 0),
            COALESCE(SUM(r.study_uid IS NULL AND r.state != 'cancelled'), 0),
            COALESCE(SUM(r.origin = 'arrival' AND r.reconciled = 0 AND r.state != 'cancelled'), 0)
         FROM sites si LEFT JOIN read_requests r ON r.site_id = si.id {site_filter}
         GROUP BY si.id, si.name ORDER BY si.name"
    );
    let rows = sqlx::query(&sql).bind(start_of_today).bind(now).fetch_all(db.pool()).await.map_err(ApiError::database)?;
    let mut total = Counters::default();
    let mut sites = Vec::new();
    for r in rows {
        let c = Counters {
            received_today: r.get(2),
            read_today: r.get(3),
            awaiting_report: r.get(4),
            awaiting_review: r.get(5),
            overdue: r.get(6),
            images_missing: r.get(7),
            unreconciled: r.get(8),
        };
        total.received_today += c.received_today;
        total.read_today += c.read_today;
        total.awaiting_report += c.awaiting_report;
        total.awaiting_review += c.awaiting_review;
        total.overdue += c.overdue;
        total.images_missing += c.images_missing;
        total.unreconciled += c.unreconciled;
        sites.push(SiteCounters { site_id: r.get(0), site: r.get(1), counters: c });
    }
    Ok((total, sites))
}
