-- Version 4 (as `../0004_record_owner.sql`): the person a record belongs to.

ALTER TABLE records ADD COLUMN owner BIGINT;
UPDATE records SET owner = id WHERE kind = 'person';
UPDATE records SET owner = (data::jsonb ->> 'person_id')::numeric::bigint
    WHERE kind IN ('credential', 'phone', 'invitation')
      AND jsonb_typeof(data::jsonb -> 'person_id') = 'number';
CREATE INDEX records_by_owner ON records (tenant_id, owner) WHERE owner IS NOT NULL;
