-- The core's embedded store, version 1.
--
-- Domain objects are records: a typed row (tenant, kind, id) whose fields are a JSON
-- document written and read by `acs_core::records`. What the database itself must enforce
-- is in columns: tenancy (foreign keys), uniqueness within a tenant (`unique_keys`: acs_id,
-- live card numbers, PINs, QR codes …), idempotency of creates, and the append-only
-- streams (access events, audit). Written so that a PostgreSQL schema can mirror it.

CREATE TABLE tenants (
    id          INTEGER PRIMARY KEY,
    slug        TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    active      INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT    NOT NULL
);

CREATE TABLE api_keys (
    id          INTEGER PRIMARY KEY,
    tenant_id   INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    label       TEXT    NOT NULL,
    prefix      TEXT    NOT NULL,
    hash        TEXT    NOT NULL UNIQUE,
    created_at  TEXT    NOT NULL,
    revoked_at  TEXT
);

-- One sequence for every record id, so ids never repeat across kinds and tenants.
CREATE TABLE id_sequence (
    next_id     INTEGER NOT NULL
);
INSERT INTO id_sequence (next_id) VALUES (1);

CREATE TABLE records (
    id          INTEGER PRIMARY KEY,
    tenant_id   INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind        TEXT    NOT NULL,
    data        TEXT    NOT NULL,
    version     INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
);
CREATE INDEX records_by_kind ON records (tenant_id, kind, id);

CREATE TABLE unique_keys (
    tenant_id   INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    scope       TEXT    NOT NULL,
    value       TEXT    NOT NULL,
    record_id   INTEGER NOT NULL REFERENCES records(id) ON DELETE CASCADE,
    PRIMARY KEY (tenant_id, scope, value)
);
CREATE INDEX unique_keys_by_record ON unique_keys (record_id);

-- Large binary data (selfies), kept out of the records so that loading a tenant stays small.
CREATE TABLE blobs (
    record_id   INTEGER PRIMARY KEY REFERENCES records(id) ON DELETE CASCADE,
    media_type  TEXT    NOT NULL,
    bytes       BLOB    NOT NULL
);

CREATE TABLE idempotency_keys (
    tenant_id   INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    key         TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    status      INTEGER NOT NULL,
    body        TEXT    NOT NULL,
    created_at  TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, key)
);

CREATE TABLE access_events (
    id          INTEGER PRIMARY KEY,
    tenant_id   INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    occurred_at TEXT    NOT NULL,
    data        TEXT    NOT NULL
);
CREATE INDEX access_events_by_tenant ON access_events (tenant_id, id);

CREATE TABLE audit (
    id          INTEGER PRIMARY KEY,
    tenant_id   INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    at          TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    record_id   INTEGER,
    actor       TEXT    NOT NULL
);
CREATE INDEX audit_by_tenant ON audit (tenant_id, id);
