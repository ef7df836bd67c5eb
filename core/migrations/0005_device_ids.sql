-- Version 5: one device, one terminal.
--
-- A terminal whose device is known claims the unique key `device_id` with the device's id.
-- Other unique keys are unique within their tenant; this one is unique across tenants too,
-- so the same physical device can never be registered as two terminals (and receive two
-- tenants' people, or have its events attributed to the wrong one). Terminals stored before
-- this version claim nothing until their device is next met.

CREATE UNIQUE INDEX unique_keys_device_anywhere ON unique_keys (scope, value)
    WHERE scope = 'device_id';
