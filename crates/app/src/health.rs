//! Whether this node can serve: what a load balancer's readiness probe asks. Liveness needs
//! nothing from here (a process that answers HTTP is alive).

use crate::App;
use std::time::{Duration, Instant};

/// The background worker counts as alive while it has been seen within this time: it passes
/// its loop at least every second, and between two messages of a long backlog.
pub const WORKER_SILENCE: Duration = Duration::from_secs(60);

/// One readiness check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked: `database`, `blobs`, `keys`, `outbox_worker`.
    pub name: &'static str,
    /// `None` when it passed; else why not (for the operator: no personal data, no secret).
    pub problem: Option<String>,
}

/// The outcome of every readiness check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// Each check, in a fixed order.
    pub checks: Vec<Check>,
}

impl Readiness {
    /// Whether every check passed.
    pub fn is_ready(&self) -> bool {
        self.checks.iter().all(|c| c.problem.is_none())
    }
}

impl App {
    /// Notes that the background worker is alive (called from its loop).
    pub(crate) fn worker_seen(&self) {
        *self.inner.worker_seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }

    /// Checks what serving needs: the database answers, the blob store answers, the CA's
    /// signing key is loaded (it is sealed under the master key, so this also proves the
    /// master key opens the deployment's data), and the outbox worker has been seen lately.
    pub async fn readiness(&self) -> Readiness {
        let database = self.store().ping().await.err().map(|e| e.to_string());
        let blobs = self.store().ping_blobs().await.err().map(|e| e.to_string());
        let keys = self.issuing_ca().await.err().map(|e| e.to_string());
        let seen = *self.inner.worker_seen.lock().unwrap_or_else(|e| e.into_inner());
        let worker = match seen {
            None => Some("the outbox worker has not started".to_owned()),
            Some(at) if at.elapsed() > WORKER_SILENCE => {
                Some(format!("the outbox worker was last seen {} s ago", at.elapsed().as_secs()))
            }
            Some(_) => None,
        };
        let checks = [("database", database), ("blobs", blobs), ("keys", keys), ("outbox_worker", worker)]
            .into_iter()
            .map(|(name, problem)| Check { name, problem })
            .collect();
        Readiness { checks }
    }
}
