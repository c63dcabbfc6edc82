-- Job counts per service and job owner, kept by triggers on `jobs` so the services list reads
-- a row per service instead of aggregating the whole job history on every request.
CREATE TABLE job_activity (
    service  TEXT    NOT NULL,
    owner    TEXT    NOT NULL,
    total    BIGINT  NOT NULL DEFAULT 0,
    running  BIGINT  NOT NULL DEFAULT 0,
    failed   BIGINT  NOT NULL DEFAULT 0,
    last     BIGINT,
    PRIMARY KEY (service, owner)
);

INSERT INTO job_activity (service, owner, total, running, failed, last)
SELECT service, owner, COUNT(*), COUNT(*) FILTER (WHERE state = 'running'),
       COUNT(*) FILTER (WHERE state IN ('failed', 'dead_lettered')), MAX(created_at)
FROM jobs GROUP BY service, owner;

CREATE FUNCTION job_activity_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE job_activity
        SET total = total - 1,
            running = running - (OLD.state = 'running')::int,
            failed = failed - (OLD.state IN ('failed', 'dead_lettered'))::int
        WHERE service = OLD.service AND owner = OLD.owner;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO job_activity AS a (service, owner, total, running, failed, last)
        VALUES (NEW.service, NEW.owner, 1, (NEW.state = 'running')::int,
                (NEW.state IN ('failed', 'dead_lettered'))::int, NEW.created_at)
        ON CONFLICT (service, owner) DO UPDATE
        SET total = a.total + 1,
            running = a.running + excluded.running,
            failed = a.failed + excluded.failed,
            last = GREATEST(a.last, excluded.last);
    END IF;
    IF TG_OP = 'DELETE' THEN
        UPDATE job_activity
        SET last = (SELECT MAX(created_at) FROM jobs
                    WHERE service = OLD.service AND owner = OLD.owner)
        WHERE service = OLD.service AND owner = OLD.owner AND last = OLD.created_at;
        DELETE FROM job_activity WHERE service = OLD.service AND owner = OLD.owner AND total = 0;
    END IF;
    RETURN NULL;
END;
$$;

-- A job's service, owner and creation time never change; only its state does.
CREATE TRIGGER job_activity_insert_delete AFTER INSERT OR DELETE ON jobs
FOR EACH ROW EXECUTE FUNCTION job_activity_count();
CREATE TRIGGER job_activity_state AFTER UPDATE OF state ON jobs
FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION job_activity_count();
