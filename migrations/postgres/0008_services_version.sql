-- Bumped by every change to `services`, so a server keeps the parsed definitions and reads
-- them again only when this number moved (`server::services::list`), also when another
-- server made the change.
CREATE TABLE services_version (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  BIGINT  NOT NULL
);
INSERT INTO services_version (id, version) VALUES (1, 0);

CREATE FUNCTION services_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE services_version SET version = version + 1;
    RETURN NULL;
END;
$$;

CREATE TRIGGER services_version_bump AFTER INSERT OR UPDATE OR DELETE ON services
FOR EACH STATEMENT EXECUTE FUNCTION services_version_bump();
