-- Version 2 (as `../0002_applied_state.sql`): what the sync engine last applied to each
-- terminal, per subject.

CREATE TABLE applied_state (
    tenant_id   BIGINT  NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    terminal_id BIGINT  NOT NULL,
    subject     TEXT COLLATE "C" NOT NULL,
    data        TEXT    NOT NULL,
    applied_at  TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, terminal_id, subject)
);
