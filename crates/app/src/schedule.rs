//! The scheduled jobs and how the nodes of a deployment share them. A job that changes shared
//! state — expiring unpaid orders, publishing the CRL, reconciling a day's payments — runs once
//! per period across all nodes: each node that wakes up claims the job's current period in the
//! database, and only the node whose claim succeeds runs it. A node that dies half-way leaves a
//! claim that runs out after the job's lease, and the next node to look runs that period.
//! Work on a node's own memory (re-signing its cached OCSP responses, refreshing its WeChat Pay
//! platform certificates) is not a shared job: every node does its own.

use crate::{App, AppError};
use chrono::{DateTime, Duration, TimeZone, Timelike, Utc};

/// A job that runs once per period across the deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// Cancels unpaid orders past their payment deadline; every 30 seconds.
    ExpireUnpaid,
    /// Publishes a new CRL when the current one is half-way to its nextUpdate; every 5 minutes.
    CrlRefresh,
    /// Reconciles the previous Beijing day's payments with the gateways' bills; once a day from
    /// 10:00 Beijing time, when WeChat Pay has published the bill.
    Reconciliation,
    /// Deletes personal data whose retention period is over; every hour.
    Retention,
}

impl Job {
    /// Every shared job.
    pub const ALL: [Job; 4] = [Job::ExpireUnpaid, Job::CrlRefresh, Job::Reconciliation, Job::Retention];

    /// The job's name in the database and in logs.
    pub fn name(self) -> &'static str {
        match self {
            Job::ExpireUnpaid => "expire_unpaid",
            Job::CrlRefresh => "crl_refresh",
            Job::Reconciliation => "reconciliation",
            Job::Retention => "retention",
        }
    }

    /// The start of the period `now` falls in: the job runs once in each.
    pub fn period_start(self, now: DateTime<Utc>) -> DateTime<Utc> {
        let every = |seconds: i64| {
            let t = now.timestamp();
            Utc.timestamp_opt(t - t.rem_euclid(seconds), 0).single().expect("a whole second in range")
        };
        match self {
            Job::ExpireUnpaid => every(30),
            Job::CrlRefresh => every(300),
            Job::Retention => every(3600),
            Job::Reconciliation => {
                let beijing = now.with_timezone(&crate::china_time());
                let day =
                    if beijing.hour() < 10 { beijing.date_naive() - Duration::days(1) } else { beijing.date_naive() };
                let ten = day.and_hms_opt(10, 0, 0).expect("10:00 exists");
                crate::china_time().from_local_datetime(&ten).single().expect("UTC+8 has no gaps").with_timezone(&Utc)
            }
        }
    }

    /// How long a node's claim holds before another node may take the period over.
    pub fn lease(self) -> Duration {
        match self {
            Job::ExpireUnpaid => Duration::minutes(2),
            Job::CrlRefresh => Duration::minutes(5),
            Job::Reconciliation => Duration::minutes(15),
            Job::Retention => Duration::minutes(30),
        }
    }
}

/// The Beijing day whose payments the reconciliation of the period starting at `period_start`
/// covers: the day before.
pub fn reconciled_day(period_start: DateTime<Utc>) -> chrono::NaiveDate {
    period_start.with_timezone(&crate::china_time()).date_naive() - Duration::days(1)
}

impl App {
    /// Runs `job` for the current period unless another node has (or is running it). Returns
    /// whether this node ran it. A failure leaves the period claimed until the lease runs out;
    /// then any node tries again.
    pub async fn run_job(&self, job: Job) -> Result<bool, AppError> {
        let now = self.now();
        let period = job.period_start(now);
        if !self.store().claim_job(job.name(), self.node_id(), period, now + job.lease(), now).await? {
            return Ok(false);
        }
        match job {
            Job::ExpireUnpaid => {
                let n = self.expire_overdue_orders().await?;
                if n > 0 {
                    tracing::info!(expired = n, "unpaid orders expired");
                }
            }
            Job::CrlRefresh => {
                self.current_crl().await?;
            }
            Job::Reconciliation => {
                let day = reconciled_day(period);
                let report = self.reconcile(day).await?;
                tracing::info!(%day, payments = report.payments, findings = report.findings.len(), "payments reconciled");
            }
            Job::Retention => {
                let report = self.run_retention(false).await?;
                if !report.erased.is_empty() || report.purged_blobs > 0 {
                    tracing::info!(
                        orders = report.erased.len(),
                        blobs = report.purged_blobs,
                        "personal data past its retention deleted"
                    );
                }
            }
        }
        self.store().finish_job(job.name(), self.node_id(), period).await?;
        Ok(true)
    }

    /// [`App::run_job`], with a failure logged rather than returned (for the workers).
    pub(crate) async fn run_job_logged(&self, job: Job) {
        let outcome = match self.run_job(job).await {
            Ok(true) => "ran",
            Ok(false) => "skipped",
            Err(e) => {
                tracing::error!(job = job.name(), error = %e, "scheduled job failed");
                "failed"
            }
        };
        crate::metrics::scheduled_job(job.name(), outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn periods_are_aligned_so_every_node_computes_the_same_one() {
        assert_eq!(Job::ExpireUnpaid.period_start(at("2026-12-07T21:30:29Z")), at("2026-12-07T21:30:00Z"));
        assert_eq!(Job::ExpireUnpaid.period_start(at("2026-12-07T21:30:30Z")), at("2026-12-07T21:30:30Z"));
        assert_eq!(Job::CrlRefresh.period_start(at("2026-12-07T21:34:59Z")), at("2026-12-07T21:30:00Z"));
        assert_eq!(Job::CrlRefresh.period_start(at("2026-12-07T21:35:00Z")), at("2026-12-07T21:35:00Z"));
    }

    #[test]
    fn reconciliation_runs_from_ten_in_beijing_for_the_day_before() {
        // 09:59 Beijing on the 8th is still the period that began at 10:00 on the 7th.
        let before_ten = at("2026-12-08T01:59:00Z");
        assert_eq!(Job::Reconciliation.period_start(before_ten), at("2026-12-07T02:00:00Z"));
        assert_eq!(reconciled_day(Job::Reconciliation.period_start(before_ten)).to_string(), "2026-12-06");
        // From 10:00 Beijing on the 8th, the 7th is reconciled.
        let ten = at("2026-12-08T02:00:00Z");
        assert_eq!(Job::Reconciliation.period_start(ten), ten);
        assert_eq!(reconciled_day(ten).to_string(), "2026-12-07");
        // 01:00 Beijing on the 9th (17:00 UTC on the 8th): still the period of the 8th.
        assert_eq!(Job::Reconciliation.period_start(at("2026-12-08T17:00:00Z")), at("2026-12-08T02:00:00Z"));
    }
}
