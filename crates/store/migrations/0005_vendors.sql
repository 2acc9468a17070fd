-- Real vendor connections: applicants' WeChat openids (web authorisation, for JSAPI payment
-- and as a login), and invoices issued through an e-invoicing service (its serial number and
-- a failure, if any). Same portable types as 0001. The openid is sealed; its lookup hash
-- finds the applicant.

CREATE TABLE wechat_identities (
    openid_hash TEXT PRIMARY KEY,
    applicant_id TEXT NOT NULL REFERENCES applicants(id),
    openid_sealed TEXT NOT NULL,
    bound_at BIGINT NOT NULL
);
CREATE INDEX wechat_identities_by_applicant ON wechat_identities(applicant_id, bound_at);

ALTER TABLE invoices ADD COLUMN provider TEXT;
ALTER TABLE invoices ADD COLUMN provider_serial TEXT;
ALTER TABLE invoices ADD COLUMN failure TEXT;
