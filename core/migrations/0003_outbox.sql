-- Version 3: the notifications outbox – every message is written in the same transaction
-- as the change that caused it and delivered later by a background task, with retries – and
-- a lookup of unique claims by value across tenants (a public link finds its tenant by the
-- digest of its token this way).

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    tenant_id       INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    channel         TEXT    NOT NULL,   -- email | text
    recipient       TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    cause           TEXT    NOT NULL,   -- what caused it: invitation.created, cloud_key.issued …
    record_id       INTEGER,
    created_at      TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'pending',   -- pending | sent | failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,   -- milliseconds since the Unix epoch
    sent_at         TEXT,
    last_error      TEXT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_ms);
CREATE INDEX outbox_by_tenant ON outbox (tenant_id, id);

CREATE INDEX unique_keys_by_value ON unique_keys (scope, value);
