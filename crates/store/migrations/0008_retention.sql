-- Retention and deletion of personal data.
--
-- erasures: one row per order whose personal data was deleted — why (`closed_order`: the
-- materials of a cancelled or refunded order after its short period; `certificate_retention`:
-- identity materials five years (or as configured) after the order's last certificate expired;
-- `applicant_request`: a deletion the applicant asked for, where the law allows it), what kinds
-- of data went (material steps and blob kinds, never the data) and when. An order with a row
-- here is not looked at again.
--
-- materials.erased_at, blobs.erased_at: set when the sealed value was overwritten (materials:
-- `sealed` emptied, so its wrapped data key is gone with it) or the blob was given up; a read
-- of either answers "deleted", not an error. blobs.purged_at: when the blob's sealed bytes left
-- the blob store (done after the erasure commits; a failed delete is tried again on the next run).

CREATE TABLE erasures (
    order_id TEXT PRIMARY KEY REFERENCES orders(id),
    reason TEXT NOT NULL,
    kinds TEXT NOT NULL,
    blobs BIGINT NOT NULL,
    erased_at BIGINT NOT NULL,
    erased_by TEXT NOT NULL
);

ALTER TABLE materials ADD COLUMN erased_at BIGINT;
ALTER TABLE blobs ADD COLUMN erased_at BIGINT;
ALTER TABLE blobs ADD COLUMN purged_at BIGINT;

CREATE INDEX blobs_by_order ON blobs(order_id);
CREATE INDEX blobs_to_purge ON blobs(erased_at, purged_at);
CREATE INDEX certificates_by_expiry ON certificates(not_after);
CREATE INDEX orders_by_state_change ON orders(state, updated_at);
CREATE INDEX erasures_by_time ON erasures(erased_at);
