-- A database restored from a backup, or a replica promoted after losing recent commits, would
-- count the version up again from an older value and could meet the number a server last saw,
-- which would then keep serving its old parsed services. Versions are now at least the time
-- of the change in microseconds, so a number never comes back.
CREATE OR REPLACE FUNCTION services_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE services_version SET version = GREATEST(version + 1,
        (extract(epoch FROM clock_timestamp()) * 1000000)::bigint);
    RETURN NULL;
END;
$$;
