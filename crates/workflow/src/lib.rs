//! Telediag's workflow: who reads what, and the life of every report.
//!
//! One owner per state machine. A read request's state ([`RequestState`])
//! and a report version's ([`ReportState`]) change only here, each change
//! through one function that checks who may make it and from which state,
//! and writes it (with its history event, and with whatever must change
//! alongside) in one transaction guarded by the state it came from. The
//! HTTP layer, the CLI and the background workers call these functions
//! with an [`Actor`] and map [`WorkflowError`] to their own answers.
//!
//! - [`requests`]: read requests, their states and the one writer of them.
//! - [`intake`]: requests from completed studies and site registrations,
//!   reconciled once (race-free); the study.complete worker.
//! - [`assign`]: credentials, the pool and its claims (抢单), rules, locks
//!   that lapse, admin unlock and reassignment; the lock sweeper.
//! - [`reports`]: versions, drafts, the two signatures around the caller's
//!   cryptography, return, addenda and amendments, revocation, verification.
//! - [`critical`]: critical findings and their acknowledgement.
//! - [`lists`]: the worklist views and the dashboard, in the caller's scope.
//! - [`policy`]: the centre's rules (locks, turnaround, assignment mode).
//!
//! What it does not know: HTTP, sessions and passwords (the caller
//! authenticates and confirms), PDFs and keys (the caller signs, stores and
//! hands in a [`reports::SignedDocument`]), or object bytes.

pub mod actor;
pub mod assign;
pub mod critical;
pub mod error;
pub mod intake;
pub mod lists;
pub mod policy;
pub mod reports;
pub mod requests;
pub mod site_settings;

use std::sync::Arc;

use telediag_archive::Database;

pub use actor::{Actor, Role, Scope};
pub use error::WorkflowError;
pub use policy::{AssignmentMode, Policy, Priority, Turnaround};
pub use reports::{ReportKind, ReportState};
pub use requests::{ReadRequest, RequestState};

/// The workflow over one index database, with the centre's rules (cheap to clone).
#[derive(Debug, Clone)]
pub struct Workflow {
    db: Database,
    policy: Arc<Policy>,
}

impl Workflow {
    pub fn new(db: Database, policy: Policy) -> Workflow {
        Workflow { db, policy: Arc::new(policy) }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    fn pool(&self) -> &sqlx::AnyPool {
        self.db.pool()
    }
}
