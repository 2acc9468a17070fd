-- What the nodes of one deployment share through its database.
--
-- key_checks: a check value for each key every node must hold the same copy of (the master
-- key for personal data, the PIN-escrow key, the sandbox gateway key). The value is a keyed
-- hash of a fixed label, so it says whether two keys are the same without revealing either;
-- a node whose key does not match refuses to start.
--
-- job_runs: one row per scheduled job (unpaid-order expiry, CRL refresh, reconciliation): the
-- period it last ran for, the node that claimed it, until when that node's claim holds, whether
-- it finished, and how many periods it has run in all. A node runs a job only after claiming the
-- job's current period; a claim that was not finished in time may be taken over.

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
    done BIGINT NOT NULL,
    runs BIGINT NOT NULL
);

-- One active key per CA role (root, issuing, OCSP signer), so that two nodes starting at once
-- on an empty database cannot both create a CA: the second insert fails and that node uses
-- the first node's.
CREATE UNIQUE INDEX ca_keys_one_active ON ca_keys(role) WHERE active = 1;

-- Indexes for queries that scanned their tables (found by the PostgreSQL index test): face-video
-- challenges per order (the daily limit), payments by creation time (reconciliation), the
-- sandbox SMS inbox per phone.
CREATE INDEX liveness_challenges_by_order ON liveness_challenges(order_id, created_at);
CREATE INDEX payments_by_creation ON payments(created_at);
CREATE INDEX sandbox_sms_by_phone ON sandbox_sms(phone, created_at);
