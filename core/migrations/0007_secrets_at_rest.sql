-- Secrets at rest: PINs, QR payloads, device passwords, applied documents, outbox bodies and
-- stored replies sealed, and cloud-key secrets, invitation tokens and the unique keys of
-- secrets kept as keyed digests (docs/domain.md, "Secrets at rest").
--
-- One row once the database's secrets were converted from the clear form of earlier
-- versions (`acs-core migrate`, or the first open with a key): `check_value` is a value
-- sealed with the key, so that opening with another key is refused at once.

CREATE TABLE secrets_at_rest (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    check_value TEXT    NOT NULL,
    converted_at TEXT   NOT NULL
);
