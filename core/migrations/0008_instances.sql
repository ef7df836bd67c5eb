-- Version 8: several core instances on one database.
--
-- `tenant_revisions`: each tenant's revision, moved by every commit of records or webhook
-- endpoints in that commit's transaction (a write commits only at the revision its snapshot
-- was built at), and `seq`, one increasing number over every tenant, the change feed's
-- cursor (instances poll for tenants changed after the seq they saw).
-- `instances`: the heartbeat of every running instance (expires unless renewed).
-- `terminal_leases`: which instance syncs which terminal, until when.
-- `rate_limits`: the public endpoints' counters, one row per key and fixed window.
-- The outbox gains a claim: the instance delivering a message and until when.
-- Every instant here is milliseconds since the Unix epoch on the database's clock.

CREATE TABLE tenant_revisions (
    tenant_id   INTEGER PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    revision    INTEGER NOT NULL DEFAULT 0,
    seq         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX tenant_revisions_by_seq ON tenant_revisions (seq);
INSERT INTO tenant_revisions (tenant_id) SELECT id FROM tenants;

CREATE TABLE instances (
    id          TEXT    PRIMARY KEY,
    expires_ms  INTEGER NOT NULL
);

CREATE TABLE terminal_leases (
    terminal_id INTEGER PRIMARY KEY,
    holder      TEXT    NOT NULL,
    expires_ms  INTEGER NOT NULL
);
CREATE INDEX terminal_leases_by_holder ON terminal_leases (holder);

CREATE TABLE rate_limits (
    key         TEXT    NOT NULL,
    window_ms   INTEGER NOT NULL,
    count       INTEGER NOT NULL,
    PRIMARY KEY (key, window_ms)
);
CREATE INDEX rate_limits_by_window ON rate_limits (window_ms);

ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN claimed_until_ms INTEGER;
