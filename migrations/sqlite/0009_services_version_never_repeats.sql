-- A database restored from a backup, or a replica promoted after losing recent commits, would
-- count the version up again from an older value and could meet the number a server last saw,
-- which would then keep serving its old parsed services. Versions are now at least the time
-- of the change in microseconds, so a number never comes back.
DROP TRIGGER services_version_insert;
DROP TRIGGER services_version_update;
DROP TRIGGER services_version_delete;

CREATE TRIGGER services_version_insert AFTER INSERT ON services BEGIN
    UPDATE services_version SET version = max(version + 1,
        CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
CREATE TRIGGER services_version_update AFTER UPDATE ON services BEGIN
    UPDATE services_version SET version = max(version + 1,
        CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
CREATE TRIGGER services_version_delete AFTER DELETE ON services BEGIN
    UPDATE services_version SET version = max(version + 1,
        CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
