//! Claims on scheduled jobs, so that a job runs once per period across every node on the
//! database: the first node to claim a job's new period runs it; the others see the claim and
//! skip. A node that dies while running a job leaves a claim that runs out, and the next node
//! to look takes the period over.

use crate::{Store, StoreError, from_millis, millis};
use chrono::{DateTime, Utc};
use sqlx::Row;

/// The last claim on a scheduled job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRun {
    /// The node that claimed it.
    pub holder: String,
    /// The start of the period it was claimed for.
    pub period_start: DateTime<Utc>,
    /// Until when the claim holds if the job does not finish.
    pub lease_until: DateTime<Utc>,
    /// Whether the job finished for that period.
    pub done: bool,
    /// How many claims were made on the job in all (one per period, plus take-overs).
    pub runs: i64,
}

impl Store {
    /// Claims `job` for the period starting at `period_start` on behalf of `holder`, until
    /// `lease_until`. True when this node should run it now: nobody had claimed that period
    /// yet, or the claim of a node that did not finish has run out.
    pub async fn claim_job(
        &self,
        job: &str,
        holder: &str,
        period_start: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO job_runs (job, holder, period_start, lease_until, done, runs) VALUES ($1, $2, $3, $4, 0, 1) \
             ON CONFLICT (job) DO NOTHING",
        )
        .bind(job)
        .bind(holder)
        .bind(millis(period_start))
        .bind(millis(lease_until))
        .execute(self.pool())
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok(true);
        }
        let taken = sqlx::query(
            "UPDATE job_runs SET holder = $2, period_start = $3, lease_until = $4, done = 0, runs = runs + 1 \
             WHERE job = $1 AND (period_start < $3 OR (period_start = $3 AND done = 0 AND lease_until < $5))",
        )
        .bind(job)
        .bind(holder)
        .bind(millis(period_start))
        .bind(millis(lease_until))
        .bind(millis(now))
        .execute(self.pool())
        .await?;
        Ok(taken.rows_affected() == 1)
    }

    /// Marks `holder`'s claim on `job` for the period starting at `period_start` as finished.
    pub async fn finish_job(&self, job: &str, holder: &str, period_start: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("UPDATE job_runs SET done = 1 WHERE job = $1 AND holder = $2 AND period_start = $3")
            .bind(job)
            .bind(holder)
            .bind(millis(period_start))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The last claim on `job`, if it ever ran.
    pub async fn job_run(&self, job: &str) -> Result<Option<JobRun>, StoreError> {
        let Some(row) =
            sqlx::query("SELECT holder, period_start, lease_until, done, runs FROM job_runs WHERE job = $1")
                .bind(job)
                .fetch_optional(self.pool())
                .await?
        else {
            return Ok(None);
        };
        Ok(Some(JobRun {
            holder: row.try_get("holder")?,
            period_start: from_millis(row.try_get("period_start")?),
            lease_until: from_millis(row.try_get("lease_until")?),
            done: row.try_get::<i64, _>("done")? != 0,
            runs: row.try_get("runs")?,
        }))
    }
}
