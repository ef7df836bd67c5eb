-- Version 3 (as `../0003_outbox.sql`): the notifications outbox, and a lookup of unique
-- claims by value across tenants.

CREATE TABLE outbox (
    id              BIGSERIAL PRIMARY KEY,
    tenant_id       BIGINT  NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    channel         TEXT    NOT NULL,   -- email | text | webhook
    recipient       TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    cause           TEXT    NOT NULL,
    record_id       BIGINT,
    created_at      TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'pending',   -- pending | sent | failed
    attempts        BIGINT  NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT  NOT NULL,   -- milliseconds since the Unix epoch
    sent_at         TEXT,
    last_error      TEXT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_ms);
CREATE INDEX outbox_by_tenant ON outbox (tenant_id, id);

CREATE INDEX unique_keys_by_value ON unique_keys (scope, value);
