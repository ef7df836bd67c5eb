-- Version 7 (as `../0007_secrets_at_rest.sql`): the row that says the database's secrets
-- are in their form at rest, with a value sealed with the key.

CREATE TABLE secrets_at_rest (
    id           BIGINT PRIMARY KEY CHECK (id = 1),
    check_value  TEXT   NOT NULL,
    converted_at TEXT   NOT NULL
);
