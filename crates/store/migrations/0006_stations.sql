-- Personalisation stations: workstations with a hub of UKEYs that personalise keys over the
-- HTTP API. A station is enrolled by a member of staff and holds a bearer credential (only
-- its hash is kept); a lease is one key being worked on for one order at a station — its
-- personalisation from a batch (service 'issue'), or a counter service with the key in hand
-- ('unlock_pin', 'renew', 'reissue') — from the claim (PINs sealed to the escrow key before
-- the key is touched) to its completion or abandonment. Batches say whether the server or a
-- station personalises them.

CREATE TABLE stations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    staff_id TEXT NOT NULL REFERENCES staff(id),
    credential_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    revoked_at BIGINT,
    revoked_by TEXT
);

CREATE TABLE station_leases (
    id TEXT PRIMARY KEY,
    station_id TEXT NOT NULL REFERENCES stations(id),
    service TEXT NOT NULL,
    batch_id TEXT,
    order_id TEXT NOT NULL REFERENCES orders(id),
    token_serial TEXT NOT NULL,
    so_pin_sealed TEXT NOT NULL,
    user_pin_sealed TEXT NOT NULL,
    state TEXT NOT NULL,
    certificate_serial TEXT,
    outcome TEXT,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
-- At most one live lease per order and per key.
CREATE UNIQUE INDEX station_leases_live_order ON station_leases(order_id) WHERE state IN ('claimed', 'certified');
CREATE UNIQUE INDEX station_leases_live_key ON station_leases(token_serial) WHERE state IN ('claimed', 'certified');
CREATE INDEX station_leases_by_key ON station_leases(token_serial, created_at);
CREATE INDEX station_leases_by_batch ON station_leases(batch_id);

ALTER TABLE issuance_batches ADD COLUMN personalised_at TEXT NOT NULL DEFAULT 'server';
