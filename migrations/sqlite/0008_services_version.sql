-- Bumped by every change to `services`, so a server keeps the parsed definitions and reads
-- them again only when this number moved (`server::services::list`), also when another
-- server made the change.
CREATE TABLE services_version (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  INTEGER NOT NULL
);
INSERT INTO services_version (id, version) VALUES (1, 0);

CREATE TRIGGER services_version_insert AFTER INSERT ON services BEGIN
    UPDATE services_version SET version = version + 1;
END;
CREATE TRIGGER services_version_update AFTER UPDATE ON services BEGIN
    UPDATE services_version SET version = version + 1;
END;
CREATE TRIGGER services_version_delete AFTER DELETE ON services BEGIN
    UPDATE services_version SET version = version + 1;
END;
