-- The core's PostgreSQL store, version 1: the same tables as `../0001_initial.sql`.
--
-- Instants are stored as the same RFC 3339 text the SQLite schema uses (nanoseconds kept
-- exactly), JSON documents as text (kept byte for byte, key order included), ids as
-- BIGINT. Values compared as ranges or ordered (unique-key values, subjects) use the "C"
-- collation, so they compare as bytes like SQLite's text does.

CREATE TABLE tenants (
    id          BIGSERIAL PRIMARY KEY,
    slug        TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    active      BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  TEXT    NOT NULL
);

CREATE TABLE api_keys (
    id          BIGSERIAL PRIMARY KEY,
    tenant_id   BIGINT  NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    label       TEXT    NOT NULL,
    prefix      TEXT    NOT NULL,
    hash        TEXT    NOT NULL UNIQUE,
    created_at  TEXT    NOT NULL,
    revoked_at  TEXT
);

-- One sequence for every record id, so ids never repeat across kinds and tenants.
CREATE TABLE id_sequence (
    next_id     BIGINT  NOT NULL
);
INSERT INTO id_sequence (next_id) VALUES (1);

CREATE TABLE records (
    id          BIGINT  PRIMARY KEY,
    tenant_id   BIGINT  NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind        TEXT    NOT NULL,
    data        TEXT    NOT NULL,
    version     BIGINT  NOT NULL DEFAULT 1,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
);
CREATE INDEX records_by_kind ON records (tenant_id, kind, id);

CREATE TABLE unique_keys (
    tenant_id   BIGINT  NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    scope       TEXT COLLATE "C" NOT NULL,
    value       TEXT COLLATE "C" NOT NULL,
    record_id   BIGINT  NOT NULL REFERENCES records(id) ON DELETE CASCADE,
    PRIMARY KEY (tenant_id, scope, value)
);
CREATE INDEX unique_keys_by_record ON unique_keys (record_id);

-- Large binary data (selfies), kept out of the records so that loading a tenant stays small.
CREATE TABLE blobs (
    record_id   BIGINT  PRIMARY KEY REFERENCES records(id) ON DELETE CASCADE,
    media_type  TEXT    NOT NULL,
    bytes       BYTEA   NOT NULL
);

CREATE TABLE idempotency_keys (
    tenant_id   BIGINT  NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    key         TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    status      BIGINT  NOT NULL,
    body        TEXT    NOT NULL,
    created_at  TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, key)
);

CREATE TABLE access_events (
    id          BIGSERIAL PRIMARY KEY,
    tenant_id   BIGINT  NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    occurred_at TEXT    NOT NULL,
    data        TEXT    NOT NULL
);
CREATE INDEX access_events_by_tenant ON access_events (tenant_id, id);

CREATE TABLE audit (
    id          BIGSERIAL PRIMARY KEY,
    tenant_id   BIGINT  NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    at          TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    record_id   BIGINT,
    actor       TEXT    NOT NULL
);
CREATE INDEX audit_by_tenant ON audit (tenant_id, id);
