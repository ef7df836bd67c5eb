-- Version 6 (as `../0006_webhooks.sql`): webhook endpoints per tenant and the log of their
-- delivery attempts.

CREATE TABLE webhooks (
    id                 BIGINT  PRIMARY KEY,
    tenant_id          BIGINT  NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    url                TEXT    NOT NULL,
    description        TEXT    NOT NULL DEFAULT '',
    event_types        TEXT    NOT NULL,   -- space-separated event types
    secret             TEXT    NOT NULL,   -- sealed when the store has a key
    previous_secret    TEXT,
    previous_until_ms  BIGINT,
    enabled            BOOLEAN NOT NULL DEFAULT TRUE,
    disabled_reason    TEXT,
    failed_messages    BIGINT  NOT NULL DEFAULT 0,
    created_at         TEXT    NOT NULL,
    updated_at         TEXT    NOT NULL
);
CREATE INDEX webhooks_by_tenant ON webhooks (tenant_id, id);

CREATE TABLE webhook_deliveries (
    id             BIGSERIAL PRIMARY KEY,
    tenant_id      BIGINT  NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    webhook_id     BIGINT  NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    message_id     BIGINT  NOT NULL,
    event_id       TEXT    NOT NULL,
    event_type     TEXT    NOT NULL,
    attempt        BIGINT  NOT NULL,
    attempted_at   TEXT    NOT NULL,
    status_code    BIGINT,
    error          TEXT,
    duration_ms    BIGINT  NOT NULL,
    outcome        TEXT    NOT NULL    -- delivered | failed | given_up
);
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, id);
