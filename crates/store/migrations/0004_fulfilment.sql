-- Fulfilment and after-sales: the UKEYs personalised for orders, the PINs held in escrow
-- until activation, each approved order's fulfilment record (activation code, shipment,
-- returned confirmation form), issuance batches, e-invoices and counter services.
-- Same portable types as 0001. PINs and invoice buyers are sealed.

CREATE TABLE tokens (
    serial TEXT PRIMARY KEY,
    reader TEXT NOT NULL,
    order_id TEXT NOT NULL REFERENCES orders(id),
    key_id TEXT NOT NULL,
    certificate_serial TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX tokens_by_order ON tokens(order_id);

CREATE TABLE pin_escrow (
    token_serial TEXT NOT NULL REFERENCES tokens(serial),
    kind TEXT NOT NULL,
    generation BIGINT NOT NULL,
    pin_sealed TEXT,
    created_at BIGINT NOT NULL,
    released_at BIGINT,
    PRIMARY KEY (token_serial, kind)
);

CREATE TABLE fulfilments (
    order_id TEXT PRIMARY KEY REFERENCES orders(id),
    activation_code TEXT NOT NULL UNIQUE,
    token_serial TEXT,
    courier TEXT,
    tracking_no TEXT,
    shipped_at BIGINT,
    shipped_by TEXT,
    form_printed_at BIGINT,
    form_returned_at BIGINT,
    form_returned_by TEXT,
    activation_consent_at BIGINT,
    activation_failures BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE issuance_batches (
    id TEXT PRIMARY KEY,
    created_by TEXT NOT NULL,
    order_ids TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE invoices (
    order_id TEXT PRIMARY KEY REFERENCES orders(id),
    request_sealed TEXT NOT NULL,
    amount_fen BIGINT NOT NULL,
    state TEXT NOT NULL,
    invoice_no TEXT,
    pdf_blob TEXT,
    requested_at BIGINT NOT NULL,
    issued_at BIGINT,
    issued_by TEXT
);
CREATE INDEX invoices_by_state ON invoices(state, requested_at);

CREATE TABLE counter_services (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL REFERENCES orders(id),
    kind TEXT NOT NULL,
    staff TEXT NOT NULL,
    record_sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX counter_services_by_order ON counter_services(order_id, created_at);
