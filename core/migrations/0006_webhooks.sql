-- Version 6: webhook endpoints per tenant and the log of their delivery attempts. The
-- events themselves travel through the outbox (channel 'webhook', recipient = endpoint id),
-- appended in the transaction of the change that caused them.

CREATE TABLE webhooks (
    id                 INTEGER PRIMARY KEY,
    tenant_id          INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    url                TEXT    NOT NULL,
    description        TEXT    NOT NULL DEFAULT '',
    event_types        TEXT    NOT NULL,   -- space-separated event types
    secret             TEXT    NOT NULL,   -- sealed when the store has a key
    previous_secret    TEXT,               -- still signs until previous_until_ms (rotation)
    previous_until_ms  INTEGER,
    enabled            INTEGER NOT NULL DEFAULT 1,
    disabled_reason    TEXT,
    failed_messages    INTEGER NOT NULL DEFAULT 0,   -- consecutive messages given up
    created_at         TEXT    NOT NULL,
    updated_at         TEXT    NOT NULL
);
CREATE INDEX webhooks_by_tenant ON webhooks (tenant_id, id);

CREATE TABLE webhook_deliveries (
    id             INTEGER PRIMARY KEY,
    tenant_id      INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    webhook_id     INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    message_id     INTEGER NOT NULL,   -- the outbox message (one per event and endpoint)
    event_id       TEXT    NOT NULL,
    event_type     TEXT    NOT NULL,
    attempt        INTEGER NOT NULL,
    attempted_at   TEXT    NOT NULL,
    status_code    INTEGER,            -- the receiver's HTTP status, if it answered
    error          TEXT,
    duration_ms    INTEGER NOT NULL,
    outcome        TEXT    NOT NULL    -- delivered | failed | given_up
);
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, id);
