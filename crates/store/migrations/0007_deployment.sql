-- What the nodes of one deployment share through its database.
--
-- key_checks: a check value for each key every node must hold the same copy of (the master
-- key for personal data, the PIN-escrow key, the sandbox gateway key). The value is a keyed
-- hash of a fixed label, so it says whether two keys are the same without revealing either;
-- a node whose key does not match refuses to start.
--
-- job_runs: one row per scheduled job (CRL refresh, unpaid-order expiry, reconciliation …):
-- the node holding the job's lease for the current period runs it; the others skip it.

CREATE TABLE key_checks (
    name TEXT PRIMARY KEY,
    check_value TEXT NOT NULL,
    recorded_at BIGINT NOT NULL
);

CREATE TABLE job_runs (
    job TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    period_start BIGINT NOT NULL,
    lease_until BIGINT NOT NULL,
    runs BIGINT NOT NULL
);
