-- The certificate authority: its keys and certificates, the certificates it issued, and its
-- CRLs. Same portable types as 0001. Private keys and issued certificates (which name a
-- person) are sealed by the vault; serials are upper-case hex.

CREATE TABLE ca_keys (
    id TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    certificate_der TEXT NOT NULL,
    key_ref TEXT NOT NULL,
    key_sealed TEXT,
    created_at BIGINT NOT NULL,
    active BIGINT NOT NULL
);
CREATE INDEX ca_keys_active ON ca_keys(role, active);

CREATE TABLE certificates (
    serial TEXT PRIMARY KEY,
    issuer_id TEXT NOT NULL REFERENCES ca_keys(id),
    order_id TEXT,
    profile TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    status_changed_at BIGINT NOT NULL,
    not_before BIGINT NOT NULL,
    not_after BIGINT NOT NULL,
    der_sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX certificates_by_issuer_status ON certificates(issuer_id, status);
CREATE INDEX certificates_by_order ON certificates(order_id);

CREATE TABLE crls (
    issuer_id TEXT NOT NULL REFERENCES ca_keys(id),
    crl_number BIGINT NOT NULL,
    this_update BIGINT NOT NULL,
    next_update BIGINT NOT NULL,
    der TEXT NOT NULL,
    PRIMARY KEY (issuer_id, crl_number)
);
