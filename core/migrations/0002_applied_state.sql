-- Version 2: what the sync engine last applied to each terminal, per subject (a person with
-- their credentials and rules, a schedule's time zone and rule, the holidays), so a restart
-- resumes without re-pushing everything; and what the engine learnt about each device.

CREATE TABLE applied_state (
    tenant_id   INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    terminal_id INTEGER NOT NULL,
    subject     TEXT    NOT NULL,
    data        TEXT    NOT NULL,
    applied_at  TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, terminal_id, subject)
);
