//! `GET /api/events`: a server-sent event each time the worklist changes,
//! so a reader's open pool loses a case another reader claimed within a
//! moment, without every browser asking for the whole list every second.
//!
//! Every state change of a read request records an event in the change's
//! own transaction (`telediag_workflow::requests`), so the newest event's
//! id is the worklist's version (`Workflow::version`). One
//! task per process reads it every [`POLL`] — a primary-key lookup,
//! whatever the number of browsers — and wakes the streams; no writer
//! has to remember to announce its change. The event says only that
//! something changed: each browser then asks for its own list, in its own
//! scope, so a site's user learns nothing of another site's patients.

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use telediag_workflow::Workflow;
use tokio::sync::watch;

use crate::AppState;
use crate::auth::CurrentUser;
use crate::error::ApiError;

/// How often the feed looks for a change: well inside the 2 s within which
/// a claimed case must leave the other readers' pools.
pub const POLL: Duration = Duration::from_millis(400);

/// The worklist's version, shared by every stream of this process.
#[derive(Clone, Default)]
pub struct ChangeFeed {
    version: Arc<OnceLock<watch::Receiver<i64>>>,
}

impl ChangeFeed {
    /// A receiver of the version, starting the polling task on first use.
    fn subscribe(&self, workflow: &Workflow) -> watch::Receiver<i64> {
        self.version
            .get_or_init(|| {
                let (tx, rx) = watch::channel(0);
                tokio::spawn(poll(workflow.clone(), tx));
                rx
            })
            .clone()
    }
}

async fn poll(workflow: Workflow, tx: watch::Sender<i64>) {
    let mut interval = tokio::time::interval(POLL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        match workflow.version().await {
            Ok(version) => {
                tx.send_if_modified(|current| std::mem::replace(current, version) != version);
            }
            Err(e) => tracing::warn!(error = %e, "the worklist's change feed cannot read the workflow's version"),
        }
    }
}

/// `GET /api/events`: `event: requests` with the new version whenever a
/// request changes; a comment every 15 s keeps proxies from closing it.
pub async fn stream(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    user.scope()?;
    let mut version = state.changes.subscribe(&state.workflow);
    version.mark_unchanged();
    let events = futures_util::stream::unfold(version, |mut version| async move {
        version.changed().await.ok()?;
        let current = *version.borrow_and_update();
        Some((Ok(Event::default().event("requests").data(current.to_string())), version))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
