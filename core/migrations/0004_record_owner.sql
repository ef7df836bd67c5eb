-- Version 4: the person a record belongs to.
--
-- A person, and their credentials, phones and selfie invitations, name that person as their
-- owner. The core keeps in memory only the people who hold an entitlement; everyone else is
-- read back from the store by owner when a call is about them, so the owner is indexed.
-- Other records (topology, groups, schedules, events, memberships, accesses) have none.

ALTER TABLE records ADD COLUMN owner INTEGER;
UPDATE records SET owner = id WHERE kind = 'person';
UPDATE records SET owner = json_extract(data, '$.person_id')
    WHERE kind IN ('credential', 'phone', 'invitation');
CREATE INDEX records_by_owner ON records (tenant_id, owner) WHERE owner IS NOT NULL;

-- A revoked credential that is not deleted leaves a trace in `unique_keys` (scope
-- `revoked`) that finds its holder by the value once they are filed. Credentials revoked
-- before this version get theirs when they are next written; until then a filed holder's
-- revoked card, PIN, QR code or token is answered as an unknown credential.
