-- Who stopped an exposed service (POST /system/services/{name}/stop): no instance of it runs,
-- on any server and after restarts, until it is started again (NULL).
ALTER TABLE services ADD COLUMN stopped_by TEXT;
