-- Version 5 (as `../0005_device_ids.sql`): one device, one terminal – the unique key
-- `device_id` is unique across tenants.

CREATE UNIQUE INDEX unique_keys_device_anywhere ON unique_keys (scope, value)
    WHERE scope = 'device_id';
