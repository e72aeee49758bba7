//! What readers, sites and admins see of the worklist: filtered lists,
//! soonest deadline first, and the dashboard's counters, each in the
//! caller's scope.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use telediag_archive::db::now_ms;
use telediag_archive::sql::numbered;

use crate::Workflow;
use crate::actor::{Actor, Role, Scope};
use crate::error::Result;
use crate::policy::Priority;
use crate::requests::{REQUEST_COLUMNS, REQUEST_FROM, ReadRequest, RequestState, request_from_row};

/// Which list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum View {
    /// Everything the caller may see.
    #[default]
    All,
    /// Held by the caller and not yet final.
    Mine,
    /// Waiting for a reader, with images, that the caller is credentialed to read.
    Pool,
    /// Awaiting a reviewer's signature (reviewers only).
    Review,
    /// Open past their deadline.
    Overdue,
}

impl View {
    pub fn parse(s: &str) -> Option<View> {
        [("all", View::All), ("mine", View::Mine), ("pool", View::Pool), ("review", View::Review), ("overdue", View::Overdue)]
            .into_iter()
            .find_map(|(name, view)| (name == s).then_some(view))
    }
}

/// Filters of the request lists.
#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    pub view: View,
    /// A site's name.
    pub site: Option<String>,
    pub modality: Option<String>,
    pub priority: Option<Priority>,
    pub state: Option<RequestState>,
    /// Requests created on or after / before, as Unix ms.
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Only arrivals no registration matched yet.
    pub unreconciled: bool,
    /// At most this many (1–5000; 500 by default).
    pub limit: Option<i64>,
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

impl std::ops::AddAssign<&Counters> for Counters {
    fn add_assign(&mut self, c: &Counters) {
        self.received_today += c.received_today;
        self.read_today += c.read_today;
        self.awaiting_report += c.awaiting_report;
        self.awaiting_review += c.awaiting_review;
        self.overdue += c.overdue;
        self.images_missing += c.images_missing;
        self.unreconciled += c.unreconciled;
    }
}

/// One site's counters.
#[derive(Debug, Clone, Serialize)]
pub struct SiteCounters {
    pub site_id: i64,
    pub site: String,
    #[serde(flatten)]
    pub counters: Counters,
}

impl Workflow {
    /// The requests `actor` may see matching `filter`, soonest deadline
    /// first. The pool first returns lapsed locks to it, and keeps only what
    /// the actor is credentialed to read.
    pub async fn list(&self, actor: &Actor, filter: &RequestFilter) -> Result<Vec<ReadRequest>> {
        /// A value for the next `?`, in clause order.
        enum Arg {
            Text(String),
            Int(i64),
        }
        if filter.view == View::Pool {
            self.release_lapsed().await?;
        }
        let now = now_ms();
        let mut clauses: Vec<&str> = Vec::new();
        let mut args: Vec<Arg> = Vec::new();
        if let Scope::Site(site) = actor.scope()? {
            clauses.push("r.site_id = ?");
            args.push(Arg::Int(site));
        }
        match filter.view {
            View::All => {}
            View::Mine => {
                clauses.push("r.assigned_to = ? AND r.state IN ('assigned', 'reading', 'preliminary')");
                args.push(Arg::Int(actor.id));
            }
            // Credentials are checked on the rows (see below).
            View::Pool => clauses.push("r.state = 'received' AND r.study_uid IS NOT NULL"),
            View::Review => {
                actor.require(Role::Reviewer, "the review list")?;
                clauses.push("r.state = 'preliminary'");
            }
            View::Overdue => {
                clauses.push("r.state IN ('received', 'assigned', 'reading', 'preliminary') AND r.deadline_at < ?");
                args.push(Arg::Int(now));
            }
        }
        let texts = [
            ("si.name = ?", filter.site.clone()),
            ("r.modality = ?", filter.modality.clone()),
            ("r.priority = ?", filter.priority.map(|p| p.as_str().to_owned())),
            ("r.state = ?", filter.state.map(|s| s.as_str().to_owned())),
        ];
        for (clause, value) in texts {
            if let Some(value) = value {
                clauses.push(clause);
                args.push(Arg::Text(value));
            }
        }
        if filter.unreconciled {
            clauses.push("r.origin = 'arrival' AND r.reconciled = 0");
        }
        for (clause, value) in [("r.created_at >= ?", filter.from), ("r.created_at < ?", filter.to)] {
            if let Some(value) = value {
                clauses.push(clause);
                args.push(Arg::Int(value));
            }
        }
        let limit = filter.limit.unwrap_or(500).clamp(1, 5000);
        let where_clause = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
        let sql = numbered(&format!(
            "SELECT {REQUEST_COLUMNS} {REQUEST_FROM} {where_clause}
             ORDER BY r.deadline_at IS NULL, r.deadline_at, r.created_at LIMIT {limit}"
        ));
        let mut query = sqlx::query(&sql);
        for arg in args {
            query = match arg {
                Arg::Text(text) => query.bind(text),
                Arg::Int(number) => query.bind(number),
            };
        }
        let rows = query.fetch_all(self.pool()).await?;
        let requests = rows.iter().map(|r| request_from_row(r, now)).collect::<Result<Vec<_>>>()?;
        if filter.view == View::Pool {
            return self.only_qualified(actor, requests).await;
        }
        Ok(requests)
    }

    /// The dashboard: counters per site and overall since `start_of_today`
    /// (Unix ms); a site user sees their site only.
    pub async fn dashboard(&self, actor: &Actor, start_of_today: i64) -> Result<(Counters, Vec<SiteCounters>)> {
        let now = now_ms();
        let site = match actor.scope()? {
            Scope::Site(site) => Some(site),
            Scope::AllSites => None,
        };
        let rows = sqlx::query(
            "SELECT si.id, si.name,
                COUNT(r.id) FILTER (WHERE r.images_at >= $1),
                COUNT(r.id) FILTER (WHERE EXISTS (SELECT 1 FROM reports rp WHERE rp.request_id = r.id AND rp.version = 1 AND rp.author_signed_at >= $1)),
                COUNT(r.id) FILTER (WHERE r.state IN ('received', 'assigned', 'reading') AND r.study_uid IS NOT NULL),
                COUNT(r.id) FILTER (WHERE r.state = 'preliminary'),
                COUNT(r.id) FILTER (WHERE r.state IN ('received', 'assigned', 'reading', 'preliminary') AND r.deadline_at < $2),
                COUNT(r.id) FILTER (WHERE r.study_uid IS NULL AND r.state != 'cancelled'),
                COUNT(r.id) FILTER (WHERE r.origin = 'arrival' AND r.reconciled = 0 AND r.state != 'cancelled')
             FROM sites si LEFT JOIN read_requests r ON r.site_id = si.id WHERE $3 IS NULL OR si.id = $3
             GROUP BY si.id, si.name ORDER BY si.name",
        )
        .bind(start_of_today)
        .bind(now)
        .bind(site)
        .fetch_all(self.pool())
        .await?;
        let mut total = Counters::default();
        let mut sites = Vec::new();
        for r in rows {
            let counters = Counters {
                received_today: r.get(2),
                read_today: r.get(3),
                awaiting_report: r.get(4),
                awaiting_review: r.get(5),
                overdue: r.get(6),
                images_missing: r.get(7),
                unreconciled: r.get(8),
            };
            total += &counters;
            sites.push(SiteCounters { site_id: r.get(0), site: r.get(1), counters });
        }
        Ok((total, sites))
    }
}
