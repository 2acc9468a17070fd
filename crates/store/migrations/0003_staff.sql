-- Staff accounts of the console and their sessions. Same portable types as 0001: TEXT,
-- BIGINT (0/1 for flags), times as Unix milliseconds.
-- Passwords are kept only as argon2id PHC strings; the TOTP secret is sealed by the vault
-- (context `staff:ID:totp`); sessions are kept only as SHA-256 hashes of their tokens, and
-- their CSRF tokens are derived from the session token (keyed), never stored.

CREATE TABLE staff (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    totp_secret_sealed TEXT,
    totp_enrolled BIGINT NOT NULL DEFAULT 0,
    failed_logins BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT,
    last_totp_step BIGINT,
    disabled BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- stage: 'password_ok' (password checked, one-time code awaited) or 'full'.
CREATE TABLE staff_sessions (
    token_hash TEXT PRIMARY KEY,
    staff_id TEXT NOT NULL REFERENCES staff(id),
    stage TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL
);
CREATE INDEX staff_sessions_by_staff ON staff_sessions(staff_id);
CREATE INDEX staff_sessions_by_expiry ON staff_sessions(expires_at);
