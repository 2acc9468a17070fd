-- The first schema of yiqian. One file for SQLite and PostgreSQL: only portable types
-- (TEXT, BIGINT), identifiers made by the application, times as Unix milliseconds.
-- Personal data is never stored in plain text here: columns named *_sealed hold envelope-
-- encrypted values (base64), columns named *_hash hold keyed hashes for lookup.

CREATE TABLE applicants (
    id TEXT PRIMARY KEY,
    phone_hash TEXT NOT NULL UNIQUE,
    phone_sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    applicant_id TEXT NOT NULL REFERENCES applicants(id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE orders (
    id TEXT PRIMARY KEY,
    applicant_id TEXT NOT NULL REFERENCES applicants(id),
    product_code TEXT NOT NULL,
    price_fen BIGINT NOT NULL,
    state TEXT NOT NULL,
    checklist BIGINT NOT NULL,
    paid_by TEXT,
    pay_deadline BIGINT NOT NULL,
    agreement_version TEXT NOT NULL,
    agreement_accepted_at BIGINT NOT NULL,
    id_number_hash TEXT,
    phone_sealed TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX orders_by_applicant ON orders(applicant_id, created_at);
CREATE INDEX orders_by_state ON orders(state, pay_deadline);
CREATE INDEX orders_by_id_number ON orders(id_number_hash);

CREATE TABLE order_events (
    order_id TEXT NOT NULL REFERENCES orders(id),
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    state_after TEXT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (order_id, seq)
);

CREATE TABLE materials (
    order_id TEXT NOT NULL REFERENCES orders(id),
    step TEXT NOT NULL,
    sealed TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (order_id, step)
);

CREATE TABLE blobs (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE liveness_challenges (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL REFERENCES orders(id),
    digits TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);

CREATE TABLE payments (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL REFERENCES orders(id),
    channel TEXT NOT NULL,
    amount_fen BIGINT NOT NULL,
    state TEXT NOT NULL,
    gateway_txn TEXT,
    created_at BIGINT NOT NULL,
    succeeded_at BIGINT
);
CREATE INDEX payments_by_order ON payments(order_id);

CREATE TABLE refunds (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL REFERENCES orders(id),
    payment_id TEXT NOT NULL UNIQUE REFERENCES payments(id),
    amount_fen BIGINT NOT NULL,
    reason TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    succeeded_at BIGINT
);
CREATE INDEX refunds_by_order ON refunds(order_id);

-- Every gateway notification accepted, so a replay is recognised.
CREATE TABLE gateway_notifications (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    received_at BIGINT NOT NULL
);

CREATE TABLE sms_codes (
    id TEXT PRIMARY KEY,
    phone_hash TEXT NOT NULL,
    purpose TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    client_ip TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    consumed_at BIGINT
);
CREATE INDEX sms_codes_by_phone ON sms_codes(phone_hash, created_at);
CREATE INDEX sms_codes_by_ip ON sms_codes(client_ip, created_at);

CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    payload_sealed TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    done_at BIGINT
);
CREATE INDEX outbox_due ON outbox(state, next_attempt_at);

-- Messages "delivered" by the sandbox SMS provider: the development stand-in for phones.
CREATE TABLE sandbox_sms (
    id TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    phone TEXT NOT NULL,
    template TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE audit_head (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE audit_events (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
